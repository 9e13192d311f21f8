//! A load scenario, read from TOML (`load-tests/scenarios/*.toml`) and checked once against the
//! gateway's own catalogue: every request class must name an SRV a User may send, in a Command
//! Variant the SRV takes, from a role the SRV admits. Unknown keys are refused.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use dccgw::catalogue::Catalogue;
use dccgw::domain::{CommandVariant, DuisService, Srv, UserRole};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Seeds the choice of request class, premises and User (reproducible plans).
    #[serde(default = "one")]
    pub seed: u64,
    pub population: PopulationSpec,
    #[serde(default)]
    pub connection: ConnectionSpec,
    pub load: Load,
    pub mix: Vec<MixEntry>,
    #[serde(default)]
    pub sla: SlaSpec,
    #[serde(default)]
    pub bench: BenchSpec,
    /// Signed routing to a simulated comms-hub network (`dccgw commshub`, its own process) and
    /// delivery of the asynchronous responses to the generator: the gateway always routes; the
    /// table sets the simulator and the dispatch (their defaults without it).
    #[serde(default)]
    pub routing: RoutingSpec,
}

/// `[routing]`: the hub process's simulator settings and the gateway's dispatch settings, as the
/// `[hub]` table of `dccgw commshub`'s configuration (`commshub::HubConfig`) and the gateway's
/// `[routing.dispatch]` table; the tables are passed through and checked by `dccgw` itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSpec {
    pub hub: toml::Table,
    pub dispatch: toml::Table,
}

fn one() -> u64 {
    1
}

/// Who sends and to which devices: the synthetic registry (`dccgw::state::generate`) of
/// `devices` devices, its pool of supplier and network-operator Users, and `other_users` OU Users.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    pub devices: u64,
    #[serde(default = "default_other_users")]
    pub other_users: u32,
}

fn default_other_users() -> u32 {
    32
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSpec {
    /// Keep each User's connection open between requests; `false` opens a new TLS connection for
    /// every request (the handshake-heavy scenario).
    pub reuse: bool,
    /// Whether clients resume TLS sessions; `false` makes every handshake a full one.
    pub tls_resumption: bool,
    /// A request unanswered this long counts as `timeout` and its connection is dropped.
    pub timeout_ms: u64,
    /// Lanes wake this long before a request's scheduled time (the timer ticks in milliseconds);
    /// latency is measured from the earlier of the scheduled and the actual send time.
    pub wake_early_us: u64,
}

impl Default for ConnectionSpec {
    fn default() -> Self {
        Self {
            reuse: true,
            tls_resumption: true,
            timeout_ms: 30_000,
            wake_early_us: 1_000,
        }
    }
}

/// One request class of the mix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// Report group: `meter-read`, `non-device`, `alert-heavy`, …
    pub name: String,
    pub weight: u32,
    pub srv: Srv,
    pub cv: CommandVariant,
    /// The role the originator acts in; it decides which User and which device (IS/ED: the
    /// premises' electricity meter, GS/GT: its gas meter, OU: any electricity meter).
    pub role: UserRole,
    /// The body element's content (the element itself comes from the catalogue).
    #[serde(default)]
    pub body: String,
    /// A critical request (`cv = 4`, a Transform) is a pair: when the Transform's answer brings
    /// the pre-command, the User signs it with its Digital Signing key and sends it back under
    /// the same RequestID as this Command Variant (5: to the device, 6: for local delivery, 7:
    /// both). Required with `cv = 4`, refused with any other.
    #[serde(default)]
    pub signed_cv: Option<CommandVariant>,
}

impl MixEntry {
    /// The URL the request goes to.
    pub fn service(&self) -> DuisService {
        service_of(self.cv)
    }

    pub fn non_device(&self) -> bool {
        Catalogue::builtin()
            .get(&self.srv)
            .is_some_and(|e| e.non_device)
    }

    /// The Command Variant of a critical pair's second request, when this class is one.
    pub fn critical(&self) -> Option<CommandVariant> {
        self.signed_cv.filter(|_| self.cv.get() == 4)
    }

    /// The Command Variant that decides what the request brings asynchronously: the signed
    /// pre-command's for a critical pair, the request's own otherwise.
    pub fn final_cv(&self) -> CommandVariant {
        self.critical().unwrap_or(self.cv)
    }

    /// Whether the request's command goes to a device, which answers with a Service Response.
    pub fn routed(&self) -> bool {
        !self.non_device() && dccgw::routing::sent_to_device(self.final_cv())
    }

    /// Whether the request's command comes back to the User for local delivery.
    pub fn local_delivery(&self) -> bool {
        !self.non_device() && matches!(self.final_cv().get(), 2 | 3 | 6 | 7)
    }

    pub fn body_element(&self) -> &'static str {
        Catalogue::builtin()
            .get(&self.srv)
            .map_or("", |e| e.body_element.as_str())
    }
}

/// The service (URL) that takes Command Variant `cv`.
pub fn service_of(cv: CommandVariant) -> DuisService {
    // Every Command Variant 1..=8 is accepted by exactly one service.
    DuisService::ALL
        .into_iter()
        .find(|s| s.accepts(cv))
        .unwrap_or(DuisService::Send)
}

/// Default SLA thresholds; each may be overridden on the command line. Absent: not checked.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlaSpec {
    pub sync_p50_ms: Option<f64>,
    pub sync_p99_ms: Option<f64>,
    pub sync_p999_ms: Option<f64>,
    pub async_p99_ms: Option<f64>,
    /// Largest share of requests not answered I99/I0 (0.01 = 1 %).
    pub max_error_ratio: Option<f64>,
    /// Smallest achieved throughput as a share of the offered rate.
    pub min_throughput_ratio: Option<f64>,
}

/// What `dccgw-load bench` does with this scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchSpec {
    /// Ramp first to find the saturation rate, then run `fractions` of it.
    pub find_saturation: bool,
    pub saturation_ramp: Option<Load>,
    /// A step saturates when its sync p99 exceeds this or it completes < 97 % of its offer.
    pub saturation_p99_ms: f64,
    pub fractions: Vec<f64>,
    /// Seconds per measured run at each fraction.
    pub run_s: f64,
    /// References run with the same load: `hyper`, `nginx`.
    pub refs: Vec<String>,
    /// Also run `oha` against the hyper reference at the highest fraction.
    pub oha: bool,
    /// Seconds to wait after the last request for asynchronous responses.
    pub async_grace_s: f64,
    /// TOML appended to the generated gateway configuration (sections the gateway knows).
    pub gateway_config_extra: String,
    /// `[bench.overload]`: instead of the fractions, an overload run at a multiple of the
    /// saturation rate (`bench/overload.rs`).
    pub overload: Option<OverloadSpec>,
    /// Seconds the soak holds `soak_fraction` of the saturation rate against the gateway after
    /// the fraction runs (`bench/soak.rs`); 0 skips it.
    pub soak_s: f64,
    pub soak_fraction: f64,
}

/// `[bench.overload]`: a baseline at `baseline_fraction` of the saturation rate for
/// `baseline_s`, then `factor` times the saturation rate for `run_s`, then the baseline rate
/// again for `recovery_s` (the same plan: the gateway's recovery is measured in it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OverloadSpec {
    pub factor: f64,
    pub run_s: f64,
    pub baseline_fraction: f64,
    pub baseline_s: f64,
    pub recovery_s: f64,
    /// A second after the overload is normal when nothing in it was shed and its sync p99 is
    /// within this multiple of the baseline's (or 5 ms of it, whichever is more); the gateway is
    /// back to normal at the first of five normal seconds in a row.
    pub normal_p99_factor: f64,
}

impl Default for OverloadSpec {
    fn default() -> Self {
        Self {
            factor: 2.0,
            run_s: 60.0,
            baseline_fraction: 0.5,
            baseline_s: 20.0,
            recovery_s: 20.0,
            normal_p99_factor: 2.0,
        }
    }
}

impl BenchSpec {
    /// The soak's length and fraction are within what a plan can hold: at most an hour, a rate
    /// above zero and at most twice the saturation rate.
    pub fn check_soak(&self) -> Result<(), ScenarioError> {
        if !(self.soak_s >= 0.0 && self.soak_s <= MAX_DURATION_S) {
            return Err(ScenarioError::Load(
                "bench.soak_s must be between 0 and 3600 seconds",
            ));
        }
        if !(self.soak_fraction > 0.0 && self.soak_fraction <= 2.0) {
            return Err(ScenarioError::Load(
                "bench.soak_fraction must be above 0 and at most 2",
            ));
        }
        Ok(())
    }
}

impl Default for BenchSpec {
    fn default() -> Self {
        Self {
            find_saturation: false,
            saturation_ramp: None,
            saturation_p99_ms: 100.0,
            fractions: vec![1.0],
            run_s: 30.0,
            refs: Vec::new(),
            oha: false,
            async_grace_s: 5.0,
            gateway_config_extra: String::new(),
            overload: None,
            soak_s: 600.0,
            soak_fraction: 0.9,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid scenario")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("the load is not usable: {0}")]
    Load(&'static str),
    #[error("the mix is empty or all its weights are 0")]
    EmptyMix,
    #[error("mix entry {name:?}: {srv} is not an SRV a User may send")]
    NotRequestable { name: String, srv: Srv },
    #[error("mix entry {name:?}: {srv} does not take Command Variant {cv}")]
    CommandVariant {
        name: String,
        srv: Srv,
        cv: CommandVariant,
    },
    #[error("mix entry {name:?}: role {role} may not send {srv}")]
    Role {
        name: String,
        srv: Srv,
        role: UserRole,
    },
    #[error("mix entry {name:?}: role {role} has no Users in the population")]
    NoUsers { name: String, role: UserRole },
    #[error("mix entry {name:?}: the body must not contain ']]>' or '<!' (no DOCTYPE, no CDATA)")]
    Body { name: String },
    #[error("mix entry {name:?}: a Transform (cv = 4) needs signed_cv (5, 6 or 7), and only a Transform takes one")]
    Critical { name: String },
    #[error(
        "mix entry {name:?}: role {role} holds no Digital Signing key to sign a pre-command with"
    )]
    NoDigitalSigning { name: String, role: UserRole },
    #[error("no mix entry is named {0:?}")]
    NoSuchClass(String),
    #[error("the population needs at least one device and at most 100 million")]
    Devices,
    #[error("[routing.hub] is not a simulator configuration dccgw commshub takes")]
    Hub(#[source] toml::de::Error),
    #[error("[routing.hub] cannot run")]
    HubCheck(#[source] dccgw::commshub::ConfigError),
    #[error("[routing.dispatch] is not a dispatch configuration the gateway takes")]
    Dispatch(#[source] toml::de::Error),
}

impl Scenario {
    /// ECDSA signatures the gateway makes per request of the mix, on average (for the crypto
    /// floor): its answer; a request that goes to a device (`dccgw::routing::sent_to_device`:
    /// Command Variants 1, 3, 5, 7) also costs the signed command and the signed Service Response;
    /// a critical pair answers twice (the Transform and the signed pre-command).
    pub fn signs_per_request(&self) -> f64 {
        self.mean(|m| {
            let answers = if m.critical().is_some() { 2 } else { 1 };
            answers + if m.routed() { 2 } else { 0 }
        })
    }

    /// ECDSA verifications the gateway makes per request of the mix, on average: the request's
    /// XML signature; a critical pair's two requests and the User's signature on the pre-command.
    pub fn verifies_per_request(&self) -> f64 {
        self.mean(|m| if m.critical().is_some() { 3 } else { 1 })
    }

    /// The mix's weighted mean of `per_request` (1 for an empty mix).
    fn mean(&self, per_request: impl Fn(&MixEntry) -> u64) -> f64 {
        let total: u64 = self.mix.iter().map(|m| u64::from(m.weight)).sum();
        if total == 0 {
            return 1.0;
        }
        let sum: u64 = self
            .mix
            .iter()
            .map(|m| u64::from(m.weight) * per_request(m))
            .sum();
        sum as f64 / total as f64
    }

    /// Keeps only the mix entries named `name` (one class, for its own cost per request).
    pub fn only(&mut self, name: &str) -> Result<(), ScenarioError> {
        self.mix.retain(|m| m.name == name);
        if self.mix.is_empty() {
            return Err(ScenarioError::NoSuchClass(name.to_owned()));
        }
        self.check()
    }

    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ParseFailure::Toml(source) => ScenarioError::Parse {
                path: path.to_owned(),
                source,
            },
            ParseFailure::Check(e) => e,
        })
    }

    pub fn parse(text: &str) -> Result<Self, ParseFailure> {
        let scenario: Scenario = toml::from_str(text).map_err(ParseFailure::Toml)?;
        scenario.check().map_err(ParseFailure::Check)?;
        Ok(scenario)
    }

    /// The checks that the types alone cannot make.
    pub fn check(&self) -> Result<(), ScenarioError> {
        self.load.check()?;
        if let Some(ramp) = &self.bench.saturation_ramp {
            ramp.check()?;
        }
        self.bench.check_soak()?;
        if self.population.devices == 0 || self.population.devices > 100_000_000 {
            return Err(ScenarioError::Devices);
        }
        // Checked here by the gateway's own types, so a typo fails before anything starts.
        let r = &self.routing;
        let hub: dccgw::commshub::HubConfig =
            r.hub.clone().try_into().map_err(ScenarioError::Hub)?;
        hub.check().map_err(ScenarioError::HubCheck)?;
        let _: dccgw::dispatch::DispatchConfig = r
            .dispatch
            .clone()
            .try_into()
            .map_err(ScenarioError::Dispatch)?;
        if self.mix.iter().all(|m| m.weight == 0) {
            return Err(ScenarioError::EmptyMix);
        }
        let catalogue = Catalogue::builtin();
        for m in &self.mix {
            let name = m.name.clone();
            let entry = catalogue
                .get(&m.srv)
                .filter(|e| e.user_requestable())
                .ok_or_else(|| ScenarioError::NotRequestable {
                    name: name.clone(),
                    srv: m.srv,
                })?;
            for cv in std::iter::once(m.cv).chain(m.signed_cv) {
                if !entry.allows(cv) {
                    return Err(ScenarioError::CommandVariant {
                        name,
                        srv: m.srv,
                        cv,
                    });
                }
            }
            check_critical(m)?;
            if !entry.eligible(m.role) {
                return Err(ScenarioError::Role {
                    name,
                    srv: m.srv,
                    role: m.role,
                });
            }
            if !crate::population::has_users(m.role, self.population.other_users) {
                return Err(ScenarioError::NoUsers { name, role: m.role });
            }
            if m.body.contains("]]>") || m.body.contains("<!") {
                return Err(ScenarioError::Body { name });
            }
        }
        Ok(())
    }
}

/// A Transform has its signed pre-command's Command Variant, nothing else has one, and the
/// role's Users hold Digital Signing keys.
fn check_critical(m: &MixEntry) -> Result<(), ScenarioError> {
    let transform = m.cv.get() == 4;
    let signed = m.signed_cv.map(|cv| cv.get());
    if transform != matches!(signed, Some(5..=7)) || (!transform && signed.is_some()) {
        return Err(ScenarioError::Critical {
            name: m.name.clone(),
        });
    }
    if transform && !crate::population::signs_digitally(m.role) {
        return Err(ScenarioError::NoDigitalSigning {
            name: m.name.clone(),
            role: m.role,
        });
    }
    Ok(())
}

#[derive(Debug)]
pub enum ParseFailure {
    Toml(toml::de::Error),
    Check(ScenarioError),
}

mod load;
pub use load::{Load, Step, MAX_DURATION_S, MAX_RATE};

#[cfg(test)]
mod tests;
