//! The composition root: builds every part of the service from `Config` (store, event bus,
//! stream registry, live path, each output, the NATS publisher), hands each area its own state
//! and its router to the one merge in `api`, owns every long-running task (by group), and
//! shuts the parts down in order.
//!
//! This is the only module besides `api` that sees everything. Adding an output is one folder
//! and one line here (build it, register it with the registry if it follows every stream, add
//! its router to `areas`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;

use crate::api::{self, Area};
use crate::cameras::RecordingBoard;
use crate::config::Config;
use crate::db::Db;
use crate::events::{self, EventBus, Metrics, ViewerEvents};
use crate::hls::{Hls, HlsSettings};
use crate::http::token::TokenKeys;
use crate::http::{Access, RouteDoc};
use crate::hub::Registry;
use crate::ingest::Source;
use crate::ingest::ffmpeg::Transcoder;
use crate::ingest::rtsp::RtspSource;
use crate::live::{Live, LiveSettings, Profiles};
use crate::metrics::MetricsState;
use crate::mse::Mse;
use crate::provisioning::Provisioning;
use crate::record::Recorder;
use crate::restream::{Restream, RestreamSettings};
use crate::snapshot::Snapshots;
use crate::stats::Totals;
use crate::tasks::Tasks;
use crate::webrtc::WebRtc;

/// How long shutdown waits for cameras to confirm TEARDOWN.
pub const TEARDOWN_WAIT: Duration = Duration::from_secs(3);
/// How long shutdown waits for each group of tasks to end by itself before aborting it.
const TASK_GRACE: Duration = Duration::from_secs(2);

/// The assembled service. Cheap parts, shared by reference; built inside a tokio runtime.
pub struct App {
    pub config: Arc<Config>,
    /// The address the listener is bound to (the real port when configured with port 0).
    pub local_addr: SocketAddr,
    pub started: Instant,
    pub db: Db,
    pub bus: EventBus,
    /// Every live stream, by path: what outputs look streams up in.
    pub registry: Arc<Registry>,
    /// Every camera's supervisor.
    pub live: Arc<Live>,
    /// Store -> live -> event, for the API and the demo.
    pub provisioning: Arc<Provisioning>,
    /// Counters that exist nowhere else (HLS requests, WebSocket clients, NATS).
    pub metrics: Arc<Metrics>,
    pub hls: Arc<Hls>,
    pub mse: Mse,
    pub webrtc: Arc<WebRtc>,
    pub snapshots: Arc<Snapshots>,
    /// The RTSP restream (`[rtsp] listen`); `None` when off or its port could not be bound.
    pub restream: Option<Arc<Restream>>,
    pub recorder: Arc<Recorder>,
    /// Every recorded stream's recording state (camera status, `/health`, `/metrics`).
    pub recordings: RecordingBoard,
    /// The key that signs viewer tokens and dashboard sessions.
    pub tokens: Arc<TokenKeys>,
    /// Task groups, stopped in this order: outputs (viewers), the live path (cameras), then
    /// the event services (so the last state changes still reach NATS).
    output_tasks: Tasks,
    live_tasks: Tasks,
    service_tasks: Tasks,
}

impl App {
    /// The service with the real RTSP client as every camera's source.
    pub fn build(config: Arc<Config>, db: Db, local_addr: SocketAddr) -> App {
        App::with_source(
            config,
            db,
            local_addr,
            Arc::new(Arc::new(RtspSource::default())),
        )
    }

    /// The service with `source` opening cameras (tests inject faults through it).
    pub fn with_source(
        config: Arc<Config>,
        db: Db,
        local_addr: SocketAddr,
        source: Arc<dyn Source>,
    ) -> App {
        let (output_tasks, live_tasks, service_tasks) = (Tasks::new(), Tasks::new(), Tasks::new());
        let bus = EventBus::default();
        let registry = Registry::new();
        let metrics = Arc::new(Metrics::new(config.nats.enabled()));
        let live = Live::with_parts(
            LiveSettings::from_config(&config),
            source,
            registry.clone(),
            bus.clone(),
            live_tasks.clone(),
        );
        // Transcode profiles (`~h264` and `[profiles.NAME]`): ffmpeg from PATH, probed once.
        let transcoder = Transcoder::new("ffmpeg", live_tasks.clone());
        if !config.profiles.0.is_empty() || !config.grids.0.is_empty() {
            transcoder.warm_up();
        }
        live.set_profiles(Profiles::from_config(&config.profiles, transcoder));
        live.set_grids(crate::live::grids_from_config(&config.grids));
        let provisioning = Provisioning::new(db.clone(), live.clone(), bus.clone());

        // Outputs. Each follows streams through the registry or looks them up per request.
        registry.add_output(ViewerEvents::new(bus.clone(), service_tasks.clone()));
        let hls = Hls::new(
            HlsSettings::from_config(&config),
            registry.clone(),
            metrics.clone(),
            output_tasks.clone(),
        );
        registry.add_output(hls.clone());
        let mse = Mse {
            registry: registry.clone(),
            max_lag: config.streams.mse_max_lag,
        };
        // The configured HTTP address (port 0 there means an ephemeral UDP port too).
        let webrtc = WebRtc::start_or_unavailable(
            &config.webrtc,
            config.http.listen,
            crate::webrtc::Registry::new(
                registry.clone(),
                config.streams.start_timeout,
                output_tasks.clone(),
            )
            .with_announce(webrtc_events(bus.clone())),
        );
        // Follows every stream only to announce frames on NATS (when that is on).
        let snapshots = Snapshots::from_config(
            &config,
            registry.clone(),
            metrics.clone(),
            local_addr,
            output_tasks.clone(),
            &service_tasks,
        );
        registry.add_output(snapshots.clone());
        // Per-camera `frame_interval` (provisioning), as the live path runs each camera.
        let specs = live.clone();
        snapshots.set_frame_intervals(Arc::new(move |id: &str| {
            specs.spec(id).and_then(|s| s.frame_interval)
        }));
        // Recording: writers run with the cameras' tasks, so a hub that closes at shutdown
        // lets its writer close the file cleanly; reconcile and retention are a service.
        let recordings = RecordingBoard::default();
        let recorder = Recorder::start(
            &config.record,
            &config.data_dir,
            db.clone(),
            recordings.clone(),
            registry.clone(),
            recording_events(bus.clone()),
            &service_tasks,
            live_tasks.clone(),
        );
        registry.add_output(recorder.clone());
        // `/recordings/{path}/frame.jpg`: snapshots read recorded frames through the hub's seam.
        snapshots.set_recordings(recorder.clone());

        let tokens = Arc::new(token_keys(&config));
        if !config.auth.api_keys.is_empty() {
            snapshots.sign_frame_urls(tokens.clone());
        }
        // Looks streams up per RTSP request; checked by the same access rules as HTTP.
        let restream = Restream::start(
            &config.rtsp,
            config.http.listen,
            RestreamSettings::from_config(&config.rtsp, config.streams.start_timeout),
            registry.clone(),
            access(&config, &tokens, local_addr),
            &output_tasks,
        );

        App {
            tokens,
            config,
            local_addr,
            started: Instant::now(),
            db,
            bus,
            registry,
            live,
            provisioning,
            metrics,
            hls,
            mse,
            webrtc,
            snapshots,
            restream,
            recorder,
            recordings,
            output_tasks,
            live_tasks,
            service_tasks,
        }
    }

    fn totals(&self) -> Totals {
        Totals {
            db: self.db.clone(),
            registry: self.registry.clone(),
            metrics: self.metrics.clone(),
            started: self.started,
        }
    }

    /// Every area's router, with its own state.
    fn areas(&self) -> Vec<Area> {
        let totals = self.totals();
        let stats_totals = totals.clone();
        let stats: events::ws::StatsSource = Arc::new(move || {
            let t = stats_totals.clone();
            Box::pin(async move {
                let s = t.collect().await.map_err(|e| e.to_string())?;
                serde_json::to_value(s).map_err(|e| e.to_string())
            })
        });
        vec![
            api::health::router(totals.clone(), self.recordings.clone()),
            api::cameras::router(api::cameras::CamerasState {
                provisioning: self.provisioning.clone(),
                live: self.live.clone(),
                local_addr: self.local_addr,
                recordings: self.recordings.clone(),
            }),
            api::streams::router(self.live.clone()),
            crate::metrics::router(MetricsState {
                totals,
                live: self.live.clone(),
                hls: self.hls.clone(),
                webrtc: self.webrtc.clone(),
                bus: self.bus.clone(),
                recordings: self.recordings.clone(),
                snapshots: self.snapshots.clone(),
            }),
            events::ws::router(events::ws::EventsState {
                config: self.config.events.clone(),
                bus: self.bus.clone(),
                registry: self.registry.clone(),
                metrics: self.metrics.clone(),
                stats,
            }),
            api::tokens::router(api::tokens::TokensState {
                provisioning: self.provisioning.clone(),
                tokens: self.tokens.clone(),
                session_ttl: self.config.auth.session_ttl,
            }),
            crate::hls::router(self.hls.clone()),
            crate::mse::router(self.mse.clone()),
            crate::webrtc::router(self.webrtc.clone()),
            crate::snapshot::router(self.snapshots.clone()),
            crate::record::router(crate::record::http::RecordState {
                recorder: self.recorder.clone(),
                registry: self.registry.clone(),
            }),
            crate::compat::router(crate::compat::CompatParts {
                config: self.config.clone(),
                provisioning: self.provisioning.clone(),
                live: self.live.clone(),
                tasks: self.output_tasks.clone(),
                started: self.started,
            }),
        ]
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        self.routes().0
    }

    /// The whole HTTP surface and the table of every route it declares.
    pub fn routes(&self) -> (Router, Vec<RouteDoc>) {
        let access = access(&self.config, &self.tokens, self.local_addr);
        api::merge(self.areas(), access, &self.config.http.cors_origins)
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Starts the background parts: every stored camera on the live path, the periodic
    /// status and the NATS publisher.
    pub async fn start(&self) {
        match self.provisioning.load_all().await {
            Ok(n) => tracing::info!(cameras = n, "camera registry loaded"),
            Err(e) => tracing::error!(error = %e, "cannot read the cameras; none is streaming"),
        }
        events::start(
            &self.service_tasks,
            &self.bus,
            &self.registry,
            &self.metrics,
            self.config.events.status_interval,
            &self.config.nats,
        );
    }

    /// Stops everything after the listener has stopped accepting: viewers' outputs end,
    /// cameras are torn down (waiting for TEARDOWN, bounded), the event services stop, and
    /// the store is checkpointed. Every step runs even when an earlier one timed out.
    pub async fn shutdown(&self) {
        // Close viewers: outputs' tasks end (their hubs close in the next step anyway).
        let aborted = self.output_tasks.stop(Duration::ZERO).await;
        tracing::debug!(tasks = aborted.len(), "outputs stopped");
        // TEARDOWN every camera, bounded.
        self.live.shutdown(TEARDOWN_WAIT).await;
        let stuck = self.live_tasks.stop(TASK_GRACE).await;
        if !stuck.is_empty() {
            tracing::warn!(tasks = ?stuck, "camera tasks did not end in time; aborted");
        }
        // Flush: the event services get a moment to send the last state changes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.service_tasks.stop(Duration::ZERO).await;
        // Close the store.
        if let Err(e) = self.db.checkpoint().await {
            tracing::warn!(error = %e, "database checkpoint at shutdown failed");
        }
        tracing::info!("stopped");
    }
}

/// The access settings of every HTTP route and of the RTSP restream.
fn access(config: &Config, tokens: &Arc<TokenKeys>, local_addr: SocketAddr) -> Access {
    let http = &config.http;
    Access {
        api_keys: config.auth.api_keys.as_slice().into(),
        tokens: tokens.clone(),
        cors_origins: http.cors_origins.as_slice().into(),
        allowed_hosts: http.allowed_hosts.as_slice().into(),
        trusted_proxies: http.trusted_proxy_nets().into(),
        public_url: (!http.public_url.is_empty()).then(|| http.public_url.as_str().into()),
        listen: local_addr,
    }
}

/// The WebRTC output's session starts and ends as `webrtc` events on the bus.
fn webrtc_events(bus: EventBus) -> crate::webrtc::Announce {
    Arc::new(move |r: crate::webrtc::SessionReport| {
        bus.publish(events::Event::Webrtc(events::WebrtcEvent {
            camera_id: r.camera_id,
            stream_path: r.stream_path,
            ts: events::now(),
            action: r.action,
            session: r.session,
            reason: r.reason,
            seconds: r.seconds,
            bytes_sent: r.bytes_sent,
            nacks: r.nacks,
            plis: r.plis,
            firs: r.firs,
            rtt_ms: r.rtt_ms,
        }));
    })
}

/// The recorder's announcements as `recording` events on the bus.
fn recording_events(bus: EventBus) -> crate::record::Announce {
    Arc::new(move |camera_id, stream_path, status, reason| {
        bus.publish(events::Event::Recording(events::RecordingEvent {
            camera_id: camera_id.to_owned(),
            stream_path: stream_path.to_owned(),
            ts: events::now(),
            reason: reason.to_owned(),
            recording: status.clone(),
        }));
    })
}

/// The token key: configured, else `{data_dir}/token.key` (created on first start). A data
/// directory that cannot hold it costs only the tokens' survival across restarts.
fn token_keys(config: &Config) -> TokenKeys {
    if !config.auth.token_key.is_empty() {
        return TokenKeys::fixed(&config.auth.token_key);
    }
    match TokenKeys::in_dir(&config.data_dir) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!(dir = %config.data_dir.display(), error = %e, "cannot keep the token key in the data directory; tokens end with this process");
            TokenKeys::ephemeral()
        }
    }
}
