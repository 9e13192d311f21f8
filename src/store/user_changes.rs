//! The journal of User change batches (`<state dir>/user-changes.journal`): each batch is
//! journalled before it applies, and every batch is replayed over the files at start.

use std::path::Path;

use super::{Journal, JournalError};
use crate::certstore::CertStore;
use crate::dscerts::DigitalSigningCerts;
use crate::register::{
    apply_digital_signing_changes, apply_user_changes, PartyRegister, UserChange, UserChangeError,
};

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

/// The log opened and replayed: the register and stores with every batch applied, and the
/// certificate additions in the log (XML-signing and Digital Signing, oldest first), which a
/// reload of the stores makes again.
pub struct Replayed {
    pub log: UserChangeLog,
    pub register: PartyRegister,
    pub certs: CertStore,
    pub digital_signing: DigitalSigningCerts,
    pub added: Vec<UserChange>,
}

/// The journal of user change batches (`<state dir>/user-changes.journal`).
#[derive(Clone)]
pub struct UserChangeLog {
    journal: Journal,
}

impl UserChangeLog {
    /// Opens the log and replays every batch in it, oldest first, over the loaded register and
    /// certificate stores. A status change that no longer applies stops the start (skipping it
    /// could give a withdrawn User its access back); a certificate that is already in its store
    /// (copied into the directory since) or no longer chains is passed over with a warning —
    /// without it the User's signatures are refused, which is the safe side.
    pub fn open_and_replay(
        path: &Path,
        mut register: PartyRegister,
        mut certs: CertStore,
        mut digital_signing: DigitalSigningCerts,
    ) -> Result<Replayed, UserChangeLogError> {
        let (journal, records) = Journal::open(path)?;
        let mut added = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let batch: Vec<UserChange> = serde_json::from_slice(record)
                .map_err(|source| UserChangeLogError::Record { index, source })?;
            for change in &batch {
                if change.adds_certificate() {
                    added.push(change.clone());
                }
                let one = std::slice::from_ref(change);
                let applied = apply_user_changes(&register, &certs, one).and_then(|(r, c)| {
                    Ok((
                        r,
                        c,
                        apply_digital_signing_changes(&digital_signing, &register, one)?,
                    ))
                });
                match applied {
                    Ok((r, c, d)) => (register, certs, digital_signing) = (r, c, d),
                    Err(
                        UserChangeError::Certificate(_)
                        | UserChangeError::DigitalSigningCertificate(_),
                    ) => {
                        tracing::warn!(index, "Journalled User certificate not added.");
                    }
                    Err(source) => return Err(UserChangeLogError::Replay { index, source }),
                }
            }
        }
        Ok(Replayed {
            log: Self { journal },
            register,
            certs,
            digital_signing,
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
