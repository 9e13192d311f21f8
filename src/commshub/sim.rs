//! The simulated comms-hub network, as a pure planner: given a signed command and the time, it
//! verifies the command and says which events happen, and when; given the time, it says when the
//! next spontaneous alert happens and on which device. It reads no clock and sleeps on nothing —
//! the drivers ([`InProcessHub`](super::InProcessHub), the `dccgw commshub` process) do that.
//!
//! Replay: each command draws from its own random stream, keyed by the seed and its RequestID, so
//! a command's fate does not depend on what else is in flight; spontaneous alerts and storms draw
//! from one stream of their own.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;

use crate::dispatch::{HubEvent, FUTURE_DATED_EXECUTED, FUTURE_DATED_FAILED};
use crate::domain::{DeviceId, DeviceType, RequestId, DCC_ID};
use crate::dscerts::DigitalSigningCerts;
use crate::gbcs::GeneralSigning;
use crate::registry::Snapshot;
use crate::routing::{Command, CommandVerifier, RoutingError};

use super::config::{Behaviour, ConfigError, HubConfig, Storm};
use super::device::Devices;
use super::rng::SimRng;

/// One event and how long after "now" it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub after: Duration,
    pub event: HubEvent,
}

pub struct Simulator {
    config: HubConfig,
    snapshot: Snapshot,
    verifier: CommandVerifier,
    /// Devices of the types that raise spontaneous alerts.
    alerters: Vec<DeviceId>,
    /// Every comms hub, for storms.
    hubs: Vec<DeviceId>,
    alert_rng: SimRng,
    /// The alert frames' originator counter (one sequence for the whole simulated fleet).
    alert_counter: u64,
    /// What the devices read, verify and answer in GBCS.
    devices: Devices,
}

impl Simulator {
    /// Simulates every device in `snapshot`, trusting commands signed by `verifier`'s broker
    /// certificates, and no User's Digital Signing certificate yet (see [`Self::trusting`]).
    /// Walks the fleet once to list hubs and alerting devices (16 bytes a device at most).
    pub fn new(
        config: HubConfig,
        snapshot: Snapshot,
        verifier: CommandVerifier,
    ) -> Result<Self, ConfigError> {
        config.check()?;
        let mut alerters = Vec::new();
        let mut hubs = Vec::new();
        for d in snapshot.devices() {
            if d.device_type == DeviceType::Chf {
                hubs.push(d.id);
            }
            if config.alerts.device_types.contains(&d.device_type) {
                alerters.push(d.id);
            }
        }
        // Sorted, so that the seed (not the registry's storage order) decides every draw.
        alerters.sort_unstable();
        hubs.sort_unstable();
        let alert_rng = SimRng::new(config.seed, u64::MAX);
        let devices = Devices::new(config.seed, DigitalSigningCerts::default());
        Ok(Self {
            config,
            snapshot,
            verifier,
            alerters,
            hubs,
            alert_rng,
            alert_counter: 0,
            devices,
        })
    }

    /// The devices trust the Users' Digital Signing certificates in `certs`: a critical command
    /// signed with none of them is refused.
    pub fn trusting(mut self, certs: DigitalSigningCerts) -> Self {
        self.devices = Devices::new(self.config.seed, certs);
        self
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Verifies `signed` and plans what the device does with it, from `now_ms` (unix
    /// milliseconds). Unsigned, forged or malformed commands are refused; a GBCS command the
    /// device cannot read or verify is refused by the device (`HubEvent::Refused`).
    pub fn accept(&mut self, signed: &[u8], now_ms: i64) -> Result<Vec<Scheduled>, RoutingError> {
        let cmd = self.verifier.verify(signed)?;
        let id = cmd.request_id();
        let mut rng = SimRng::new(self.config.seed, stream_of(&id));
        let at = |after: Duration| at_secs(now_ms, after);
        let Some(device) = self.snapshot.device(cmd.device()) else {
            // Not on the network at all: the CSP cannot reach it.
            let after = rng.latency(&self.config.default.latency);
            return Ok(vec![Scheduled {
                after,
                event: HubEvent::Unreachable {
                    request_id: id,
                    device: cmd.device(),
                    at: at(after),
                },
            }]);
        };
        let b = self.config.behaviour_for(cmd.srv(), &device);
        let latency = rng.latency(&b.latency);
        let roll = rng.unit();
        if roll < b.unreachable {
            return Ok(vec![Scheduled {
                after: latency,
                event: HubEvent::Unreachable {
                    request_id: id,
                    device: device.id,
                    at: at(latency),
                },
            }]);
        }
        if roll < b.unreachable + b.no_answer {
            return Ok(Vec::new());
        }
        match self.devices.read(&cmd, time_of(now_ms)) {
            Ok(command) => Ok(self.answer(&cmd, &command, &b, latency, now_ms, &mut rng)),
            Err(refusal) => {
                tracing::debug!(request_id = %id, %refusal, "A simulated device refused a command.");
                let event = HubEvent::Refused {
                    request_id: id,
                    device: device.id,
                    at: at(latency),
                };
                Ok(vec![Scheduled {
                    after: latency,
                    event,
                }])
            }
        }
    }

    /// What a device does with a command it accepted: alerts before its response, the response
    /// after `latency`, alerts after it, and a future-dated command's outcome alert.
    fn answer(
        &mut self,
        cmd: &Command,
        command: &GeneralSigning,
        b: &Behaviour,
        latency: Duration,
        now_ms: i64,
        rng: &mut SimRng,
    ) -> Vec<Scheduled> {
        let (id, device) = (cmd.request_id(), cmd.device());
        let mut plan = Vec::new();
        for spec in &b.alerts_before {
            if rng.chance(spec.probability) {
                let after = latency.saturating_sub(Duration::from_millis(spec.delay_ms));
                plan.push(self.alert(device, DCC_ID, spec.code, now_ms, after));
            }
        }
        let data: Vec<u8> = (0..b.response_bytes)
            .map(|_| rng.next_u64() as u8)
            .collect();
        let at = at_secs(now_ms, latency);
        let future = cmd.execute_at().is_some();
        let payload = self
            .devices
            .respond(command, cmd.srv(), time_of(at * 1000), &data, future);
        plan.push(Scheduled {
            after: latency,
            event: HubEvent::Response {
                request_id: id,
                device,
                payload,
                at,
            },
        });
        for spec in &b.alerts_after {
            if rng.chance(spec.probability) {
                let after = latency + Duration::from_millis(spec.delay_ms);
                plan.push(self.alert(device, DCC_ID, spec.code, now_ms, after));
            }
        }
        if let Some(execute_at) = cmd.execute_at() {
            let failure = b.future_dated_failure;
            let fd = (execute_at, failure, latency, now_ms);
            plan.push(self.future_dated(cmd, command, fd, rng));
        }
        plan
    }

    /// The alert saying whether future-dated `cmd` ran (`8F66`) or failed (`8F67`) at
    /// `execute_at` (unix seconds), failing with probability `failure`: never before the
    /// response that acknowledged it (`latency` from now), and at once when it is held further
    /// ahead than the configuration allows.
    fn future_dated(
        &mut self,
        cmd: &Command,
        command: &GeneralSigning,
        (execute_at, failure, latency, now_ms): (i64, f64, Duration, i64),
        rng: &mut SimRng,
    ) -> Scheduled {
        let (id, device) = (cmd.request_id(), cmd.device());
        let hold_ms = execute_at.saturating_mul(1000).saturating_sub(now_ms);
        let max_ms = i64::try_from(self.config.max_future_hold_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let (code, after) = if hold_ms > max_ms {
            (FUTURE_DATED_FAILED, latency + Duration::from_millis(1))
        } else {
            let code = if rng.chance(failure) {
                FUTURE_DATED_FAILED
            } else {
                FUTURE_DATED_EXECUTED
            };
            let hold = Duration::from_millis(u64::try_from(hold_ms).unwrap_or(0));
            (code, hold.max(latency + Duration::from_millis(1)))
        };
        self.alert_counter += 1;
        let at = at_secs(now_ms, after);
        let payload =
            self.devices
                .future_dated(command, self.alert_counter, code, time_of(at * 1000));
        Scheduled {
            after,
            event: HubEvent::FutureDated {
                request_id: id,
                srv: cmd.srv(),
                device,
                code,
                payload,
                at,
            },
        }
    }

    /// The next spontaneous alert after `now_ms`, or `None` when they are off.
    pub fn next_alert(&mut self, now_ms: i64) -> Option<Scheduled> {
        let a = &self.config.alerts;
        if a.rate_per_sec <= 0.0 || self.alerters.is_empty() {
            return None;
        }
        let gap = self
            .alert_rng
            .exponential_secs(a.rate_per_sec)
            .min(86_400.0);
        let device = self.alerters[self.alert_rng.below(self.alerters.len() as u64) as usize];
        let total: u64 = a.codes.iter().map(|c| u64::from(c.weight)).sum();
        let mut pick = self.alert_rng.below(total);
        let mut code = a.codes.first()?.code;
        for c in &a.codes {
            if pick < u64::from(c.weight) {
                code = c.code;
                break;
            }
            pick -= u64::from(c.weight);
        }
        Some(self.alert(device, DCC_ID, code, now_ms, Duration::from_secs_f64(gap)))
    }

    /// A power outage across `storm.hubs` hubs: every device behind each raises `storm.code`.
    pub fn storm(&mut self, storm: &Storm, now_ms: i64) -> Vec<Scheduled> {
        let chosen: Vec<DeviceId> = if storm.hubs >= self.hubs.len() {
            self.hubs.clone()
        } else {
            let mut picked = HashSet::new();
            while picked.len() < storm.hubs {
                picked.insert(self.alert_rng.below(self.hubs.len() as u64) as usize);
            }
            let mut idx: Vec<usize> = picked.into_iter().collect();
            idx.sort_unstable();
            idx.into_iter().map(|i| self.hubs[i]).collect()
        };
        let mut plan = Vec::new();
        for hub in chosen {
            let mut behind: Vec<DeviceId> =
                self.snapshot.devices_behind(hub).map(|d| d.id).collect();
            behind.sort_unstable();
            for device in behind {
                let after = Duration::from_millis(self.alert_rng.below(storm.spread_ms + 1));
                plan.push(self.alert(device, DCC_ID, storm.code, now_ms, after));
            }
        }
        plan
    }

    fn alert(
        &mut self,
        device: DeviceId,
        recipient: DeviceId,
        code: u16,
        now_ms: i64,
        after: Duration,
    ) -> Scheduled {
        self.alert_counter += 1;
        let at = at_secs(now_ms, after);
        let payload = self.devices.alert(
            device,
            recipient,
            self.alert_counter,
            code,
            time_of(at * 1000),
        );
        Scheduled {
            after,
            event: HubEvent::Alert {
                device,
                code,
                payload,
                at,
            },
        }
    }
}

/// The random stream of one command: its RequestID mixed into 64 bits.
fn stream_of(id: &RequestId) -> u64 {
    id.originator.to_u64()
        ^ id.target.to_u64().rotate_left(21)
        ^ id.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Unix milliseconds as a time (the epoch for anything out of range).
fn time_of(unix_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn at_secs(now_ms: i64, after: Duration) -> i64 {
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_add(after_ms).div_euclid(1000)
}
