//! Who is watching a stream: counts by protocol, the `max_viewers_per_stream` limit, and the
//! demand signal the runtime's supervisor waits on.
//!
//! A viewer is held by a `ViewerGuard`; dropping the guard is the only way to leave, so a
//! crashed handler can never leak a count. What counts as one viewer is the protocol's
//! business (hls/ keeps one guard per player session, mse/ one per socket).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;

/// Output protocols a viewer can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Hls,
    Webrtc,
    Mse,
    Rtsp,
}

/// Viewer counts of one stream, as `/streams/{path}/viewers` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByProtocol {
    pub hls: u32,
    pub webrtc: u32,
    pub mse: u32,
    pub rtsp: u32,
}

impl ByProtocol {
    pub fn total(&self) -> u32 {
        self.hls + self.webrtc + self.mse + self.rtsp
    }

    pub fn add(&mut self, other: &ByProtocol) {
        self.hls += other.hls;
        self.webrtc += other.webrtc;
        self.mse += other.mse;
        self.rtsp += other.rtsp;
    }

    fn slot(&mut self, p: Protocol) -> &mut u32 {
        match p {
            Protocol::Hls => &mut self.hls,
            Protocol::Webrtc => &mut self.webrtc,
            Protocol::Mse => &mut self.mse,
            Protocol::Rtsp => &mut self.rtsp,
        }
    }
}

/// Demand on a camera: viewers plus internal holds (a request waiting for the first part, a
/// snapshot) that need the camera connected but are not viewers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    pub viewers: ByProtocol,
    pub holds: u32,
}

impl Demand {
    pub fn any(&self) -> bool {
        self.viewers.total() > 0 || self.holds > 0
    }
}

/// The refusal when a stream already has `max_viewers_per_stream` viewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyViewers {
    pub max: u32,
}

/// Shared by a camera's runtime and every guard; survives runtime restarts (provision
/// updates), so players keep their place.
pub struct Viewers {
    max: Mutex<u32>,
    demand: watch::Sender<Demand>,
    lock: Mutex<()>,
}

impl Viewers {
    pub fn new(max: u32) -> Arc<Viewers> {
        Arc::new(Viewers {
            max: Mutex::new(max),
            demand: watch::Sender::new(Demand::default()),
            lock: Mutex::new(()),
        })
    }

    pub fn set_max(&self, max: u32) {
        *self.max.lock().unwrap_or_else(|p| p.into_inner()) = max;
    }

    /// Counts a new viewer, or refuses it past the limit.
    pub fn join(self: &Arc<Self>, p: Protocol) -> Result<ViewerGuard, TooManyViewers> {
        // One lock around check-and-increment so two joins cannot both take the last place.
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let max = *self.max.lock().unwrap_or_else(|p| p.into_inner());
        if self.demand.borrow().viewers.total() >= max {
            return Err(TooManyViewers { max });
        }
        self.demand.send_modify(|d| *d.viewers.slot(p) += 1);
        Ok(ViewerGuard {
            viewers: self.clone(),
            kind: GuardKind::Viewer(p),
        })
    }

    /// Keeps the camera connected without counting as a viewer.
    pub fn hold(self: &Arc<Self>) -> ViewerGuard {
        self.demand.send_modify(|d| d.holds += 1);
        ViewerGuard {
            viewers: self.clone(),
            kind: GuardKind::Hold,
        }
    }

    pub fn counts(&self) -> ByProtocol {
        self.demand.borrow().viewers
    }

    pub fn subscribe(&self) -> watch::Receiver<Demand> {
        self.demand.subscribe()
    }
}

enum GuardKind {
    Viewer(Protocol),
    Hold,
}

/// One counted viewer (or hold); dropping it leaves.
pub struct ViewerGuard {
    viewers: Arc<Viewers>,
    kind: GuardKind,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        match self.kind {
            GuardKind::Viewer(p) => self.viewers.demand.send_modify(|d| {
                let s = d.viewers.slot(p);
                *s = s.saturating_sub(1);
            }),
            GuardKind::Hold => self
                .viewers
                .demand
                .send_modify(|d| d.holds = d.holds.saturating_sub(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_protocol_and_refuses_past_max() {
        let v = Viewers::new(2);
        let a = v.join(Protocol::Hls).unwrap();
        let _b = v.join(Protocol::Mse).unwrap();
        assert_eq!(v.join(Protocol::Hls).err(), Some(TooManyViewers { max: 2 }));
        let _h = v.hold();
        assert_eq!(
            v.counts(),
            ByProtocol {
                hls: 1,
                mse: 1,
                ..Default::default()
            }
        );
        drop(a);
        assert_eq!(v.counts().total(), 1);
        assert!(v.join(Protocol::Webrtc).is_ok());
        assert!(v.subscribe().borrow().any());
    }
}
