//! The state requests are decided against, and the one way it changes: the party register, the
//! national registration cache, the store of User XML-signing certificates and the register of
//! Users' Digital Signing certificates in force, each
//! swapped whole (readers never wait, and one request sees one version of each), and the writers'
//! path — a batch of changes is checked, journalled, and only then made visible; the DCC Alerts it
//! calls for go to the replies task. Loading from files is [`load`]; folding the registry's
//! overlay of changes into a new base in the background is [`Compaction`].

mod compaction;
mod follow;
pub mod generate;
pub mod load;
mod log;
pub mod rules;
pub mod snapshot;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::alerts::{self, ChangeAlerts};
use crate::certstore::{CertRefusal, CertStore};
use crate::domain::UserId;
use crate::dscerts::{DigitalSigningCerts, DsRefusal};
use crate::metrics::Metrics;
use crate::register::{self, PartyRegister, UserChange, UserChangeError};
use crate::registry::{Change, ChangeError, Snapshot};

pub use compaction::{Compaction, COMPACT_OVERLAY_AT};
pub use load::{CertStoreError, Files, LoadError, Loaded};
pub use log::{LogError, StateLog};
pub use rules::{Rules, RulesLoadError};

/// Why a batch of changes was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the changes cannot apply")]
    Invalid(#[source] ChangeError),
    #[error("the user changes cannot apply")]
    InvalidUser(#[source] UserChangeError),
    #[error("a registration names User {0}, who is not in the party register")]
    UnregisteredUser(UserId),
    #[error("the change log could not be written")]
    Journal(#[source] LogError),
}

/// How many times a writer catches up with other instances' changes and decides again before
/// it gives up ([`LogError::Contended`]).
const MAX_APPEND_TRIES: usize = 8;

/// The party register and the certificate stores a batch of User changes makes.
struct UserState {
    register: PartyRegister,
    certs: CertStore,
    digital_signing: DigitalSigningCerts,
}

/// The registers, the registry and the certificate store in force, and their writers' path.
pub struct State {
    register: ArcSwap<PartyRegister>,
    /// Devices and registrations, swapped whole on each change.
    registry: ArcSwap<Snapshot>,
    /// User XML-signing certificates, by issuer and serial.
    user_certs: ArcSwap<CertStore>,
    /// Users' Digital Signing certificates (the keys of critical commands), by User ID.
    digital_signing: ArcSwap<DigitalSigningCerts>,
    /// The certificate additions of the User change log, made again in reloaded stores.
    added_certs: std::sync::Mutex<Vec<UserChange>>,
    /// Where live registration and User changes are made durable before they apply.
    log: StateLog,
    /// The last change-log batch applied here (in a cluster: the point this instance follows
    /// the log from). Written only under `change_lock`.
    applied: AtomicU64,
    /// Set when a batch another instance wrote did not apply here: this instance's state has
    /// left the cluster's (`/readyz` says not ready).
    diverged: AtomicBool,
    /// When the registry's overlay is folded into a new base, in the background.
    compaction: Compaction,
    /// Serialises writers of all three (readers never wait).
    change_lock: tokio::sync::Mutex<()>,
    metrics: Metrics,
    /// The DCC Alerts registration changes call for, a batch at a time, for the replies task
    /// (bounded: at the bound a change waits, and so does its admin caller).
    raised: mpsc::Sender<ChangeAlerts>,
}

impl State {
    /// The loaded state; `raised` takes the DCC Alerts of later changes.
    pub fn new(loaded: Loaded, metrics: Metrics, raised: mpsc::Sender<ChangeAlerts>) -> Arc<Self> {
        let Loaded {
            register,
            registry,
            user_certs,
            digital_signing,
            added_certs,
            log,
            applied,
        } = loaded;
        metrics.cache_loaded("users", register.len(), false);
        metrics.cache_loaded("devices", registry.device_count(), false);
        metrics.cache_loaded("registrations", registry.registration_count(), false);
        metrics.cache_loaded("user_certs", user_certs.len(), false);
        metrics.cache_loaded("digital_signing_certs", digital_signing.len(), false);
        Arc::new(Self {
            register: ArcSwap::from_pointee(register),
            registry: ArcSwap::from_pointee(registry),
            user_certs: ArcSwap::from_pointee(user_certs),
            digital_signing: ArcSwap::from_pointee(digital_signing),
            added_certs: std::sync::Mutex::new(added_certs),
            log,
            applied: AtomicU64::new(applied),
            diverged: AtomicBool::new(false),
            compaction: Compaction::default(),
            change_lock: tokio::sync::Mutex::new(()),
            metrics,
            raised,
        })
    }

    /// The party register in force.
    pub fn register(&self) -> Guard<Arc<PartyRegister>> {
        self.register.load()
    }

    /// Devices and registrations in force.
    pub fn registry(&self) -> Arc<Snapshot> {
        self.registry.load_full()
    }

    /// The User XML-signing certificates in force.
    pub fn user_certs(&self) -> Guard<Arc<CertStore>> {
        self.user_certs.load()
    }

    /// The Users' Digital Signing certificates in force.
    pub fn digital_signing(&self) -> Guard<Arc<DigitalSigningCerts>> {
        self.digital_signing.load()
    }

    /// Whether either change log's last write failed, or (in a cluster) another instance's
    /// change did not apply here (`/readyz` says not ready).
    pub fn journals_failing(&self) -> bool {
        self.log.is_failing() || self.diverged.load(Ordering::Relaxed)
    }

    /// The change log, where the replies task marks how far the DCC Alerts of its batches are
    /// out.
    pub fn change_log(&self) -> &StateLog {
        &self.log
    }

    /// The last change-log batch applied here.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// When the registry's overlay is compacted (operators' tools and tests set its bound).
    pub fn compaction(&self) -> &Compaction {
        &self.compaction
    }

    /// Applies a batch of registration changes atomically: checked against the current
    /// snapshot, journalled, and only then made visible to requests (one swap). The DCC Alerts
    /// the changes call for go to the replies task; should they not reach the outbox (a crash,
    /// the task gone), the change log still owes them and the next start raises them again.
    /// Once the overlay passes its bound, a compaction starts in the background.
    pub async fn apply_changes(self: &Arc<Self>, batch: &[Change]) -> Result<(), ApplyError> {
        let _writer = self.change_lock.lock().await;
        for _ in 0..MAX_APPEND_TRIES {
            let (next, events) = self.check_changes(batch)?;
            let at = OffsetDateTime::now_utc().unix_timestamp();
            let appended = self
                .log
                .append_registry(self.applied(), at, batch, !events.is_empty())
                .await
                .map_err(ApplyError::Journal)?;
            let log::Appended::At(seq) = appended else {
                // Another instance wrote first: apply its batches, then decide again.
                self.catch_up_locked().await.map_err(ApplyError::Journal)?;
                continue;
            };
            self.applied.store(seq, Ordering::Release);
            self.install_registry(next, batch);
            // After the swap, so that the replies task routes them against a snapshot with the
            // batch in it (as after a restart).
            if !events.is_empty() {
                self.metrics.alerts.owed_change_batches.inc();
                let batch = ChangeAlerts { seq, at, events };
                if self.raised.send(batch).await.is_err() {
                    tracing::error!(
                        seq,
                        "The replies task has stopped; this change's DCC Alerts are raised at the next start."
                    );
                }
            }
            return Ok(());
        }
        Err(ApplyError::Journal(LogError::Contended))
    }

    /// The snapshot `batch` makes of the one in force, and the DCC Alerts it calls for; or why
    /// it cannot apply.
    fn check_changes(
        &self,
        batch: &[Change],
    ) -> Result<(Snapshot, Vec<alerts::DccEvent>), ApplyError> {
        let register = self.register.load();
        let unknown = batch.iter().find_map(|c| match c {
            Change::AddRegistration { registration, .. }
                if register.get(&registration.user).is_none() =>
            {
                Some(registration.user)
            }
            _ => None,
        });
        if let Some(user) = unknown {
            return Err(ApplyError::UnregisteredUser(user));
        }
        let current = self.registry.load_full();
        alerts::apply_batch(&current, batch).map_err(ApplyError::Invalid)
    }

    /// Puts `next` (made by `batch`) in force; once the overlay passes its bound, a compaction
    /// starts in the background.
    fn install_registry(self: &Arc<Self>, next: Snapshot, batch: &[Change]) {
        self.metrics
            .cache_loaded("devices", next.device_count(), true);
        self.metrics
            .cache_loaded("registrations", next.registration_count(), true);
        let next = Arc::new(next);
        self.registry.store(Arc::clone(&next));
        if self.compaction.after_change(&next, batch) {
            tokio::spawn(Arc::clone(self).compact(next));
        }
    }

    /// Folds `from`'s overlay into a new base off the async workers, then (as a writer) swaps
    /// it in with the batches applied meanwhile. On failure the live snapshot simply stays.
    async fn compact(self: Arc<Self>, from: Arc<Snapshot>) {
        let overlay = from.overlay_len();
        let compacted = tokio::task::spawn_blocking(move || from.compact()).await;
        let _writer = self.change_lock.lock().await;
        match compacted.map(|c| self.compaction.finish(c)) {
            Ok(Ok(next)) => {
                tracing::info!(overlay, "Registration cache compacted.");
                self.registry.store(Arc::new(next));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Compaction result dropped: a change did not apply again.")
            }
            Err(e) => {
                self.compaction.abandon();
                tracing::error!(error = %e, "Compaction failed.");
            }
        }
    }

    /// Applies a batch of User changes (status, certificates) atomically and durably, as
    /// `apply_changes` does registration changes. The store is swapped before the register, so
    /// a batch that adds a certificate and lifts a suspension never admits a request early.
    pub async fn apply_user_changes(
        self: &Arc<Self>,
        batch: &[UserChange],
    ) -> Result<(), ApplyError> {
        let _writer = self.change_lock.lock().await;
        for _ in 0..MAX_APPEND_TRIES {
            let next = self.check_user_changes(batch)?;
            let at = OffsetDateTime::now_utc().unix_timestamp();
            let appended = self
                .log
                .append_users(self.applied(), at, batch)
                .await
                .map_err(ApplyError::Journal)?;
            let log::Appended::At(seq) = appended else {
                self.catch_up_locked().await.map_err(ApplyError::Journal)?;
                continue;
            };
            self.applied.store(seq, Ordering::Release);
            self.install_users(next, batch);
            return Ok(());
        }
        Err(ApplyError::Journal(LogError::Contended))
    }

    /// The register and certificate stores `batch` makes of those in force, or why it cannot
    /// apply.
    fn check_user_changes(&self, batch: &[UserChange]) -> Result<UserState, ApplyError> {
        let (register, certs) =
            register::apply_user_changes(&self.register.load(), &self.user_certs.load(), batch)
                .map_err(ApplyError::InvalidUser)?;
        let digital_signing =
            register::apply_digital_signing_changes(&self.digital_signing.load(), &register, batch)
                .map_err(ApplyError::InvalidUser)?;
        Ok(UserState {
            register,
            certs,
            digital_signing,
        })
    }

    /// Puts `next` (made by `batch`) in force: the stores before the register, so a batch that
    /// adds a certificate and lifts a suspension never admits a request early.
    fn install_users(&self, next: UserState, batch: &[UserChange]) {
        self.user_certs.store(Arc::new(next.certs));
        self.digital_signing.store(Arc::new(next.digital_signing));
        self.register.store(Arc::new(next.register));
        let mut added = self.added();
        for change in batch {
            if change.adds_certificate() {
                added.push(change.clone());
            }
        }
    }

    /// Puts reloaded certificate stores in force (read again from their directories against a
    /// reloaded trust): the User XML-signing certificates and the Users' Digital Signing
    /// certificates, with the certificates the change log added put back in (those the new trust
    /// refuses are left out, with a warning). Returns the stores' sizes.
    pub async fn replace_certs(
        &self,
        mut store: CertStore,
        mut digital_signing: DigitalSigningCerts,
    ) -> (usize, usize) {
        let _writer = self.change_lock.lock().await;
        let origin = std::path::Path::new("(admin API)");
        for change in self.added().iter() {
            let refused = match change {
                UserChange::AddUserCertificate { pem } => match store.with_pem(pem, origin) {
                    Ok((next, _)) => {
                        store = next;
                        None
                    }
                    Err(CertRefusal::Duplicate) => None,
                    Err(e) => Some(e.to_string()),
                },
                UserChange::AddDigitalSigningCertificate { pem } => {
                    match digital_signing.with_pem(pem, origin) {
                        Ok((next, _)) => {
                            digital_signing = next;
                            None
                        }
                        Err(DsRefusal::Duplicate) => None,
                        Err(e) => Some(e.to_string()),
                    }
                }
                _ => None,
            };
            if let Some(error) = refused {
                tracing::warn!(
                    error,
                    "A certificate added by the admin API is not in the reloaded store."
                );
            }
        }
        let sizes = (store.len(), digital_signing.len());
        self.metrics.cache_loaded("user_certs", sizes.0, true);
        self.metrics
            .cache_loaded("digital_signing_certs", sizes.1, true);
        self.user_certs.store(Arc::new(store));
        self.digital_signing.store(Arc::new(digital_signing));
        sizes
    }

    fn added(&self) -> std::sync::MutexGuard<'_, Vec<UserChange>> {
        // Pushing changes cannot leave the list inconsistent.
        self.added_certs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Raises again the DCC Alerts of the change batches the change log still owes (journalled,
    /// but not marked as in the outbox at the last stop), in order, before any new change can be
    /// made.
    pub async fn raise_owed(&self, owed: Vec<ChangeAlerts>) {
        if owed.is_empty() {
            return;
        }
        let count = i64::try_from(owed.len()).unwrap_or(i64::MAX);
        self.metrics.alerts.owed_change_batches.add(count);
        tracing::info!(
            batches = owed.len(),
            "Registration changes whose DCC Alerts were not all sent at the last stop; raising them again."
        );
        for batch in owed {
            // The replies task runs (started with the outbox): each send waits only for room.
            if self.raised.send(batch).await.is_err() {
                tracing::error!(
                    "The replies task has stopped; owed DCC Alerts wait for the next start."
                );
                break;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
