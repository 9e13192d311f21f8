//! The DUIS listener: accept, bound, handshake, identify once, then serve HTTP/1.1 or HTTP/2 and
//! hand each request to the pipeline. Also owns start-up and graceful shutdown of the whole
//! gateway (the admin listener included).

mod attempts;
mod conn;
mod http;
mod routing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::alerts::{self, AlertsError, ChangeAlerts};
use crate::audit::{Audit, AuditError};
use crate::certstore::{CertStore, CertStoreError, TrustAnchor};
use crate::commshub::{ConfigError as HubConfigError, DispatchError};
use crate::config::{Config, Limits};
use crate::domain::SmkiRole;
use crate::duis;
use crate::metrics::Metrics;
use crate::outbox::OutboxError;
use crate::pipeline::{Gateway, Loaded};
use crate::register::{PartyRegister, RegisterError, UserChangeLog, UserChangeLogError};
use crate::registry::{self, ChangeError, RegistryError};
use crate::routing::RoutingError;
use crate::signer::{Signer, SignerError};
use crate::store::{ChangeLog, ChangeLogError, JournalError, ReplayGuard};
use crate::tls::{self, TlsError};

/// How long shutdown waits for in-flight requests before it closes what is left.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    CertStore(#[from] CertStoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    ChangeLog(#[from] ChangeLogError),
    #[error(transparent)]
    UserChangeLog(#[from] UserChangeLogError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("[routing] needs [delivery]: responses must have somewhere to go")]
    RoutingWithoutDelivery,
    #[error("the access-control broker key or certificate ([routing] acb_key, acb_cert)")]
    BrokerKey(#[source] RoutingError),
    #[error("cannot read the hub configuration {path}")]
    HubConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the hub configuration {path}")]
    HubConfigParse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("the hub simulator's configuration")]
    HubSimulator(#[source] HubConfigError),
    #[error("[routing] hub = \"remote\" needs hub_addr")]
    RemoteHubAddr,
    #[error("the pending-command journal")]
    PendingJournal(#[source] DispatchError),
    #[error("the delivery transport ([delivery.transport])")]
    DeliveryTransport(#[source] TlsError),
    #[error("the outbox")]
    Outbox(#[source] OutboxError),
    #[error("[alerts]")]
    Alerts(#[source] AlertsError),
    #[error("journalled change batch {index} no longer applies to the registration files; fix the files or the log before starting")]
    ChangeReplay {
        index: usize,
        #[source]
        source: ChangeError,
    },
    #[error("cannot read the admin token file {path}")]
    AdminToken {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a start-up task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A started gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// The outbox, when `[routing]` and `[delivery]` are configured.
    pub outbox: Option<Arc<crate::outbox::Outbox>>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (up to a drain timeout), then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Runs until the accept loop ends (after a shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A handle that asks for shutdown, for signal handlers.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Loads keys and registers, binds both listeners and starts serving.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let tls_config = tls::server_config(&config.tls.cert, &config.tls.key, &config.tls.client_ca)?;
    let signer = Signer::load(
        &config.signatures.dcc_key,
        &config.signatures.dcc_cert,
        Some(SmkiRole::DccXmlSigning),
    )?;
    // Registers and certificate stores can be large; read them off the async workers.
    let users = config.registration.users.clone();
    let register = tokio::task::spawn_blocking(move || PartyRegister::load(&users))
        .await
        .map_err(StartError::Task)??;
    let (devices, registrations) = (
        config.registration.devices.clone(),
        config.registration.registrations.clone(),
    );
    let changes_path = config.state.dir.join("registry-changes.journal");
    // The files, then every journalled batch of live changes over them, in order; the DCC
    // Alerts of the batches after the change log's mark are derived again on the way.
    let (registry, changes, owed) = tokio::task::spawn_blocking(move || {
        let mut snapshot = registry::load(&devices, &registrations)?;
        let (log, replayed) = ChangeLog::open(&changes_path)?;
        let mut owed = Vec::new();
        for (index, batch) in replayed.batches.into_iter().enumerate() {
            let replay = |source| StartError::ChangeReplay { index, source };
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
        Ok::<_, StartError>((snapshot, log, owed))
    })
    .await
    .map_err(StartError::Task)??;
    let signatures = config.signatures.clone();
    let user_certs = tokio::task::spawn_blocking(move || {
        let mut anchors = Vec::new();
        for path in &signatures.trust_anchors {
            anchors.extend(TrustAnchor::load(path)?);
        }
        CertStore::load_dir(&signatures.user_certs, &anchors)
    })
    .await
    .map_err(StartError::Task)??;
    // Every journalled batch of User changes over the register and the certificate store.
    let user_changes_path = config.state.dir.join("user-changes.journal");
    let (user_changes, register, user_certs) = tokio::task::spawn_blocking(move || {
        UserChangeLog::open_and_replay(&user_changes_path, register, user_certs)
    })
    .await
    .map_err(StartError::Task)??;
    let replay_path = config.state.dir.join("replay.journal");
    let replay = tokio::task::spawn_blocking(move || ReplayGuard::open(&replay_path))
        .await
        .map_err(StartError::Task)??;
    let (audit_dir, rotation) = (config.audit.dir(&config.state), config.audit.rotation());
    let audit = tokio::task::spawn_blocking(move || Audit::open(&audit_dir, rotation))
        .await
        .map_err(StartError::Task)??;
    tracing::info!(
        users = register.len(),
        devices = registry.device_count(),
        registrations = registry.registration_count(),
        user_certs = user_certs.len(),
        "Registers loaded."
    );
    let limits = config.limits.clone();
    let xml_limits = duis::Limits {
        max_bytes: limits.max_body_bytes,
        max_depth: limits.max_xml_depth,
        max_elements: limits.max_xml_elements,
        ..duis::Limits::default()
    };
    let metrics = Metrics::new();
    if let Some(not_after) = tls::load_certs(&config.tls.cert)?
        .first()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
    {
        metrics.certificate_expires("tls_server", not_after);
    }
    let routing = routing::open(config, &registry).await?;
    let (routing, raised, pending) = match routing {
        Some((r, raised, pending)) => (Some(r), Some(raised), Some(pending)),
        None => (None, None, None),
    };
    let loaded = Loaded {
        register,
        registry,
        user_certs,
        replay,
        changes,
        user_changes,
        signer,
        audit,
        routing,
        raised,
    };
    let gateway = Gateway::new(loaded, xml_limits, metrics.clone());
    let outbox = match pending {
        Some(pending) => Some(routing::start(config, &gateway, pending).await?),
        None => None,
    };
    routing::raise_owed(&gateway, owed).await?;

    let listener = bind(config.listen.addr).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen.addr,
        source,
    })?;
    let admin_listener = bind(config.listen.admin_addr).await?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.listen.admin_addr,
            source,
        })?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let (stopped, stopped_rx) = watch::channel(false);
    let token = match &config.admin.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| StartError::AdminToken {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin::Admin {
            metrics: metrics.clone(),
            gateway: gateway.clone(),
            token,
            outbox: outbox.clone(),
        },
        shutdown_rx.clone(),
        stopped_rx,
    ));
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    let task = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            accept_loop(listener, acceptor, gateway, limits, shutdown_rx).await;
            let _ = stopped.send(true);
            let _ = admin_task.await;
        }
    });
    tracing::info!(%addr, %admin_addr, "Gateway listening.");
    Ok(Running {
        addr,
        admin_addr,
        gateway,
        outbox,
        shutdown,
        task,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Accepts while connection permits last; at the bound it stops accepting (new connections
/// wait in the kernel's backlog). On shutdown it stops accepting, tells every connection to
/// finish, and waits for them up to [`DRAIN_TIMEOUT`].
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    gateway: Arc<Gateway>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let limits = Arc::new(limits);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // The semaphore is never closed; stop if it were.
            },
            _ = shutdown.changed() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection errors (e.g. reset before accept) and fd exhaustion: wait a
                    // moment rather than spin.
                    tracing::warn!(error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(conn::serve(
            stream,
            remote,
            acceptor.clone(),
            gateway.clone(),
            limits.clone(),
            shutdown.clone(),
            permit,
        ));
    }
    drop(listener);
    tracing::info!("Gateway stopped accepting; draining connections.");
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("Drain timeout passed with connections still open; closing them.");
    }
}
