//! Reading the configuration: the TOML file, then `DCCGW_SECTION__KEY` overrides, deserialized
//! once. A mistake is reported where it is: a key in the file by its line and column, an
//! override by its variable's name.

use std::path::{Path, PathBuf};

use super::Config;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mistake in the file: `line` and `column` count from 1 (0 when the key is absent from
    /// the file, such as a missing section).
    #[error("{path}, line {line}, column {column}{}: {message}", key_suffix(key))]
    File {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The key, dotted (`limits.max_body_bytes`); empty for a syntax error.
        key: String,
        message: String,
    },
    /// A mistake in an override from the environment.
    #[error("environment variable {name} (configuration key {key}): {message}")]
    Env {
        name: String,
        key: String,
        message: String,
    },
}

fn key_suffix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" (key {key})")
    }
}

/// An override from the environment: the variable's name and the key path it sets.
struct Override {
    name: String,
    keys: Vec<String>,
}

impl Config {
    /// Reads `path`, applies `DCCGW_SECTION__KEY=value` overrides from `env`, and resolves
    /// relative paths against the file's directory.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(path, &text, env)?;
        if let Some(base) = path.parent() {
            config.resolve_paths(base);
        }
        Ok(config)
    }

    /// Parses `text` (named `path` in errors) with the overrides from `env` applied.
    pub fn from_toml(
        path: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
            ConfigError::File {
                path: path.to_owned(),
                line,
                column,
                key: String::new(),
                message: e.message().trim().to_owned(),
            }
        })?;
        let mut overrides = Vec::new();
        for (name, value) in env {
            if let Some(o) = apply_override(&mut table, &name, &value)? {
                overrides.push(o);
            }
        }
        serde_path_to_error::deserialize::<_, Config>(table).map_err(|e| {
            let keys: Vec<String> = e
                .path()
                .iter()
                .map(|s| s.to_string())
                .filter(|s| s != "?")
                .collect();
            let message = e.into_inner().message().trim().to_owned();
            blame(path, text, &overrides, &keys, message)
        })
    }
}

/// The override that set `keys` (or a table above them) is to blame; failing that, the file,
/// at the deepest of `keys` it holds.
fn blame(
    path: &Path,
    text: &str,
    overrides: &[Override],
    keys: &[String],
    message: String,
) -> ConfigError {
    let key = keys.join(".");
    if let Some(o) = overrides
        .iter()
        .rev()
        .find(|o| keys.starts_with(&o.keys) || o.keys.starts_with(keys))
    {
        return ConfigError::Env {
            name: o.name.clone(),
            key: o.keys.join("."),
            message,
        };
    }
    let (line, column) = key_offset(text, keys).map_or((0, 0), |at| line_column(text, at));
    ConfigError::File {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// Where the deepest of `keys` present in the document is written (the key itself for a
/// value, the header for a table).
fn key_offset(text: &str, keys: &[String]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut found = doc.as_table().span().map(|s| s.start);
    for k in keys {
        let Some((key, item)) = table.get_key_value(k) else {
            break;
        };
        found = key
            .span()
            .or_else(|| item.span())
            .map(|s| s.start)
            .or(found);
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    found
}

/// 1-based line and column of byte `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `DCCGW_LIMITS__MAX_BODY_BYTES=2048` sets `limits.max_body_bytes`. Variables without `__`
/// (such as `DCCGW_LOG`) are not configuration and are left alone. The value is read as a TOML
/// value when it parses as one (numbers, booleans, arrays), otherwise as a string.
fn apply_override(
    table: &mut toml::Table,
    name: &str,
    value: &str,
) -> Result<Option<Override>, ConfigError> {
    let Some(rest) = name.strip_prefix("DCCGW_") else {
        return Ok(None);
    };
    if !rest.contains("__") {
        return Ok(None);
    }
    let keys: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let bad = |message: &str| ConfigError::Env {
        name: name.to_owned(),
        key: keys.join("."),
        message: message.to_owned(),
    };
    if keys.iter().any(String::is_empty) {
        return Err(bad("an empty key between two `__`"));
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let Some((last, sections)) = keys.split_last() else {
        return Err(bad("no key"));
    };
    let mut at = table;
    for section in sections {
        let entry = at
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry
            .as_table_mut()
            .ok_or_else(|| bad(&format!("`{section}` is a value, not a section")))?;
    }
    at.insert(last.clone(), parsed);
    Ok(Some(Override {
        name: name.to_owned(),
        keys,
    }))
}
