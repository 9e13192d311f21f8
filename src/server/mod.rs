//! The DUIS listener: accept, bound, handshake, identify once, then serve HTTP/1.1 or HTTP/2 and
//! hand each request to the pipeline. Also owns start-up and graceful shutdown of the whole
//! gateway (the admin listener included).

mod admission;
mod attempts;
mod conn;
mod expiry;
mod front;
mod http;
mod open;
mod requests;
mod routing;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use self::admission::{Admission, Bounds};
use self::front::Front;
use crate::admin;
use crate::alerts::AlertsError;
use crate::audit::AuditError;
use crate::commshub::ConfigError as HubConfigError;
use crate::config::{Config, Limits};
use crate::dispatch::DispatchError;
use crate::domain::SmkiRole;
use crate::dsp;
use crate::duis;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxError};
use crate::pipeline::{Gate, Gateway, Parts};
use crate::reload::{self, CertFiles, Reloader};
use crate::signer::{Signer, SignerError};
use crate::smki::Clients;
use crate::state::{self, LoadError, RulesLoadError, State};
use crate::store::JournalError;
use crate::tls::{self, TlsError};

/// How long shutdown waits for in-flight requests before it closes what is left.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    State(#[from] LoadError),
    #[error("the cluster's state ([cluster] postgres_url)")]
    ClusterState(#[from] state::snapshot::ClusterLoadError),
    #[error("the cluster's PostgreSQL ([cluster] postgres_url)")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("the TLS client trust ([tls] client_ca, crls)")]
    TlsTrust(#[from] state::CertStoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Admission(#[from] crate::admission::ConfigError),
    #[error("the access-control broker key or certificate ([routing] acb_key, acb_cert)")]
    BrokerKey(#[source] SignerError),
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
    #[error("the firmware distribution journal")]
    Firmware(#[source] crate::firmware::OpenError),
    #[error("the delivery transport ([delivery.transport])")]
    DeliveryTransport(#[source] TlsError),
    #[error("the outbox")]
    Outbox(#[source] OutboxError),
    #[error("the ledgers of pre-commands and local commands")]
    Ledger(#[source] JournalError),
    #[error("[alerts]")]
    Alerts(#[source] AlertsError),
    #[error("cannot read the admin token file {path}")]
    AdminToken {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the dated rule sets ([rules] files, rules.journal)")]
    Rules(#[source] RulesLoadError),
    #[error("the held-request or DSP schedule journal")]
    DspJournal(#[source] JournalError),
    #[error("the anomaly-detection threshold or quarantine journal")]
    AnomalyJournal(#[source] JournalError),
    #[error("a start-up task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("cannot write in {dir}")]
    Unwritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the DUIS port's runtime ([admission] front_threads)")]
    Front(#[source] std::io::Error),
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
    /// The outbox: every asynchronous message until its User has it.
    pub outbox: Arc<Outbox>,
    /// Reloads the certificates (SIGHUP, the admin endpoint and the file watch use it).
    pub reloader: Arc<Reloader>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The DUIS port's own runtime, kept as long as the gateway runs.
    _front: Option<Front>,
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

/// Binds both listeners and checks that every directory it writes is writable (fail fast: a
/// port in use or a read-only disk stops the start before anything slow is loaded); then loads
/// keys and registers and starts serving.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let listeners = Listeners::bind(config).await?;
    open::check_writable(config).await?;
    let metrics = Metrics::new();
    let tls_trust = Arc::new(state::load::trust(&config.tls.client_ca, &config.tls.crls)?);
    let tls_config = tls::server_config(
        &config.tls.cert,
        &config.tls.key,
        Arc::clone(&tls_trust),
        Clients::Users,
    )?;
    reload::record_server_expiry(&metrics, &config.tls.cert);
    expiry::record(config, &metrics)?;
    let signer = Signer::load(
        &config.signatures.dcc_key,
        &config.signatures.dcc_cert,
        Some(SmkiRole::DccXmlSigning),
    )?;
    let (loaded, owed) = load_state(config).await?;
    tracing::info!(
        users = loaded.register.len(),
        devices = loaded.registry.device_count(),
        registrations = loaded.registry.registration_count(),
        user_certs = loaded.user_certs.len(),
        "Registers loaded."
    );
    let (log, recovery) = requests::open(config).await?;
    let replay = requests::replay(config, log.shared(), recovery.marks).await?;
    let audit = requests::audit(config, &log, recovery.audit).await?;
    let owed_seqs: BTreeSet<u64> = owed.iter().map(|batch| batch.seq).collect();
    let (dsp_config, state_dir) = (config.dsp.clone(), config.state.dir.clone());
    let held = recovery.holds;
    let dsp = blocking(move || dsp::open(&dsp_config, &state_dir, &owed_seqs, held))
        .await?
        .map_err(StartError::DspJournal)?;
    let anomaly = open::anomaly(config, recovery.quarantined).await?;
    let (routing, raised, pending) =
        routing::open(config, &loaded.registry, recovery.commands).await?;
    let rules = open::rules(config).await?;
    let state = State::new(loaded, metrics.clone(), raised);
    let outbox = routing::open_outbox(config, &state, &metrics, &audit).await?;
    let ledgers = routing::open_ledgers(config).await?;
    let admission = Gate::new(&config.admission, &metrics)?;
    let parts = Parts {
        state: Arc::clone(&state),
        replay,
        log: log.shared(),
        signer,
        audit,
        routing,
        rules,
        dsp,
        ledgers,
        outbox: Arc::clone(&outbox),
        anomaly,
        admission,
        offload: crate::offload::Offload::new(config.runtime.crypto()),
    };
    let gateway = Gateway::new(parts, xml_limits(&config.limits), metrics.clone());
    requests::start(log, (recovery.precommands, recovery.counts), &gateway).await?;
    routing::start(config, &gateway, pending, &outbox).await?;
    state.raise_owed(owed).await;
    reload::observe(&metrics, &tls_trust, &state.user_certs());
    let acceptor = Arc::new(tls::Acceptor::new(tls_config));
    let reloader = Arc::new(Reloader::new(
        CertFiles::from_config(config),
        Arc::clone(&state),
        Arc::clone(&acceptor),
        metrics,
    ));
    serve(
        config, listeners, acceptor, reloader, gateway, state, outbox,
    )
    .await
}

/// Both listeners, bound.
struct Listeners {
    duis: TcpListener,
    addr: SocketAddr,
    admin: TcpListener,
    admin_addr: SocketAddr,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Self, StartError> {
        let duis = bind(config.listen.addr).await?;
        let addr = local_addr(&duis, config.listen.addr)?;
        let admin = bind(config.listen.admin_addr).await?;
        let admin_addr = local_addr(&admin, config.listen.admin_addr)?;
        Ok(Self {
            duis,
            addr,
            admin,
            admin_addr,
        })
    }
}

/// Serves on the bound listeners until shut down.
async fn serve(
    config: &Config,
    listeners: Listeners,
    acceptor: Arc<tls::Acceptor>,
    reloader: Arc<Reloader>,
    gateway: Arc<Gateway>,
    state: Arc<State>,
    outbox: Arc<Outbox>,
) -> Result<Running, StartError> {
    let Listeners {
        duis: listener,
        addr,
        admin: admin_listener,
        admin_addr,
    } = listeners;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (stopped, stopped_rx) = watch::channel(false);
    let state_for_follow = Arc::clone(&state);
    let admin = admin_api(config, &gateway, state, &outbox, &reloader)?;
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin,
        shutdown_rx.clone(),
        stopped_rx,
    ));
    if let Some(cluster) = state_for_follow.change_log().cluster() {
        let wake = cluster.listen();
        tokio::spawn(Arc::clone(&state_for_follow).follow(wake, shutdown_rx.clone()));
    }
    // Held requests and schedules run from now until shutdown.
    let timer = dsp::start_timer(&gateway, &outbox, &config.dsp, shutdown_rx.clone());
    if config.reload.watch_interval_ms > 0 {
        let every = Duration::from_millis(config.reload.watch_interval_ms);
        tokio::spawn(Arc::clone(&reloader).watch(every, shutdown_rx.clone()));
    }
    let limits = config.limits.clone();
    let front = Front::start(config.admission.front_threads).map_err(StartError::Front)?;
    let accepting = front::accept_on(
        front.as_ref(),
        listener,
        acceptor,
        &gateway,
        limits,
        shutdown_rx,
    )?;
    let audit = gateway.audit.clone();
    let task = tokio::spawn({
        async move {
            let _ = accepting.await;
            let _ = stopped.send(true);
            let _ = admin_task.await;
            let _ = timer.await;
            // The trail's copies of every answered request's record, written and fsynced.
            let _ = audit.sync().durable().await;
        }
    });
    let allocator = crate::ALLOCATOR;
    tracing::info!(%addr, %admin_addr, allocator, "Gateway listening.");
    Ok(Running {
        addr,
        admin_addr,
        gateway,
        outbox,
        reloader,
        shutdown,
        task,
        _front: front,
    })
}

/// The admin API's view of the running gateway.
fn admin_api(
    config: &Config,
    gateway: &Arc<Gateway>,
    state: Arc<State>,
    outbox: &Arc<Outbox>,
    reloader: &Arc<Reloader>,
) -> Result<admin::Admin, StartError> {
    Ok(admin::Admin {
        metrics: gateway.metrics.clone(),
        state,
        token: admin_token(config)?,
        outbox: Arc::clone(outbox),
        rules: gateway.rules.clone(),
        replay: Arc::clone(&gateway.replay),
        reloader: Arc::clone(reloader),
        health: admin::Health {
            audit: gateway.audit.clone(),
            dispatcher: Arc::clone(&gateway.routing.dispatcher),
            holds: Arc::clone(&gateway.dsp.holds),
            schedules: Arc::clone(&gateway.dsp.schedules),
        },
        gateway: Arc::clone(gateway),
    })
}

/// The state in force at start: from the files and journals of `[state] dir`, or in cluster
/// mode from the cluster's PostgreSQL (a snapshot, then the change log followed).
async fn load_state(
    config: &Config,
) -> Result<(state::Loaded, Vec<crate::alerts::ChangeAlerts>), StartError> {
    let Some(cluster) = &config.cluster else {
        return Ok(state::load::open(&state_files(config)).await?);
    };
    let instance = config.instance_name();
    let cluster = crate::cluster::Cluster::connect(&cluster.postgres_url, &instance)?;
    cluster.migrate().await?;
    tracing::info!(instance, "Cluster mode: the state comes from PostgreSQL.");
    let signatures = &config.signatures;
    Ok(state::snapshot::open(cluster, &signatures.trust_anchors, &signatures.crls).await?)
}

/// Where the state's files are, from the configuration.
pub fn state_files(config: &Config) -> state::Files {
    state::Files {
        users: config.registration.users.clone(),
        devices: config.registration.devices.clone(),
        registrations: config.registration.registrations.clone(),
        user_certs: config.signatures.user_certs.clone(),
        digital_signing: config.signatures.digital_signing_certs.clone(),
        trust_anchors: config.signatures.trust_anchors.clone(),
        crls: config.signatures.crls.clone(),
        changes: config.state.dir.join("registry-changes.journal"),
        user_changes: config.state.dir.join("user-changes.journal"),
    }
}

fn xml_limits(limits: &Limits) -> duis::Limits {
    duis::Limits {
        max_bytes: limits.max_body_bytes,
        max_depth: limits.max_xml_depth,
        max_elements: limits.max_xml_elements,
        ..duis::Limits::default()
    }
}

/// The admin API's bearer token, when one is configured.
fn admin_token(config: &Config) -> Result<Option<String>, StartError> {
    let Some(path) = &config.admin.token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| StartError::AdminToken {
        path: path.clone(),
        source,
    })?;
    Ok(Some(text.trim().to_owned()))
}

/// Runs blocking start-up work (journals, files) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StartError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StartError::Task)
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Accepts while connection permits last; at the bound it stops accepting (new connections
/// wait in the kernel's backlog). A connection past the handshake or per-source bound is closed
/// at once ([`admission`]). On shutdown it stops accepting, tells every connection to finish,
/// and waits for them up to [`DRAIN_TIMEOUT`].
async fn accept_loop(
    listener: TcpListener,
    acceptor: Arc<tls::Acceptor>,
    gateway: Arc<Gateway>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let admission = Admission::new(&limits);
    let bounds = Arc::new(Bounds::new(limits));
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
        let admitted = match admission.admit(permit, remote.ip()) {
            Ok(admitted) => admitted,
            Err(shed) => {
                gateway.metrics.connection_shed(shed.label());
                tracing::debug!(%remote, reason = shed.label(), "Connection closed at a bound.");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(conn::serve(
            stream,
            remote,
            acceptor.current(),
            gateway.clone(),
            bounds.clone(),
            shutdown.clone(),
            admitted,
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
