//! Users changed at run time: a suspension (for some classes of service), a withdrawal, a
//! reinstatement, a new User XML-signing or Digital Signing certificate. A batch applies to copies of the register
//! and the certificate store, all or nothing; the admin API journals it before the swap, and
//! every journalled batch is replayed over the files at start (`schemas/changes.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{EligibilityClass, PartyRegister, UserStatus};
use crate::certstore::{CertRefusal, CertStore};
use crate::domain::UserId;
use crate::dscerts::{DigitalSigningCerts, DsRefusal};

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
    /// Adds a User's Digital Signing certificate (PEM): the key that signs its critical
    /// commands (`dscerts`); applied to the Digital Signing register, not here.
    AddDigitalSigningCertificate { pem: String },
}

impl UserChange {
    /// Whether it adds a certificate (of either kind), which a reload of the stores makes again.
    pub fn adds_certificate(&self) -> bool {
        matches!(
            self,
            Self::AddUserCertificate { .. } | Self::AddDigitalSigningCertificate { .. }
        )
    }
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
    #[error("the Digital Signing certificate was refused")]
    DigitalSigningCertificate(#[source] DsRefusal),
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
            UserChange::AddDigitalSigningCertificate { .. } => {}
        }
    }
    Ok((register, certs))
}

/// The Digital Signing certificates `batch` adds, applied to a copy of `certs`; each must name a
/// User of `register` (the register as the batch leaves it). The batch's other changes are
/// [`apply_user_changes`]'s.
pub fn apply_digital_signing_changes(
    certs: &DigitalSigningCerts,
    register: &PartyRegister,
    batch: &[UserChange],
) -> Result<DigitalSigningCerts, UserChangeError> {
    let mut next = certs.clone();
    for change in batch {
        if let UserChange::AddDigitalSigningCertificate { pem } = change {
            let (added, user) = next
                .with_pem(pem, Path::new("(admin API)"))
                .map_err(UserChangeError::DigitalSigningCertificate)?;
            if register.get(&user).is_none() {
                return Err(UserChangeError::UnknownUser(user));
            }
            next = added;
        }
    }
    Ok(next)
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
