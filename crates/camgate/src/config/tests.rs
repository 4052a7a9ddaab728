//! Loading as a whole: sources merged in order, unknown keys and bad values named with their
//! source, secrets kept out of errors and `camgate config`, each as a user meets it. The
//! duration and size parsers have their own tests in their files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::LEGACY_ALIASES;
use super::load::{defaults_table, lookup};
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_alone() {
    let config = load(None, env(&[]), &Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn every_alias_names_a_key() {
    let defaults = defaults_table();
    for (name, key) in LEGACY_ALIASES {
        assert!(lookup(&defaults, key).is_some(), "{name} -> {key}");
    }
}

#[test]
fn file_values() {
    let f = file(
        "data_dir = \"/var/lib/camgate\"\n[http]\nlisten = \"0.0.0.0:9000\"\n\
         [streams]\nidle_timeout = \"45s\"\nstart_timeout = 3\n[hls]\npart_duration = \"100ms\"\n\
         [auth]\napi_keys = [\"k1\"]\n",
    );
    let config = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/camgate"));
    assert_eq!(config.http.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.streams.idle_timeout, Duration::from_secs(45));
    assert_eq!(config.streams.start_timeout, Duration::from_secs(3));
    assert_eq!(config.hls.part_duration, Duration::from_millis(100));
    assert_eq!(config.auth.api_keys, vec!["k1".to_owned()]);
}

#[test]
fn env_overrides_file_and_flags_override_env() {
    let f = file("[http]\nlisten = \"127.0.0.1:9000\"\n[streams]\nidle_timeout = \"45s\"\n");
    let config = load(
        Some(f.path()),
        env(&[
            ("CAMGATE_STREAMS_IDLE_TIMEOUT", "1m"),
            ("CAMGATE_HTTP_LISTEN", "127.0.0.1:9100"),
            ("CAMGATE_AUTH_API_KEYS", "a, b"),
            ("CAMGATE_DATA_DIR", "/tmp/x"),
            ("CAMGATE_HLS_LIST_SIZE", "9"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.streams.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.http.listen, "127.0.0.1:9100".parse().unwrap());
    assert_eq!(config.auth.api_keys, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(config.hls.list_size, 9);

    let flags = Overrides {
        listen: Some("127.0.0.1:9200".parse().unwrap()),
        data_dir: Some("/tmp/y".into()),
        log_format: Some(LogFormat::Json),
        log_level: Some("debug".into()),
    };
    let config = load(
        Some(f.path()),
        env(&[("CAMGATE_LISTEN", "127.0.0.1:9100")]),
        &flags,
    )
    .unwrap();
    assert_eq!(config.http.listen, "127.0.0.1:9200".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("/tmp/y"));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "debug");
}

#[test]
fn short_listen_variable_loses_to_the_long_one() {
    let config = load(
        None,
        env(&[
            ("CAMGATE_LISTEN", "127.0.0.1:1111"),
            ("CAMGATE_HTTP_LISTEN", "127.0.0.1:2222"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.http.listen.port(), 2222);
}

#[test]
fn legacy_aliases() {
    let f = file("[http]\nlisten = \"0.0.0.0:9000\"\n");
    let config = load(
        Some(f.path()),
        env(&[
            ("PORT", "8554"),
            ("LOG_LEVEL", "debug"),
            ("MAX_CONNECTIONS_PER_STREAM", "5"),
            ("CLEANUP_DELAY_SECONDS", "12"),
            ("HLS_SEGMENT_TIME", "2"),
            ("HLS_LIST_SIZE", "6"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.http.listen, "0.0.0.0:8554".parse().unwrap());
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.streams.max_viewers_per_stream, 5);
    assert_eq!(config.streams.idle_timeout, Duration::from_secs(12));
    assert_eq!(config.hls.segment_duration, Duration::from_secs(2));
    assert_eq!(config.hls.list_size, 6);

    // The canonical variable wins over the legacy one.
    let config = load(
        None,
        env(&[("LOG_LEVEL", "debug"), ("CAMGATE_LOG_LEVEL", "warn")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.log.level, "warn");
}

#[test]
fn unknown_keys_are_named() {
    let f = file("[streams]\nidle_timout = \"5s\"\n");
    let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
    assert_eq!(err.key(), Some("streams.idle_timout"), "{err}");
    assert!(err.to_string().contains("streams.idle_timout"), "{err}");

    let f = file("colour = \"blue\"\n");
    let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
    assert_eq!(err.key(), Some("colour"));

    let f = file("[nope]\nx = 1\n");
    let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
    assert_eq!(err.key(), Some("nope"));

    let err = load(
        None,
        env(&[("CAMGATE_STREAMS_IDLE", "5s")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("CAMGATE_STREAMS_IDLE"), "{err}");
}

#[test]
fn bad_values_are_named() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("[hls]\nlist_size = \"many\"\n", &[], "hls.list_size"),
        ("[http]\nlisten = \"nowhere\"\n", &[], "http.listen"),
        (
            "[streams]\nidle_timeout = \"5 days\"\n",
            &[],
            "streams.idle_timeout",
        ),
        ("[log]\nformat = \"xml\"\n", &[], "log.format"),
        ("[log]\nlevel = \"loud\"\n", &[], "log.level"),
        ("[hls]\nlist_size = 1\n", &[], "hls.list_size"),
        ("[http]\ncors_origins = [\"*\"]\n", &[], "http.cors_origins"),
        ("[auth]\napi_keys = \"sekrit-key\"\n", &[], "auth.api_keys"),
        (
            "",
            &[("CAMGATE_HLS_LIST_SIZE", "x")],
            "CAMGATE_HLS_LIST_SIZE",
        ),
        ("", &[("PORT", "http")], "PORT"),
    ];
    for (text, vars, key) in cases {
        let f = file(text);
        let err = load(Some(f.path()), env(vars), &Overrides::default()).unwrap_err();
        assert_eq!(err.key(), Some(*key), "{text:?} {vars:?}: {err}");
        assert!(!err.to_string().contains("sekrit"), "{err}");
    }
}

#[test]
fn syntax_errors_name_the_file_and_line_but_never_quote_it() {
    let f = file("[http\n");
    let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert!(err.to_string().contains(&f.path().display().to_string()));
    assert!(err.to_string().contains("line 1"), "{err}");

    let f = file("[auth]\napi_keys = [\"sekrit-key\"\n");
    let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
    assert!(!err.to_string().contains("sekrit"), "{err}");
    assert!(
        err.to_string().contains("line 2") || err.to_string().contains("line 3"),
        "{err}"
    );
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let err = load(
        Some(Path::new("/nonexistent/camgate.toml")),
        env(&[]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn redacted_output_hides_api_keys_and_reads_back() {
    let mut config = Config::default();
    config.auth.api_keys = vec!["topsecretkey".into()];
    let shown = config.to_redacted_toml();
    assert!(!shown.contains("topsecretkey"));
    assert!(shown.contains("***"));
    assert!(!format!("{config:?}").contains("topsecretkey"));
    // Besides the keys, the printed configuration is a valid file that loads back.
    let f = file(&Config::default().to_redacted_toml());
    let back = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(back, Config::default());
}

#[test]
fn nats_and_events_settings_load_validate_and_stay_secret() {
    let c = load(
        None,
        env(&[
            ("CAMGATE_NATS_URL", "nats://svc:natspw99@10.0.0.5:4222"),
            ("CAMGATE_NATS_TOKEN", "tok-secret-42"),
            ("CAMGATE_NATS_SUBJECT_PREFIX", "site1.camgate"),
            ("CAMGATE_EVENTS_DASHBOARD_INTERVAL", "500ms"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert!(c.nats.enabled());
    assert_eq!(c.nats.subject_prefix, "site1.camgate");
    assert_eq!(c.events.dashboard_interval, Duration::from_millis(500));
    let shown = c.to_redacted_toml();
    let debug = format!("{c:?}");
    for secret in ["natspw99", "tok-secret-42"] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(shown.contains("nats://svc:***@10.0.0.5:4222"), "{shown}");

    for (var, value, key) in [
        (
            "CAMGATE_NATS_SUBJECT_PREFIX",
            "bad prefix.*",
            "nats.subject_prefix",
        ),
        ("CAMGATE_NATS_URL", "http://x:pw-in-url@h", "nats.url"),
        (
            "CAMGATE_EVENTS_STATUS_INTERVAL",
            "0s",
            "events.status_interval",
        ),
    ] {
        let err = load(None, env(&[(var, value)]), &Overrides::default()).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(!err.to_string().contains("pw-in-url"), "{err}");
    }
    let both = load(
        None,
        env(&[
            ("CAMGATE_NATS_TOKEN", "t"),
            ("CAMGATE_NATS_CREDENTIALS_FILE", "/etc/x.creds"),
        ]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(both.key(), Some("nats.token"));
}

#[test]
fn secret_fields_of_the_wrong_type_are_named_but_not_quoted() {
    for (text, key) in [
        ("[nats]\ntoken = 424242\n", "nats.token"),
        ("[nats]\nurl = [\"nats://u:424242@h\"]\n", "nats.url"),
        ("[auth]\napi_keys = [424242]\n", "auth.api_keys"),
        ("[auth]\napi_keys = 424242\n", "auth.api_keys"),
    ] {
        let f = file(text);
        let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
        assert_eq!(err.key(), Some(key), "{text:?}: {err}");
        assert!(!err.to_string().contains("424242"), "{err}");
        assert!(err.to_string().contains("expected a"), "{err}");
    }
}

#[test]
fn durations_in_every_form_reach_their_key() {
    let f = file("[streams]\nidle_timeout = 0.1\nstall_timeout = \"1.5s\"\n");
    let c = load(
        Some(f.path()),
        env(&[("CAMGATE_STREAMS_RECONNECT_MAX", "1d")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.streams.idle_timeout, Duration::from_millis(100));
    assert_eq!(c.streams.stall_timeout, Duration::from_millis(1500));
    assert_eq!(c.streams.reconnect_max, Duration::from_secs(86_400));

    for (vars, key, says) in [
        (
            &[("CAMGATE_STREAMS_IDLE_TIMEOUT", "-5s")][..],
            "streams.idle_timeout",
            "negative",
        ),
        (
            &[("CLEANUP_DELAY_SECONDS", "NaN")][..],
            "streams.idle_timeout",
            "not a duration",
        ),
        (
            &[("CAMGATE_HLS_PART_DURATION", "99999999999999999999999h")][..],
            "hls.part_duration",
            "out of range",
        ),
        (
            &[("CAMGATE_STREAMS_START_TIMEOUT", "0")][..],
            "streams.start_timeout",
            "longer than zero",
        ),
    ] {
        let err = load(None, env(vars), &Overrides::default()).unwrap_err();
        assert_eq!(err.key(), Some(key), "{vars:?}: {err}");
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn an_empty_data_dir_is_refused() {
    let err = load(
        None,
        env(&[("CAMGATE_DATA_DIR", "")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("data_dir"), "{err}");
    assert!(
        err.to_string()
            .contains("environment variable CAMGATE_DATA_DIR"),
        "{err}"
    );
}
