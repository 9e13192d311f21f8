//! The code table, row by row: each failure's DUIS code, HTTP status, reason and cause. A change
//! to `docs/response-codes.md` changes this table too.

use super::*;
use crate::domain::{RequestIdError, ResponseCode::*};
use crate::duis::MalformedKind;

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

fn cv(v: u8) -> CommandVariant {
    CommandVariant::try_from(v).unwrap()
}

#[test]
fn every_failure_has_its_documented_code() {
    let user: UserId = "90-B3-D5-1F-30-01-00-00".parse().unwrap();
    let other: UserId = "00-DB-12-34-56-78-00-04".parse().unwrap();
    let p = |e: ParseError| Error::Parse(e);
    let table: Vec<(Error, ResponseCode, u16, &str, Cause)> = vec![
        (
            Error::BodyTooLarge { limit: 1 },
            E42,
            413,
            "body_too_large",
            Cause::Sender,
        ),
        (Error::ContentType, E40, 415, "content_type", Cause::Sender),
        (
            Error::BodyUnreadable,
            E40,
            400,
            "body_unreadable",
            Cause::Sender,
        ),
        (
            p(ParseError::TooLarge { limit: 1 }),
            E42,
            413,
            "body_too_large",
            Cause::Sender,
        ),
        (
            p(ParseError::TooDeep { limit: 1 }),
            E42,
            400,
            "xml_too_deep",
            Cause::Sender,
        ),
        (
            p(ParseError::TooManyElements { limit: 1 }),
            E42,
            400,
            "xml_too_many_elements",
            Cause::Sender,
        ),
        (
            p(ParseError::TooManyAttributes { limit: 1 }),
            E42,
            400,
            "xml_too_many_attributes",
            Cause::Sender,
        ),
        (
            p(ParseError::TooManyNamespaces { limit: 1 }),
            E42,
            400,
            "xml_too_many_namespaces",
            Cause::Sender,
        ),
        (
            p(ParseError::TextTooLong { limit: 1 }),
            E42,
            400,
            "xml_text_too_long",
            Cause::Sender,
        ),
        (
            p(ParseError::Doctype),
            E41,
            400,
            "xml_doctype",
            Cause::Sender,
        ),
        (
            p(ParseError::ProcessingInstruction),
            E41,
            400,
            "xml_processing_instruction",
            Cause::Sender,
        ),
        (
            p(ParseError::EntityReference),
            E41,
            400,
            "xml_entity",
            Cause::Sender,
        ),
        (
            p(ParseError::NotUtf8),
            E40,
            400,
            "xml_malformed",
            Cause::Sender,
        ),
        (
            p(ParseError::Malformed {
                position: 0,
                kind: MalformedKind::UnexpectedEof,
            }),
            E40,
            400,
            "xml_malformed",
            Cause::Sender,
        ),
        (
            p(ParseError::TrailingContent),
            E40,
            400,
            "xml_malformed",
            Cause::Sender,
        ),
        (
            p(ParseError::WrongRoot),
            E40,
            400,
            "duis_structure",
            Cause::Sender,
        ),
        (
            p(ParseError::MissingHeaderField("RequestID")),
            E40,
            400,
            "duis_structure",
            Cause::Sender,
        ),
        (
            p(ParseError::SignatureNotLast),
            E40,
            400,
            "duis_structure",
            Cause::Sender,
        ),
        (
            p(ParseError::BadRequestId(RequestIdError::Shape)),
            E43,
            400,
            "request_id",
            Cause::Sender,
        ),
        (
            p(ParseError::BadPrecedingRequestId(RequestIdError::Counter)),
            E43,
            400,
            "request_id",
            Cause::Sender,
        ),
        (
            p(ParseError::BadCommandVariant),
            E12,
            400,
            "command_variant",
            Cause::Sender,
        ),
        (
            p(ParseError::BadSrv),
            E44,
            400,
            "unknown_srv",
            Cause::Sender,
        ),
        (
            Error::SchemaVersion("5.1".into()),
            E47,
            400,
            "schema_version",
            Cause::Sender,
        ),
        (
            Error::UnknownSrv(srv("99.1")),
            E44,
            400,
            "unknown_srv",
            Cause::Sender,
        ),
        (
            Error::NotRequestable(srv("8.5")),
            E44,
            400,
            "srv_not_requestable",
            Cause::Sender,
        ),
        (
            Error::ServiceReferenceMismatch(srv("4.1.1")),
            E44,
            400,
            "service_reference_mismatch",
            Cause::Sender,
        ),
        (
            Error::BodyMismatch { srv: srv("4.1.1") },
            E45,
            400,
            "body_mismatch",
            Cause::Sender,
        ),
        (
            Error::CommandVariantNotAllowed {
                srv: srv("4.1.1"),
                cv: cv(4),
            },
            E12,
            400,
            "command_variant",
            Cause::Sender,
        ),
        (
            Error::WrongService {
                service: DuisService::Dcc,
                cv: cv(1),
            },
            E13,
            400,
            "wrong_service",
            Cause::Sender,
        ),
        (
            Error::UnknownUser(user),
            E1,
            403,
            "unknown_user",
            Cause::Sender,
        ),
        (
            Error::PartyMismatch {
                client: user,
                originator: other,
            },
            E46,
            403,
            "party_mismatch",
            Cause::Sender,
        ),
        (
            Error::Replay(Replay::NotIncreasing {
                counter: 1,
                last: 2,
            }),
            E57,
            409,
            "replay",
            Cause::Sender,
        ),
        (
            Error::Replay(Replay::AheadOfClock {
                counter: u64::MAX,
                limit: 1,
            }),
            E43,
            400,
            "counter_ahead",
            Cause::Sender,
        ),
        (
            Error::resource(Resource::ReplayJournal, std::io::Error::other("disk")),
            E100,
            503,
            "journal",
            Cause::Gateway,
        ),
        (
            Error::resource(Resource::AuditTrail, std::io::Error::other("disk")),
            E100,
            503,
            "audit_trail",
            Cause::Gateway,
        ),
        (
            Error::Denied(Denial::UnknownUser(user)),
            E1,
            403,
            "user_unknown",
            Cause::Sender,
        ),
        (
            Error::Denied(Denial::RoleNotEligible(srv("1.1.1"))),
            E2,
            403,
            "role_not_eligible",
            Cause::Sender,
        ),
        (
            Error::Denied(Denial::UserStatus),
            E3,
            403,
            "user_status",
            Cause::Sender,
        ),
        (
            Error::Denied(Denial::UnknownDevice(other)),
            E19,
            404,
            "device_unknown",
            Cause::Sender,
        ),
        (
            Error::Denied(Denial::NotRegistered),
            E4,
            403,
            "not_registered",
            Cause::Sender,
        ),
        (
            Error::Denied(Denial::DeviceStatus(crate::domain::DeviceStatus::Withdrawn)),
            E5,
            409,
            "device_status",
            Cause::Sender,
        ),
        (
            Error::Denied(Denial::DeviceType {
                srv: "4.2".parse().unwrap(),
                device_type: crate::domain::DeviceType::Gsme,
            }),
            E11,
            400,
            "device_type",
            Cause::Sender,
        ),
        (
            Error::InventoryQuery(crate::duis::inventory::InventoryError::Mpxn),
            E40,
            400,
            "inventory_query",
            Cause::Sender,
        ),
        (
            Error::InventoryEmpty,
            E19,
            404,
            "inventory_empty",
            Cause::Sender,
        ),
        (
            Error::ExecutionDateTime,
            E40,
            400,
            "execution_date_time",
            Cause::Sender,
        ),
        (Error::Timeout, E60, 503, "timeout", Cause::Gateway),
        (Error::Busy, E60, 503, "busy", Cause::Gateway),
        (
            Error::Shed(Shed::Overload(crate::admission::Class::Bulk)),
            E60,
            503,
            "shed_overload",
            Cause::Gateway,
        ),
        (
            Error::Shed(Shed::UserConcurrency),
            E61,
            429,
            "shed_user_concurrency",
            Cause::Sender,
        ),
        (
            Error::Shed(Shed::UserRate),
            E61,
            429,
            "shed_user_rate",
            Cause::Sender,
        ),
        (
            Error::ExecutionInPast,
            E31,
            400,
            "execution_in_past",
            Cause::Sender,
        ),
        (
            Error::ExecutionTooFar { max_secs: 1 },
            E31,
            400,
            "execution_too_far",
            Cause::Sender,
        ),
        (Error::HoldsFull, E69, 503, "holds_full", Cause::Gateway),
        (
            Error::QuarantineFull,
            E68,
            503,
            "quarantine_full",
            Cause::Gateway,
        ),
        (
            Error::resource(Resource::QuarantineJournal, std::io::Error::other("disk")),
            E100,
            503,
            "quarantine_journal",
            Cause::Gateway,
        ),
        (
            Error::ScheduleBody(ScheduleError::RequestMismatch),
            E40,
            400,
            "schedule_body",
            Cause::Sender,
        ),
        (
            Error::ScheduleBody(ScheduleError::Over),
            E40,
            400,
            "schedule_over",
            Cause::Sender,
        ),
        (
            Error::SchedulesFull,
            E70,
            409,
            "schedules_full",
            Cause::Gateway,
        ),
        (
            Error::ScheduleUnknown,
            E71,
            404,
            "schedule_unknown",
            Cause::Sender,
        ),
        (
            Error::resource(Resource::HoldJournal, std::io::Error::other("disk")),
            E100,
            503,
            "hold_journal",
            Cause::Gateway,
        ),
        (
            Error::resource(Resource::ScheduleJournal, std::io::Error::other("disk")),
            E100,
            503,
            "schedule_journal",
            Cause::Gateway,
        ),
        (Error::SignAnswer, E100, 500, "sign_answer", Cause::Gateway),
        (
            Error::Command(crate::routing::RoutingError::PayloadTooLarge(70_000)),
            E42,
            413,
            "command_too_large",
            Cause::Sender,
        ),
        (
            Error::Command(crate::routing::RoutingError::Truncated),
            E100,
            500,
            "command",
            Cause::Gateway,
        ),
        (
            Error::UnknownSigner,
            E52,
            403,
            "signer_unknown",
            Cause::Sender,
        ),
        (
            Error::Signer(SignerRefusal::NotValidNow),
            E53,
            403,
            "signer_not_valid_now",
            Cause::Sender,
        ),
        (
            Error::Signer(SignerRefusal::Role(crate::domain::SmkiRole::Supplier)),
            E54,
            403,
            "signer_role",
            Cause::Sender,
        ),
        (
            Error::Signer(SignerRefusal::Revoked),
            E58,
            403,
            "signer_revoked",
            Cause::Sender,
        ),
        (
            Error::Signer(SignerRefusal::Untrusted),
            E55,
            403,
            "signer_untrusted",
            Cause::Sender,
        ),
        (
            Error::Signer(SignerRefusal::OtherUser {
                certificate: user,
                originator: other,
            }),
            E56,
            403,
            "signer_other_user",
            Cause::Sender,
        ),
        (
            Error::Signature(VerifyError::Profile(ProfileError::Missing)),
            E48,
            403,
            "signature_missing",
            Cause::Sender,
        ),
        (
            Error::Signature(VerifyError::Profile(ProfileError::Algorithm {
                field: "digest",
                found: String::new(),
            })),
            E49,
            403,
            "signature_algorithm",
            Cause::Sender,
        ),
        (
            Error::Signature(VerifyError::Digest),
            E50,
            403,
            "signature_digest",
            Cause::Sender,
        ),
        (
            Error::Signature(VerifyError::SignatureValue),
            E51,
            403,
            "signature_value",
            Cause::Sender,
        ),
        (
            Error::ServiceBody(BodyError::Missing("DeviceID")),
            E40,
            400,
            "service_body",
            Cause::Sender,
        ),
        (
            Error::InventoryChange(ChangeError::Invalid(crate::registry::RowProblem::Model)),
            E40,
            400,
            "inventory_change",
            Cause::Sender,
        ),
        (
            Error::InventoryChange(ChangeError::UnknownDevice(user)),
            E19,
            404,
            "inventory_change_device",
            Cause::Sender,
        ),
        (
            Error::InventoryChange(ChangeError::ChfInUse { device: user }),
            E5,
            409,
            "inventory_chf_in_use",
            Cause::Sender,
        ),
        (
            Error::InventoryChange(ChangeError::NoSuchRegistration {
                role: crate::domain::UserRole::ImportSupplier,
                user,
                at: 0,
            }),
            E100,
            500,
            "inventory_registration",
            Cause::Gateway,
        ),
        (
            Error::InventoryChange(ChangeError::TooManyModels),
            E100,
            503,
            "inventory_models",
            Cause::Gateway,
        ),
        (
            Error::InventoryFieldNotHeld,
            E080405,
            400,
            "inventory_field_not_held",
            Cause::Sender,
        ),
        (
            Error::FirmwareNoDevice { ppmid: false },
            E110101,
            400,
            "firmware_no_device",
            Cause::Sender,
        ),
        (
            Error::FirmwareNoDevice { ppmid: true },
            E110401,
            400,
            "ppmid_firmware_no_device",
            Cause::Sender,
        ),
        (
            Error::FirmwareBusy,
            E60,
            503,
            "firmware_busy",
            Cause::Gateway,
        ),
        (
            Error::resource(Resource::ChangeLog, std::io::Error::other("x")),
            E100,
            503,
            "change_log",
            Cause::Gateway,
        ),
        (
            Error::resource(Resource::FirmwareJournal, std::io::Error::other("x")),
            E100,
            503,
            "firmware_journal",
            Cause::Gateway,
        ),
    ];
    check(table);
}

fn check(table: Vec<(Error, ResponseCode, u16, &str, Cause)>) {
    for (error, code, status, reason, cause) in table {
        assert_eq!(error.classify(), (code, status, reason), "{error:?}");
        assert_eq!(error.cause(), cause, "{error:?}");
    }
}

/// The sender is told a fixed text; the detail (which may hold peer-supplied names) stays in
/// the log. No reason label is shared by codes that mean different things.
#[test]
fn reasons_identify_one_code_each() {
    use std::collections::HashMap;
    let errors = [
        Error::BodyTooLarge { limit: 1 },
        Error::Parse(ParseError::TooLarge { limit: 1 }),
        Error::Parse(ParseError::BadSrv),
        Error::UnknownSrv(srv("99.1")),
        Error::Parse(ParseError::BadCommandVariant),
        Error::CommandVariantNotAllowed {
            srv: srv("4.1.1"),
            cv: cv(4),
        },
    ];
    let mut seen: HashMap<&str, ResponseCode> = HashMap::new();
    for e in &errors {
        let (code, _, reason) = e.classify();
        assert_eq!(*seen.entry(reason).or_insert(code), code, "{reason}");
    }
}

#[test]
fn a_device_without_an_answer_is_e20_or_e21() {
    use crate::domain::DeviceFailure;
    assert_eq!(device_failure_code(DeviceFailure::Unreachable), E20);
    assert_eq!(device_failure_code(DeviceFailure::NoAnswer), E21);
    // A device that could not verify the User's signature on a critical command says so as the
    // gateway would have: E1007.
    assert_eq!(device_failure_code(DeviceFailure::Refused), E1007);
}

#[test]
fn the_critical_and_local_delivery_refusals_have_their_codes() {
    use crate::duis::body::BodyError;
    use crate::gbcs::command::CommandError;
    let pre = Error::PreCommand;
    let local = Error::LocalResponse;
    let body = || BodyError::Missing("GBCSPayload");
    check(vec![
        (
            Error::CommandBody(CommandError::Body(body())),
            E40,
            400,
            "command_body",
            Cause::Sender,
        ),
        (
            Error::CommandBody(CommandError::Content(
                crate::gbcs::FrameError::TooLong { len: 1 << 20 }.into(),
            )),
            E42,
            413,
            "command_too_large",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::Body(body())),
            E40,
            400,
            "signed_precommand_body",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::Unknown),
            E1000,
            409,
            "precommand_unknown",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::Used),
            E1001,
            409,
            "precommand_used",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::Expired),
            E1003,
            409,
            "precommand_expired",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::NotThePreCommand),
            E1004,
            400,
            "precommand_changed",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::NoCertificate),
            E1006,
            403,
            "digital_signing_unknown",
            Cause::Sender,
        ),
        (
            pre(PreCommandRefusal::BadSignature),
            E1007,
            403,
            "precommand_signature",
            Cause::Sender,
        ),
        (
            Error::Outstanding { max: 1 },
            E1008,
            429,
            "outstanding",
            Cause::Sender,
        ),
        (
            local(LocalResponseRefusal::Body(body())),
            E40,
            400,
            "local_response_body",
            Cause::Sender,
        ),
        (
            local(LocalResponseRefusal::Unknown),
            E1010,
            409,
            "local_command_unknown",
            Cause::Sender,
        ),
        (
            local(LocalResponseRefusal::NotTheResponse),
            E1011,
            400,
            "local_response_mismatch",
            Cause::Sender,
        ),
        (
            Error::resource(Resource::Ledger, std::io::Error::other("disk")),
            E100,
            503,
            "ledger",
            Cause::Gateway,
        ),
        (
            Error::resource(Resource::Outbox, std::io::Error::other("disk")),
            E100,
            503,
            "outbox",
            Cause::Gateway,
        ),
    ]);
}

/// `REASONS` is exactly the set of reason labels the classification gives (read from its
/// source, so a new reason cannot be left out), and every reason of the table above is in it.
#[test]
fn reasons_lists_every_reason_classify_gives() {
    use std::collections::BTreeSet;
    // The parser's codes are in a file of their own, read after the table.
    let source = [include_str!("mod.rs"), include_str!("parse.rs")].concat();
    let body = &source[source.find("pub fn classify").unwrap()..];
    let found: BTreeSet<&str> = body
        .match_indices(", \"")
        .filter_map(|(at, _)| {
            let rest = &body[at + 3..];
            let end = rest.find('"')?;
            rest[end..].starts_with("\")").then(|| &rest[..end])
        })
        .collect();
    // A failed resource's reason is its label (`Resource::label`).
    let labels = &source[source.find("pub const fn label").unwrap()..];
    let labels = &labels[..labels.find("\n    }\n").unwrap()];
    let found: BTreeSet<&str> = labels
        .match_indices("=> \"")
        .filter_map(|(at, _)| {
            let rest = &labels[at + 4..];
            Some(&rest[..rest.find('"')?])
        })
        .chain(found)
        .collect();
    let listed: BTreeSet<&str> = REASONS.iter().copied().collect();
    assert_eq!(listed.len(), REASONS.len(), "a reason is listed twice");
    assert_eq!(found, listed);
}
