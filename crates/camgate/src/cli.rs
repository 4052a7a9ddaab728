//! The command line. Each subcommand is one variant of [`Command`] with its own arguments
//! struct; flags that shape the configuration are global, so they work after any subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "camgate",
    version,
    about = "camgate, a camera streaming gateway: RTSP cameras in, LL-HLS and MSE out, managed by a REST API",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand accepts; they override the file and the environment.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML). Default: ./camgate.toml if it exists.
    #[arg(long, global = true, env = "CAMGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the database (and later recordings). Default: ./data
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for the HTTP listener of `serve` and `demo` (default 127.0.0.1:8080); for `sim`,
    /// the RTSP listener (default 127.0.0.1:8555).
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Log line format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log level or tracing filter, e.g. debug or info,camgate::api=debug.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (HTTP API, camera registry, live LL-HLS/MSE, events, dashboard) until
    /// SIGINT or SIGTERM.
    Serve,
    /// Print the effective configuration (file + environment + flags) as TOML, secrets as ***.
    Config,
    /// Serve simulated RTSP cameras rtsp://ADDR/cam1 ... /camN (synthetic H.264 with the
    /// wall clock burned in) until SIGINT or SIGTERM. `--listen` sets the RTSP address here
    /// (default 127.0.0.1:8555). See docs/sim.md.
    Sim(Box<sim::SimArgs>),
    /// Try camgate with nothing installed: the simulator (4 cameras, 640x360 at 25 fps) and the
    /// gateway in one process, cameras provisioned in the registry, data in ./demo-data unless
    /// --data-dir (or a configured data_dir) says otherwise. Prints the dashboard's URL.
    Demo(crate::demo::DemoArgs),
    /// Manage the key that signs viewer tokens and dashboard sessions ({data_dir}/token.key).
    #[command(subcommand)]
    TokenKey(TokenKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenKeyCommand {
    /// Replace the key with a new random one: every token and session issued so far stops
    /// working. A running server picks the new key up within a second; no restart, and the
    /// data directory's lock is not needed.
    Rotate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "camgate",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/d",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Serve));
        let o = cli.global.overrides();
        assert_eq!(o.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(o.log_format, Some(LogFormat::Json));
    }
}
