//! Runs the simulator standalone, with the same options as `camgate sim`:
//! `cargo run -p sim --example sim -- --cameras 4 --size 320x240`.

use clap::Parser;

#[derive(Parser)]
#[command(about = "camgate's camera simulator (standalone)")]
struct Cli {
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
    if let Err(e) = sim::run(Cli::parse().sim).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
