//! Start-up of the asynchronous half: the hub network, the dispatcher and its pending journal,
//! the outbox and its delivery workers, the ledgers of pre-commands and local commands, and the
//! replies task between them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::alerts::{ChangeAlerts, Fanout};
use crate::audit::Audit;
use crate::commshub::{HubConfig, InProcessHub, Simulator};
use crate::config::{Config, HubLink, Routing as RoutingConfig};
use crate::dispatch::{Dispatcher, HubNetwork, Inbound, Opened, RemoteHub};
use crate::domain::UserId;
use crate::dscerts::DigitalSigningCerts;
use crate::dsp;
use crate::firmware::Distributions;
use crate::metrics::Metrics;
use crate::outbox::jetstream::JetstreamSettings;
use crate::outbox::{HttpsTransport, Outbox, OutboxMetrics};
use crate::pipeline::{Gateway, Ledgers, Routing};
use crate::registry::Snapshot;
use crate::replies::{self, Sources};
use crate::signer;
use crate::state::{self, State};
use crate::store::LedgerLimits;

use super::attempts::AuditAttempts;
use super::StartError;

/// Batches of DCC Alerts from registration changes waiting for the replies task. At the bound a
/// further change waits (and its admin caller with it) until the replies task catches up.
const RAISED_QUEUE: usize = 64;

/// What `start` keeps between opening the dispatcher and starting the replies task (which
/// needs the gateway).
pub(super) struct Pending {
    opened: Opened,
    raised: mpsc::Receiver<ChangeAlerts>,
    /// The hub network, kept alive for as long as the gateway runs.
    hub: Arc<dyn HubNetwork>,
}

/// Opens the hub network and the dispatcher; the routing half of the gateway.
/// `from_log` are the request log's commands not yet checkpointed.
pub(super) async fn open(
    config: &Config,
    registry: &Snapshot,
    from_log: Vec<crate::routing::SignedCommand>,
) -> Result<(Routing, mpsc::Sender<ChangeAlerts>, Pending), StartError> {
    let routing = &config.routing;
    let signer = signer::command_signer(&routing.acb_key, &routing.acb_cert)
        .map_err(StartError::BrokerKey)?;
    let (hub_tx, hub_rx) = mpsc::channel(routing.dispatch.queue.max(1));
    let users_keys = config.signatures.digital_signing_certs.as_ref();
    let hub = hub_network(routing, registry, users_keys, hub_tx)?;
    let opened = Dispatcher::open_with(
        &config.state.dir.join("pending"),
        routing.dispatch.clone(),
        Arc::clone(&hub),
        hub_rx,
        from_log,
    )
    .await
    .map_err(StartError::PendingJournal)?;
    let (raised_tx, raised) = mpsc::channel(RAISED_QUEUE);
    let firmware_dir = config.state.dir.join("firmware");
    let firmware = tokio::task::spawn_blocking(move || Distributions::open(&firmware_dir))
        .await
        .map_err(StartError::Task)?
        .map_err(StartError::Firmware)?;
    let routing = Routing {
        signer,
        dispatcher: Arc::clone(&opened.dispatcher),
        firmware: Arc::new(firmware),
    };
    let pending = Pending {
        opened,
        raised,
        hub,
    };
    Ok((routing, raised_tx, pending))
}

/// The comms-hub network: the simulator in this process (its devices trusting `users_keys`, the
/// gateway's Digital Signing certificates, unless the hub configuration names its own), or a
/// `dccgw commshub` process.
fn hub_network(
    routing: &RoutingConfig,
    registry: &Snapshot,
    users_keys: Option<&std::path::PathBuf>,
    events: mpsc::Sender<Inbound>,
) -> Result<Arc<dyn HubNetwork>, StartError> {
    match routing.hub {
        HubLink::InProcess => {
            let hub_config = match &routing.hub_config {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| {
                        StartError::HubConfigRead {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    let mut c = toml::from_str::<HubConfig>(&text).map_err(|source| {
                        StartError::HubConfigParse {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    if let (Some(dir), Some(base)) =
                        (c.digital_signing_certs.as_mut(), path.parent())
                    {
                        *dir = base.join(&*dir);
                    }
                    c
                }
                None => HubConfig::default(),
            };
            let trust = match hub_config.digital_signing_certs.as_ref().or(users_keys) {
                Some(dir) => state::load::digital_signing_anchors(dir)
                    .map_err(|e| StartError::State(e.into()))?,
                None => DigitalSigningCerts::default(),
            };
            let verifier =
                signer::command_verifier(&[&routing.acb_cert]).map_err(StartError::BrokerKey)?;
            let sim = Simulator::new(hub_config, registry.clone(), verifier)
                .map_err(StartError::HubSimulator)?
                .trusting(trust);
            Ok(Arc::new(InProcessHub::start(sim, events)))
        }
        HubLink::Remote => {
            let addr = routing.hub_addr.ok_or(StartError::RemoteHubAddr)?;
            Ok(Arc::new(RemoteHub::start(addr, events)))
        }
    }
}

/// Starts the replies task between the dispatcher, the hub network and the outbox, and
/// dispatches again every command that was pending at the last stop.
pub(super) async fn start(
    config: &Config,
    gateway: &Arc<Gateway>,
    pending: Pending,
    outbox: &Arc<Outbox>,
) -> Result<(), StartError> {
    let fanout = Fanout::new(&config.alerts, 1).map_err(StartError::Alerts)?;
    let Pending {
        opened,
        raised,
        hub,
    } = pending;
    let Opened {
        dispatcher,
        recovered,
        outcomes,
        events,
    } = opened;
    // A schedule's results and a change of supplier's schedule removals are the DSP's.
    let (outcomes, raised) = dsp::interpose(gateway, outbox, &dispatcher, outcomes, raised);
    let sources = Sources {
        outcomes,
        events,
        raised,
    };
    tokio::spawn({
        let gateway = Arc::clone(gateway);
        let outbox = Arc::clone(outbox);
        let dispatcher = Arc::clone(&dispatcher);
        async move {
            replies::run(gateway, outbox, dispatcher, fanout, sources).await;
            drop(hub);
        }
    });
    if !recovered.is_empty() {
        tracing::info!(
            commands = recovered.len(),
            "Commands pending at the last stop; dispatching them again."
        );
    }
    for command in recovered {
        if let Err(e) = dispatcher.dispatch(command).await {
            tracing::error!(error = %e, "A recovered command could not be dispatched.");
        }
    }
    Ok(())
}

/// The outbox (resuming what was undelivered) with its HTTPS transport; each User's endpoint is
/// looked up in the register in force when a message is sent. Opened before the gateway, whose
/// requests put messages in it too (commands for local delivery).
pub(super) async fn open_outbox(
    config: &Config,
    state: &Arc<State>,
    metrics: &Metrics,
    audit: &Audit,
) -> Result<Arc<Outbox>, StartError> {
    let delivery = &config.delivery;
    let transport =
        HttpsTransport::new(&delivery.transport).map_err(StartError::DeliveryTransport)?;
    let state = Arc::clone(state);
    let endpoints = move |user: &UserId| {
        state
            .register()
            .get(user)
            .and_then(|u| u.response_url.clone())
    };
    let (endpoints, transport) = (Arc::new(endpoints), Arc::new(transport));
    let outbox_metrics = OutboxMetrics::from(metrics.delivery.clone());
    let hook = Arc::new(AuditAttempts {
        audit: audit.clone(),
        metrics: metrics.clone(),
    });
    let outbox = match &config.cluster {
        // Cluster mode: the outbox every instance shares, in JetStream.
        Some(cluster) => {
            let mut settings = JetstreamSettings::new(&cluster.nats_url);
            settings.replicas = cluster.nats_replicas.unwrap_or(1);
            // An attempt's whole time, with room: JetStream gives the message to another
            // instance only after it (within the 300 s promise).
            let attempt = delivery.transport.request_timeout_ms.saturating_mul(2);
            settings.ack_wait = Duration::from_millis(attempt.clamp(10_000, 300_000));
            let config = &delivery.outbox;
            Outbox::open_jetstream(
                &settings,
                config,
                endpoints,
                transport,
                outbox_metrics,
                hook,
            )
            .await
        }
        None => {
            let dir = config.state.dir.join("outbox");
            Outbox::open(
                &dir,
                &delivery.outbox,
                endpoints,
                transport,
                outbox_metrics,
                hook,
            )
            .await
        }
    };
    Ok(Arc::new(outbox.map_err(StartError::Outbox)?))
}

/// The ledgers of pre-commands and of commands for local delivery (`[critical]`).
pub(super) async fn open_ledgers(config: &Config) -> Result<Ledgers, StartError> {
    let c = &config.critical;
    let limits = |expiry_secs| LedgerLimits {
        expiry_secs,
        max_per_user: c.max_outstanding_per_user,
    };
    let (pre, local) = (
        limits(c.precommand_expiry_secs),
        limits(c.local_command_expiry_secs),
    );
    let dir = config.state.dir.clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    tokio::task::spawn_blocking(move || Ledgers::open(&dir, pre, local, now))
        .await
        .map_err(StartError::Task)?
        .map_err(StartError::Ledger)
}
