//! Fan-out: a raised alert → its recipients → the throttle → one unsigned DUIS message per
//! User. Pure (the registry snapshot and `now` come in); the caller signs each message and puts
//! it in the outbox.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::{DccAlertCode, DeviceId, RequestId, Srv, UserId, UserRole, DCC_ID};
use crate::duis::outbound::{
    write_dcc_alert, write_device_alert, write_future_dated_alert, DccAlertBody, DccAlertOut,
    DeviceAlertOut, FutureDatedAlertCode, FutureDatedOut, Throttled,
};
use crate::registry::Snapshot;

use super::dcc::{dcc_recipients, DccAlert};
use super::route::{route, DeviceAlert};
use super::throttle::{Released, Throttle};
use super::{AlertsConfig, AlertsError, RoutingTable};

/// What kind of alert a message carries, and its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A Device Alert with this GBCS alert code, raised by this device.
    Device { code: u16, device: DeviceId },
    /// A future-dated execution alert (`0x8F66`/`0x8F67`) answering this request (whose target
    /// is the device that ran it).
    FutureDated { code: u16, request_id: RequestId },
    /// A DCC Alert with this code.
    Dcc(DccAlertCode),
}

impl AlertKind {
    /// The code as DUIS writes it: `8F35`, `N4`, `AD1`.
    pub fn code_label(&self) -> String {
        match self {
            Self::Device { code, .. } | Self::FutureDated { code, .. } => format!("{code:04X}"),
            Self::Dcc(code) => code.to_string(),
        }
    }

    /// The closed set of metric labels (`metrics::ALERT_KINDS`).
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Device { .. } => "device",
            Self::FutureDated { .. } => "future_dated",
            Self::Dcc(_) => "dcc",
        }
    }
}

/// One message for one User, ready to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertMessage {
    pub user: UserId,
    pub role: Option<UserRole>,
    pub kind: AlertKind,
    /// The identifier of the raised alert whose content the message carries.
    pub alert_id: u64,
    /// The identifiers of every raised alert this message accounts for (more than one for a
    /// throttling summary), `alert_id` last.
    pub covers: Vec<u64>,
    pub throttled: Option<Throttled>,
    /// When the alert it carries was raised (unix seconds).
    pub raised_at: i64,
    /// The header's `ResponseID`: unique per (alert, User), usable as a message name.
    pub response_id: String,
    /// The unsigned `sr:Response`.
    pub xml: String,
}

/// What one raised alert fanned out to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fanned {
    /// To sign and send now (may include summaries the alert's arrival closed).
    pub messages: Vec<AlertMessage>,
    /// Recipients whose copy the throttle holds, with the summary's sequence number: the alert
    /// is settled for them when that summary is released.
    pub held: Vec<(UserId, u32)>,
}

/// The throttle key: one User, one alert code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Code {
    Device(u16),
    Dcc(DccAlertCode),
}

/// One User's copy of an alert, held or released: what its message needs to be written.
#[derive(Clone, Debug)]
struct Pending {
    user: UserId,
    role: Option<UserRole>,
    alert_id: u64,
    raised_at: i64,
    content: Content,
}

#[derive(Clone, Debug)]
enum Content {
    Device {
        device: DeviceId,
        code: u16,
        payload: Arc<[u8]>,
    },
    Dcc {
        code: DccAlertCode,
        request_id: Option<RequestId>,
        body: Arc<DccAlertBody>,
    },
}

/// A future-dated command's execution alert as the hub network reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FutureDatedAlert {
    /// The gateway's identifier of this raised alert.
    pub id: u64,
    /// The future-dated request it reports on, and its service.
    pub request_id: RequestId,
    pub srv: Srv,
    /// `0x8F66` or `0x8F67`.
    pub code: u16,
    pub payload: Vec<u8>,
    /// Which instruction of the command (1-based), of how many.
    pub instruction: u16,
    pub total_instructions: u16,
    pub at: i64,
}

/// Routes, throttles and writes alerts. One per gateway; not `Sync` on purpose — the caller owns
/// it in one task (or behind a mutex) and calls [`Fanout::tick`] by [`Fanout::next_deadline`].
#[derive(Debug)]
pub struct Fanout {
    table: RoutingTable,
    throttle: Throttle<(UserId, Code), Pending>,
}

impl Fanout {
    /// `first_sequence_id`: see [`Throttle::new`].
    pub fn new(config: &AlertsConfig, first_sequence_id: u32) -> Result<Self, AlertsError> {
        Ok(Self {
            table: RoutingTable::with_rules(&config.routes),
            throttle: Throttle::new(config.throttle, first_sequence_id)?,
        })
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// A device alert: to the Users its code's audience names at the alert's time, throttled.
    pub fn device_alert(
        &mut self,
        alert: &DeviceAlert,
        registry: &Snapshot,
        now: OffsetDateTime,
    ) -> Result<Fanned, AlertsError> {
        let recipients = route(&self.table, alert, registry)?;
        Ok(self.device_copies(alert, recipients, now))
    }

    /// A device alert routed by `table` (the rule set in force at the alert's time) rather than
    /// the configured one, throttled.
    pub fn device_alert_by(
        &mut self,
        table: &RoutingTable,
        alert: &DeviceAlert,
        registry: &Snapshot,
        now: OffsetDateTime,
    ) -> Result<Fanned, AlertsError> {
        let recipients = route(table, alert, registry)?;
        Ok(self.device_copies(alert, recipients, now))
    }

    fn device_copies(
        &mut self,
        alert: &DeviceAlert,
        recipients: Vec<super::route::Recipient>,
        now: OffsetDateTime,
    ) -> Fanned {
        let payload: Arc<[u8]> = alert.payload.as_slice().into();
        let mut fanned = Fanned::default();
        for r in recipients {
            let copy = Pending {
                user: r.user,
                role: r.role,
                alert_id: alert.id,
                raised_at: alert.at,
                content: Content::Device {
                    device: alert.device,
                    code: alert.code,
                    payload: Arc::clone(&payload),
                },
            };
            let key = (r.user, Code::Device(alert.code));
            self.offer(key, copy, now, &mut fanned);
        }
        fanned
    }

    /// A DCC Alert the gateway raises: to the Users its event concerns, throttled.
    pub fn dcc_alert(
        &mut self,
        alert: &DccAlert,
        registry: &Snapshot,
        now: OffsetDateTime,
    ) -> Result<Fanned, AlertsError> {
        let (recipients, body) = dcc_recipients(alert, registry)?;
        let body = Arc::new(body);
        let code = alert.event.code();
        let mut fanned = Fanned::default();
        for r in recipients {
            let copy = Pending {
                user: r.user,
                role: r.role,
                alert_id: alert.id,
                raised_at: alert.at,
                content: Content::Dcc {
                    code,
                    request_id: alert.event.request_id(),
                    body: Arc::clone(&body),
                },
            };
            self.offer((r.user, Code::Dcc(code)), copy, now, &mut fanned);
        }
        Ok(fanned)
    }

    /// A future-dated execution alert: to the request's originator, never throttled (it answers
    /// that User's own request).
    pub fn future_dated(
        alert: &FutureDatedAlert,
        now: OffsetDateTime,
    ) -> Result<AlertMessage, AlertsError> {
        let code = FutureDatedAlertCode::try_from(alert.code).map_err(AlertsError::Write)?;
        let out = FutureDatedOut {
            request_id: alert.request_id,
            srv: alert.srv,
            counter: alert.id,
            code,
            payload: &alert.payload,
            instruction: alert.instruction,
            total_instructions: alert.total_instructions,
        };
        let rid = alert.request_id;
        Ok(AlertMessage {
            user: rid.originator,
            role: None,
            kind: AlertKind::FutureDated {
                code: alert.code,
                request_id: rid,
            },
            alert_id: alert.id,
            covers: vec![alert.id],
            throttled: None,
            raised_at: alert.at,
            response_id: format!("{}:{}:{}", rid.target, rid.originator, alert.id),
            xml: write_future_dated_alert(&out, now),
        })
    }

    /// Releases the summaries of every throttling window ended by `now`.
    pub fn tick(&mut self, now: OffsetDateTime) -> Vec<AlertMessage> {
        let released = self.throttle.tick(now.unix_timestamp());
        released.into_iter().map(|r| message(r, now)).collect()
    }

    /// Releases every summary now (at shutdown).
    pub fn flush(&mut self, now: OffsetDateTime) -> Vec<AlertMessage> {
        let released = self.throttle.flush();
        released.into_iter().map(|r| message(r, now)).collect()
    }

    /// The latest instant (unix seconds) [`Self::tick`] should next be called at.
    pub fn next_deadline(&self) -> Option<i64> {
        self.throttle.next_deadline()
    }

    /// Copies held in throttling summaries now.
    pub fn held(&self) -> usize {
        self.throttle.held()
    }

    /// Copies sent untouched because the throttle tracked its maximum of keys.
    pub fn untracked(&self) -> u64 {
        self.throttle.untracked()
    }

    fn offer(&mut self, key: (UserId, Code), copy: Pending, now: OffsetDateTime, out: &mut Fanned) {
        let user = key.0;
        let id = copy.alert_id;
        let offer = self.throttle.offer(key, id, copy, now.unix_timestamp());
        out.messages
            .extend(offer.release.into_iter().map(|r| message(r, now)));
        if let Some(sequence) = offer.held_in {
            out.held.push((user, sequence));
        }
    }
}

/// The message for one released copy.
fn message(released: Released<Pending>, now: OffsetDateTime) -> AlertMessage {
    let Released {
        item: copy,
        covers,
        throttled,
    } = released;
    let user = copy.user;
    let (kind, response_id, xml) = match &copy.content {
        Content::Device {
            device,
            code,
            payload,
        } => {
            let out = DeviceAlertOut {
                device: *device,
                user,
                counter: copy.alert_id,
                code: *code,
                throttled,
                payload,
            };
            (
                AlertKind::Device {
                    code: *code,
                    device: *device,
                },
                format!("{device}:{user}:{}", copy.alert_id),
                write_device_alert(&out, now),
            )
        }
        Content::Dcc {
            code,
            request_id,
            body,
        } => {
            let out = DccAlertOut {
                user,
                counter: copy.alert_id,
                request_id: *request_id,
                code: *code,
                throttled,
                body,
            };
            (
                AlertKind::Dcc(*code),
                format!("{DCC_ID}:{user}:{}", copy.alert_id),
                write_dcc_alert(&out, now),
            )
        }
    };
    AlertMessage {
        user,
        role: copy.role,
        kind,
        alert_id: copy.alert_id,
        covers,
        throttled,
        raised_at: copy.raised_at,
        response_id,
        xml,
    }
}
