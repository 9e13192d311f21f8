//! Users changed at run time: a suspension (for some classes of service), a withdrawal, a
//! reinstatement, a new User XML-signing certificate. A batch applies to copies of the register
//! and the certificate store, all or nothing; the admin API journals it before the swap, and
//! every journalled batch is replayed over the files at start (`schemas/changes.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{EligibilityClass, PartyRegister, UserStatus};
use crate::certstore::{CertRefusal, CertStore};
use crate::domain::UserId;
use crate::store::{Journal, JournalError};

/// One change to a User, as the admin API takes it and the journal keeps it (JSON, tagged by
/// `change`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum UserChange {
    /// Suspends the User for these classes of service (all three when none are named); replaces
    /// any earlier suspension.
    SuspendUser {
        user: UserId,
        #[serde(default)]
        classes: Vec<EligibilityClass>,
    },
    /// The User has exited: every authorisation ends, for good.
    WithdrawUser { user: UserId },
    /// Lifts a suspension.
    ReinstateUser { user: UserId },
    /// Adds a User XML-signing certificate (PEM) for a User in the register.
    AddUserCertificate { pem: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserChangeError {
    #[error("User {0} is not in the party register")]
    UnknownUser(UserId),
    #[error("User {0} is withdrawn; a withdrawal is final")]
    Withdrawn(UserId),
    #[error("User {0} is not suspended")]
    NotSuspended(UserId),
    #[error("the certificate was refused")]
    Certificate(#[source] CertRefusal),
}

/// `batch` applied, in order, to copies of `register` and `certs`; neither is changed.
pub fn apply_user_changes(
    register: &PartyRegister,
    certs: &CertStore,
    batch: &[UserChange],
) -> Result<(PartyRegister, CertStore), UserChangeError> {
    let mut register = register.clone();
    let mut certs = certs.clone();
    for change in batch {
        match change {
            UserChange::SuspendUser { user, classes } => {
                let classes = match classes.as_slice() {
                    [] => vec![
                        EligibilityClass::A,
                        EligibilityClass::B,
                        EligibilityClass::C,
                    ],
                    some => some.to_vec(),
                };
                set_status(&mut register, *user, |_| Ok(UserStatus::Suspended(classes)))?;
            }
            UserChange::WithdrawUser { user } => {
                set_status(&mut register, *user, |_| Ok(UserStatus::Withdrawn))?;
            }
            UserChange::ReinstateUser { user } => {
                set_status(&mut register, *user, |status| match status {
                    UserStatus::Suspended(_) => Ok(UserStatus::Active),
                    _ => Err(UserChangeError::NotSuspended(*user)),
                })?;
            }
            UserChange::AddUserCertificate { pem } => {
                let (next, user) = certs
                    .with_pem(pem, Path::new("(admin API)"))
                    .map_err(UserChangeError::Certificate)?;
                if register.get(&user).is_none() {
                    return Err(UserChangeError::UnknownUser(user));
                }
                certs = next;
            }
        }
    }
    Ok((register, certs))
}

/// Sets `user`'s status to what `next` makes of the current one; a withdrawn User stays so.
fn set_status(
    register: &mut PartyRegister,
    user: UserId,
    next: impl FnOnce(&UserStatus) -> Result<UserStatus, UserChangeError>,
) -> Result<(), UserChangeError> {
    let record = register
        .users
        .get_mut(&user)
        .ok_or(UserChangeError::UnknownUser(user))?;
    if record.status == UserStatus::Withdrawn {
        return Err(UserChangeError::Withdrawn(user));
    }
    record.status = next(&record.status)?;
    Ok(())
}

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
    ) -> Result<(Self, PartyRegister, CertStore), UserChangeLogError> {
        let (journal, records) = Journal::open(path)?;
        for (index, record) in records.iter().enumerate() {
            let batch: Vec<UserChange> = serde_json::from_slice(record)
                .map_err(|source| UserChangeLogError::Record { index, source })?;
            for change in &batch {
                match apply_user_changes(&register, &certs, std::slice::from_ref(change)) {
                    Ok((r, c)) => (register, certs) = (r, c),
                    Err(UserChangeError::Certificate(refusal)) => {
                        tracing::warn!(index, error = %refusal, "Journalled User certificate not added.");
                    }
                    Err(source) => return Err(UserChangeLogError::Replay { index, source }),
                }
            }
        }
        Ok((Self { journal }, register, certs))
    }

    /// Journals one batch; returns once it is on disk.
    pub async fn append(&self, batch: &[UserChange]) -> Result<(), JournalError> {
        // Serialising these plain values cannot fail.
        let bytes = serde_json::to_vec(batch).unwrap_or_default();
        self.journal.append(bytes).await
    }
}
