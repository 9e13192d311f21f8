//! The registers, the registration cache and the certificate store read from their files, then
//! every journalled change replayed over them: what a start builds before it serves. Blocking
//! and CPU-heavy: [`open`] runs each step off the async workers.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::alerts::{self, ChangeAlerts};
use std::sync::Arc;

use crate::certstore::CertStore;
use crate::domain::UserId;
use crate::dscerts::DigitalSigningCerts;
use crate::progress::{Progress, Unit};
use crate::register::{PartyRegister, RegisterError, UserChange};
use crate::registry::{self, ChangeError, RegistryError, Snapshot, Source};
use crate::smki::{Anchor, CrlError, Trust};
use crate::store::{ChangeLog, ChangeLogError, UserChangeLog, UserChangeLogError};

/// Files bigger than this under a certificate directory are not certificates; they are skipped
/// unread.
const MAX_PEM_BYTES: u64 = 1024 * 1024;
/// A CRL file bigger than this is refused unread (the load fails, and a reload keeps the trust
/// in force).
pub const MAX_CRL_BYTES: u64 = 64 * 1024 * 1024;

/// Where the state's files are.
#[derive(Clone, Debug)]
pub struct Files {
    pub users: PathBuf,
    pub devices: PathBuf,
    pub registrations: PathBuf,
    /// The directory of User XML-signing certificates.
    pub user_certs: PathBuf,
    /// The directory of Users' Digital Signing certificates, if any.
    pub digital_signing: Option<PathBuf>,
    /// PEM files of the SMKI trust anchors the certificates must chain to.
    pub trust_anchors: Vec<PathBuf>,
    /// CRLs issued by those anchors.
    pub crls: Vec<PathBuf>,
    /// The registration change log.
    pub changes: PathBuf,
    /// The User change log.
    pub user_changes: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    CertStore(#[from] CertStoreError),
    #[error(transparent)]
    ChangeLog(#[from] ChangeLogError),
    #[error(transparent)]
    UserChangeLog(#[from] UserChangeLogError),
    #[error("journalled change batch {index} no longer applies to the registration files; fix the files or the log before starting")]
    ChangeReplay {
        index: usize,
        #[source]
        source: ChangeError,
    },
    #[error("the registrations name User {user}, who is not in the party register {users}")]
    UnregisteredUser { user: UserId, users: PathBuf },
    #[error("a loading task failed")]
    Task(#[source] tokio::task::JoinError),
}

#[derive(Debug, thiserror::Error)]
pub enum CertStoreError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a usable trust anchor")]
    Anchor { path: PathBuf },
    #[error("{path} is not a usable certificate revocation list")]
    Crl {
        path: PathBuf,
        #[source]
        source: CrlError,
    },
    #[error("{path} is larger than {MAX_CRL_BYTES} bytes")]
    CrlTooLarge { path: PathBuf },
}

/// What a start has loaded: the state in force and its logs.
pub struct Loaded {
    pub register: PartyRegister,
    pub registry: Snapshot,
    pub user_certs: CertStore,
    pub digital_signing: DigitalSigningCerts,
    /// The certificate additions in the User change log, made again by reloads of the stores.
    pub added_certs: Vec<UserChange>,
    /// Where live changes are made durable.
    pub log: super::StateLog,
    /// The last change-log batch in the loaded state (in a cluster, where following starts).
    pub applied: u64,
}

/// Loads every file and replays both change logs over them. Also returns the DCC Alerts of the
/// change batches whose alerts were not all sent before the last stop, to be raised again.
pub async fn open(files: &Files) -> Result<(Loaded, Vec<ChangeAlerts>), LoadError> {
    let path = files.users.clone();
    let register = blocking(move || users(&path).map_err(LoadError::from)).await?;
    let f = files.clone();
    let (registry, changes, owed) = blocking(move || registry_with_changes(&f)).await?;
    if let Some(user) = registry
        .registered_users()
        .find(|u| register.get(u).is_none())
    {
        return Err(LoadError::UnregisteredUser {
            user,
            users: files.users.clone(),
        });
    }
    let f = files.clone();
    let replayed = blocking(move || {
        let trust = Arc::new(trust(&f.trust_anchors, &f.crls)?);
        let ds = digital_signing_certs(f.digital_signing.as_deref(), Arc::clone(&trust))?;
        let certs = certs(&f.user_certs, trust)?;
        Ok(UserChangeLog::open_and_replay(
            &f.user_changes,
            register,
            certs,
            ds,
        )?)
    })
    .await?;
    let loaded = Loaded {
        register: replayed.register,
        registry,
        user_certs: replayed.certs,
        digital_signing: replayed.digital_signing,
        added_certs: replayed.added,
        log: super::StateLog::Embedded {
            changes,
            user_changes: replayed.log,
        },
        applied: 0,
    };
    Ok((loaded, owed))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(LoadError::Task)?
}

/// The registration files, then every journalled batch of live changes over them, in order; the
/// DCC Alerts of the batches after the change log's mark are derived again on the way.
fn registry_with_changes(
    files: &Files,
) -> Result<(Snapshot, ChangeLog, Vec<ChangeAlerts>), LoadError> {
    let mut snapshot = registry(&files.devices, &files.registrations)?;
    let (log, replayed) = ChangeLog::open(&files.changes)?;
    let mut owed = Vec::new();
    for (index, batch) in replayed.batches.into_iter().enumerate() {
        let replay = |source| LoadError::ChangeReplay { index, source };
        match (batch.seq, batch.at) {
            (Some(seq), Some(at)) if batch.owes_alerts(replayed.alerted) => {
                let (next, events) =
                    alerts::apply_batch(&snapshot, &batch.changes).map_err(replay)?;
                snapshot = next;
                if !events.is_empty() {
                    owed.push(ChangeAlerts { seq, at, events });
                }
            }
            _ => snapshot = snapshot.apply_all(&batch.changes).map_err(replay)?,
        }
    }
    Ok((snapshot, log, owed))
}

/// A registration file on disk, read by range.
pub struct FileSource(pub PathBuf);

impl Source for FileSource {
    fn name(&self) -> &Path {
        &self.0
    }

    fn size(&self) -> io::Result<u64> {
        Ok(std::fs::metadata(&self.0)?.len())
    }

    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let mut f = File::open(&self.0)?;
        f.seek(SeekFrom::Start(start))?;
        Ok(Box::new(f.take(end.saturating_sub(start))))
    }
}

/// A source whose reads are counted as progress.
struct Counted<'a> {
    source: FileSource,
    progress: &'a Progress,
}

impl Source for Counted<'_> {
    fn name(&self) -> &Path {
        self.source.name()
    }

    fn size(&self) -> io::Result<u64> {
        self.source.size()
    }

    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let inner = self.source.range(start, end)?;
        Ok(Box::new(CountedRead {
            inner,
            progress: self.progress.clone(),
        }))
    }
}

struct CountedRead<'a> {
    inner: Box<dyn Read + Send + 'a>,
    progress: Progress,
}

impl Read for CountedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// `devices.csv` and `registrations.csv` into a snapshot (`schemas/devices.md`,
/// `schemas/registrations.md`), with its progress reported (a bar on a terminal, a log line
/// every few seconds otherwise, and the time it took).
pub fn registry(devices: &Path, registrations: &Path) -> Result<Snapshot, RegistryError> {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let progress = Progress::start(
        "Loading the registry",
        Some(size(devices) + size(registrations)),
        Unit::Bytes,
    );
    let loaded = registry::load(
        &Counted {
            source: FileSource(devices.to_owned()),
            progress: &progress,
        },
        &Counted {
            source: FileSource(registrations.to_owned()),
            progress: &progress,
        },
    );
    progress.finish();
    loaded
}

/// `users.csv` (`schemas/users.md`).
pub fn users(path: &Path) -> Result<PartyRegister, RegisterError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegisterError::Read {
        path: path.to_owned(),
        source,
    })?;
    PartyRegister::parse(&text).map_err(|e| RegisterError::InFile {
        path: path.to_owned(),
        inner: Box::new(e),
    })
}

/// Trust in the anchors of `anchor_files`, with the CRLs of `crl_files` (PEM or DER, each signed
/// by one of those anchors).
pub fn trust(anchor_files: &[PathBuf], crl_files: &[PathBuf]) -> Result<Trust, CertStoreError> {
    let mut anchors = Vec::new();
    for path in anchor_files {
        anchors.extend(trust_anchors(path)?);
    }
    let mut trust = Trust::new(anchors);
    for path in crl_files {
        for der in crls(path)? {
            trust.add_crl(&der).map_err(|source| CertStoreError::Crl {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(trust)
}

/// The CRLs in a file: PEM `X509 CRL` blocks, or one DER CRL.
fn crls(path: &Path) -> Result<Vec<Vec<u8>>, CertStoreError> {
    let read = |source| CertStoreError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_CRL_BYTES {
        return Err(CertStoreError::CrlTooLarge {
            path: path.to_owned(),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let pem: Vec<Vec<u8>> = rustls_pemfile::crls(&mut bytes.as_slice())
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect();
    Ok(if pem.is_empty() { vec![bytes] } else { pem })
}

/// Every certificate in a PEM file, as trust anchors.
pub fn trust_anchors(path: &Path) -> Result<Vec<Anchor>, CertStoreError> {
    let pem = std::fs::read(path).map_err(|source| CertStoreError::Read {
        path: path.to_owned(),
        source,
    })?;
    let anchors = Anchor::from_pem(&pem);
    if anchors.is_empty() {
        return Err(CertStoreError::Anchor {
            path: path.to_owned(),
        });
    }
    Ok(anchors)
}

/// Every certificate in every `*.pem` file under `dir` (recursively), checked against
/// `trust`. Files that hold no certificate (keys) are passed over; certificates without an
/// SMKI identity are skipped with a warning, since no signature could name them usefully.
pub fn certs(dir: &Path, trust: Arc<Trust>) -> Result<CertStore, CertStoreError> {
    let mut store = CertStore::new(trust);
    for_each_cert(dir, |der, path| {
        if let Err(e) = store.add(der, path) {
            tracing::warn!(path = %path.display(), error = %e, "Certificate skipped: no SMKI identity.");
        }
    })?;
    Ok(store)
}

/// Every Digital Signing certificate under `dir` (recursively, `*.pem`), checked against
/// `trust`; without a directory, an empty register. Certificates of other kinds (XML-signing,
/// TLS, Key Agreement) are passed over, so the directory may be a tree of Users' certificates of
/// every kind.
pub fn digital_signing_certs(
    dir: Option<&Path>,
    trust: Arc<Trust>,
) -> Result<DigitalSigningCerts, CertStoreError> {
    let mut register = DigitalSigningCerts::new(trust);
    let Some(dir) = dir else {
        return Ok(register);
    };
    for_each_cert(dir, |der, path| {
        if let Err(e) = register.add(der, path) {
            tracing::debug!(path = %path.display(), error = %e, "Not a Digital Signing certificate.");
        }
    })?;
    Ok(register)
}

/// Every Digital Signing certificate under `dir` (recursively, `*.pem`), each trusted in itself
/// as a device trusts the keys in its trust anchor cells (the simulated devices' trust).
pub fn digital_signing_anchors(dir: &Path) -> Result<DigitalSigningCerts, CertStoreError> {
    let mut register = DigitalSigningCerts::default();
    for_each_cert(dir, |der, path| {
        let _ = register.add_anchored(der, path);
    })?;
    Ok(register)
}

/// Calls `f` with every certificate (DER) in every `*.pem` file under `dir` (recursively) and
/// the file it came from.
pub fn for_each_cert(dir: &Path, mut f: impl FnMut(&[u8], &Path)) -> Result<(), CertStoreError> {
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| CertStoreError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "pem") || meta.len() > MAX_PEM_BYTES {
                continue;
            }
            let pem = std::fs::read(&path).map_err(|source| CertStoreError::Read {
                path: path.clone(),
                source,
            })?;
            for der in rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok) {
                f(der.as_ref(), &path);
            }
        }
    }
    Ok(())
}
