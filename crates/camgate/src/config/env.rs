//! Environment variables: the `CAMGATE_<SECTION>_<KEY>` names (derived from the keys, so a new
//! section's keys get theirs with no change here), the short `CAMGATE_LISTEN`, the `CAMGATE_*`
//! names that are not keys, the legacy names of our users' old deployments, and how a
//! variable's text is read as the type of its key's default. Owns the names only; merging
//! order is `load.rs`', checks of values are the sections'.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use toml::{Table, Value};

use super::ConfigError;
use super::load::{Origins, leaf_keys, lookup, set};

/// Names our users' earlier deployments used, mapped to our keys. `PORT` is special: it sets
/// only the port of `http.listen`. New keys get no legacy name.
pub(super) const LEGACY_ALIASES: &[(&str, &str)] = &[
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

/// `CAMGATE_LISTEN` is the short form of `CAMGATE_HTTP_LISTEN`.
const SHORT_LISTEN: &str = "CAMGATE_LISTEN";

fn env_name(key: &str) -> String {
    format!("CAMGATE_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Reads an environment variable's text as the type the key's default has. Durations and
/// sizes serialize as strings, so their text reaches their own parser unchanged.
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

pub(super) fn apply_legacy_env(
    defaults: &Table,
    merged: &mut Table,
    origins: &mut Origins,
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

pub(super) fn apply_camgate_env(
    defaults: &Table,
    merged: &mut Table,
    origins: &mut Origins,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let mut by_env: BTreeMap<String, (String, &Value)> = leaf_keys(defaults)
        .into_iter()
        .map(|(key, default)| (env_name(&key), (key, default)))
        .collect();
    let listen_default = lookup(defaults, "http.listen").unwrap_or(&Value::Boolean(false));
    // The short form is applied first so the long form wins when both are set (BTreeMap order
    // would otherwise decide).
    let mut vars: Vec<(&String, &String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with("CAMGATE_") && !NOT_KEYS.contains(&name.as_str()))
        .collect();
    vars.sort_by_key(|(name, _)| *name != SHORT_LISTEN);
    by_env.insert(SHORT_LISTEN.into(), ("http.listen".into(), listen_default));
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
