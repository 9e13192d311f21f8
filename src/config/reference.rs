//! The configuration's reference, generated from the typed configuration itself (its JSON
//! Schema: doc comments, defaults, declared bounds), so a key added to any section appears here
//! without being listed by hand. `dccgw config defaults` prints it as annotated TOML,
//! `docs/configuration.md` is its Markdown form (a test keeps the file in step).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::Config;

/// One key of the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyDoc {
    /// Dotted path: `limits.max_body_bytes`.
    pub key: String,
    /// What the value is: `integer`, `path`, `list of path`, …
    pub kind: String,
    /// The default, as TOML; `None` when the key has none.
    pub default: Option<String>,
    /// Whether the key must be given (no default, and its section is given).
    pub required: bool,
    /// The bound the gateway holds the value to, when it declares one (`at least 1`).
    pub bound: Option<String>,
    pub description: String,
}

/// A section (a TOML table) and its keys, in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Dotted path; empty for the top level.
    pub path: String,
    pub description: String,
    /// Whether the section must be present.
    pub required: bool,
    /// Whether some of its keys must be given when the section is.
    pub has_required_keys: bool,
    pub keys: Vec<KeyDoc>,
}

/// Every section of the configuration, parents before children.
pub fn sections() -> Vec<Section> {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    walk(&defs, root, "", "", true, None, &mut out);
    out
}

/// Every key of the configuration.
pub fn keys() -> Vec<KeyDoc> {
    sections().into_iter().flat_map(|s| s.keys).collect()
}

fn walk(
    defs: &Map<String, Value>,
    schema: &Value,
    path: &str,
    description: &str,
    required: bool,
    inherited: Option<&Value>,
    out: &mut Vec<Section>,
) {
    let object = resolve(defs, schema);
    let wanted: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let at = out.len();
    out.push(Section {
        path: path.to_owned(),
        description: description.to_owned(),
        required,
        has_required_keys: !wanted.is_empty(),
        keys: Vec::new(),
    });
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    let mut children = Vec::new();
    for (name, property) in properties {
        let key = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        let target = resolve(defs, property);
        let text = describe(property)
            .or_else(|| describe(target))
            .unwrap_or_default();
        let is_required = wanted.contains(&name.as_str());
        // A key's own default, else the one its section's default value gives it.
        let default = property
            .get("default")
            .or_else(|| inherited.and_then(|d| d.get(name)));
        if target.get("properties").is_some() {
            children.push((key, property, text, is_required && required, default));
            continue;
        }
        out[at].keys.push(KeyDoc {
            kind: kind(defs, property),
            default: default.and_then(toml_text),
            required: is_required && required,
            bound: bound(target),
            description: text,
            key,
        });
    }
    for (key, property, text, is_required, default) in children {
        walk(defs, property, &key, &text, is_required, default, out);
    }
}

/// Follows `$ref` (alone, under `allOf`, or as the non-null arm of an optional).
fn resolve<'a>(defs: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return defs.get(name).map_or(schema, |d| resolve(defs, d));
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(arms) = schema.get(combinator).and_then(Value::as_array) {
            if let Some(arm) = arms.iter().find(|a| a.get("type") != Some(&"null".into())) {
                if arm.get("$ref").is_some() {
                    return resolve(defs, arm);
                }
            }
        }
    }
    schema
}

fn describe(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A short name for the value's type.
fn kind(defs: &Map<String, Value>, schema: &Value) -> String {
    let s = resolve(defs, schema);
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        return format!("one of {}", names.join(", "));
    }
    if let Some(arms) = s.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = arms
            .iter()
            .filter_map(|a| a.get("const").or_else(|| a.get("enum")?.get(0)))
            .map(|v| v.to_string())
            .collect();
        if !names.is_empty() {
            return format!("one of {}", names.join(", "));
        }
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let base = types
        .iter()
        .find(|t| **t != "null")
        .copied()
        .unwrap_or("value");
    let format = s.get("format").and_then(Value::as_str);
    match (base, format) {
        ("array", _) => match s.get("items") {
            Some(items) => format!("list of {}", kind(defs, items)),
            None => "list".into(),
        },
        ("object", _) => match s.get("additionalProperties") {
            Some(v) if v.is_object() => format!("table of {}", kind(defs, v)),
            _ => "table".into(),
        },
        ("string", _) => "string".into(),
        ("integer", _) => "integer".into(),
        ("number", _) => "number".into(),
        ("boolean", _) => "boolean".into(),
        (other, _) => other.into(),
    }
}

/// The bound a key declares (`#[schemars(range(..))]`), beyond its type's own range.
fn bound(schema: &Value) -> Option<String> {
    let min = schema
        .get("minimum")
        .and_then(Value::as_f64)
        .filter(|m| *m > 0.0);
    let max = schema.get("maximum").and_then(Value::as_f64);
    match (min, max) {
        (Some(a), Some(b)) => Some(format!("{} to {}", number(a), number(b))),
        (Some(a), None) => Some(format!("at least {}", number(a))),
        (None, Some(b)) => Some(format!("at most {}", number(b))),
        (None, None) => None,
    }
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// A default as TOML text; `None` for no value (`null`).
fn toml_text(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let v: toml::Value = toml::Value::try_from(value).ok()?;
    Some(match &v {
        toml::Value::Table(t) => inline_table(t),
        other => other.to_string(),
    })
}

fn inline_table(t: &toml::Table) -> String {
    if t.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", parts.join(", "))
}

/// `dccgw config defaults`: every key as annotated TOML. Keys with a default are written with
/// it (the file it makes is the defaults, once the required keys are filled in); required keys
/// are written commented out with their type.
pub fn defaults_toml() -> String {
    let mut out = String::from(
        "# dccgw configuration: every key, its default and its bound, generated from the\n\
         # gateway's typed configuration. Required keys are commented out with their type.\n\
         # Any key can be overridden from the environment as DCCGW_SECTION__KEY.\n",
    );
    for section in sections() {
        if !section.path.is_empty() {
            let _ = writeln!(out);
            comment(&mut out, &section.description);
            let need = if section.required { "" } else { " (optional)" };
            // An optional section whose keys cannot all default is written commented out too.
            let commented = !section.required
                && section.has_required_keys
                && section.keys.iter().any(|k| k.default.is_none());
            let mark = if commented { "# " } else { "" };
            let _ = writeln!(out, "{mark}[{}]{}", section.path, comment_suffix(need));
        }
        for k in &section.keys {
            let name = k.key.rsplit('.').next().unwrap_or(&k.key);
            comment(&mut out, &k.description);
            if let Some(b) = &k.bound {
                let _ = writeln!(out, "# Bound: {b}.");
            }
            match &k.default {
                Some(d) => {
                    let _ = writeln!(out, "{name} = {d}");
                }
                None if k.required => {
                    let _ = writeln!(out, "# {name} = …  (required: {})", k.kind);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "# {name} = …  (optional: {}; unset by default)",
                        k.kind
                    );
                }
            }
        }
    }
    out
}

fn comment_suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("  #{text}")
    }
}

fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + word.len() > 98 && line.len() > 1 {
            let _ = writeln!(out, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        let _ = writeln!(out, "{line}");
    }
}

/// `docs/configuration.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the gateway's typed configuration by `dccgw config defaults --markdown`;\n\
         `src/config/tests.rs` checks that this file matches it. `dccgw config defaults` prints the\n\
         same as annotated TOML, and `dccgw config check FILE` validates a file (and the files it\n\
         names) without starting the gateway.\n\n\
         The file is TOML. Every key can be overridden from the environment as\n\
         `DCCGW_SECTION__KEY` (e.g. `DCCGW_LIMITS__MAX_BODY_BYTES=2097152`; the value is read as TOML\n\
         when it parses as TOML, otherwise as a string). Unknown keys are refused: a mistake in the file\n\
         is reported with its line and column, a mistake in an override with the variable's name.\n\
         Relative paths are taken from the configuration file's directory.\n",
    );
    for section in sections() {
        if section.keys.is_empty() {
            continue;
        }
        let title = if section.path.is_empty() {
            "(top level)".to_owned()
        } else {
            format!("`[{}]`", section.path)
        };
        let need = if section.required || section.path.is_empty() {
            "required"
        } else {
            "optional"
        };
        let _ = writeln!(out, "\n## {title} ({need})\n");
        if !section.description.is_empty() {
            let _ = writeln!(out, "{}\n", section.description);
        }
        let _ = writeln!(
            out,
            "| key | type | default | bound | what |\n|---|---|---|---|---|"
        );
        for k in &section.keys {
            let default = match (&k.default, k.required) {
                (Some(d), _) => format!("`{d}`"),
                (None, true) => "required".into(),
                (None, false) => "unset".into(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                k.key,
                k.kind,
                default.replace('|', "\\|"),
                k.bound.as_deref().unwrap_or(""),
                k.description.replace('|', "\\|"),
            );
        }
    }
    out
}
