//! The cap on connections open at once per client address (`[http]
//! max_connections_per_client`): one client cannot hold every file descriptor of the
//! gateway. A refusal is logged once per address until that address drops back to zero.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

pub struct ClientLimits {
    max: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: HashMap<IpAddr, usize>,
    /// Addresses refused since they last had no connection (so each is logged once).
    refused: HashSet<IpAddr>,
}

/// One connection counted against its client; released on drop.
pub struct Slot {
    limits: Arc<ClientLimits>,
    ip: IpAddr,
}

impl ClientLimits {
    /// `max == 0`: no cap.
    pub fn new(max: usize) -> Arc<ClientLimits> {
        Arc::new(ClientLimits {
            max,
            state: Mutex::default(),
        })
    }

    /// A slot for one more connection from `ip`, or `None` (logged the first time) when
    /// `ip` already holds the maximum.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = canonical(ip);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let open = state.open.entry(ip).or_insert(0);
        if self.max != 0 && *open >= self.max {
            if state.refused.insert(ip) {
                tracing::warn!(
                    client = %ip,
                    max = self.max,
                    "client holds [http] max_connections_per_client connections; refusing more (logged once until it drops to none)"
                );
            }
            return None;
        }
        *open += 1;
        Some(Slot {
            limits: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.open.get(&canonical(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self
            .limits
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = state.open.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                state.open.remove(&self.ip);
                state.refused.remove(&self.ip);
            }
        }
    }
}

/// `::ffff:1.2.3.4` and `1.2.3.4` are one client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_releases() {
        let limits = ClientLimits::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let one = limits.acquire(a).unwrap();
        let _two = limits.acquire(mapped).unwrap();
        assert!(limits.acquire(a).is_none());
        let _other = limits.acquire(b).unwrap();
        drop(one);
        assert_eq!(limits.open(a), 1);
        let _three = limits.acquire(a).unwrap();
        assert!(limits.acquire(a).is_none());
    }

    #[test]
    fn zero_is_no_cap() {
        let limits = ClientLimits::new(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<Slot> = (0..1000).map(|_| limits.acquire(a).unwrap()).collect();
        assert_eq!(limits.open(a), slots.len());
        drop(slots);
        assert_eq!(limits.open(a), 0);
    }
}
