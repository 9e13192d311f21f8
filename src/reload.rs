//! Certificates reloaded without a restart: the TLS server certificate and key, the trust
//! anchors and CRLs of TLS clients, and those of signing certificates with the store of Users'
//! XML-signing certificates. Asked for by SIGHUP, `POST /admin/v1/reload`, or a change the file
//! watch sees ([`Reloader::watch`]).
//!
//! A reload reads everything again and builds it off the async workers; only when every piece
//! built does it swap them in, each whole (the TLS configuration for connections accepted from
//! then on, the store for requests verified from then on). Established connections keep going.
//! A reload that fails changes nothing, says why in the log at ERROR, and counts `failed`.
//!
//! Each store of User certificates is read again from its directory against its trust: a second
//! store (Users' Digital Signing certificates) is one more directory read in [`build`] and one
//! more swap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::certstore::CertStore;
use crate::config::Config;
use crate::dscerts::DigitalSigningCerts;
use crate::metrics::Metrics;
use crate::smki::{Clients, Trust};
use crate::state::{self, CertStoreError, State};
use crate::tls::{self, TlsError};

/// Entries of a certificate directory the watch looks at, at most; past it, changes further
/// down the walk are seen only by a signal or the admin endpoint.
const MAX_WATCHED: usize = 100_000;

/// The files a reload reads.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub client_ca: Vec<PathBuf>,
    pub tls_crls: Vec<PathBuf>,
    pub signing_anchors: Vec<PathBuf>,
    pub signing_crls: Vec<PathBuf>,
    /// The directory of Users' XML-signing certificates.
    pub user_certs: PathBuf,
    /// The directory of Users' Digital Signing certificates, if any.
    pub digital_signing: Option<PathBuf>,
}

impl CertFiles {
    pub fn from_config(config: &Config) -> Self {
        Self {
            tls_cert: config.tls.cert.clone(),
            tls_key: config.tls.key.clone(),
            client_ca: config.tls.client_ca.clone(),
            tls_crls: config.tls.crls.clone(),
            signing_anchors: config.signatures.trust_anchors.clone(),
            signing_crls: config.signatures.crls.clone(),
            user_certs: config.signatures.user_certs.clone(),
            digital_signing: config.signatures.digital_signing_certs.clone(),
        }
    }

    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.tls_cert, &self.tls_key]
            .into_iter()
            .chain(&self.client_ca)
            .chain(&self.tls_crls)
            .chain(&self.signing_anchors)
            .chain(&self.signing_crls)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the TLS server certificate or key")]
    Tls(#[from] TlsError),
    #[error("the trust anchors, CRLs or User certificates")]
    Certs(#[from] CertStoreError),
    #[error("the reload task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Everything a reload puts in force, built before any of it is.
pub struct Built {
    pub tls_config: rustls::ServerConfig,
    pub tls_trust: Arc<Trust>,
    pub user_certs: CertStore,
    pub digital_signing: DigitalSigningCerts,
}

/// Reads and checks every file (blocking).
pub fn build(files: &CertFiles) -> Result<Built, ReloadError> {
    let tls_trust = Arc::new(state::load::trust(&files.client_ca, &files.tls_crls)?);
    let tls_config = tls::server_config(
        &files.tls_cert,
        &files.tls_key,
        Arc::clone(&tls_trust),
        Clients::Users,
    )?;
    let signing = Arc::new(state::load::trust(
        &files.signing_anchors,
        &files.signing_crls,
    )?);
    let user_certs = state::load::certs(&files.user_certs, Arc::clone(&signing))?;
    let digital_signing =
        state::load::digital_signing_certs(files.digital_signing.as_deref(), signing)?;
    Ok(Built {
        tls_config,
        tls_trust,
        user_certs,
        digital_signing,
    })
}

/// What a reload put in force.
#[derive(Debug, Clone, Copy)]
pub struct Reloaded {
    pub user_certs: usize,
    pub digital_signing_certs: usize,
    pub tls_anchors: usize,
    /// Certificates the TLS and the signing CRLs revoke.
    pub tls_revoked: usize,
    pub signing_revoked: usize,
}

/// Reloads, one at a time.
pub struct Reloader {
    files: CertFiles,
    state: Arc<State>,
    tls: Arc<tls::Acceptor>,
    metrics: Metrics,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        files: CertFiles,
        state: Arc<State>,
        tls: Arc<tls::Acceptor>,
        metrics: Metrics,
    ) -> Self {
        Self {
            files,
            state,
            tls,
            metrics,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads everything again and, if all of it builds, puts it in force. `trigger` is one of
    /// [`crate::metrics::RELOAD_TRIGGERS`].
    pub async fn reload(&self, trigger: &'static str) -> Result<Reloaded, ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let files = self.files.clone();
        let built = tokio::task::spawn_blocking(move || build(&files))
            .await
            .map_err(ReloadError::Task)
            .and_then(|b| b);
        let built = match built {
            Ok(built) => built,
            Err(e) => {
                self.metrics.certs.reloaded(trigger, false);
                let cause = std::error::Error::source(&e).map(|c| c.to_string());
                tracing::error!(trigger, error = %e, cause, "Certificate reload failed; what was in force stays.");
                return Err(e);
            }
        };
        observe(&self.metrics, &built.tls_trust, &built.user_certs);
        record_server_expiry(&self.metrics, &self.files.tls_cert);
        let tls_anchors = built.tls_trust.anchors().len();
        let tls_revoked = revoked(&built.tls_trust);
        let signing_revoked = revoked(built.user_certs.trust());
        self.tls.swap(built.tls_config);
        let (user_certs, digital_signing_certs) = self
            .state
            .replace_certs(built.user_certs, built.digital_signing)
            .await;
        self.metrics.certs.reloaded(trigger, true);
        let reloaded = Reloaded {
            user_certs,
            digital_signing_certs,
            tls_anchors,
            tls_revoked,
            signing_revoked,
        };
        tracing::info!(
            trigger,
            user_certs,
            digital_signing_certs,
            tls_anchors,
            tls_revoked,
            signing_revoked,
            "Certificates reloaded."
        );
        Ok(reloaded)
    }

    /// Looks at the files every `every` and reloads when any changed (size, modification time,
    /// a file added to or removed from the certificate directory), until `shutdown`.
    pub async fn watch(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let files = self.files.clone();
        let mut last = fingerprint_off_thread(&files).await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            let now = fingerprint_off_thread(&files).await;
            if now != last {
                last = now;
                let _ = self.reload("watch").await;
            }
        }
    }
}

fn revoked(trust: &Trust) -> usize {
    trust.revocations().iter().map(|r| r.len()).sum()
}

/// The expiries and CRL due dates of what is in force, for the dashboard.
pub fn observe(metrics: &Metrics, tls_trust: &Trust, user_certs: &CertStore) {
    let earliest = |t: &Trust| t.anchors().iter().map(|a| a.not_after).min();
    if let Some(at) = earliest(tls_trust) {
        metrics.certificate_expires("tls_client_anchor", at);
    }
    if let Some(at) = earliest(user_certs.trust()) {
        metrics.certificate_expires("signing_anchor", at);
    }
    let users = user_certs
        .iter()
        .filter(|c| c.chained && !c.revoked)
        .map(|c| c.identity.not_after.unix_timestamp())
        .min();
    if let Some(at) = users {
        metrics.certificate_expires("user_xml_signing", at);
    }
    let due = |t: &Trust| t.revocations().iter().filter_map(|r| r.next_update).min();
    metrics.certs.crls_due("tls", due(tls_trust));
    metrics
        .certs
        .crls_due("signatures", due(user_certs.trust()));
}

/// The TLS server certificate's expiry.
pub fn record_server_expiry(metrics: &Metrics, cert: &Path) {
    let not_after = tls::load_certs(cert).ok().and_then(|chain| {
        let leaf = chain.first()?;
        let (_, c) = x509_parser::parse_x509_certificate(leaf).ok()?;
        Some(c.validity().not_after.timestamp())
    });
    if let Some(at) = not_after {
        metrics.certificate_expires("tls_server", at);
    }
}

/// Size and modification time of each file, and of each entry under the certificate directory.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

async fn fingerprint_off_thread(files: &CertFiles) -> Fingerprint {
    let files = files.clone();
    tokio::task::spawn_blocking(move || fingerprint(&files))
        .await
        .unwrap_or_default()
}

fn fingerprint(files: &CertFiles) -> Fingerprint {
    let stat = |p: &Path| {
        let meta = std::fs::metadata(p).ok();
        (
            p.to_owned(),
            meta.as_ref().map_or(0, |m| m.len()),
            meta.and_then(|m| m.modified().ok()),
        )
    };
    let mut out: Fingerprint = files.files().map(|p| stat(p)).collect();
    let mut pending: Vec<PathBuf> = std::iter::once(&files.user_certs)
        .chain(&files.digital_signing)
        .cloned()
        .collect();
    let mut seen = 0usize;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_WATCHED {
                return out;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else {
                out.push(stat(&path));
            }
        }
    }
    out.sort();
    out
}
