//! The simulator's configuration (TOML, unknown keys refused). A default [`Behaviour`] for every
//! command, overridden per SRV (`[srv."4.1.1"]`) and then per device group (`[[groups]]`, in
//! order, later wins): only the keys a patch names change. Example:
//!
//! ```toml
//! seed = 7
//! [default]
//! latency = { kind = "log_normal", median_ms = 400, p99_ms = 3000 }
//! [srv."11.2"]
//! alerts_after = [{ code = 0x8F1C, delay_ms = 200 }]
//! [[groups]]
//! device_types = ["GSME"]
//! unreachable = 0.05
//! [alerts]
//! rate_per_sec = 2.0
//! codes = [{ code = 0x8F35, weight = 3 }, { code = 0x8002, weight = 1 }]
//! [[storms]]
//! after_secs = 60
//! hubs = 100
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::domain::{DeviceId, DeviceType, Srv};
use crate::registry::DeviceRecord;

/// ECS80, "Supply Outage Restore Alert from ESME" (GBCS alert codes 0x8F35–0x8F3C): what every
/// meter behind a hub raises when power returns after an outage.
pub const SUPPLY_OUTAGE_RESTORE: u16 = 0x8F35;
/// The largest simulated response body.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// The random generator's seed: the same seed, inventory and commands replay the same run.
    pub seed: u64,
    pub default: Behaviour,
    /// Overrides per Service Reference Variant.
    pub srv: BTreeMap<Srv, BehaviourPatch>,
    /// Overrides per device group, applied after the SRV's, in order.
    pub groups: Vec<GroupOverride>,
    pub alerts: SpontaneousAlerts,
    pub storms: Vec<Storm>,
    /// Commands whose events are not all out yet; at the bound the hub answers "overloaded"
    /// (the gateway reports E20 for that command) instead of queueing without end.
    pub max_in_flight: usize,
    /// A future-dated command further ahead than this fails (`8F67`) at once instead of being
    /// held.
    pub max_future_hold_secs: u64,
    /// A directory of the Users' Digital Signing certificates the devices trust (PEM, searched
    /// recursively; other certificates passed over): a critical command whose User signature
    /// verifies with none of them is refused. Relative to the hub configuration file for the
    /// in-process hub (which otherwise trusts the gateway's `[signatures]
    /// digital_signing_certs`), to the working directory for `dccgw commshub`.
    pub digital_signing_certs: Option<std::path::PathBuf>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            default: Behaviour::default(),
            srv: BTreeMap::new(),
            groups: Vec::new(),
            alerts: SpontaneousAlerts::default(),
            storms: Vec::new(),
            max_in_flight: 100_000,
            max_future_hold_secs: 31 * 24 * 3600,
            digital_signing_certs: None,
        }
    }
}

/// What a device does with a command.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Time from the command to the device's response.
    pub latency: Latency,
    /// Probability that the network cannot reach the device (reported after `latency`: E20).
    pub unreachable: f64,
    /// Probability that the device never answers (the gateway times out: E21).
    pub no_answer: f64,
    /// Alerts the device raises before its response (`delay_ms` before it).
    pub alerts_before: Vec<AlertSpec>,
    /// Alerts the device raises after its response (`delay_ms` after it).
    pub alerts_after: Vec<AlertSpec>,
    /// Probability that a future-dated command fails at its execution time (`8F67`).
    pub future_dated_failure: f64,
    /// Bytes of simulated data in a response.
    pub response_bytes: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Latency::LogNormal {
                median_ms: 400,
                p99_ms: 3_000,
            },
            unreachable: 0.0,
            no_answer: 0.0,
            alerts_before: Vec::new(),
            alerts_after: Vec::new(),
            future_dated_failure: 0.0,
            response_bytes: 48,
        }
    }
}

/// The same keys as [`Behaviour`], each optional: an override changes only what it names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourPatch {
    pub latency: Option<Latency>,
    pub unreachable: Option<f64>,
    pub no_answer: Option<f64>,
    pub alerts_before: Option<Vec<AlertSpec>>,
    pub alerts_after: Option<Vec<AlertSpec>>,
    pub future_dated_failure: Option<f64>,
    pub response_bytes: Option<usize>,
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always `ms` (0: immediate).
    Fixed {
        ms: u64,
    },
    Uniform {
        min_ms: u64,
        max_ms: u64,
    },
    /// Log-normal with this median and 99th percentile (a long tail, as radio networks have).
    LogNormal {
        median_ms: u64,
        p99_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    pub code: u16,
    #[serde(default = "one")]
    pub probability: f64,
    #[serde(default)]
    pub delay_ms: u64,
}

fn one() -> f64 {
    1.0
}

/// Devices an override applies to: every listed criterion must hold (an empty list holds for
/// any device).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupOverride {
    #[serde(default, deserialize_with = "device_types")]
    pub device_types: Vec<DeviceType>,
    /// The comms hubs whose devices (and the hubs themselves) are in the group.
    #[serde(default)]
    pub chfs: Vec<DeviceId>,
    /// Only for these SRVs.
    #[serde(default)]
    pub srvs: Vec<Srv>,
    #[serde(flatten)]
    pub behaviour: BehaviourPatch,
}

impl GroupOverride {
    fn matches(&self, srv: Srv, device: &DeviceRecord) -> bool {
        let hub = device.chf.unwrap_or(device.id);
        (self.device_types.is_empty() || self.device_types.contains(&device.device_type))
            && (self.chfs.is_empty() || self.chfs.contains(&hub))
            && (self.srvs.is_empty() || self.srvs.contains(&srv))
    }
}

/// Alerts devices raise by themselves, at `rate_per_sec` across the whole fleet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpontaneousAlerts {
    /// 0 turns them off.
    pub rate_per_sec: f64,
    /// Which devices raise them.
    #[serde(deserialize_with = "device_types")]
    pub device_types: Vec<DeviceType>,
    /// The codes raised, drawn by weight.
    pub codes: Vec<WeightedCode>,
}

impl Default for SpontaneousAlerts {
    fn default() -> Self {
        Self {
            rate_per_sec: 0.0,
            device_types: vec![DeviceType::Esme, DeviceType::Gsme],
            codes: vec![WeightedCode {
                code: SUPPLY_OUTAGE_RESTORE,
                weight: 1,
            }],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedCode {
    pub code: u16,
    pub weight: u32,
}

/// A power outage across `hubs` comms hubs (drawn from the fleet by the seeded generator):
/// `after_secs` after the hub starts, every device behind each of them raises `code`, spread
/// over `spread_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storm {
    pub after_secs: u64,
    pub hubs: usize,
    #[serde(default = "outage_code")]
    pub code: u16,
    #[serde(default)]
    pub spread_ms: u64,
}

fn outage_code() -> u16 {
    SUPPLY_OUTAGE_RESTORE
}

fn device_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceType>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| DeviceType::from_str(s).map_err(serde::de::Error::custom))
        .collect()
}

/// A value the simulator cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} = {value} is not a probability (0 to 1)")]
    Probability { field: &'static str, value: f64 },
    #[error("unreachable + no_answer = {0} is more than 1")]
    FaultSum(f64),
    #[error("latency {0:?} is not a distribution (min above max, or p99 below the median)")]
    Latency(Latency),
    #[error("response_bytes = {0} is above {MAX_RESPONSE_BYTES}")]
    ResponseBytes(usize),
    #[error("alerts.rate_per_sec = {0} is negative or not finite")]
    Rate(f64),
    #[error("spontaneous alerts need at least one code of non-zero weight and one device type")]
    NoAlertCodes,
    #[error("max_in_flight must be at least 1")]
    MaxInFlight,
}

impl HubConfig {
    /// Checks every value, the default and each override.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_in_flight == 0 {
            return Err(ConfigError::MaxInFlight);
        }
        self.default
            .clone()
            .patch_checked(&BehaviourPatch::default())?;
        for p in self
            .srv
            .values()
            .chain(self.groups.iter().map(|g| &g.behaviour))
        {
            self.default.clone().patch_checked(p)?;
        }
        let a = &self.alerts;
        if !a.rate_per_sec.is_finite() || a.rate_per_sec < 0.0 {
            return Err(ConfigError::Rate(a.rate_per_sec));
        }
        let weights: u64 = a.codes.iter().map(|c| u64::from(c.weight)).sum();
        if a.rate_per_sec > 0.0 && (weights == 0 || a.device_types.is_empty()) {
            return Err(ConfigError::NoAlertCodes);
        }
        Ok(())
    }

    /// The behaviour for `srv` on `device`: the default, the SRV's override, then each matching
    /// group's in order.
    pub fn behaviour_for(&self, srv: Srv, device: &DeviceRecord) -> Behaviour {
        let mut b = self.default.clone();
        if let Some(p) = self.srv.get(&srv) {
            b.apply(p);
        }
        for g in self.groups.iter().filter(|g| g.matches(srv, device)) {
            b.apply(&g.behaviour);
        }
        b
    }
}

impl Behaviour {
    fn apply(&mut self, p: &BehaviourPatch) {
        if let Some(v) = p.latency {
            self.latency = v;
        }
        if let Some(v) = p.unreachable {
            self.unreachable = v;
        }
        if let Some(v) = p.no_answer {
            self.no_answer = v;
        }
        if let Some(v) = &p.alerts_before {
            self.alerts_before.clone_from(v);
        }
        if let Some(v) = &p.alerts_after {
            self.alerts_after.clone_from(v);
        }
        if let Some(v) = p.future_dated_failure {
            self.future_dated_failure = v;
        }
        if let Some(v) = p.response_bytes {
            self.response_bytes = v;
        }
    }

    /// Applies `p` and checks the result (so each override is checked on top of the default).
    fn patch_checked(mut self, p: &BehaviourPatch) -> Result<Self, ConfigError> {
        self.apply(p);
        let probabilities = [
            ("unreachable", self.unreachable),
            ("no_answer", self.no_answer),
            ("future_dated_failure", self.future_dated_failure),
        ]
        .into_iter()
        .chain(
            self.alerts_before
                .iter()
                .chain(&self.alerts_after)
                .map(|a| ("probability", a.probability)),
        );
        for (field, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Probability { field, value });
            }
        }
        if self.unreachable + self.no_answer > 1.0 {
            return Err(ConfigError::FaultSum(self.unreachable + self.no_answer));
        }
        let ok = match self.latency {
            Latency::Fixed { .. } => true,
            Latency::Uniform { min_ms, max_ms } => min_ms <= max_ms,
            Latency::LogNormal { median_ms, p99_ms } => median_ms > 0 && p99_ms >= median_ms,
        };
        if !ok {
            return Err(ConfigError::Latency(self.latency));
        }
        if self.response_bytes > MAX_RESPONSE_BYTES {
            return Err(ConfigError::ResponseBytes(self.response_bytes));
        }
        Ok(self)
    }
}
