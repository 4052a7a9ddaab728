//! Loading: the file, the environment and the flags merged over the defaults, key by key, then
//! deserialized and validated. The set of known keys, and the type an environment variable's
//! text is read as, come from the serialized defaults, so they cannot drift from the structs.
//! Owns the merge order and the key-table helpers; the variable names are `env.rs`', the checks
//! of values `validate.rs`' and the sections'.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
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

    let mut config: Config = deserialize(&defaults, &merged, &origins)?;
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

pub(super) fn merge_file(
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
            // An empty default table is a section of named entries (`[grids.lobby]`): any
            // name is a key, and its entry is checked when it is deserialized.
            (Some(Value::Table(section_defaults)), Value::Table(section))
                if section_defaults.is_empty() =>
            {
                for (k, v) in section {
                    let key = format!("{name}.{k}");
                    set(merged, &key, v);
                    origins.insert(key, origin.clone());
                }
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

/// Turns the merged table into a [`Config`] (or, in tests, another shape of sections); on
/// failure, finds which key is wrong by trying each one alone on top of the defaults, so the
/// error names it. A secret field's deserializer (`secret.rs`) keeps its value out of the
/// message. The keys tried are the merged ones: the defaults' and named entries from the file.
pub(super) fn deserialize<T: DeserializeOwned>(
    defaults: &Table,
    merged: &Table,
    origins: &Origins,
) -> Result<T, ConfigError> {
    let whole = Value::Table(merged.clone()).try_into::<T>();
    let first_error = match whole {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    for (key, value) in leaf_keys(merged) {
        let mut probe = defaults.clone();
        set(&mut probe, &key, value.clone());
        if let Err(e) = Value::Table(probe).try_into::<T>() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A section of named entries, as `[profiles]` and `[grids]` will be: not in `Config` yet, so
    /// the loader's merge and key-naming are exercised on a shape of their own.
    #[test]
    fn named_entry_sections_accept_any_name_and_name_the_bad_entry() {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Serialize};

        use crate::config::HlsConfig;

        #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct Shape {
            hls: HlsConfig,
            grids: BTreeMap<String, Grid>,
        }
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Grid {
            cameras: Vec<String>,
            columns: u32,
        }

        let read = |text: &str| -> Result<Shape, ConfigError> {
            let Ok(Value::Table(defaults)) = Value::try_from(Shape::default()) else {
                panic!("defaults are a table");
            };
            let mut merged = defaults.clone();
            let mut origins = BTreeMap::new();
            let file: Table = text.parse().unwrap();
            merge_file(
                &defaults,
                &mut merged,
                &mut origins,
                file,
                Path::new("grids.toml"),
            )?;
            deserialize(&defaults, &merged, &origins)
        };

        let shape = read(
            "[hls]\nlist_size = 9\n[grids.lobby]\ncameras = [\"a\", \"b\"]\ncolumns = 2\n\
             [grids.yard]\ncameras = []\ncolumns = 1\n",
        )
        .unwrap();
        assert_eq!(shape.hls.list_size, 9);
        assert_eq!(shape.grids.len(), 2);
        assert_eq!(shape.grids["lobby"].cameras, ["a", "b"]);

        let err = read("[grids.lobby]\ncameras = []\ncolumns = 1\ncolour = 3\n").unwrap_err();
        assert_eq!(err.key(), Some("grids.lobby"), "{err}");
        assert!(err.to_string().contains("colour"), "{err}");
        assert!(err.to_string().contains("grids.toml"), "{err}");

        let err = read("[grids.lobby]\ncameras = []\ncolumns = \"two\"\n").unwrap_err();
        assert_eq!(err.key(), Some("grids.lobby"), "{err}");

        // A section with keys of its own still refuses names it does not know.
        let err = read("[hls]\nlobby = 1\n").unwrap_err();
        assert_eq!(err.key(), Some("hls.lobby"), "{err}");
    }
}
