//! The one mapping from every way a request can fail to a DUIS response code, an HTTP status and
//! a metric reason; and who caused it. `docs/response-codes.md` is the same table for people.
//! The sender gets the code and a fixed text; the cause goes to the log.

use crate::admission::Shed;
use crate::antireplay::Replay;
use crate::auth::Denial;
use crate::domain::{CommandVariant, DeviceFailure, DuisService, ResponseCode, Srv, UserId};
use crate::duis::critical::{LocalResponseRefusal, PreCommandRefusal};
use crate::duis::inventory::InventoryError;
use crate::duis::schedule::ScheduleError;
use crate::duis::services::BodyError;
use crate::duis::ParseError;
use crate::gbcs::command::CommandError;
use crate::gbcs::usecase::ContentError;
use crate::gbcs::FrameError;
use crate::registry::ChangeError;
use crate::xmldsig::{ProfileError, SignerRefusal, VerifyError};

mod reasons;
pub use reasons::REASONS;

/// Who caused a failure (pingora's split): the sender, a backend, or the gateway itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Sender,
    Backend,
    Gateway,
}

/// Every way a request can fail before it is accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the content type is not application/xml")]
    ContentType,
    #[error("the request body could not be read to its end")]
    BodyUnreadable,
    #[error("the request is not a well-formed DUIS request")]
    Parse(#[from] ParseError),
    #[error("schemaVersion {0} is not supported")]
    SchemaVersion(String),
    #[error("service reference variant {0} is not in the catalogue")]
    UnknownSrv(Srv),
    #[error("service reference variant {0} cannot be requested by a User")]
    NotRequestable(Srv),
    #[error("the ServiceReference does not match service reference variant {0}")]
    ServiceReferenceMismatch(Srv),
    #[error("the body element is not the one service reference variant {srv} names")]
    BodyMismatch { srv: Srv },
    #[error("command variant {cv} is not allowed for service reference variant {srv}")]
    CommandVariantNotAllowed { srv: Srv, cv: CommandVariant },
    #[error("command variant {cv} is not taken at {service}")]
    WrongService {
        service: DuisService,
        cv: CommandVariant,
    },
    #[error("User ID {0} is not in the party register")]
    UnknownUser(UserId),
    #[error("originator {originator} is not a User ID of the TLS client's party")]
    PartyMismatch { client: UserId, originator: UserId },
    #[error("the request's signature is missing or outside the profile")]
    Signature(#[source] VerifyError),
    #[error("no configured User certificate has the signature's issuer and serial")]
    UnknownSigner,
    #[error("the signing certificate may not sign this request")]
    Signer(#[source] SignerRefusal),
    #[error("access control refused the request")]
    Denied(#[source] Denial),
    #[error("the ExecutionDateTime is not an xs:dateTime with a time zone")]
    ExecutionDateTime,
    #[error("the originator's counter was refused")]
    Replay(#[source] Replay),
    #[error("the request did not finish within the request timeout")]
    Timeout,
    #[error("request bodies in flight are at the gateway's memory budget")]
    Busy,
    #[error("the request was shed by admission control ({})", .0.label())]
    Shed(crate::admission::Shed),
    #[error("the gateway could not sign its answer")]
    SignAnswer,
    #[error("the Read Inventory search is not one the schema allows")]
    InventoryQuery(#[source] InventoryError),
    #[error("no device matches the Read Inventory search")]
    InventoryEmpty,
    #[error("the request's command could not be made for the hub network")]
    Command(#[source] crate::routing::RoutingError),
    #[error("a DSP-held request's ExecutionDateTime is in the past")]
    ExecutionInPast,
    #[error("a DSP-held request's ExecutionDateTime is more than {max_secs} s ahead")]
    ExecutionTooFar { max_secs: i64 },
    #[error("the gateway holds as many future-dated requests as it may")]
    HoldsFull,
    #[error("anomaly detection would quarantine the request, but the quarantine is full")]
    QuarantineFull,
    #[error("the schedule body is not one the gateway can run")]
    ScheduleBody(#[source] ScheduleError),
    #[error("no room for another DSP schedule")]
    SchedulesFull,
    #[error("no DSP schedule of the User's matches")]
    ScheduleUnknown,
    #[error("the body of a request for one of the DCC's own services does not read")]
    ServiceBody(#[source] BodyError),
    #[error("the inventory change the request asks for cannot apply")]
    InventoryChange(#[source] ChangeError),
    #[error("the registration cache does not hold the inventory field the update sets")]
    InventoryFieldNotHeld,
    #[error("no listed device can take the firmware image")]
    FirmwareNoDevice { ppmid: bool },
    #[error("the gateway is at its bound of firmware distributions in progress")]
    FirmwareBusy,
    #[error("the request body's fields cannot make its GBCS command")]
    CommandBody(#[source] CommandError),
    #[error("the signed pre-command was refused")]
    PreCommand(#[source] PreCommandRefusal),
    #[error("the User already has {max} pre-commands or local commands outstanding")]
    Outstanding { max: usize },
    #[error("the Return Local Command Response was refused")]
    LocalResponse(#[source] LocalResponseRefusal),
    #[error("{resource} failed")]
    Resource {
        resource: Resource,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A resource of the gateway's own that a request needed and that failed: never the sender's
/// fault. The cause travels with it, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Resource {
    /// The request's decision (its anti-replay high-water mark, with its command or hold)
    /// could not be made durable in the request log.
    #[error("the request log")]
    ReplayJournal,
    /// The command could not be recorded before the acknowledgement.
    #[error("the pending-command journal")]
    PendingJournal,
    /// A future-dated request could not be held before the acknowledgement.
    #[error("the held-request journal")]
    HoldJournal,
    /// A DSP schedule could not be created or deleted.
    #[error("the DSP schedule journal")]
    ScheduleJournal,
    /// A registration change could not be journalled before the answer.
    #[error("the registration change log")]
    ChangeLog,
    /// A quarantined request, or a request's anomaly count, could not be journalled before
    /// the acknowledgement.
    #[error("the anomaly-detection journals (quarantine, counts)")]
    QuarantineJournal,
    /// A firmware distribution could not be journalled before the acknowledgement.
    #[error("the firmware distribution journal")]
    FirmwareJournal,
    /// A pre-command, or a command for local delivery, could not be recorded (or its use).
    #[error("the ledger of pre-commands and local commands")]
    Ledger,
    /// A message for the User could not be put in the outbox before the acknowledgement.
    #[error("the outbox")]
    Outbox,
    /// The audit trail's writes are failing: no request's effects are taken.
    #[error("the audit trail")]
    AuditTrail,
}

impl Resource {
    /// The reason label of a request refused because this resource failed.
    pub const fn label(self) -> &'static str {
        match self {
            Self::ReplayJournal => "journal",
            Self::PendingJournal => "pending_journal",
            Self::HoldJournal => "hold_journal",
            Self::ScheduleJournal => "schedule_journal",
            Self::ChangeLog => "change_log",
            Self::FirmwareJournal => "firmware_journal",
            Self::QuarantineJournal => "quarantine_journal",
            Self::Ledger => "ledger",
            Self::Outbox => "outbox",
            Self::AuditTrail => "audit_trail",
        }
    }
}

impl Error {
    /// A failure of one of the gateway's own resources, with its cause.
    pub fn resource(
        resource: Resource,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Resource {
            resource,
            source: Box::new(source),
        }
    }
}

impl Error {
    /// The DUIS code, the HTTP status and the closed-set reason label, in one exhaustive match.
    pub fn classify(&self) -> (ResponseCode, u16, &'static str) {
        use ResponseCode::*;
        match self {
            Self::BodyTooLarge { .. } => (E42, 413, "body_too_large"),
            Self::ContentType => (E40, 415, "content_type"),
            Self::BodyUnreadable => (E40, 400, "body_unreadable"),
            Self::Parse(e) => parse_code(e),
            Self::SchemaVersion(_) => (E47, 400, "schema_version"),
            Self::UnknownSrv(_) => (E44, 400, "unknown_srv"),
            Self::NotRequestable(_) => (E44, 400, "srv_not_requestable"),
            Self::ServiceReferenceMismatch(_) => (E44, 400, "service_reference_mismatch"),
            Self::BodyMismatch { .. } => (E45, 400, "body_mismatch"),
            Self::CommandVariantNotAllowed { .. } => (E12, 400, "command_variant"),
            Self::WrongService { .. } => (E13, 400, "wrong_service"),
            Self::UnknownUser(_) => (E1, 403, "unknown_user"),
            Self::PartyMismatch { .. } => (E46, 403, "party_mismatch"),
            Self::Signature(e) => signature_code(e),
            Self::UnknownSigner => (E52, 403, "signer_unknown"),
            Self::Signer(SignerRefusal::NotValidNow) => (E53, 403, "signer_not_valid_now"),
            Self::Signer(SignerRefusal::Role(_)) => (E54, 403, "signer_role"),
            Self::Signer(SignerRefusal::KeyType) => (E54, 403, "signer_key_type"),
            Self::Signer(SignerRefusal::Untrusted) => (E55, 403, "signer_untrusted"),
            Self::Signer(SignerRefusal::OtherUser { .. }) => (E56, 403, "signer_other_user"),
            Self::Signer(SignerRefusal::Revoked) => (E58, 403, "signer_revoked"),
            Self::Denied(Denial::UnknownUser(_)) => (E1, 403, "user_unknown"),
            Self::Denied(Denial::RoleNotEligible(_)) => (E2, 403, "role_not_eligible"),
            Self::Denied(Denial::UserStatus) => (E3, 403, "user_status"),
            Self::Denied(Denial::UnknownDevice(_)) => (E19, 404, "device_unknown"),
            Self::Denied(Denial::NotRegistered) => (E4, 403, "not_registered"),
            Self::Denied(Denial::DeviceStatus(_)) => (E5, 409, "device_status"),
            Self::Denied(Denial::DeviceType { .. }) => (E11, 400, "device_type"),
            Self::ExecutionDateTime => (E40, 400, "execution_date_time"),
            Self::Replay(Replay::NotIncreasing { .. }) => (E57, 409, "replay"),
            Self::Replay(Replay::AheadOfClock { .. }) => (E43, 400, "counter_ahead"),
            Self::Timeout => (E60, 503, "timeout"),
            Self::Busy => (E60, 503, "busy"),
            Self::Shed(Shed::Overload(_)) => (E60, 503, "shed_overload"),
            Self::Shed(Shed::UserConcurrency) => (E61, 429, "shed_user_concurrency"),
            Self::Shed(Shed::UserRate) => (E61, 429, "shed_user_rate"),
            Self::SignAnswer => (E100, 500, "sign_answer"),
            Self::InventoryQuery(_) => (E40, 400, "inventory_query"),
            Self::InventoryEmpty => (E19, 404, "inventory_empty"),
            Self::Command(crate::routing::RoutingError::PayloadTooLarge(_)) => {
                (E42, 413, "command_too_large")
            }
            Self::Command(_) => (E100, 500, "command"),
            Self::ExecutionInPast => (E31, 400, "execution_in_past"),
            Self::ExecutionTooFar { .. } => (E31, 400, "execution_too_far"),
            Self::HoldsFull => (E69, 503, "holds_full"),
            Self::QuarantineFull => (E68, 503, "quarantine_full"),
            Self::ScheduleBody(ScheduleError::Over) => (E40, 400, "schedule_over"),
            Self::ScheduleBody(_) => (E40, 400, "schedule_body"),
            Self::SchedulesFull => (E70, 409, "schedules_full"),
            Self::ScheduleUnknown => (E71, 404, "schedule_unknown"),
            Self::ServiceBody(_) => (E40, 400, "service_body"),
            Self::InventoryChange(e) => change_code(e),
            Self::InventoryFieldNotHeld => (E080405, 400, "inventory_field_not_held"),
            Self::FirmwareNoDevice { ppmid: false } => (E110101, 400, "firmware_no_device"),
            Self::FirmwareNoDevice { ppmid: true } => (E110401, 400, "ppmid_firmware_no_device"),
            Self::FirmwareBusy => (E60, 503, "firmware_busy"),
            Self::CommandBody(CommandError::Content(ContentError::Frame(
                FrameError::TooLong { .. },
            ))) => (E42, 413, "command_too_large"),
            Self::CommandBody(_) => (E40, 400, "command_body"),
            Self::PreCommand(r) => precommand_code(r),
            Self::Outstanding { .. } => (E1008, 429, "outstanding"),
            Self::LocalResponse(LocalResponseRefusal::Body(_)) => (E40, 400, "local_response_body"),
            Self::LocalResponse(LocalResponseRefusal::Unknown) => {
                (E1010, 409, "local_command_unknown")
            }
            Self::LocalResponse(LocalResponseRefusal::NotTheResponse) => {
                (E1011, 400, "local_response_mismatch")
            }
            Self::Resource { resource, .. } => (E100, 503, resource.label()),
        }
    }

    pub fn cause(&self) -> Cause {
        match self {
            Self::Command(crate::routing::RoutingError::PayloadTooLarge(_)) => Cause::Sender,
            Self::InventoryChange(ChangeError::NoSuchRegistration { .. })
            | Self::InventoryChange(ChangeError::TooManyModels) => Cause::Gateway,
            Self::Timeout
            | Self::Busy
            | Self::Shed(Shed::Overload(_))
            | Self::SignAnswer
            | Self::Command(_)
            | Self::Resource { .. }
            | Self::HoldsFull
            | Self::QuarantineFull
            | Self::SchedulesFull
            | Self::FirmwareBusy => Cause::Gateway,
            Self::BodyTooLarge { .. }
            | Self::ContentType
            | Self::BodyUnreadable
            | Self::Parse(_)
            | Self::SchemaVersion(_)
            | Self::UnknownSrv(_)
            | Self::NotRequestable(_)
            | Self::ServiceReferenceMismatch(_)
            | Self::BodyMismatch { .. }
            | Self::CommandVariantNotAllowed { .. }
            | Self::WrongService { .. }
            | Self::UnknownUser(_)
            | Self::PartyMismatch { .. }
            | Self::Signature(_)
            | Self::UnknownSigner
            | Self::Signer(_)
            | Self::Replay(Replay::NotIncreasing { .. } | Replay::AheadOfClock { .. })
            | Self::Denied(_)
            | Self::ExecutionDateTime
            | Self::InventoryQuery(_)
            | Self::InventoryEmpty
            | Self::ExecutionInPast
            | Self::ExecutionTooFar { .. }
            | Self::ScheduleBody(_)
            | Self::ScheduleUnknown
            | Self::ServiceBody(_)
            | Self::InventoryChange(_)
            | Self::InventoryFieldNotHeld
            | Self::FirmwareNoDevice { .. }
            | Self::CommandBody(_)
            | Self::PreCommand(_)
            | Self::Outstanding { .. }
            | Self::LocalResponse(_)
            | Self::Shed(Shed::UserConcurrency | Shed::UserRate) => Cause::Sender,
        }
    }
}

/// The code of a device request's Service Response when the device gave no answer.
pub const fn device_failure_code(failure: DeviceFailure) -> ResponseCode {
    match failure {
        DeviceFailure::Unreachable => ResponseCode::E20,
        DeviceFailure::NoAnswer => ResponseCode::E21,
        DeviceFailure::Refused => ResponseCode::E1007,
    }
}

fn precommand_code(r: &PreCommandRefusal) -> (ResponseCode, u16, &'static str) {
    use ResponseCode::*;
    match r {
        PreCommandRefusal::Body(_) => (E40, 400, "signed_precommand_body"),
        PreCommandRefusal::Unknown => (E1000, 409, "precommand_unknown"),
        PreCommandRefusal::Used => (E1001, 409, "precommand_used"),
        PreCommandRefusal::Expired => (E1003, 409, "precommand_expired"),
        PreCommandRefusal::NotThePreCommand => (E1004, 400, "precommand_changed"),
        PreCommandRefusal::NoCertificate => (E1006, 403, "digital_signing_unknown"),
        PreCommandRefusal::BadSignature => (E1007, 403, "precommand_signature"),
    }
}

/// An inventory change that does not apply: the sender's, unless it is the cache's own bound.
fn change_code(e: &ChangeError) -> (ResponseCode, u16, &'static str) {
    use ResponseCode::*;
    match e {
        ChangeError::Invalid(_) => (E40, 400, "inventory_change"),
        ChangeError::UnknownDevice(_) => (E19, 404, "inventory_change_device"),
        ChangeError::ChfInUse { .. } => (E5, 409, "inventory_chf_in_use"),
        ChangeError::NoSuchRegistration { .. } => (E100, 500, "inventory_registration"),
        ChangeError::TooManyModels => (E100, 503, "inventory_models"),
    }
}

fn signature_code(e: &VerifyError) -> (ResponseCode, u16, &'static str) {
    use ResponseCode::*;
    match e {
        VerifyError::Profile(ProfileError::Missing) => (E48, 403, "signature_missing"),
        VerifyError::Profile(ProfileError::Algorithm { .. }) => (E49, 403, "signature_algorithm"),
        VerifyError::Profile(
            ProfileError::Multiple
            | ProfileError::Malformed(_)
            | ProfileError::Forbidden
            | ProfileError::TooDeep
            | ProfileError::Structure(_)
            | ProfileError::ReferenceUri
            | ProfileError::Encoding(_)
            | ProfileError::IssuerName
            | ProfileError::SerialNumber,
        )
        | VerifyError::Canonicalisation(_) => (E48, 403, "signature_malformed"),
        VerifyError::Digest => (E50, 403, "signature_digest"),
        VerifyError::SignatureValue => (E51, 403, "signature_value"),
    }
}

mod parse;

use parse::parse_code;

#[cfg(test)]
mod tests;
