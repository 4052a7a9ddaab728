//! Merging the configuration sources (defaults, file, legacy variables, `CAMGATE_*`, flags) and
//! checking the result. The set of known keys, and the type an environment variable's text is
//! read as, come from the serialized defaults, so they cannot drift from the structs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::{Config, LogFormat};

/// Names our users' earlier deployments used, mapped to our keys. `PORT` is special: it sets
/// only the port of `http.listen`.
const LEGACY_ALIASES: &[(&str, &str)] = &[
    ("LOG_LEVEL", "log.level"),
    (
        "MAX_CONNECTIONS_PER_STREAM",
        "streams.max_viewers_per_stream",
    ),
    ("CLEANUP_DELAY_SECONDS", "streams.idle_timeout"),
    ("HLS_SEGMENT_TIME", "hls.segment_duration"),
    ("HLS_LIST_SIZE", "hls.list_size"),
];

/// `CAMGATE_*` variables that are not configuration keys.
const NOT_KEYS: &[&str] = &["CAMGATE_CONFIG"];

/// Keys whose values must never appear in an error message.
const SECRET_KEYS: &[&str] = &["auth.api_keys", "nats.token", "nats.url"];

/// The file used when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "camgate.toml";

/// Command-line flags that override every other source.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {} is not valid TOML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("unknown configuration key `{key}` in {origin}; known keys: {known}")]
    UnknownKey {
        key: String,
        origin: String,
        known: String,
    },
    #[error("invalid value for `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

impl ConfigError {
    /// The key (or variable) the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Loads the configuration.
///
/// `file`: the `--config` path; `None` means `./camgate.toml` if it exists, else defaults only.
/// `env`: the process environment (passed in so tests need not change the real one).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = env.into_iter().collect();
    let defaults = defaults_table();
    let mut merged = defaults.clone();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();

    let default_file = Path::new(DEFAULT_FILE);
    let file = file.or_else(|| default_file.exists().then_some(default_file));
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_owned(),
                message: syntax_error(&text, &e),
            })?;
        merge_file(&defaults, &mut merged, &mut origins, table, path)?;
    }

    apply_legacy_env(&defaults, &mut merged, &mut origins, &env)?;
    apply_camgate_env(&defaults, &mut merged, &mut origins, &env)?;

    let mut config = deserialize(&defaults, &merged, &origins)?;
    if let Some(listen) = overrides.listen {
        config.http.listen = listen;
        origins.insert("http.listen".into(), "--listen".into());
    }
    if let Some(dir) = &overrides.data_dir {
        config.data_dir = dir.clone();
        origins.insert("data_dir".into(), "--data-dir".into());
    }
    if let Some(format) = overrides.log_format {
        config.log.format = format;
        origins.insert("log.format".into(), "--log-format".into());
    }
    if let Some(level) = &overrides.log_level {
        config.log.level = level.clone();
        origins.insert("log.level".into(), "--log-level".into());
    }
    validate(&config, &origins)?;
    Ok(config)
}

/// The position and message of a TOML syntax error, without the quoted source line that the
/// error's own `Display` adds: that line may hold an API key.
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

fn defaults_table() -> Table {
    match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => t,
        // The defaults are plain strings, numbers and tables; a unit test pins this.
        other => panic!("default configuration does not serialize to a table: {other:?}"),
    }
}

/// Every leaf key of the defaults as `section.key` (or `key` at the top), with its default.
fn leaf_keys(defaults: &Table) -> Vec<(String, &Value)> {
    let mut keys = Vec::new();
    for (name, value) in defaults {
        match value {
            Value::Table(section) => {
                keys.extend(section.iter().map(|(k, v)| (format!("{name}.{k}"), v)));
            }
            _ => keys.push((name.clone(), value)),
        }
    }
    keys
}

fn env_name(key: &str) -> String {
    format!("CAMGATE_{}", key.replace('.', "_").to_ascii_uppercase())
}

fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        Some((section, k)) => table.get(section)?.as_table()?.get(k),
        None => table.get(key),
    }
}

fn set(table: &mut Table, key: &str, value: Value) {
    match key.split_once('.') {
        Some((section, k)) => {
            if let Some(Value::Table(t)) = table.get_mut(section) {
                t.insert(k.to_owned(), value);
            }
        }
        None => {
            table.insert(key.to_owned(), value);
        }
    }
}

fn names(table: &Table) -> String {
    table.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn merge_file(
    defaults: &Table,
    merged: &mut Table,
    origins: &mut BTreeMap<String, String>,
    file: Table,
    path: &Path,
) -> Result<(), ConfigError> {
    let origin = path.display().to_string();
    for (name, value) in file {
        match (defaults.get(&name), value) {
            (None, _) => {
                return Err(ConfigError::UnknownKey {
                    key: name,
                    origin,
                    known: names(defaults),
                });
            }
            (Some(Value::Table(section_defaults)), Value::Table(section)) => {
                for (k, v) in section {
                    let key = format!("{name}.{k}");
                    if !section_defaults.contains_key(&k) {
                        return Err(ConfigError::UnknownKey {
                            key,
                            origin,
                            known: format!("[{name}] {}", names(section_defaults)),
                        });
                    }
                    set(merged, &key, v);
                    origins.insert(key, origin.clone());
                }
            }
            (Some(Value::Table(_)), _) => {
                return Err(ConfigError::Invalid {
                    key: name.clone(),
                    origin,
                    message: format!("`{name}` is a section: write it as [{name}]"),
                });
            }
            (Some(_), v) => {
                origins.insert(name.clone(), origin.clone());
                merged.insert(name, v);
            }
        }
    }
    Ok(())
}

/// Reads an environment variable's text as the type the key's default has.
fn env_value(default: &Value, text: &str, key: &str, origin: &str) -> Result<Value, ConfigError> {
    let invalid = |what: &str| ConfigError::Invalid {
        key: key.to_owned(),
        origin: origin.to_owned(),
        message: format!("expected {what}"),
    };
    Ok(match default {
        Value::Integer(_) => {
            Value::Integer(text.trim().parse().map_err(|_| invalid("an integer"))?)
        }
        Value::Float(_) => Value::Float(text.trim().parse().map_err(|_| invalid("a number"))?),
        Value::Boolean(_) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Boolean(true),
            "false" | "0" | "no" | "off" => Value::Boolean(false),
            _ => return Err(invalid("true or false")),
        },
        Value::Array(_) => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(text.to_owned()),
    })
}

fn apply_legacy_env(
    defaults: &Table,
    merged: &mut Table,
    origins: &mut BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    if let Some(port) = env.get("PORT") {
        let origin = "environment variable PORT".to_owned();
        let port: u16 = port.trim().parse().map_err(|_| ConfigError::Invalid {
            key: "PORT".into(),
            origin: origin.clone(),
            message: "expected a port number 0-65535".into(),
        })?;
        let current = lookup(merged, "http.listen")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<SocketAddr>().ok())
            .ok_or_else(|| ConfigError::Invalid {
                key: "http.listen".into(),
                origin: origins
                    .get("http.listen")
                    .cloned()
                    .unwrap_or_else(|| "defaults".into()),
                message: "expected an address such as 127.0.0.1:8080".into(),
            })?;
        let listen = SocketAddr::new(current.ip(), port);
        set(merged, "http.listen", Value::String(listen.to_string()));
        origins.insert("http.listen".into(), origin);
    }
    for (name, key) in LEGACY_ALIASES {
        if let Some(text) = env.get(*name) {
            let origin = format!("environment variable {name}");
            // Every alias target is a key of the defaults; a unit test pins this.
            let default = lookup(defaults, key).unwrap_or(&Value::Boolean(false));
            let value = env_value(default, text, name, &origin)?;
            set(merged, key, value);
            origins.insert((*key).to_owned(), origin);
        }
    }
    Ok(())
}

fn apply_camgate_env(
    defaults: &Table,
    merged: &mut Table,
    origins: &mut BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let mut by_env: BTreeMap<String, (String, &Value)> = leaf_keys(defaults)
        .into_iter()
        .map(|(key, default)| (env_name(&key), (key, default)))
        .collect();
    let listen_default = lookup(defaults, "http.listen").unwrap_or(&Value::Boolean(false));
    // `CAMGATE_LISTEN` is the short form of `CAMGATE_HTTP_LISTEN`; applied first so the long
    // form wins when both are set (BTreeMap order would otherwise decide).
    let mut vars: Vec<(&String, &String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with("CAMGATE_") && !NOT_KEYS.contains(&name.as_str()))
        .collect();
    vars.sort_by_key(|(name, _)| *name != "CAMGATE_LISTEN");
    by_env.insert(
        "CAMGATE_LISTEN".into(),
        ("http.listen".into(), listen_default),
    );
    for (name, text) in vars {
        let Some((key, default)) = by_env.get(name) else {
            return Err(ConfigError::UnknownKey {
                key: name.clone(),
                origin: "the environment".into(),
                known: by_env.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        let origin = format!("environment variable {name}");
        let value = env_value(default, text, name, &origin)?;
        set(merged, key, value);
        origins.insert(key.clone(), origin);
    }
    Ok(())
}

/// Turns the merged table into a [`Config`]; on failure, finds which key is wrong by trying
/// each one alone on top of the defaults, so the error names it.
fn deserialize(
    defaults: &Table,
    merged: &Table,
    origins: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    let whole = Value::Table(merged.clone()).try_into::<Config>();
    let first_error = match whole {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    for (key, _) in leaf_keys(defaults) {
        let Some(value) = lookup(merged, &key) else {
            continue;
        };
        let mut probe = defaults.clone();
        set(&mut probe, &key, value.clone());
        if let Err(e) = Value::Table(probe).try_into::<Config>() {
            let message = if SECRET_KEYS.contains(&key.as_str()) {
                format!("expected {}", secret_shape(&key))
            } else {
                e.to_string()
            };
            return Err(ConfigError::Invalid {
                origin: origins
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "defaults".into()),
                key,
                message,
            });
        }
    }
    Err(ConfigError::Invalid {
        key: "configuration".into(),
        origin: "the merged sources".into(),
        message: first_error.to_string(),
    })
}

fn validate(config: &Config, origins: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let fail = |key: &str, message: String| ConfigError::Invalid {
        key: key.to_owned(),
        origin: origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "defaults".into()),
        message,
    };
    if config.data_dir.as_os_str().is_empty() {
        return Err(fail("data_dir", "must not be empty".into()));
    }
    if let Err(e) = check_log_level(&config.log.level) {
        return Err(fail(
            "log.level",
            format!(
                "expected trace, debug, info, warn, error, off or a filter such as info,camgate::api=debug ({e})"
            ),
        ));
    }
    for origin in &config.http.cors_origins {
        let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
            && url::Url::parse(origin).is_ok_and(|u| u.path() == "/" && !origin.ends_with('/'));
        if !ok {
            return Err(fail(
                "http.cors_origins",
                format!(
                    "`{origin}` is not an exact origin such as https://example.com (no wildcard, no path)"
                ),
            ));
        }
    }
    for key in &config.auth.api_keys {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(fail(
                "auth.api_keys",
                "each key must be non-empty printable ASCII without spaces".into(),
            ));
        }
    }
    let s = &config.streams;
    for (key, d) in [
        ("streams.start_timeout", s.start_timeout),
        ("streams.stall_timeout", s.stall_timeout),
        ("streams.reconnect_min", s.reconnect_min),
        ("hls.segment_duration", config.hls.segment_duration),
        ("hls.part_duration", config.hls.part_duration),
    ] {
        if d.is_zero() {
            return Err(fail(key, "must be longer than zero".into()));
        }
    }
    if s.reconnect_min > s.reconnect_max {
        return Err(fail(
            "streams.reconnect_max",
            "must not be shorter than streams.reconnect_min".into(),
        ));
    }
    if s.max_viewers_per_stream == 0 {
        return Err(fail(
            "streams.max_viewers_per_stream",
            "must be at least 1".into(),
        ));
    }
    if config.hls.part_duration > config.hls.segment_duration {
        return Err(fail(
            "hls.part_duration",
            "must not be longer than hls.segment_duration".into(),
        ));
    }
    for (key, d) in [
        (
            "events.dashboard_interval",
            config.events.dashboard_interval,
        ),
        ("events.status_interval", config.events.status_interval),
        ("events.ws_ping_interval", config.events.ws_ping_interval),
    ] {
        if d < std::time::Duration::from_millis(10) {
            return Err(fail(key, "must be at least 10ms".into()));
        }
    }
    let nats = &config.nats;
    if nats.enabled() {
        for server in nats.url.split(',') {
            let server = server.trim();
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| server.starts_with(s))
                || !server.contains("://");
            if server.is_empty() || !scheme_ok || server.contains(char::is_whitespace) {
                return Err(fail(
                    "nats.url",
                    format!(
                        "`{}` is not a NATS server address; write nats://host:4222 (several separated by commas)",
                        crate::redact::redact_url(server)
                    ),
                ));
            }
        }
    }
    let prefix_ok = !nats.subject_prefix.is_empty()
        && nats.subject_prefix.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !prefix_ok {
        return Err(fail(
            "nats.subject_prefix",
            "must be dot-separated tokens of letters, digits, '_' and '-' (e.g. camgate or site1.camgate)".into(),
        ));
    }
    if !nats.token.is_empty() && !nats.credentials_file.is_empty() {
        return Err(fail(
            "nats.token",
            "set either nats.token or nats.credentials_file, not both".into(),
        ));
    }
    if config.hls.list_size < 3 {
        return Err(fail(
            "hls.list_size",
            "must be at least 3 (players need three segments to start, RFC 8216 6.2.2)".into(),
        ));
    }
    Ok(())
}

/// What a secret key's value must look like, for an error message that cannot quote it.
fn secret_shape(key: &str) -> &'static str {
    if key == "auth.api_keys" {
        "a list of strings"
    } else {
        "a string"
    }
}

/// A level name, or a tracing filter whose directives each name a level (`target=level`).
/// A bare word that is not a level would be read as "everything from target `word`", which
/// is never what someone writing `level = "loud"` meant.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!("`{directive}` is not a level"));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
