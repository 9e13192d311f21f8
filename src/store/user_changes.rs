//! The journal of User change batches (`<state dir>/user-changes.journal`): each batch is
//! journalled before it applies, and every batch is replayed over the files at start.

use std::path::Path;

use super::{Journal, JournalError};
use crate::certstore::CertStore;
use crate::register::{apply_user_changes, PartyRegister, UserChange, UserChangeError};

#[derive(Debug, thiserror::Error)]
pub enum UserChangeLogError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("user change log record {index} is not a batch of user changes")]
    Record {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("journalled user change batch {index} no longer applies; fix the files or the log before starting")]
    Replay {
        index: usize,
        #[source]
        source: UserChangeError,
    },
}

/// The log opened and replayed: the register and store with every batch applied, and the
/// certificates the log added (PEM, oldest first), which a reload of the store adds again.
pub struct Replayed {
    pub log: UserChangeLog,
    pub register: PartyRegister,
    pub certs: CertStore,
    pub added: Vec<String>,
}

/// The journal of user change batches (`<state dir>/user-changes.journal`).
#[derive(Clone)]
pub struct UserChangeLog {
    journal: Journal,
}

impl UserChangeLog {
    /// Opens the log and replays every batch in it, oldest first, over the loaded register and
    /// store. A status change that no longer applies stops the start (skipping it could give a
    /// withdrawn User its access back); a certificate that is already in the store (copied into
    /// the directory since) or no longer chains is passed over with a warning — without it the
    /// User's signatures are refused, which is the safe side.
    pub fn open_and_replay(
        path: &Path,
        mut register: PartyRegister,
        mut certs: CertStore,
    ) -> Result<Replayed, UserChangeLogError> {
        let (journal, records) = Journal::open(path)?;
        let mut added = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let batch: Vec<UserChange> = serde_json::from_slice(record)
                .map_err(|source| UserChangeLogError::Record { index, source })?;
            for change in &batch {
                if let UserChange::AddUserCertificate { pem } = change {
                    added.push(pem.clone());
                }
                match apply_user_changes(&register, &certs, std::slice::from_ref(change)) {
                    Ok((r, c)) => (register, certs) = (r, c),
                    Err(UserChangeError::Certificate(refusal)) => {
                        tracing::warn!(index, error = %refusal, "Journalled User certificate not added.");
                    }
                    Err(source) => return Err(UserChangeLogError::Replay { index, source }),
                }
            }
        }
        Ok(Replayed {
            log: Self { journal },
            register,
            certs,
            added,
        })
    }

    /// Whether the log's last write failed (`/readyz` says not ready).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }

    /// Journals one batch; returns once it is on disk.
    pub async fn append(&self, batch: &[UserChange]) -> Result<(), JournalError> {
        // Serialising these plain values cannot fail.
        let bytes = serde_json::to_vec(batch).unwrap_or_default();
        self.journal.append(bytes).await
    }
}
