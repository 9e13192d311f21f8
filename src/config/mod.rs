//! Typed configuration: a TOML file, then `DCCGW_SECTION__KEY` environment overrides, parsed once
//! with unknown keys refused — a misspelt key in a security gateway fails start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod check;
mod load;
pub mod reference;

pub use check::{check, rules, CheckError};
pub use load::ConfigError;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The two listeners: DUIS (mTLS) and admin (plain HTTP).
    pub listen: Listen,
    /// The DUIS listener's TLS: the gateway's server certificate and the CAs clients chain to.
    pub tls: Tls,
    /// Bounds on everything a peer controls; each says what happens at the bound.
    #[serde(default)]
    pub limits: Limits,
    /// The async runtime's threads, and the pool that runs signing and verifying off them.
    #[serde(default)]
    pub runtime: Runtime,
    /// Which parsed requests are taken on: per-User bounds, the adaptive global limit and the
    /// priority classes (`docs/admission.md`).
    #[serde(default)]
    pub admission: crate::admission::AdmissionConfig,
    /// The registers read at start: Users, devices, registrations (CSV).
    pub registration: Registration,
    /// The DCC's XML-signing key, and the User signing certificates requests are verified with.
    pub signatures: Signatures,
    /// Where durable state lives (journals, outbox, pending commands, audit by default).
    pub state: State,
    /// The admin API's bearer token.
    #[serde(default)]
    pub admin: Admin,
    /// The hash-chained audit trail and the report targets.
    #[serde(default)]
    pub audit: Audit,
    /// Signed routing to the comms-hub network: every device request the gateway acknowledges
    /// goes to a device, and its answer comes back.
    pub routing: Routing,
    /// Asynchronous delivery to Users' Receive Response Services: where every answer goes.
    pub delivery: Delivery,
    /// Alert routing rules over the built-in ones, and storm throttling.
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
    /// The critical flow's and local delivery's ledgers.
    #[serde(default)]
    pub critical: Critical,
    /// Held future-dated requests and DSP schedules.
    #[serde(default)]
    pub dsp: crate::dsp::DspConfig,
    /// Certificates reloaded without a restart.
    #[serde(default)]
    pub reload: Reload,
    /// Dated rule sets loaded at start.
    #[serde(default)]
    pub rules: Rules,
    /// Threshold anomaly detection: the quarantine's bounds (`schemas/anomaly.md`).
    #[serde(default)]
    pub anomaly: crate::pipeline::AnomalyConfig,
    /// Cluster mode: several instances sharing their state through PostgreSQL. Absent, the
    /// gateway is one process with its state in `[state] dir`.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

/// `[cluster]`: the servers several instances share. With it, `serve` takes the registers,
/// the Users' certificates and every registration and User change from PostgreSQL (loaded once
/// by `dccgw cluster init`) and follows the changes other instances make; `[registration]` and
/// the certificate directories are read only by `cluster init`. The request log is
/// PostgreSQL's too: anti-replay marks decided across instances, pending commands and holds
/// owned by an instance and claimed by another when it is gone. The outbox is in JetStream.
/// The other durable stores (ledgers, schedules, quarantine, audit) stay in each instance's
/// `[state] dir`.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// PostgreSQL, as a `postgresql://` URL or `key=value` pairs (it may hold a password, and is
    /// never logged).
    pub postgres_url: String,
    /// NATS with JetStream (`nats://host:port`), the message fabric of the cluster: the outbox
    /// (every message to a User until it is delivered) lives there.
    pub nats_url: String,
    /// Replicas of each JetStream stream: 3 on a production cluster of three (docs/cluster.md);
    /// unset, 1 (a single server: the demo, tests).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5))]
    pub nats_replicas: Option<usize>,
    /// This instance's name in the change log and as the owner of its open requests; by
    /// default the host name and the DUIS listen address. Give each instance its own (two
    /// instances of one name would recover each other's pending commands).
    #[serde(default)]
    pub instance: Option<String>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("postgres_url", &"(not shown)")
            .field("nats_url", &self.nats_url)
            .field("nats_replicas", &self.nats_replicas)
            .field("instance", &self.instance)
            .finish()
    }
}

impl Config {
    /// This instance's name in the cluster's change log.
    pub fn instance_name(&self) -> String {
        if let Some(name) = self.cluster.as_ref().and_then(|c| c.instance.clone()) {
            return name;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}/{}", host.trim(), self.listen.addr)
    }
}

/// `[rules]`: dated versions of the catalogue's eligibility and flags and of the alert routes
/// (`schemas/rules.md`), each in force from its instant; more can be added while running
/// through the admin API.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Rule version files (JSON), added in order over the built-in catalogue and `[alerts]`
    /// routes; each must take effect after the one before it.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// `[reload]`: certificates reloaded without a restart (also on SIGHUP and
/// `POST /admin/v1/reload`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Reload {
    /// How often the certificate files and directories are looked at for changes; a change
    /// reloads them. 0 turns the watch off.
    pub watch_interval_ms: u64,
}

impl Default for Reload {
    fn default() -> Self {
        Self {
            watch_interval_ms: 5_000,
        }
    }
}

/// `[routing]`: the broker key that signs commands, and the hub network they go to.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The DCC access-control broker key (`OU=04`, PKCS#8 PEM) that signs commands.
    pub acb_key: PathBuf,
    /// The broker's certificate (PEM), which the hub network trusts.
    pub acb_cert: PathBuf,
    /// `in_process` (the simulated network runs inside the gateway: demo, tests) or `remote`
    /// (a `dccgw commshub` process at `hub_addr`).
    #[serde(default)]
    pub hub: HubLink,
    /// For `remote`: the `dccgw commshub` process's address (required then).
    pub hub_addr: Option<SocketAddr>,
    /// For `in_process`: the simulator's behaviour (a `dccgw commshub`-style TOML file; built-in
    /// defaults without one).
    pub hub_config: Option<PathBuf>,
    /// Device answer timeouts and the pending-command journal.
    #[serde(default)]
    pub dispatch: crate::dispatch::DispatchConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HubLink {
    #[default]
    InProcess,
    Remote,
}

/// `[delivery]`: how Users' messages leave, and the outbox that holds them until they do.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// `[delivery.transport]`: the gateway's TLS client certificate and the anchors User
    /// endpoints must chain to.
    pub transport: crate::outbox::TransportConfig,
    /// The durable outbox: retries, hold time, per-User concurrency, size bound.
    #[serde(default)]
    pub outbox: crate::outbox::OutboxConfig,
}

/// The audit trail (`crate::audit`) and the targets its reports measure against.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Where the trail's files live; by default `audit/` under `[state] dir`. Give it its own
    /// disk if you can: a full disk stops requests being audited (each is then logged at ERROR).
    pub dir: Option<PathBuf>,
    /// A new file once the current one holds this many bytes (at least 64 KiB).
    #[schemars(range(min = 65_536))]
    pub max_file_bytes: u64,
    /// A new file on the first record of each UTC day.
    pub rotate_daily: bool,
    /// Target Response Times for `dccgw report performance`.
    pub targets: crate::report::Targets,
}

impl Default for Audit {
    fn default() -> Self {
        let rotation = crate::audit::Rotation::default();
        Self {
            dir: None,
            max_file_bytes: rotation.max_file_bytes,
            rotate_daily: rotation.daily,
            targets: crate::report::Targets::default(),
        }
    }
}

impl Audit {
    /// The trail's directory, given the state directory.
    pub fn dir(&self, state: &State) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| state.dir.join("audit"))
    }

    pub fn rotation(&self) -> crate::audit::Rotation {
        crate::audit::Rotation {
            max_file_bytes: self.max_file_bytes.max(64 * 1024),
            daily: self.rotate_daily,
        }
    }
}

/// The admin API on the admin listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// A file holding the bearer token that admin changes must present. Without one, the change
    /// API is off (403); `/metrics`, `/livez` and `/readyz` need no token.
    pub token_file: Option<PathBuf>,
}

/// Where the gateway keeps what must survive a restart.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// A directory of journals (anti-replay high-water marks, …), created if missing.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    /// The DCC XML-signing key (`OU=89`) that signs every answer (PKCS#8 PEM).
    pub dcc_key: PathBuf,
    /// The certificate of `dcc_key`, named in each answer's `KeyInfo`.
    pub dcc_cert: PathBuf,
    /// A directory of User XML-signing certificates (`OU=87`, PEM; searched recursively).
    pub user_certs: PathBuf,
    /// SMKI issuing CA certificates that User signing certificates must chain to.
    pub trust_anchors: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER files), each issued and signed by one of the
    /// `trust_anchors`; a signature made with a certificate they list is refused (`E58`).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// A directory of Users' Digital Signing certificates (`OU=02`/`03`, key usage
    /// digitalSignature, PEM; searched recursively, other certificates passed over): the keys
    /// that sign critical commands. Without it every signed pre-command is refused (E1006).
    #[serde(default)]
    pub digital_signing_certs: Option<PathBuf>,
}

/// The critical flow's and local delivery's ledgers (`<state dir>/precommands/`,
/// `<state dir>/local-commands/`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Critical {
    /// How long a Transform's pre-command may be signed and sent back, in seconds (a day).
    pub precommand_expiry_secs: u64,
    /// How long a command sent for local delivery may be answered by an 8.13 Return Local
    /// Command Response, in seconds (30 days).
    pub local_command_expiry_secs: u64,
    /// Pre-commands (and, separately, local commands) one User may have open at once (issued,
    /// neither used nor expired); beyond it a Transform or a local delivery is refused (E1008)
    /// until some are used or expire. Used and expired ones are remembered for an hour (so a
    /// repeat is refused as used or expired, not unknown) and do not count.
    pub max_outstanding_per_user: usize,
}

impl Default for Critical {
    fn default() -> Self {
        Self {
            precommand_expiry_secs: 24 * 3600,
            local_command_expiry_secs: 30 * 24 * 3600,
            max_outstanding_per_user: 100_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The mTLS DUIS port.
    pub addr: SocketAddr,
    /// The operators' plain-HTTP listener (`/metrics`, `/livez`, `/readyz`). Keep it on a private
    /// interface: it is not authenticated.
    pub admin_addr: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The gateway's server certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key of `cert` (PKCS#8 PEM).
    pub key: PathBuf,
    /// Trust anchors for client certificates (PEM files, each one or more CA certificates).
    pub client_ca: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER files), each issued and signed by one of the
    /// `client_ca` anchors; a client certificate they list is refused at its next handshake.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
}

/// Bounds on everything a peer controls. Each says what happens when it is hit.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections. At the bound the gateway stops accepting; new connections wait in the
    /// kernel's backlog until one closes.
    #[schemars(range(min = 1))]
    pub max_connections: usize,
    /// Connections still in their TLS handshake at once. At the bound a new connection is
    /// closed at once (`dccgw_connections_shed_total{reason="handshakes"}`), so that silent
    /// peers cannot fill the connection slots Users need.
    pub max_handshakes: usize,
    /// Open connections (handshaking or established) from one source address. At the bound a
    /// new one from that address is closed at once (`reason="per_source"`).
    pub max_connections_per_source: usize,
    /// Time from TCP accept to a finished TLS handshake; past it the connection is dropped.
    pub handshake_timeout_ms: u64,
    /// Time a connection may sit with no request in flight since its last one began or ended
    /// (bytes that carry no request, such as HTTP/2 PINGs, do not count); past it the connection
    /// is closed gracefully.
    pub idle_timeout_ms: u64,
    /// Time to read a request's HTTP header block; past it the connection is closed.
    pub header_read_timeout_ms: u64,
    /// Time from a request's headers to its answer; past it the answer is `E60` (503).
    pub request_timeout_ms: u64,
    /// Request body bytes; a larger body is answered `E42` (413) without being read further.
    pub max_body_bytes: usize,
    /// Request body bytes held in memory by all requests at once (at least `max_body_bytes`). A
    /// request whose body would pass it is answered `E60` (503, `busy`) and its body not read
    /// further.
    pub max_body_bytes_in_flight: usize,
    /// XML element nesting; deeper documents are answered `E42`.
    pub max_xml_depth: usize,
    /// XML elements in one request; more are answered `E42`.
    pub max_xml_elements: usize,
    /// Concurrent HTTP/2 streams per connection (the peer is told this in SETTINGS).
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_handshakes: 128,
            max_connections_per_source: 64,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_body_bytes: 1024 * 1024,
            max_body_bytes_in_flight: 64 * 1024 * 1024,
            max_xml_depth: 64,
            max_xml_elements: 20_000,
            max_concurrent_streams: 64,
        }
    }
}

/// `[runtime]`: threads, sized by default from the cores this process may use (`taskset`,
/// cpusets and CPU quotas are honoured).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// The async runtime's worker threads (connections, TLS, HTTP, timers); by default one per
    /// core.
    #[schemars(range(min = 1))]
    pub worker_threads: Option<usize>,
    /// CPU-heavy jobs at once — verifying a request's signature, signing answers, hub commands
    /// and messages — each run off the async workers; by default one per core. When all are
    /// busy a request waits for one (admission control bounds how many can). 0 runs them on the
    /// async workers themselves.
    pub crypto_threads: Option<usize>,
}

impl Runtime {
    /// The async runtime's worker threads.
    pub fn workers(&self) -> usize {
        self.worker_threads
            .filter(|n| *n > 0)
            .unwrap_or_else(|| crate::offload::cores().get())
    }

    /// The signing and verifying pool's size (0: none).
    pub fn crypto(&self) -> usize {
        self.crypto_threads
            .unwrap_or_else(|| crate::offload::cores().get())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The party register: `users.csv` (see `schemas/users.md`).
    pub users: PathBuf,
    /// The devices (`schemas/devices.md`).
    pub devices: PathBuf,
    /// Who is registered for which meter point, when (`schemas/registrations.md`).
    pub registrations: PathBuf,
}

impl Config {
    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.tls.cert);
        join(&mut self.tls.key);
        self.tls.client_ca.iter_mut().for_each(join);
        self.tls.crls.iter_mut().for_each(join);
        join(&mut self.registration.users);
        join(&mut self.registration.devices);
        join(&mut self.registration.registrations);
        join(&mut self.signatures.dcc_key);
        join(&mut self.signatures.dcc_cert);
        join(&mut self.signatures.user_certs);
        if let Some(p) = self.signatures.digital_signing_certs.as_mut() {
            join(p);
        }
        self.signatures.trust_anchors.iter_mut().for_each(join);
        self.signatures.crls.iter_mut().for_each(join);
        join(&mut self.state.dir);
        if let Some(p) = self.admin.token_file.as_mut() {
            join(p);
        }
        self.rules.files.iter_mut().for_each(join);
        if let Some(p) = self.audit.dir.as_mut() {
            join(p);
        }
        let r = &mut self.routing;
        join(&mut r.acb_key);
        join(&mut r.acb_cert);
        if let Some(p) = r.hub_config.as_mut() {
            join(p);
        }
        let d = &mut self.delivery;
        join(&mut d.transport.client_cert);
        join(&mut d.transport.client_key);
        d.transport.trust_anchors.iter_mut().for_each(join);
    }
}
