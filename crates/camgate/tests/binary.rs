//! The real `camgate` binary: restart persistence, secrets kept out of answers and logs,
//! graceful shutdown on SIGTERM, `camgate config`, configuration errors, `--help`.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{client, process};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");
const PASSWORD: &str = "Pa55w0rd-must-not-leak";

/// A `camgate serve` process with its output captured.
struct Camgate {
    child: Child,
    addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    /// The threads copying stdout and stderr; they end at EOF, when the process has exited.
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    // A clean environment: no inherited CAMGATE_* or legacy variables, no ./camgate.toml.
    cmd.env_clear().current_dir(cwd);
    cmd
}

impl Camgate {
    /// Starts `camgate serve` on a free port with JSON debug logs and waits until it listens.
    fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Camgate {
        let mut cmd = command(data_dir.parent().unwrap());
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--data-dir",
        ])
        .arg(data_dir)
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn camgate");
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
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && event["message"] == "listening"
            {
                break event["addr"].as_str().unwrap().parse().unwrap();
            }
        };
        Camgate {
            child,
            addr,
            output,
            readers,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then waits for a clean exit; returns everything the process printed.
    fn stop(self) -> Vec<String> {
        self.stop_with("TERM")
    }

    /// Sends `signal` (`TERM`, `INT`), then waits for a clean exit.
    fn stop_with(mut self, signal: &str) -> Vec<String> {
        process::signal(&self.child, signal);
        let exit = process::wait_exit(
            &mut self.child,
            Duration::from_secs(30),
            &format!("camgate did not stop on SIG{signal}"),
        );
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let output = self.output.lock().unwrap().clone();
        assert!(exit.success(), "exit {exit:?}: {output:?}");
        output
    }
}

impl Drop for Camgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn cameras_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = client();

    let first = Camgate::start(&data, &[]);
    for body in [
        json!({"camera_id": "lobby", "rtsp_url": "rtsp://u:p@192.0.2.1/s", "name": "Lobby", "record": true}),
        json!({"camera_id": 7, "rtsp_url": "rtsps://192.0.2.2:322/x", "stream_path": "yard", "transport": "udp"}),
        json!({"camera_id": "temp", "rtsp_url": "rtsp://192.0.2.3/"}),
    ] {
        let r = http
            .post(first.url("/cameras/provision"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let before: Value = http
        .get(first.url("/cameras"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let logs = first.stop();
    assert!(
        logs.iter().any(|l| l.contains("SIGTERM received")),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l.contains("\"stopped\"")), "{logs:?}");

    let second = Camgate::start(&data, &[]);
    let after: Value = http
        .get(second.url("/cameras"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(after.as_array().unwrap().len(), 3);
    let r = http
        .delete(second.url("/cameras/temp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let logs = second.stop_with("INT");
    assert!(
        logs.iter().any(|l| l.contains("SIGINT received")),
        "{logs:?}"
    );

    let third = Camgate::start(&data, &[]);
    let ids: Vec<Value> = http
        .get(third.url("/cameras"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].clone())
        .collect();
    assert_eq!(ids, [json!("7"), json!("lobby")]);
    let yard: Value = http
        .get(third.url("/cameras/7/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(yard["stream_path"], "yard");
    assert_eq!(yard["transport"], "udp");
    third.stop();

    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("camgate.db"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn the_password_never_appears_in_answers_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = client();
    let server = Camgate::start(&data, &[]);
    let url = format!("rtsp://admin:{PASSWORD}@192.0.2.50:554/Streaming/Channels/101");
    let mut answers: Vec<String> = Vec::new();

    let requests = [
        json!({"camera_id": "secret-cam", "rtsp_url": url}),
        json!({"camera_id": "secret-cam", "rtsp_url": url, "name": "again", "stream_path": "sc"}),
        json!({"camera_id": "other", "rtsp_url": url, "stream_path": "sc"}),
        json!({"camera_id": "bad id", "rtsp_url": url}),
        json!({"camera_id": "x", "rtsp_url": url.replace("rtsp://", "http://")}),
        json!({"camera_id": "x", "rtsp_url": format!("{url} ")}),
        json!({"camera_id": "x", "rtsp_url": url, "unknown": url}),
        json!({"camera_id": "x", "rtsp_url": url, "on_demand": url}),
        json!({"camera_id": "sep", "rtsp_url": "rtsp://192.0.2.51/s", "username": "admin", "password": PASSWORD}),
        json!({"camera_id": "nouser", "rtsp_url": "rtsp://192.0.2.51/s", "password": PASSWORD}),
    ];
    for body in &requests {
        let r = http
            .post(server.url("/cameras/provision"))
            .json(body)
            .send()
            .await
            .unwrap();
        answers.push(format!("{} {}", r.status(), r.text().await.unwrap()));
    }
    for path in [
        "/cameras",
        "/cameras/secret-cam",
        "/cameras/secret-cam/info",
        "/cameras/secret-cam/status",
        "/cameras/sep/info",
        "/stats",
        "/metrics",
        "/health",
        "/api/health",
        "/cameras/nope/info",
        "/nope",
    ] {
        let r = http.get(server.url(path)).send().await.unwrap();
        answers.push(format!("{path} {} {}", r.status(), r.text().await.unwrap()));
    }
    let r = http
        .delete(server.url("/cameras/secret-cam"))
        .send()
        .await
        .unwrap();
    answers.push(format!("{} {}", r.status(), r.text().await.unwrap()));

    // An always-on camera whose connection fails: the live path's errors (which quote the
    // URL) reach the status answer, the stream list, metrics and the log, all redacted.
    let failing = json!({
        "camera_id": "always", "on_demand": false,
        "rtsp_url": format!("rtsp://admin:{PASSWORD}@127.0.0.1:1/x"),
    });
    let r = http
        .post(server.url("/cameras/provision"))
        .json(&failing)
        .send()
        .await
        .unwrap();
    answers.push(format!("{} {}", r.status(), r.text().await.unwrap()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http
            .get(server.url("/cameras/always/status"))
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        answers.push(text.clone());
        let status: Value = serde_json::from_str(&text).unwrap();
        if !status["last_error"].is_null() {
            // The failure path really ran and its message is shown, redacted.
            assert!(status["last_error"].as_str().unwrap().len() > 3, "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection error reported: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in ["/streams", "/metrics", "/cameras"] {
        let r = http.get(server.url(path)).send().await.unwrap();
        answers.push(format!("{path} {} {}", r.status(), r.text().await.unwrap()));
    }
    let logs = server.stop();

    for answer in &answers {
        assert!(
            !answer.contains(PASSWORD),
            "answer leaks the password: {answer}"
        );
    }
    assert!(
        answers[0].starts_with("201") && answers[0].contains("secret-cam"),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.contains("admin:***@192.0.2.50")),
        "{answers:?}"
    );
    // Credentials given as separate fields are stored in the URL and redacted the same way.
    assert!(
        answers
            .iter()
            .any(|a| a.contains("rtsp://admin:***@192.0.2.51/s")),
        "{answers:?}"
    );
    // The logs were really captured at debug level, including the provisioned record.
    assert!(
        logs.iter()
            .any(|l| l.contains("camera provisioned") && l.contains("admin:***@")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("provisioned camera record")),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l.contains("DEBUG")), "{logs:?}");
    for line in &logs {
        assert!(!line.contains(PASSWORD), "log leaks the password: {line}");
    }
}

#[tokio::test]
async fn request_spans_carry_method_route_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let server = Camgate::start(&dir.path().join("data"), &[]);
    let r = client()
        .get(server.url("/cameras/unknown/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let logs = server.stop();
    let line = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["message"] == "request completed" && e["span"]["path"] == "/cameras/{id}/info")
        .unwrap_or_else(|| panic!("no request line in {logs:?}"));
    assert_eq!(line["span"]["method"], "GET");
    assert_eq!(line["span"]["status"], 404);
    assert!(line["span"]["latency_ms"].is_number(), "{line}");
}

#[test]
fn a_data_directory_serves_one_camgate_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Camgate::start(&data, &[]);
    let out = command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another camgate is using the data directory"),
        "{err}"
    );
    first.stop();
}

#[test]
fn config_command_prints_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("camgate.toml"),
        "[streams]\nidle_timeout = \"45s\"\n",
    )
    .unwrap();
    let out = command(dir.path())
        .arg("config")
        .env("CAMGATE_AUTH_API_KEYS", "api-key-that-is-secret")
        .env("PORT", "9999")
        .env("HLS_LIST_SIZE", "5")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("api-key-that-is-secret"), "{text}");
    let shown: toml::Table = text.parse().unwrap();
    assert_eq!(shown["auth"]["api_keys"].as_array().unwrap().len(), 1);
    assert_eq!(shown["auth"]["api_keys"][0].as_str(), Some("***"));
    assert_eq!(shown["http"]["listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(shown["streams"]["idle_timeout"].as_str(), Some("45s"));
    assert_eq!(shown["hls"]["list_size"].as_integer(), Some(5));
}

#[test]
fn configuration_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[hls]\nlist_sise = 4\n").unwrap();
    let out = command(dir.path())
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hls.list_sise"), "{err}");

    let out = command(dir.path())
        .arg("config")
        .env("CAMGATE_HTTP_LISTN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAMGATE_HTTP_LISTN"));
}

#[test]
fn help_tells_the_truth() {
    let out = command(Path::new("/")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "config",
        "--listen",
        "--data-dir",
        "--log-format",
        "--config",
    ] {
        assert!(help.contains(word), "{word} missing from {help}");
    }
}
