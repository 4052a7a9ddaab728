//! Runs the simulator standalone, with the same options as `camgate sim`:
//! `cargo run -p sim --example sim -- --cameras 4 --size 320x240`.

use clap::Parser;

#[derive(Parser)]
#[command(about = "camgate's camera simulator (standalone)")]
struct Cli {
    /// Address the RTSP server listens on.
    #[arg(long, default_value_t = sim::DEFAULT_LISTEN)]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    sim: sim::SimArgs,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let args = sim::SimArgs {
        listen: cli.listen,
        ..cli.sim
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = sim::run(args, ctrl_c).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
