//! The packaging files, checked without building an image (no daemon here): the Dockerfile's
//! and the compose file's copied and built paths exist, their ports and health checks match
//! the configuration's defaults, the image runs as a non-root user with its data in a volume;
//! the systemd unit is sandboxed and passes `systemd-analyze verify` with `ExecStart` pointed
//! at the binary cargo built; `camgate --version` prints the version.

use std::path::{Path, PathBuf};
use std::process::Command;

use camgate::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn http_port() -> u16 {
    Config::default().http.listen.port()
}

fn rtsp_port() -> u16 {
    Config::default()
        .rtsp
        .listen
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (word, rest) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((word.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

#[test]
fn dockerfile_copies_what_exists_and_matches_the_defaults() {
    let ins = instructions(&read("Dockerfile"));
    let of =
        |w: &str| -> Vec<&String> { ins.iter().filter(|(k, _)| k == w).map(|(_, v)| v).collect() };
    // Multi-stage: a build stage and a slim Debian runtime.
    let froms = of("FROM");
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms.last().unwrap().contains("slim"), "{froms:?}");
    // Every COPY from the context names a path of this repository.
    let mut copied = 0;
    for copy in of("COPY").into_iter().chain(of("ADD")) {
        if copy.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = copy
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let (_, sources) = words.split_last().unwrap();
        for src in sources {
            assert!(
                root().join(src).exists(),
                "COPY {src}: no such path in the repository"
            );
            copied += 1;
        }
    }
    assert!(copied >= 3, "the sources are copied");
    // The workspace members are all in the context.
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    for member in manifest["workspace"]["members"].as_array().unwrap() {
        let m = member.as_str().unwrap();
        assert!(
            of("COPY").iter().any(|c| {
                let first = c.split_whitespace().next().unwrap_or("");
                m.starts_with(first.trim_end_matches('/'))
            }),
            "workspace member {m} is not copied into the build"
        );
    }
    // The ignore file keeps the build output and local data out, never a copied path.
    let ignore = read(".dockerignore");
    for must in ["target", "node_modules", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim() == must),
            ".dockerignore lacks {must}"
        );
    }
    // Ports and the health check follow the configuration's defaults.
    let expose = of("EXPOSE")
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for port in [http_port(), rtsp_port()] {
        assert!(
            expose.split_whitespace().any(|p| p == port.to_string()),
            "EXPOSE {expose} lacks {port}"
        );
    }
    let health = of("HEALTHCHECK");
    assert_eq!(health.len(), 1);
    assert!(
        health[0].contains(&format!("127.0.0.1:{}/health", http_port())),
        "{health:?}"
    );
    let cmd = of("CMD").last().unwrap().to_string();
    assert!(
        cmd.contains(&format!(":{}", http_port())),
        "CMD listens on the default port: {cmd}"
    );
    // Non-root, data in a volume, ffmpeg in the runtime.
    let user = of("USER");
    assert!(
        user.last().is_some_and(|u| *u != "root" && *u != "0"),
        "a non-root USER: {user:?}"
    );
    let volume = of("VOLUME");
    assert!(!volume.is_empty());
    assert!(
        cmd.contains("--data-dir") && volume[0].contains("/var/lib/camgate"),
        "{cmd} {volume:?}"
    );
    assert!(
        of("RUN").iter().any(|r| r.contains("ffmpeg")),
        "ffmpeg installed"
    );
}

#[test]
fn compose_file_builds_from_here_and_matches_the_defaults() {
    let docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("valid YAML");
    let compose = &docs[0];
    let services = &compose["services"];
    let camgate = &services["camgate"];
    assert!(!camgate.is_badvalue(), "a camgate service");
    // It builds this repository (whose Dockerfile is the one checked above).
    let build = camgate["build"].as_str().expect("build: a context path");
    assert!(root().join(build).join("Dockerfile").is_file());
    // Its ports publish the default ones.
    let ports: Vec<String> = camgate["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    for port in [http_port(), rtsp_port()] {
        assert!(
            ports.iter().any(|p| p.ends_with(&format!(":{port}"))),
            "{ports:?} lacks {port}"
        );
    }
    let test: Vec<&str> = camgate["healthcheck"]["test"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        test.iter()
            .any(|t| *t == format!("http://127.0.0.1:{}/health", http_port())),
        "{test:?}"
    );
    // The data volume is declared and mounted where the image keeps its data.
    let mounts: Vec<&str> = camgate["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for m in &mounts {
        let (src, dst) = m.split_once(':').unwrap();
        assert_eq!(dst.split(':').next().unwrap(), "/var/lib/camgate");
        if src.starts_with('.') || src.starts_with('/') {
            assert!(
                root().join(src).exists(),
                "mounted path {src} does not exist"
            );
        } else {
            assert!(
                !compose["volumes"][src].is_badvalue(),
                "volume {src} is not declared"
            );
        }
    }
    // API keys are required (protected mode would refuse every client outside the container).
    assert!(
        camgate["environment"]["CAMGATE_AUTH_API_KEYS"]
            .as_str()
            .is_some_and(|v| v.contains(":?")),
        "the compose file demands an API key"
    );
    // Optional companions: the simulator as demo cameras and a nats-server.
    let sim = &services["simulator"];
    let command: Vec<&str> = sim["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(command[0], "sim", "{command:?}");
    assert!(matches!(&sim["profiles"], Yaml::Array(p) if !p.is_empty()));
    assert!(
        services["nats"]["image"]
            .as_str()
            .unwrap()
            .starts_with("nats")
    );
    assert!(matches!(&services["nats"]["profiles"], Yaml::Array(p) if !p.is_empty()));
}

#[test]
fn systemd_unit_is_sandboxed_and_verifies() {
    let unit = read("deploy/camgate.service");
    for must in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=camgate",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == must),
            "the unit lacks {must}"
        );
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart");
    assert!(exec.contains("--data-dir /var/lib/camgate"), "{exec}");
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "systemd-analyze is not installed, so the unit cannot be verified: apt-get install systemd"
            )
        });
    // The same unit, starting the binary cargo built instead of the installed path.
    let dir = tempfile::tempdir().unwrap();
    let here = unit.replace(
        "ExecStart=/usr/local/bin/camgate",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_camgate")),
    );
    assert_ne!(here, unit, "ExecStart starts /usr/local/bin/camgate");
    let path = dir.path().join("camgate.service");
    std::fs::write(&path, here).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    // verify exits 0 on some warnings ("Unknown key", "ignoring"): none is acceptable.
    let unit_name = path.display().to_string();
    let warnings: Vec<&str> = said.lines().filter(|l| l.contains(&unit_name)).collect();
    assert!(warnings.is_empty(), "systemd-analyze warns: {warnings:?}");
}

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_camgate"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("camgate {}", env!("CARGO_PKG_VERSION"))
    );
}
