//! A real `nats-server` (Debian package `nats-server`) on 127.0.0.1, started by the test and
//! killed when dropped (or by `stop`, as a crash would).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::closed_port;
use super::process::KillOnDrop;

pub struct NatsServer {
    child: KillOnDrop,
    pub port: u16,
}

impl NatsServer {
    /// On a free port.
    pub fn start() -> NatsServer {
        NatsServer::start_on(closed_port())
    }

    /// On `port` (a restart on the port a crashed server had); waits until it listens.
    pub fn start_on(port: u16) -> NatsServer {
        NatsServer::spawn(port, &[])
    }

    /// On a free port, accepting only clients that log in as `user` with `password`.
    pub fn start_with_user(user: &str, password: &str) -> NatsServer {
        NatsServer::spawn(closed_port(), &["--user", user, "--pass", password])
    }

    fn spawn(port: u16, extra: &[&str]) -> NatsServer {
        // Debian installs it in /usr/sbin, which is not on every user's PATH.
        let program = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(program)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nats-server (Debian package nats-server)");
        let child = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NatsServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and gives back its port.
    pub fn stop(self) -> u16 {
        let port = self.port;
        drop(self.child);
        port
    }
}
