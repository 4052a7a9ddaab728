//! The supervisor of one camera stream: a task that connects the source when there is demand, feeds
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
use rand::Rng;
use tokio::sync::watch;

use super::LiveSettings;
use super::timeline::Timeline;
use crate::cameras::StreamState;
use crate::events::EventBus;
use crate::hub::{Demand, LiveStream};
use crate::ingest::{FailureKind, IngestError, Source, SourceSpec, Stage};

enum Outcome {
    /// Nobody has watched for `idle_timeout`.
    Idle,
    Failed(IngestError),
}

/// What one camera's supervisor task runs with.
pub(super) struct Supervisor {
    pub stream: LiveStream,
    pub source: Arc<dyn Source>,
    pub source_spec: SourceSpec,
    pub always_on: bool,
    pub idle_timeout: Duration,
    pub settings: LiveSettings,
    pub events: EventBus,
}

impl Supervisor {
    pub async fn run(self) {
        supervise(self).await
    }
}

async fn supervise(sv: Supervisor) {
    let Supervisor {
        stream: rt,
        source,
        source_spec,
        always_on,
        idle_timeout,
        settings,
        events,
    } = sv;
    let id = source_spec.camera_id.clone();
    let set_state = |state: StreamState, last_error: Option<String>| {
        let cause = last_error.clone();
        if let Some(previous) = rt.set_state(state, last_error) {
            announce(&events, &rt, previous, state, cause.as_deref());
        }
    };
    let mut demand = rt.watch_demand();
    let mut failures: u32 = 0;
    let mut was_live = false;
    let mut timeline = Timeline::default();

    loop {
        if !always_on && !demand.borrow().any() {
            set_state(StreamState::Idle, None);
            rt.hub().clear_cache();
            was_live = false;
            failures = 0;
            if demand.wait_for(Demand::any).await.is_err() {
                return;
            }
        }
        if rt.state().state == StreamState::Idle {
            set_state(StreamState::Starting, None);
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
                    rt.hub().begin_session();
                    timeline.new_session();
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
                                        // Audio alone is no picture: the stall rule and
                                        // going live are about video.
                                        let video = frame.video().is_some();
                                        if video {
                                            last_frame = tokio::time::Instant::now();
                                        }
                                        if let Some(f) = timeline.adjust(frame) {
                                            rt.hub().publish(f);
                                        }
                                        if video && !got_frame {
                                            got_frame = true;
                                            was_live = true;
                                            failures = 0;
                                            set_state(StreamState::Live, None);
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
                tracing::warn!(camera = %id, error = %e, state = state.as_str(), retry_in = ?delay, "camera failed");
                set_state(state, Some(e.to_string()));
                let gone = demand_gone(&mut demand, idle_timeout, always_on);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = gone => {}
                }
            }
        }
    }
}

/// Tells the event bus about a state change of `stream`; `cause` is the failure or other
/// reason.
pub(super) fn announce(
    events: &EventBus,
    stream: &LiveStream,
    previous: StreamState,
    state: StreamState,
    cause: Option<&str>,
) {
    let spec = stream.spec();
    events.publish(crate::events::state_event(
        &spec.camera_id,
        &spec.path,
        previous,
        state,
        cause,
        spec.always_on,
    ));
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

#[cfg(test)]
mod tests {
    use super::*;

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
