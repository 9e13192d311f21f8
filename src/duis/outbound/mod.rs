//! The asynchronous messages the DCC sends to a User's Receive Response Service:
//! a device's Service Response (`I0` with `GBCSPayload`, or `E20`/`E21`), Device Alerts,
//! future-dated execution alerts and DCC Alerts. Every writer returns an unsigned `sr:Response`
//! on one line, valid against the DUIS 5.4 schema; the caller signs it with
//! [`crate::xmldsig::sign_document`], which puts `ds:Signature` just before
//! [`RESPONSE_CLOSE`](super::RESPONSE_CLOSE).
//!
//! Header rules, one place for all of them:
//! - A device's Service Response carries the request's `RequestID` and, for an answer (`I0`),
//!   the `ResponseID` of the device answering (target and originator swapped,
//!   [`RequestId::response_id`]). A failure (`E20`, `E21`) carries no `ResponseID`: no device
//!   answered.
//! - An alert has no request of its own. Its `ResponseID` is `originator:User:counter`, the
//!   originator being the device (Device Alerts, future-dated alerts) or the DCC ([`DCC_ID`], DCC
//!   Alerts), the counter the gateway's identifier of the raised alert. A future-dated alert, and a
//!   DCC Alert about a request, also carry that request's `RequestID`.
//! - Alerts carry `ResponseCode` `I0`: the alert code says what happened.

mod dcc;

#[cfg(test)]
mod tests;

use base64::Engine as _;
use time::OffsetDateTime;

use super::response::{element, open_with_header};
use super::{ResponseHeaderOut, RESPONSE_CLOSE};
use crate::domain::{DeviceId, Mpxn, RequestId, ResponseCode, Srv, UserId, DCC_ID};

pub use dcc::{
    write_dcc_alert, DccAlertBody, DccAlertOut, DccAlertPayload, DeviceStatusChange, MeterMpxns,
    QuarantineBreach,
};

/// Why a message could not be written: the inputs break a schema rule their types do not
/// already rule out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{0:04X} is not a future-dated execution alert code (8F66 or 8F67)")]
    NotFutureDated(u16),
    #[error("the secondary import and export meter points must be MPANs, not {0}")]
    NotAnMpan(Mpxn),
    #[error("{0} associated devices; the schema allows at most 7")]
    TooManyAssociatedDevices(usize),
    #[error("an ECoS error code is three characters")]
    EcosErrorCode,
    #[error("a device list names at least one device")]
    EmptyDeviceList,
}

/// What became of a command sent to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOutcome<'a> {
    /// The device answered with these GBCS bytes: `I0` with `GBCSPayload`.
    Answer(&'a [u8]),
    /// No answer, with the code that says why (`E20`, `E21`: `crate::error` decides).
    Failed(ResponseCode),
}

impl DeviceOutcome<'_> {
    pub const fn code(&self) -> ResponseCode {
        match self {
            Self::Answer(_) => ResponseCode::I0,
            Self::Failed(code) => *code,
        }
    }
}

/// The throttling fields of an alert that stands for several (see `docs/alerts.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Throttled {
    /// `ThrottledAlertSequenceId`: which throttling sequence this summary closes.
    pub sequence_id: u32,
    /// `ThrottledAlertCount`: how many alerts of that code for that User it stands for.
    pub count: u32,
}

/// The two future-dated execution outcome codes the schema allows in
/// `FutureDatedDeviceAlertMessage` (GBCS alerts `0x8F66` and `0x8F67`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FutureDatedAlertCode {
    X8F66,
    X8F67,
}

impl FutureDatedAlertCode {
    pub const fn code(self) -> u16 {
        match self {
            Self::X8F66 => 0x8F66,
            Self::X8F67 => 0x8F67,
        }
    }
}

impl TryFrom<u16> for FutureDatedAlertCode {
    type Error = WriteError;

    fn try_from(code: u16) -> Result<Self, Self::Error> {
        match code {
            0x8F66 => Ok(Self::X8F66),
            0x8F67 => Ok(Self::X8F67),
            other => Err(WriteError::NotFutureDated(other)),
        }
    }
}

/// A Device Alert for one User.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceAlertOut<'a> {
    pub device: DeviceId,
    pub user: UserId,
    /// The gateway's identifier of the raised alert (the `ResponseID`'s counter).
    pub counter: u64,
    /// The GBCS alert code, written as four hex digits.
    pub code: u16,
    pub throttled: Option<Throttled>,
    /// The alert's GBCS bytes.
    pub payload: &'a [u8],
}

/// A future-dated command's execution alert, for the User that sent the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureDatedOut<'a> {
    /// The future-dated request: its originator is the recipient.
    pub request_id: RequestId,
    pub srv: Srv,
    /// The gateway's identifier of the raised alert (the `ResponseID`'s counter).
    pub counter: u64,
    pub code: FutureDatedAlertCode,
    pub payload: &'a [u8],
    /// Which of the command's instructions this alert reports (1-based), and how many it has.
    pub instruction: u16,
    pub total_instructions: u16,
}

/// The asynchronous Service Response to a device request: `I0` with the device's GBCS bytes,
/// or `E20`/`E21` with no payload.
pub fn write_service_response(
    request_id: &RequestId,
    srv: Srv,
    outcome: &DeviceOutcome<'_>,
    now: OffsetDateTime,
) -> String {
    let payload = match outcome {
        DeviceOutcome::Answer(bytes) => super::ResponsePayload::GbcsPayload(bytes.to_vec()),
        DeviceOutcome::Failed(_) => super::ResponsePayload::None,
    };
    let header = ResponseHeaderOut {
        request_id: Some(*request_id),
        response_id: matches!(outcome, DeviceOutcome::Answer(_)).then(|| request_id.response_id()),
        code: outcome.code(),
        date_time: now,
    };
    super::write_response(&header, srv.service_reference(), srv, &payload)
}

/// A `DeviceAlertMessage`.
pub fn write_device_alert(alert: &DeviceAlertOut<'_>, now: OffsetDateTime) -> String {
    let header = alert_header(None, alert.device, alert.user, alert.counter, now);
    let mut out = String::with_capacity(700 + alert.payload.len() * 4 / 3);
    open_with_header(&mut out, &header);
    out.push_str("<sr:Body><sr:DeviceAlertMessage>");
    element(&mut out, "AlertCode", &hex_code(alert.code));
    throttle_fields(&mut out, alert.throttled);
    element(&mut out, "GBCSPayload", &base64(alert.payload));
    out.push_str("</sr:DeviceAlertMessage></sr:Body>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// A `FutureDatedDeviceAlertMessage`: a `ResponseMessage` naming the future-dated request's
/// service, sent to that request's originator.
pub fn write_future_dated_alert(alert: &FutureDatedOut<'_>, now: OffsetDateTime) -> String {
    let rid = alert.request_id;
    let header = alert_header(Some(rid), rid.target, rid.originator, alert.counter, now);
    let mut out = String::with_capacity(800 + alert.payload.len() * 4 / 3);
    open_with_header(&mut out, &header);
    out.push_str("<sr:Body><sr:ResponseMessage>");
    element(
        &mut out,
        "ServiceReference",
        &alert.srv.service_reference().to_string(),
    );
    element(&mut out, "ServiceReferenceVariant", &alert.srv.to_string());
    out.push_str("<sr:FutureDatedDeviceAlertMessage>");
    element(
        &mut out,
        "FutureDatedAlertCode",
        &hex_code(alert.code.code()),
    );
    element(&mut out, "GBCSPayload", &base64(alert.payload));
    element(
        &mut out,
        "InstructionNumber",
        &alert.instruction.to_string(),
    );
    element(
        &mut out,
        "TotalCommandInstructions",
        &alert.total_instructions.to_string(),
    );
    out.push_str("</sr:FutureDatedDeviceAlertMessage></sr:ResponseMessage></sr:Body>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// The header of an alert from `originator` (a device, or [`DCC_ID`]) to `user`.
fn alert_header(
    request_id: Option<RequestId>,
    originator: DeviceId,
    user: UserId,
    counter: u64,
    now: OffsetDateTime,
) -> ResponseHeaderOut {
    ResponseHeaderOut {
        request_id,
        response_id: Some(format!("{originator}:{user}:{counter}")),
        code: ResponseCode::I0,
        date_time: now,
    }
}

/// The `ResponseID` a DCC Alert to `user` with `counter` carries.
pub fn dcc_alert_response_id(user: UserId, counter: u64) -> String {
    format!("{DCC_ID}:{user}:{counter}")
}

fn throttle_fields(out: &mut String, throttled: Option<Throttled>) {
    if let Some(t) = throttled {
        element(out, "ThrottledAlertSequenceId", &t.sequence_id.to_string());
        element(out, "ThrottledAlertCount", &t.count.to_string());
    }
}

/// A GBCS alert code as `xs:hexBinary` of two octets: `8F66`.
pub fn hex_code(code: u16) -> String {
    format!("{code:04X}")
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
