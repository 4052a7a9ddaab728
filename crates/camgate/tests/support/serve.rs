//! `camgate serve`, the real binary, as a child process at debug level over a data directory
//! the test owns, with every line it prints kept (stdout and stderr), and the forms in which a
//! password could leak. For tests that search logs for secrets, which an in-process server
//! (its logging set up by the test harness, not by `camgate serve`) cannot show.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine;

use super::process;

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

pub struct Camgate {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Camgate {
    /// Logs in `format` (`text` or `json`) at debug level, listening on a free port; `env` is
    /// the whole environment (`CAMGATE_*` settings), nothing is inherited.
    pub fn start(data_dir: &std::path::Path, format: &str, env: &[(&str, &str)]) -> Camgate {
        let mut child = Command::new(BIN)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(data_dir.parent().unwrap())
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", format])
            .args(["--log-level", "debug", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn camgate");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("camgate did not start: {:?}", output.lock().unwrap())
            });
            // The HTTP listener's line (the RTSP restream announces its own).
            if !(line.contains("listening") && line.contains("data_dir")) {
                continue;
            }
            // JSON: "addr":"127.0.0.1:N"; text: addr=127.0.0.1:N
            let addr = line.split(['"', ' ', '=', ',']).find_map(|w| {
                w.strip_prefix("127.0.0.1:")
                    .map(|p| format!("127.0.0.1:{p}"))
            });
            if let Some(addr) = addr.and_then(|a| a.parse().ok()) {
                break addr;
            }
        };
        Camgate {
            child,
            addr,
            output,
            readers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every line printed so far.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM, a clean exit within 30 s, and every line it printed.
    pub fn stop(mut self) -> Vec<String> {
        process::signal(&self.child, "TERM");
        let exit = process::wait_exit(&mut self.child, Duration::from_secs(30), "camgate stop");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let output = self.output.lock().unwrap().clone();
        assert!(exit.success(), "exit {exit:?}");
        output
    }
}

impl Drop for Camgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every form in which `password` (of `user`) could leak: raw, JSON-escaped, percent-encoded
/// as a URL holds it and fully, and the base64 of `user:password` (what Basic auth sends).
pub fn encodings(user: &str, password: &str) -> Vec<String> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut url = url::Url::parse("rtsp://h/").unwrap();
    url.set_password(Some(password)).unwrap();
    let mut forms = vec![
        password.to_owned(),
        serde_json::to_string(password)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
        url.password().unwrap().to_owned(),
        utf8_percent_encode(password, NON_ALPHANUMERIC).to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")),
    ];
    forms.sort();
    forms.dedup();
    forms
}
