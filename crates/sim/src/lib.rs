//! The camera simulator: a synthetic picture with the wall clock burned in (digits and a
//! machine-readable band), encoded to H.264 in-process, served to any RTSP client as
//! `/cam1 ... /camN`, with optional authentication and injectable faults. The RTSP server
//! itself is crates/rtsp; this crate is its picture source.
//!
//! In-process use (tests, `camgate demo`):
//! ```no_run
//! # async fn f() -> Result<(), sim::SimError> {
//! let handle = sim::SimServer::start(sim::SimConfig::default()).await?;
//! println!("{}", handle.url(1)); // rtsp://127.0.0.1:PORT/cam1
//! # Ok(()) }
//! ```
//! From a CLI: embed `sim::SimArgs` and call `sim::run(args)`. docs/sim.md has the details.

pub mod band;
pub mod config;
pub mod encode;
pub mod font;
pub mod picture;
mod play;
pub mod rtp;
mod server;
mod source;

pub use band::{BAND_PERIOD_MS, band_age_ms, decode_band};
pub use config::{AuthScheme, Credentials, DEFAULT_LISTEN, Faults, SimArgs, SimConfig};
pub use server::{REALM, SimHandle, SimServer};

/// Why the simulator could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("H.264 encoder: {0}")]
    Encoder(String),
    #[error("simulator I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// `camgate sim`: serves the cameras until `shutdown` resolves (the CLI passes its
/// SIGINT/SIGTERM future), printing their URLs.
pub async fn run(
    args: SimArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SimError> {
    let config = args.to_config();
    config.validate()?;
    let handle = SimServer::start(config).await?;
    let c = handle.config();
    println!(
        "camgate sim: {} camera(s), {}x{} @ {} fps, {}",
        c.cameras,
        c.width,
        c.height,
        c.fps,
        if c.live { "live" } else { "looped clip" }
    );
    for cam in 1..=c.cameras.min(8) {
        println!("  {}", handle.url(cam));
    }
    if c.cameras > 8 {
        println!("  ... {}", handle.url(c.cameras));
    }
    shutdown.await;
    handle.shutdown();
    Ok(())
}
