//! The `camgate` binary: parse the command line, load the configuration, run the subcommand.

use std::process::ExitCode;

use camgate::cli::{Cli, Command, TokenKeyCommand};
use camgate::config::{self, Config};
use camgate::server::{self, Server};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let config = match config::load(cli.global.config.as_deref(), env, &cli.global.overrides()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("camgate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(config),
        Command::Config => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Sim(args) => simulate(config, *args, cli.global.listen),
        Command::Demo(args) => demo(config, args, cli.global.data_dir.as_deref()),
        Command::TokenKey(TokenKeyCommand::Rotate) => rotate_token_key(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camgate: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rotate_token_key(config: &Config) -> Result<(), String> {
    if !config.auth.token_key.is_empty() {
        return Err("[auth] token_key is set in the configuration; change it there and restart (rotate replaces only the key file of the data directory)".into());
    }
    let path = camgate::http::token::rotate(&config.data_dir).map_err(|e| {
        format!(
            "cannot write a new token key in {}: {e}",
            config.data_dir.display()
        )
    })?;
    println!(
        "new token key in {}; every token issued before no longer works",
        path.display()
    );
    Ok(())
}

fn serve(config: Config) -> Result<(), String> {
    camgate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        // Before binding, so a signal during start-up already means a clean stop.
        let shutdown = server::shutdown_signal();
        let server = Server::bind(config).await.map_err(|e| e.to_string())?;
        server.run(shutdown).await.map_err(|e| e.to_string())
    })
}

/// `camgate sim`: the global `--listen` is the RTSP address here.
fn simulate(
    config: Config,
    args: sim::SimArgs,
    listen: Option<std::net::SocketAddr>,
) -> Result<(), String> {
    camgate::logging::init(&config.log)?;
    let args = sim::SimArgs {
        listen: listen.unwrap_or(sim::DEFAULT_LISTEN),
        ..args
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        // Handlers first, so a signal during start-up already means a clean stop.
        let shutdown = server::shutdown_signal();
        sim::run(args, shutdown).await.map_err(|e| e.to_string())
    })
}

/// `camgate demo`: the simulator and the server in one process.
fn demo(
    mut config: Config,
    args: camgate::demo::DemoArgs,
    data_dir_flag: Option<&std::path::Path>,
) -> Result<(), String> {
    camgate::logging::init(&config.log)?;
    config.data_dir = camgate::demo::data_dir(&config, data_dir_flag);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        // Handlers first, so a signal during start-up already means a clean stop.
        let shutdown = server::shutdown_signal();
        camgate::demo::run(config, args, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}
