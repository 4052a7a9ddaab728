//! Loading: the file, the environment and the flags merged over the defaults, key by key, then
//! deserialized and validated. The set of known keys, and the type an environment variable's
//! text is read as, come from the serialized defaults, so they cannot drift from the structs.
//! Owns the merge order and the key-table helpers; the variable names are `env.rs`', the checks
//! of values `validate.rs`' and the sections'.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::env::{apply_camgate_env, apply_legacy_env};
use super::validate::validate;
use super::{Config, ConfigError, LogFormat};

/// Where each key's value came from (`camgate.toml`, `environment variable PORT`, `--listen`);
/// a key absent here has its default.
pub(super) type Origins = BTreeMap<String, String>;

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
    let mut origins = Origins::new();

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
    apply_flags(&mut config, &mut origins, overrides);
    validate(&config, &origins)?;
    Ok(config)
}

fn apply_flags(config: &mut Config, origins: &mut Origins, overrides: &Overrides) {
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

pub(super) fn defaults_table() -> Table {
    match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => t,
        // The defaults are plain strings, numbers and tables; a unit test pins this.
        other => panic!("default configuration does not serialize to a table: {other:?}"),
    }
}

/// Every leaf key of the defaults as `section.key` (or `key` at the top), with its default.
pub(super) fn leaf_keys(defaults: &Table) -> Vec<(String, &Value)> {
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

pub(super) fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        Some((section, k)) => table.get(section)?.as_table()?.get(k),
        None => table.get(key),
    }
}

pub(super) fn set(table: &mut Table, key: &str, value: Value) {
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
    origins: &mut Origins,
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

/// Turns the merged table into a [`Config`]; on failure, finds which key is wrong by trying
/// each one alone on top of the defaults, so the error names it. A secret field's deserializer
/// (`secret.rs`) keeps its value out of the message.
fn deserialize(defaults: &Table, merged: &Table, origins: &Origins) -> Result<Config, ConfigError> {
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
            return Err(ConfigError::Invalid {
                origin: origins
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "defaults".into()),
                key,
                message: e.to_string(),
            });
        }
    }
    Err(ConfigError::Invalid {
        key: "configuration".into(),
        origin: "the merged sources".into(),
        message: first_error.to_string(),
    })
}
