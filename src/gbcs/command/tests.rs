//! The commands built from DUIS requests, against the public samples: the request templates of
//! the named use cases give, from their fields alone, the samples' pre-commands and commands
//! byte for byte; every other request gets the body encoding under its use case's message code.

use std::path::Path;

use time::OffsetDateTime;

use super::*;
use crate::domain::{Eui64, RequestId};
use crate::duis::{self, Limits};
use crate::gbcs::tests::frames::sample;
use crate::gbcs::{Apdu, SignatureField};
use crate::testing::anchors;

/// The command for the request document `xml`, addressed to a device of `device_type`.
fn command_for(xml: &[u8], device_type: DeviceType, critical: bool) -> GeneralSigning {
    let parsed = duis::parse_request(xml, &Limits::default()).unwrap();
    let id: RequestId = parsed.header.request_id;
    let execution = parsed
        .execution_date_time
        .as_deref()
        .map(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap());
    let request = CommandRequest {
        srv: parsed.header.srv,
        device_type,
        parties: Parties {
            user: id.originator,
            device: id.target,
            counter: id.counter,
        },
        document: xml,
        body: parsed.body.clone(),
        execution,
        critical,
    };
    build(&request, &C14nLimits::default()).unwrap()
}

fn template(anchors: &Path, name: &str) -> Vec<u8> {
    std::fs::read(anchors.join("duis-samples").join(name)).unwrap()
}

/// A request for `srv` with `body` (an element in the `sr` namespace) and counter `counter`.
fn request_xml(srv: &str, body: &str, counter: u64) -> Vec<u8> {
    let reference = srv
        .rsplit_once('.')
        .map(|x| x.0)
        .filter(|r| r.contains('.'))
        .unwrap_or(srv);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}</sr:RequestID><sr:CommandVariant>4</sr:CommandVariant><sr:ServiceReference>{reference}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body>{body}</sr:Body></sr:Request>"#
    )
    .into_bytes()
}

#[test]
fn the_tariff_templates_give_the_samples_pre_commands_byte_for_byte() {
    let Some(anchors) = anchors() else { return };
    for (request, precommand) in [
        (
            "templates/ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_REQUEST_DUIS.XML",
            "ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_PRECOMMAND_GBCS.HEX",
        ),
        (
            "templates/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML",
            "ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX",
        ),
        (
            "requests/duis-parser__ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS.XML",
            "ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX",
        ),
    ] {
        let ours = command_for(&template(&anchors, request), DeviceType::Esme, true);
        let Apdu::Signing(expected) = sample(&anchors, precommand) else {
            panic!("{precommand}: not a bare pre-command")
        };
        crate::gbcs::tests::assert_same_request(&ours.content, &expected.content, precommand);
        assert_eq!(ours, expected, "{precommand}");
        assert_eq!(
            ours.encode().unwrap(),
            expected.encode().unwrap(),
            "{precommand}"
        );
    }
}

#[test]
fn the_reads_give_the_samples_commands_inside_their_mac_header() {
    let Some(anchors) = anchors() else { return };
    for (request, command) in [
        (
            "templates/ECS52_11.2_SUCCESS_REQUEST_DUIS.XML",
            "ECS52_11.2_SUCCESS_COMMAND_GBCS.HEX",
        ),
        (
            "templates/ECS17b_4.1.1_REQUEST_DUIS.XML",
            "ECS17b_4.1.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX",
        ),
    ] {
        let ours = command_for(&template(&anchors, request), DeviceType::Esme, false);
        let expected = sample(&anchors, command);
        assert_eq!(&ours, expected.general_signing(), "{command}");
        // The MAC header around it: the sample's layout, with the stand-in MAC.
        let sealed = Apdu::decode(&seal(ours).unwrap()).unwrap();
        let (Apdu::Mac(ours), Apdu::Mac(theirs)) = (&sealed, &expected) else {
            panic!("{command}: not behind a MAC header")
        };
        assert_eq!(ours.invocation_counter, theirs.invocation_counter);
        assert_eq!(ours.inner, theirs.inner);
        assert!(mac_holds(ours));
        assert!(!mac_holds(theirs), "the samples carry a real GBCS MAC");
    }
}

#[test]
fn enable_supply_gives_the_ecs42_pre_command() {
    let Some(anchors) = anchors() else { return };
    let xml = request_xml("7.1", "<sr:EnableSupply/>", 1000);
    let ours = command_for(&xml, DeviceType::Esme, true);
    let Apdu::Signing(expected) = sample(&anchors, "ECS42_7.1_SUCCESS_PRECOMMAND_GBCS.HEX") else {
        panic!("not a bare pre-command")
    };
    assert_eq!(ours, expected);
}

#[test]
fn a_supplier_credentials_update_is_cs02b_with_the_template_certificates() {
    let Some(anchors) = anchors() else { return };
    let xml = template(
        &anchors,
        "templates/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML",
    );
    let ours = command_for(&xml, DeviceType::Esme, true);
    let Apdu::Signing(expected) = sample(
        &anchors,
        "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_PRECOMMAND_GBCS.HEX",
    ) else {
        panic!("not a bare pre-command")
    };
    // The template (a later test data set) carries other certificates than the sample: the frame
    // and the authorising control agree, the certificates are the template's.
    assert_eq!(ours.other, expected.other);
    assert_eq!(ours.transaction, expected.transaction);
    assert_eq!(ours.signature, SignatureField::Absent);
    // The first field of the outer SEQUENCE (`30 82 nn nn`): the authorising control.
    let control = |content: &[u8]| {
        let len = usize::from(content[5]);
        content[4..6 + len].to_vec()
    };
    assert_eq!(control(&ours.content), control(&expected.content));
    let parsed = duis::parse_request(&xml, &Limits::default()).unwrap();
    let body = std::str::from_utf8(&xml[parsed.body]).unwrap();
    let first = body
        .split("<sr:DigitalSigningCertificate>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(first.trim())
        .unwrap();
    assert!(ours.content.windows(der.len()).any(|w| w == der));
}

#[test]
fn other_requests_carry_their_body_under_their_use_cases_message_code() {
    let Some(anchors) = anchors() else { return };
    // 1.1.1 to a gas meter is GCS01a (message code 0x006B), not ECS01a.
    let xml = template(
        &anchors,
        "templates/GCS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_REQUEST_DUIS.XML",
    );
    let ours = command_for(&xml, DeviceType::Gsme, true);
    let expected_code = Table::builtin()
        .use_case_for("1.1.1".parse().unwrap(), Target::Gas)
        .and_then(|u| u.message_code())
        .unwrap();
    assert_eq!(ours.other.message_code, expected_code);
    let read = body::read_command(&ours.content).unwrap();
    assert_eq!(read.srv.to_string(), "1.1.1");
    assert!(read
        .body
        .starts_with(b"<sr:UpdateImportTariffPrimaryElement"));
    // A use case with no public message code: the stand-in, and the SRV in the content.
    let xml = template(
        &anchors,
        "templates/ECS46d_6.14.3_IMMEDIATE_ALCS_SUCCESS_REQUEST_DUIS.XML",
    );
    let ours = command_for(&xml, DeviceType::Esme, true);
    assert_eq!(ours.other.message_code, NO_PUBLIC_CODE);
    assert_eq!(
        body::read_command(&ours.content).unwrap().srv.to_string(),
        "6.14.3"
    );
}

#[test]
fn a_non_critical_command_has_an_empty_signature_and_the_users_counter() {
    let xml = request_xml("11.2", "<sr:ReadFirmwareVersion/>", 77);
    let ours = command_for(&xml, DeviceType::Esme, false);
    assert_eq!(ours.signature, SignatureField::Empty);
    assert_eq!(ours.transaction.counter, 77);
    assert_eq!(
        ours.originator,
        Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0])
    );
}

#[test]
fn a_body_that_does_not_fit_its_use_case_is_refused_not_guessed() {
    let xml = request_xml(
        "1.1.1",
        "<sr:UpdateImportTariffPrimaryElement><sr:ElecTariffElements><sr:CurrencyUnits>XYZ</sr:CurrencyUnits></sr:ElecTariffElements></sr:UpdateImportTariffPrimaryElement>",
        5,
    );
    let parsed = duis::parse_request(&xml, &Limits::default()).unwrap();
    let request = CommandRequest {
        srv: parsed.header.srv,
        device_type: DeviceType::Esme,
        parties: Parties {
            user: parsed.header.request_id.originator,
            device: parsed.header.request_id.target,
            counter: 5,
        },
        document: &xml,
        body: parsed.body,
        execution: None,
        critical: true,
    };
    assert_eq!(
        build(&request, &C14nLimits::default()),
        Err(CommandError::Body(BodyError::Invalid("CurrencyUnits")))
    );
}

#[test]
fn the_duis_readers_bound_a_gbcs_payload_as_this_module_bounds_a_frame() {
    assert_eq!(
        crate::duis::critical::MAX_GBCS_PAYLOAD,
        crate::gbcs::MAX_FRAME_LEN
    );
}

proptest::proptest! {
    /// Any one byte of a tariff template changed: the command is built or refused, never a
    /// panic.
    #[test]
    fn a_changed_tariff_body_is_built_or_refused(at in 0usize..20_000, byte in proptest::prelude::any::<u8>()) {
        let Some(anchors) = anchors() else { return Ok(()) };
        let mut xml = template(&anchors, "templates/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML");
        let at = at % xml.len();
        xml[at] = byte;
        let Ok(parsed) = duis::parse_request(&xml, &Limits::default()) else { return Ok(()) };
        let id = parsed.header.request_id;
        let request = CommandRequest {
            srv: parsed.header.srv,
            device_type: DeviceType::Esme,
            parties: Parties { user: id.originator, device: id.target, counter: id.counter },
            document: &xml,
            body: parsed.body.clone(),
            execution: None,
            critical: true,
        };
        let _ = build(&request, &C14nLimits::default());
    }
}
