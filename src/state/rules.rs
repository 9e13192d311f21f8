//! The dated rule sets in force: the book, swapped whole when a version is added, and its
//! journal (`rules.journal` in the state directory). At start the versions of the configured
//! files (`[rules] files`) and then the journalled ones are added in order; a version added
//! through the admin API is checked, written to the journal (fsynced) and only then swapped in,
//! so that requests executing from its instant on use it, without a restart.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::rules::{RuleBook, RuleFile, RuleSet, RulesError};

/// The journal's name in the state directory.
pub const JOURNAL_FILE: &str = "rules.journal";

/// A journal line longer than this is not a version the admin API could have written (its body
/// is at most 1 MiB); the start stops there.
const MAX_LINE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: RulesError,
    },
    #[error("{path} line {line} is not a journalled rule version")]
    Journal { path: PathBuf, line: usize },
}

/// Why a version was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Invalid(#[from] RulesError),
    #[error("the rules journal could not be written")]
    Journal(#[source] std::io::Error),
}

pub struct Rules {
    book: ArcSwap<RuleBook>,
    journal: PathBuf,
    /// Serialises writers (readers never wait).
    write: tokio::sync::Mutex<()>,
}

impl Rules {
    /// The base and every version of `files` and of the journal at `journal`. Blocking.
    pub fn open(base: RuleSet, files: &[PathBuf], journal: &Path) -> Result<Self, RulesLoadError> {
        let mut book = RuleBook::new(base);
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|source| RulesLoadError::Read {
                path: path.clone(),
                source,
            })?;
            book = added(&book, RuleFile::parse(&text), path)?;
        }
        match std::fs::File::open(journal) {
            Ok(f) => {
                for (n, line) in BufReader::new(f).split(b'\n').enumerate() {
                    let line = line.map_err(|source| RulesLoadError::Read {
                        path: journal.to_owned(),
                        source,
                    })?;
                    if line.len() > MAX_LINE_BYTES {
                        return Err(RulesLoadError::Journal {
                            path: journal.to_owned(),
                            line: n + 1,
                        });
                    }
                    // A torn last line (no closing brace) was never acknowledged: skipped.
                    if line.trim_ascii().is_empty() || !line.trim_ascii().ends_with(b"}") {
                        continue;
                    }
                    let file = serde_json::from_slice(&line).map_err(RulesError::Json);
                    book = added(&book, file, journal)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RulesLoadError::Read {
                    path: journal.to_owned(),
                    source,
                })
            }
        }
        Ok(Self {
            book: ArcSwap::from_pointee(book),
            journal: journal.to_owned(),
            write: tokio::sync::Mutex::new(()),
        })
    }

    /// The book in force now (each request reads it once).
    pub fn book(&self) -> Arc<RuleBook> {
        self.book.load_full()
    }

    /// Checks `file` as the next version at `now` (unix seconds), journals it, then swaps it in.
    /// Returns the version before it and the new one.
    pub async fn add(
        &self,
        file: &RuleFile,
        now: i64,
    ) -> Result<(Arc<RuleSet>, Arc<RuleSet>), AddError> {
        let _writer = self.write.lock().await;
        let book = self.book();
        let set = book.check(file, now, false)?;
        let mut line = serde_json::to_vec(file).map_err(|e| AddError::Journal(e.into()))?;
        line.push(b'\n');
        let path = self.journal.clone();
        tokio::task::spawn_blocking(move || append(&path, &line))
            .await
            .map_err(|e| AddError::Journal(std::io::Error::other(e)))?
            .map_err(AddError::Journal)?;
        let next = book.with(set);
        let pair = (Arc::clone(book.latest()), Arc::clone(next.latest()));
        self.book.store(Arc::new(next));
        Ok(pair)
    }
}

fn added(
    book: &RuleBook,
    file: Result<RuleFile, RulesError>,
    path: &Path,
) -> Result<RuleBook, RulesLoadError> {
    let invalid = |source| RulesLoadError::Invalid {
        path: path.to_owned(),
        source,
    };
    let file = file.map_err(invalid)?;
    let set = book.check(&file, 0, true).map_err(invalid)?;
    Ok(book.with(set))
}

fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line)?;
    f.sync_all()
}
