//! `camgate demo`: the built-in simulator and the gateway in one process, so a new user sees
//! moving cameras with nothing installed but Rust.
//!
//! Owns only the wiring: start `sim::SimServer`, open the server (which owns the data
//! directory and its lock), provision the simulated cameras through the registry's own
//! validation and storage (`parse_provision` + `Db::upsert_camera`, as `POST /cameras/provision`
//! does), then serve. It adds no route and no state of its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cameras::parse_provision;
use crate::config::Config;
use crate::db::Upserted;
use crate::server::Server;

/// Where the demo keeps its database unless `--data-dir` or a configured `data_dir` says
/// otherwise; separate from `serve`'s `./data` so trying the demo never touches a real registry.
pub const DEFAULT_DATA_DIR: &str = "./demo-data";

/// `camgate demo` options (the global `--listen` and `--data-dir` apply as for `serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of simulated cameras (camera ids 1..N, stream paths cam_1..cam_N).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cameras: u32,
    /// Picture size of the simulated cameras, WIDTHxHEIGHT (even numbers).
    #[arg(long, default_value = "640x360", value_parser = sim::config::parse_size)]
    pub size: (u32, u32),
    /// Frames per second of the simulated cameras.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Target bitrate of the simulated cameras, e.g. 800k, 2M.
    #[arg(long, default_value = "800k", value_parser = sim::config::parse_bitrate)]
    pub bitrate: u32,
    /// Address of the simulator's RTSP server; port 0 picks a free port at every start (the
    /// cameras' URLs are updated in the registry each time).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR:PORT")]
    pub sim_listen: SocketAddr,
}

impl DemoArgs {
    /// The simulator's configuration: encoded live (one encoder for all cameras, busy only
    /// while someone watches) so the burned-in clock is the current time.
    pub fn sim_config(&self) -> sim::SimConfig {
        sim::SimConfig {
            cameras: self.cameras,
            listen: self.sim_listen,
            width: self.size.0,
            height: self.size.1,
            fps: self.fps,
            gop: Duration::from_secs(1),
            bitrate: self.bitrate,
            live: true,
            ..sim::SimConfig::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("simulator: {0}")]
    Sim(#[from] sim::SimError),
    #[error("{0}")]
    Serve(#[from] crate::server::ServeError),
    #[error("cannot provision demo camera {camera_id}: {message}")]
    Provision { camera_id: String, message: String },
}

/// The data directory the demo uses: the configured one, unless it is only the built-in
/// default of `serve`, which becomes [`DEFAULT_DATA_DIR`].
pub fn data_dir(config: &Config, flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_owned();
    }
    if config.data_dir == Config::default().data_dir {
        PathBuf::from(DEFAULT_DATA_DIR)
    } else {
        config.data_dir.clone()
    }
}

/// The provisioning body for simulated camera `n`, exactly what a user would POST.
fn provision_body(n: u32, rtsp_url: &str) -> serde_json::Value {
    serde_json::json!({
        "camera_id": n.to_string(),
        "name": format!("Demo camera {n}"),
        "rtsp_url": rtsp_url,
        "on_demand": true,
        "transport": "tcp",
    })
}

/// Upserts the simulated cameras (ids `1..=N`) so they survive restarts and re-running the
/// demo updates them (their simulator port may change) instead of duplicating them.
/// Returns how many were created (the rest were updated).
pub async fn provision(server: &Server, sim: &sim::SimHandle) -> Result<u32, DemoError> {
    let mut created = 0;
    for n in 1..=sim.config().cameras {
        let body = provision_body(n, &sim.url(n));
        let fail = |message: String| DemoError::Provision {
            camera_id: n.to_string(),
            message,
        };
        let spec = parse_provision(&body).map_err(|e| fail(e.to_string()))?;
        let (_, how) = server
            .app()
            .provisioning
            .provision(spec, "demo")
            .await
            .map_err(|e| fail(e.to_string()))?;
        created += u32::from(how == Upserted::Created);
    }
    Ok(created)
}

/// Runs the demo until `shutdown` resolves. `config.data_dir` must already be the demo's
/// (see [`data_dir`]).
pub async fn run(
    config: Config,
    args: DemoArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let sim_config = args.sim_config();
    sim_config.validate()?;
    let data_dir = config.data_dir.clone();
    // Bind first: a busy port or a locked data directory should fail before the encoder starts.
    let server = Server::bind(config).await?;
    let sim = sim::SimServer::start(sim_config).await?;
    let created = provision(&server, &sim).await?;
    // A wildcard listener is reachable on loopback; print an address a browser can open.
    let mut addr = server.local_addr();
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let cameras = sim.config().cameras;
    println!(
        "camgate demo: {cameras} simulated camera(s) ({}x{} @ {} fps) on rtsp://{}, data in {} ({} new, {} updated)",
        sim.config().width,
        sim.config().height,
        sim.config().fps,
        sim.local_addr(),
        data_dir.display(),
        created,
        cameras - created,
    );
    println!("  dashboard:  http://{addr}/");
    println!("  HLS stream: http://{addr}/hls/cam_1/index.m3u8");
    println!("  API:        http://{addr}/cameras");
    println!("Stop with Ctrl-C.");
    let result = server.run(shutdown).await;
    sim.shutdown();
    result.map_err(DemoError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    #[test]
    fn defaults_are_laptop_sized() {
        let args = Cli::try_parse_from(["demo"]).unwrap().demo;
        let c = args.sim_config();
        assert_eq!((c.cameras, c.width, c.height, c.fps), (4, 640, 360, 25));
        assert!(c.listen.ip().is_loopback());
        c.validate().unwrap();
        assert!(Cli::try_parse_from(["demo", "--cameras", "0"]).is_err());
        assert!(Cli::try_parse_from(["demo", "--size", "640"]).is_err());
    }

    #[test]
    fn demo_bodies_pass_the_api_validation() {
        let spec = parse_provision(&provision_body(3, "rtsp://127.0.0.1:5/cam3")).unwrap();
        assert_eq!(spec.camera_id, "3");
        assert_eq!(spec.stream_path, "cam_3");
        assert!(spec.on_demand);
    }

    #[test]
    fn data_dir_defaults_to_demo_data_only_when_unconfigured() {
        let mut config = Config::default();
        assert_eq!(data_dir(&config, None), PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            data_dir(&config, Some(Path::new("/tmp/x"))),
            PathBuf::from("/tmp/x")
        );
        config.data_dir = PathBuf::from("/var/lib/camgate");
        assert_eq!(data_dir(&config, None), PathBuf::from("/var/lib/camgate"));
    }
}
