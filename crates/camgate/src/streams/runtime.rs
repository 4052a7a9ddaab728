//! The supervisor of one camera: a task that connects the source when there is demand, feeds
//! the hub, detects stalls, retries failures with capped exponential backoff and jitter, and
//! disconnects an on-demand camera `idle_timeout` after its last viewer left.
//!
//! State rules (what `status.state` shows):
//! - `idle`: on demand, nobody watching, not connected.
//! - `starting`: connecting after idle (or at startup), until the first frame.
//! - `live`: frames are flowing.
//! - after a failure: `unauthorized` when the camera rejected the credentials; otherwise
//!   `reconnecting` if the camera had been live since it last left idle (a camera that worked
//!   and went away), else the failure's class (`unreachable`, `error`) because it never
//!   worked with these settings. Retrying continues in every failure state.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use media::Frame;
use rand::Rng;
use tokio::sync::watch;

use super::{CameraRuntime, Demand, LiveSettings, RuntimeState, StreamState};
use crate::ingest::{FailureKind, IngestError, Source, SourceSpec, Stage};

pub(super) fn spawn(rt: &Arc<CameraRuntime>, source: Arc<dyn Source>, settings: LiveSettings) {
    let task = tokio::spawn(supervise(rt.clone(), source, settings));
    *rt.supervisor.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
}

enum Outcome {
    /// Nobody has watched for `idle_timeout`.
    Idle,
    Failed(IngestError),
}

async fn supervise(rt: Arc<CameraRuntime>, source: Arc<dyn Source>, settings: LiveSettings) {
    let spec = rt.spec();
    let id = spec.camera_id.clone();
    let always_on = spec.always_on();
    let idle_timeout = spec.idle_timeout.unwrap_or(settings.idle_timeout);
    let source_spec = SourceSpec {
        camera_id: spec.camera_id.clone(),
        url: spec.rtsp_url.clone(),
        transport: spec.transport,
    };
    let mut demand = rt.viewers.subscribe();
    let mut failures: u32 = 0;
    let mut was_live = false;
    let mut continuity = Continuity::default();

    loop {
        if !always_on && !demand.borrow().any() {
            set_state(&rt, StreamState::Idle, None);
            rt.hub.clear_cache();
            was_live = false;
            failures = 0;
            if demand.wait_for(Demand::any).await.is_err() {
                return;
            }
        }
        if rt.state().state == StreamState::Idle {
            set_state(&rt, StreamState::Starting, None);
        }

        let outcome = {
            let gone = demand_gone(&mut demand, idle_timeout, always_on);
            tokio::pin!(gone);
            let opened = tokio::select! {
                r = source.open(&source_spec) => Some(r),
                _ = &mut gone => None,
            };
            match opened {
                None => Outcome::Idle,
                Some(Err(e)) => Outcome::Failed(e),
                Some(Ok(mut stream)) => {
                    rt.hub.begin_session();
                    continuity.new_session();
                    let mut got_frame = false;
                    // One stall timer for the whole session, pushed forward only when it
                    // fires: arming a fresh timeout for every frame costs a timer-wheel insert
                    // and removal per frame, which showed in profiles at hundreds of cameras.
                    let mut last_frame = tokio::time::Instant::now();
                    let stall = tokio::time::sleep(settings.stall_timeout);
                    tokio::pin!(stall);
                    loop {
                        tokio::select! {
                            _ = &mut gone => break Outcome::Idle,
                            _ = &mut stall => {
                                let due = last_frame + settings.stall_timeout;
                                if tokio::time::Instant::now() < due {
                                    stall.as_mut().reset(due);
                                    continue;
                                }
                                break Outcome::Failed(IngestError::new(
                                    FailureKind::Stalled,
                                    Stage::Data,
                                    &id,
                                    format!(
                                        "no video for {:?} although the session is open (stall)",
                                        settings.stall_timeout
                                    ),
                                ));
                            }
                            item = stream.next() => {
                                match item {
                                    None => break Outcome::Failed(IngestError::new(
                                        FailureKind::Error,
                                        Stage::Data,
                                        &id,
                                        "the session ended",
                                    )),
                                    Some(Err(e)) => break Outcome::Failed(e),
                                    Some(Ok(frame)) => {
                                        last_frame = tokio::time::Instant::now();
                                        rt.hub.publish(continuity.adjust(frame));
                                        if !got_frame {
                                            got_frame = true;
                                            was_live = true;
                                            failures = 0;
                                            set_state(&rt, StreamState::Live, None);
                                            tracing::info!(camera = %id, "live");
                                        }
                                    }
                                }
                            }
                        }
                    }
                    // The stream drops here: retina tears the session down.
                }
            }
        };

        match outcome {
            Outcome::Idle => {
                tracing::info!(camera = %id, "no viewers for {idle_timeout:?}; disconnecting");
                continue;
            }
            Outcome::Failed(e) => {
                let state = failure_state(e.kind, was_live);
                let delay = backoff(failures, &settings, e.kind);
                failures = failures.saturating_add(1);
                tracing::warn!(camera = %id, error = %e, state = super::state_name(state), retry_in = ?delay, "camera failed");
                set_state(&rt, state, Some(e.to_string()));
                let gone = demand_gone(&mut demand, idle_timeout, always_on);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = gone => {}
                }
            }
        }
    }
}

/// Sets the state; `last_error` replaces the previous one when given, else the previous one
/// stays (it is history: what went wrong last).
/// Every change of state is announced on the event bus; every failure counts a reconnect.
fn set_state(rt: &CameraRuntime, state: StreamState, last_error: Option<String>) {
    if last_error.is_some() {
        rt.reconnects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let cause = last_error.clone();
    let mut previous = None;
    rt.state.send_if_modified(|s| {
        let next = RuntimeState {
            state,
            last_error: last_error.or_else(|| s.last_error.clone()),
        };
        if *s == next {
            false
        } else {
            if s.state != next.state {
                previous = Some(s.state);
            }
            *s = next;
            true
        }
    });
    if let Some(previous) = previous {
        rt.announce_state(previous, state, cause.as_deref());
    }
}

fn failure_state(kind: FailureKind, was_live: bool) -> StreamState {
    match kind {
        FailureKind::Unauthorized => StreamState::Unauthorized,
        _ if was_live => StreamState::Reconnecting,
        FailureKind::Unreachable => StreamState::Unreachable,
        FailureKind::Stalled | FailureKind::Error => StreamState::Error,
    }
}

/// Delay before the next attempt after `failures` consecutive failures: doubling from
/// `reconnect_min`, capped at `reconnect_max`, with jitter (uniform in the upper half) so many
/// cameras behind one failed switch do not come back in lockstep. Wrong credentials do not fix
/// themselves and cameras lock accounts after repeated failures, so they wait the cap.
pub(super) fn backoff(failures: u32, s: &LiveSettings, kind: FailureKind) -> Duration {
    let max = s.reconnect_max.max(s.reconnect_min);
    let base = if kind == FailureKind::Unauthorized {
        max
    } else {
        s.reconnect_min
            .saturating_mul(1u32 << failures.min(20))
            .min(max)
    };
    let factor = rand::rng().random_range(0.5..=1.0);
    base.mul_f64(factor).max(s.reconnect_min.min(base))
}

/// Completes once nobody has wanted the camera for `idle` (never for always-on cameras).
async fn demand_gone(demand: &mut watch::Receiver<Demand>, idle: Duration, always_on: bool) {
    if always_on {
        return std::future::pending().await;
    }
    loop {
        if demand.wait_for(|d| !d.any()).await.is_err() {
            return;
        }
        match tokio::time::timeout(idle, demand.wait_for(Demand::any)).await {
            Err(_) => return,
            Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Keeps decode times strictly increasing across reconnects and camera clock jumps, so every
/// consumer (segmenter, MSE, recorder) sees one continuous timeline per camera runtime.
#[derive(Default)]
struct Continuity {
    offset: i64,
    last_dts: Option<i64>,
    /// Typical frame interval, used to place the first frame after a gap.
    step: i64,
    fresh: bool,
}

impl Continuity {
    fn new_session(&mut self) {
        self.fresh = true;
    }

    fn adjust(&mut self, mut f: Frame) -> Frame {
        let step = if self.step > 0 { self.step } else { 3000 };
        if let Some(last) = self.last_dts
            && (self.fresh || f.dts + self.offset <= last)
        {
            // A new session starts its clock anew; a camera clock going backwards is treated
            // the same way: continue one frame interval after the last frame.
            self.offset = last + step - f.dts;
        }
        self.fresh = false;
        f.dts += self.offset;
        f.pts += self.offset;
        if let Some(last) = self.last_dts {
            self.step = (f.dts - last).clamp(1, 90_000);
        }
        self.last_dts = Some(f.dts);
        f
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use media::{Codec, CodecParams};

    use super::*;

    fn frame(dts: i64) -> Frame {
        Frame {
            data: Bytes::new(),
            pts: dts,
            dts,
            keyframe: false,
            params: Arc::new(CodecParams {
                codec: Codec::H264,
                vps: Bytes::new(),
                sps: Bytes::new(),
                pps: Bytes::new(),
                width: 2,
                height: 2,
                rfc6381: String::new(),
            }),
        }
    }

    #[test]
    fn continuity_spans_sessions_and_backward_jumps() {
        let mut c = Continuity::default();
        c.new_session();
        let got: Vec<i64> = [0, 3600, 7200].map(|d| c.adjust(frame(d)).dts).to_vec();
        assert_eq!(got, vec![0, 3600, 7200]);
        c.new_session();
        assert_eq!(c.adjust(frame(0)).dts, 10800);
        assert_eq!(c.adjust(frame(3600)).dts, 14400);
        // camera clock jumps back within a session
        assert_eq!(c.adjust(frame(100)).dts, 18000);
        assert_eq!(c.adjust(frame(3700)).dts, 21600);
    }

    #[test]
    fn backoff_doubles_caps_and_waits_long_for_wrong_credentials() {
        let s = LiveSettings {
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            ..LiveSettings::default()
        };
        for _ in 0..50 {
            let d0 = backoff(0, &s, FailureKind::Unreachable);
            assert!(
                d0 >= Duration::from_secs(1) && d0 <= Duration::from_secs(1),
                "{d0:?}"
            );
            let d3 = backoff(3, &s, FailureKind::Unreachable);
            assert!(
                d3 >= Duration::from_secs(4) && d3 <= Duration::from_secs(8),
                "{d3:?}"
            );
            let d10 = backoff(10, &s, FailureKind::Error);
            assert!(d10 >= Duration::from_secs(15) && d10 <= Duration::from_secs(30));
            let u = backoff(0, &s, FailureKind::Unauthorized);
            assert!(u >= Duration::from_secs(15), "{u:?}");
        }
    }
}
