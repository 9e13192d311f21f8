//! `dccgw rules check`: a new rule version (`schemas/rules.md`) checked against the versions a
//! gateway with this configuration has (the built-in catalogue and `[alerts]` routes, the
//! `[rules] files`, the journalled ones), as `POST /admin/v1/rules` would check it, and what it
//! changes. Nothing is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::rules::{diff, RuleBook, RuleFile, RuleSet, RulesError};
use crate::state::RulesLoadError;

#[derive(Debug, thiserror::Error)]
pub enum RulesCheckError {
    #[error("cannot read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("the current versions could not be loaded")]
    Current(#[source] RulesLoadError),
    #[error("{0}: not valid against the latest version")]
    Invalid(PathBuf, #[source] RulesError),
}

/// What a valid version is: the latest version before it, the new one, and each change.
#[derive(Debug)]
pub struct Checked {
    pub latest: String,
    pub version: String,
    pub effective_from: i64,
    pub changes: Vec<String>,
}

/// Checks the version in `path` at `now` (unix seconds) against `config`'s versions (the
/// built-in ones without a configuration).
pub fn check(config: Option<&Config>, path: &Path, now: i64) -> Result<Checked, RulesCheckError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RulesCheckError::Read(path.to_owned(), e))?;
    let book = match config {
        Some(c) => crate::config::rules(c)
            .map_err(RulesCheckError::Current)?
            .book(),
        None => {
            let base = RuleSet::base(crate::catalogue::Catalogue::builtin().clone(), Vec::new());
            Arc::new(RuleBook::new(base))
        }
    };
    let invalid = |e| RulesCheckError::Invalid(path.to_owned(), e);
    let file = RuleFile::parse(&text).map_err(invalid)?;
    let next = book.check(&file, now, false).map_err(invalid)?;
    let latest = book.latest();
    Ok(Checked {
        latest: latest.version.clone(),
        version: next.version.clone(),
        effective_from: next.effective_from,
        changes: diff(latest, &next)
            .iter()
            .map(ToString::to_string)
            .collect(),
    })
}

/// `dccgw rules`.
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Check a new rule version (JSON, `schemas/rules.md`) against the current ones, as the
    /// admin API would, and print what it changes. Exit 0 valid, 1 not. Nothing is written.
    Check {
        /// The new version's file.
        file: PathBuf,
        /// The gateway's configuration: its `[alerts]` routes, `[rules] files` and journalled
        /// versions are the current ones (without it, the built-in catalogue alone).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs `command`; the exit code.
pub fn run(command: RulesCommand, now: i64) -> i32 {
    let RulesCommand::Check { file, config } = command;
    let config = match config.map(|p| Config::load(&p, std::env::vars()).map(|c| (p, c))) {
        None => None,
        Some(Ok((_, c))) => Some(c),
        Some(Err(e)) => {
            eprintln!("{}", chain(&e));
            return 1;
        }
    };
    match check(config.as_ref(), &file, now) {
        Ok(c) => {
            println!(
                "{} is valid: version {} over {}, in force from {} (unix {}); {} changes:",
                file.display(),
                c.version,
                c.latest,
                instant(c.effective_from),
                c.effective_from,
                c.changes.len()
            );
            for change in &c.changes {
                println!("  {change}");
            }
            0
        }
        Err(e) => {
            eprintln!("{}", chain(&e));
            1
        }
    }
}

fn instant(at: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}

/// The error and its causes, one sentence.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
