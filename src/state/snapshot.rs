//! A cluster instance's start: the cluster's snapshot (the registers as `cluster init` loaded
//! them, the Users' certificates, every change batch up to S) read by the gateway's own loaders
//! and replayed in order, as a start from files replays the journals. The instance then follows
//! the log from S ([`super::State::follow`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::load::{trust, LoadError, Loaded};
use super::StateLog;
use crate::alerts::{self, ChangeAlerts};
use crate::certstore::CertStore;
use crate::cluster::{Cluster, ClusterError, Logged, LoggedBatch, Snapshot as ClusterSnapshot};
use crate::dscerts::DigitalSigningCerts;
use crate::register::{self, PartyRegister, RegisterError, UserChange};
use crate::registry::{self, InMemory, Snapshot};

/// Why a cluster start could not load its state.
#[derive(Debug, thiserror::Error)]
pub enum ClusterLoadError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the cluster's change batch {seq} does not apply to the registers before it")]
    Replay { seq: u64, detail: String },
}

/// Loads the cluster's state at its latest sequence number. The trust the Users' certificates
/// chain to stays in each instance's files (`trust_anchors`, `crls`). Also returns the DCC
/// Alerts this instance owes for batches it wrote before its last stop, to be raised again.
pub async fn open(
    cluster: Cluster,
    trust_anchors: &[PathBuf],
    crls: &[PathBuf],
) -> Result<(Loaded, Vec<ChangeAlerts>), ClusterLoadError> {
    let snapshot = cluster.snapshot().await?;
    let (anchors, crls) = (trust_anchors.to_vec(), crls.to_vec());
    let instance = cluster.instance().to_owned();
    let applied = snapshot.seq;
    let state = tokio::task::spawn_blocking(move || build(snapshot, &anchors, &crls, &instance))
        .await
        .map_err(|e| ClusterLoadError::Load(LoadError::Task(e)))??;
    let loaded = Loaded {
        register: state.register,
        registry: state.registry,
        user_certs: state.certs,
        digital_signing: state.digital_signing,
        added_certs: state.added,
        log: StateLog::Cluster(cluster),
        applied,
    };
    Ok((loaded, state.owed))
}

/// The DCC Alerts of the change batches `seqs`, whose obligations this instance claimed from a
/// gone one: the cluster's registers replayed batch by batch, each batch's alerts judged against
/// the registry just before it (as its writer judged them; the registry in force now has moved
/// on). A full replay, as a start makes: claims are rare (an instance gone).
pub async fn claimed_alerts(
    cluster: &Cluster,
    seqs: Vec<u64>,
) -> Result<Vec<ChangeAlerts>, ClusterLoadError> {
    let snapshot = cluster.snapshot().await?;
    let wanted: std::collections::BTreeSet<u64> = seqs.into_iter().collect();
    tokio::task::spawn_blocking(move || {
        let mut registry = registry::load(
            &InMemory {
                name: PathBuf::from("postgres:devices"),
                bytes: snapshot.devices_csv,
            },
            &InMemory {
                name: PathBuf::from("postgres:registrations"),
                bytes: snapshot.registrations_csv,
            },
        )
        .map_err(LoadError::from)?;
        let mut owed = Vec::new();
        for logged in &snapshot.log {
            let LoggedBatch::Registry(batch) = &logged.batch else {
                continue;
            };
            let (next, events) =
                alerts::apply_batch(&registry, batch).map_err(|e| ClusterLoadError::Replay {
                    seq: logged.seq,
                    detail: e.to_string(),
                })?;
            registry = next;
            if wanted.contains(&logged.seq) && !events.is_empty() {
                owed.push(ChangeAlerts {
                    seq: logged.seq,
                    at: logged.at,
                    events,
                });
            }
        }
        Ok(owed)
    })
    .await
    .map_err(|e| ClusterLoadError::Load(LoadError::Task(e)))?
}

/// The state the snapshot holds, with the alerts owed by `instance`'s batches.
fn build(
    snapshot: ClusterSnapshot,
    anchors: &[PathBuf],
    crls: &[PathBuf],
    instance: &str,
) -> Result<Replaying, ClusterLoadError> {
    let users_name = Path::new("postgres:users");
    let text = String::from_utf8_lossy(&snapshot.users_csv);
    let register = PartyRegister::parse(&text).map_err(|e| {
        LoadError::Register(RegisterError::InFile {
            path: users_name.to_owned(),
            inner: Box::new(e),
        })
    })?;
    let registry = registry::load(
        &InMemory {
            name: PathBuf::from("postgres:devices"),
            bytes: snapshot.devices_csv,
        },
        &InMemory {
            name: PathBuf::from("postgres:registrations"),
            bytes: snapshot.registrations_csv,
        },
    )
    .map_err(LoadError::from)?;
    let trust = Arc::new(trust(anchors, crls).map_err(LoadError::from)?);
    let mut certs = CertStore::new(Arc::clone(&trust));
    let mut digital_signing = DigitalSigningCerts::new(trust);
    for (kind, origin, pem) in &snapshot.certificates {
        for der in rustls_pemfile::certs(&mut pem.as_bytes()).filter_map(Result::ok) {
            let origin = Path::new(origin);
            let added = match kind.as_str() {
                "digital_signing" => digital_signing
                    .add(der.as_ref(), origin)
                    .err()
                    .map(|e| e.to_string()),
                _ => certs.add(der.as_ref(), origin).err().map(|e| e.to_string()),
            };
            if let Some(error) = added {
                tracing::warn!(origin = %origin.display(), error, "Certificate from the cluster skipped.");
            }
        }
    }
    let mut state = Replaying {
        register,
        registry,
        certs,
        digital_signing,
        added: Vec::new(),
        owed: Vec::new(),
    };
    for logged in &snapshot.log {
        state.replay(logged, instance)?;
    }
    Ok(state)
}

/// The state as the log's batches are replayed over it.
struct Replaying {
    register: PartyRegister,
    registry: Snapshot,
    certs: CertStore,
    digital_signing: DigitalSigningCerts,
    added: Vec<UserChange>,
    owed: Vec<ChangeAlerts>,
}

impl Replaying {
    /// Applies one batch; a registration batch of `instance`'s whose DCC Alerts are still owed
    /// has them derived again on the way.
    fn replay(&mut self, logged: &Logged, instance: &str) -> Result<(), ClusterLoadError> {
        let seq = logged.seq;
        let failed = |detail: String| ClusterLoadError::Replay { seq, detail };
        match &logged.batch {
            LoggedBatch::Registry(batch) => {
                if let Some(user) = batch.iter().find_map(|c| match c {
                    registry::Change::AddRegistration { registration, .. }
                        if self.register.get(&registration.user).is_none() =>
                    {
                        Some(registration.user)
                    }
                    _ => None,
                }) {
                    return Err(failed(format!("User {user} is not in the party register")));
                }
                let (next, events) = alerts::apply_batch(&self.registry, batch)
                    .map_err(|e| failed(e.to_string()))?;
                self.registry = next;
                if logged.owes_alerts && logged.alerts_owner == instance && !events.is_empty() {
                    let at = logged.at;
                    self.owed.push(ChangeAlerts { seq, at, events });
                }
            }
            LoggedBatch::Users(batch) => {
                let (register, certs) =
                    register::apply_user_changes(&self.register, &self.certs, batch)
                        .map_err(|e| failed(e.to_string()))?;
                self.digital_signing = register::apply_digital_signing_changes(
                    &self.digital_signing,
                    &register,
                    batch,
                )
                .map_err(|e| failed(e.to_string()))?;
                (self.register, self.certs) = (register, certs);
                self.added
                    .extend(batch.iter().filter(|c| c.adds_certificate()).cloned());
            }
        }
        Ok(())
    }
}

/// What `dccgw cluster init` put in the database.
pub type Initialised = crate::cluster::init::Loaded;

/// `dccgw cluster init`: migrates the schema, reads every register file and certificate
/// directory with the gateway's own loaders (a file that would not load is refused before
/// anything is written), then loads them into the empty database in one transaction.
pub async fn init(
    cluster: &Cluster,
    files: &super::Files,
) -> Result<Initialised, ClusterLoadError> {
    cluster.migrate().await?;
    let f = files.clone();
    let certs = tokio::task::spawn_blocking(move || checked_certificates(&f))
        .await
        .map_err(|e| ClusterLoadError::Load(LoadError::Task(e)))??;
    let register_files = crate::cluster::init::RegisterFiles {
        users: files.users.clone(),
        devices: files.devices.clone(),
        registrations: files.registrations.clone(),
    };
    Ok(cluster.load_registers(&register_files, &certs).await?)
}

/// Loads the registers (to check them) and returns the certificates the stores accept, as PEM.
fn checked_certificates(
    files: &super::Files,
) -> Result<Vec<crate::cluster::init::CertRow>, ClusterLoadError> {
    use crate::cluster::init::CertRow;
    let register = super::load::users(&files.users).map_err(LoadError::from)?;
    let registry =
        super::load::registry(&files.devices, &files.registrations).map_err(LoadError::from)?;
    if let Some(user) = registry
        .registered_users()
        .find(|u| register.get(u).is_none())
    {
        return Err(ClusterLoadError::Load(LoadError::UnregisteredUser {
            user,
            users: files.users.clone(),
        }));
    }
    let trust = Arc::new(trust(&files.trust_anchors, &files.crls).map_err(LoadError::from)?);
    let mut rows = Vec::new();
    let mut store = CertStore::new(Arc::clone(&trust));
    super::load::for_each_cert(&files.user_certs, |der, path| {
        if store.add(der, path).is_ok() {
            rows.push(CertRow {
                kind: "xml_signing",
                origin: path.display().to_string(),
                pem: pem(der),
            });
        }
    })
    .map_err(LoadError::from)?;
    if let Some(dir) = &files.digital_signing {
        let mut ds = DigitalSigningCerts::new(trust);
        super::load::for_each_cert(dir, |der, path| {
            if ds.add(der, path).is_ok() {
                rows.push(CertRow {
                    kind: "digital_signing",
                    origin: path.display().to_string(),
                    pem: pem(der),
                });
            }
        })
        .map_err(LoadError::from)?;
    }
    Ok(rows)
}

/// A certificate's DER as PEM.
fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
