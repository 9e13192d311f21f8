//! ECS42 (7.1), ECS52 (11.2), ECS17b (4.1.1) and the generic alerts against the public samples:
//! commands, responses and frames, field by field.

use time::macros::datetime;

use super::frames::sample;
use super::{assert_same_request, frame_with_signature_of, mac_wrapped_like};
use super::{METER, NETWORK_OPERATOR, SUPPLIER};
use crate::gbcs::dlms::{AccessResponse, DataNotification};
use crate::gbcs::usecase::{
    alert, alert_frame, command_frame, response_frame, response_to, Parties,
};
use crate::gbcs::usecase::{reads, supply};
use crate::gbcs::{Apdu, DlmsDateTime, MessageCode, SignatureField};
use crate::testing::anchors;

fn parties(user: crate::domain::Eui64, counter: u64) -> Parties {
    Parties {
        user,
        device: METER,
        counter,
    }
}

fn response_at() -> Option<DlmsDateTime> {
    Some(DlmsDateTime::from_utc(datetime!(2015-01-01 00:00:00 UTC)))
}

#[test]
fn enable_supply_ecs42() {
    let Some(anchors) = anchors() else { return };
    for (case, counter, result) in [("SUCCESS", 1000, 0), ("ERROR", 1001, 1)] {
        let name = format!("ECS42_7.1_{case}_PRECOMMAND_GBCS.HEX");
        let Apdu::Signing(expected) = sample(&anchors, &name) else {
            panic!("{name}")
        };
        let content = supply::content(counter);
        assert_same_request(&content, &expected.content, &name);
        let frame = command_frame(
            &parties(SUPPLIER, counter),
            supply::MESSAGE_CODE,
            content,
            true,
        );
        assert_eq!(frame, expected, "{name}");
        let command = sample(&anchors, &format!("ECS42_7.1_{case}_COMMAND_GBCS.HEX"));
        let signed = frame_with_signature_of(frame, &command);
        assert_eq!(
            mac_wrapped_like(signed, &command),
            command,
            "{case} command"
        );

        let name = format!("ECS42_7.1_{case}_RESPONSE_GBCS.HEX");
        let expected = sample(&anchors, &name);
        let content = supply::response_content(counter, result);
        let frame = response_frame(
            &parties(SUPPLIER, counter),
            supply::MESSAGE_CODE,
            None,
            content,
        );
        let answering = response_to(command.general_signing(), None, frame.content.clone());
        assert_eq!(answering, frame, "{name}: the response to the command");
        assert_eq!(
            Apdu::Signing(frame_with_signature_of(frame, &expected)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn read_firmware_version_ecs52() {
    let Some(anchors) = anchors() else { return };
    type Version = Result<&'static [u8], u8>;
    let cases: [(&str, u64, Version); 2] = [
        ("SUCCESS", 1000, Ok(&[0x01, 0x23, 0xAB, 0xCD])),
        ("ERROR", 1002, Err(1)),
    ];
    for (case, counter, version) in cases {
        let name = format!("ECS52_11.2_{case}_COMMAND_GBCS.HEX");
        let command = sample(&anchors, &name);
        let content = reads::firmware_version_content(counter);
        assert_same_request(&content, &command.general_signing().content, &name);
        let frame = command_frame(
            &parties(SUPPLIER, counter),
            reads::FIRMWARE_VERSION_CODE,
            content,
            false,
        );
        assert_eq!(frame.signature, SignatureField::Empty);
        assert_eq!(mac_wrapped_like(frame, &command), command, "{name}");

        let name = format!("ECS52_11.2_{case}_RESPONSE_GBCS.HEX");
        let expected = sample(&anchors, &name);
        let content = reads::firmware_version_response(counter, version);
        let frame = response_frame(
            &parties(SUPPLIER, counter),
            reads::FIRMWARE_VERSION_CODE,
            None,
            content,
        );
        assert_eq!(mac_wrapped_like(frame, &expected), expected, "{name}");
    }
}

#[test]
fn read_import_registers_ecs17b() {
    let Some(anchors) = anchors() else { return };
    let cases = [
        ("SINGLE_SUCCESS", SUPPLIER, 1000, true),
        ("TWIN_SUCCESS", NETWORK_OPERATOR, 1200, true),
        ("ERROR", SUPPLIER, 1001, false),
    ];
    for (case, user, counter, success) in cases {
        let name = format!("ECS17b_4.1.1_{case}_COMMAND_GBCS.HEX");
        let command = sample(&anchors, &name);
        let content = reads::import_registers_content(counter, user, METER);
        assert_same_request(&content, &command.general_signing().content, &name);
        let frame = command_frame(
            &parties(user, counter),
            reads::IMPORT_REGISTERS_CODE,
            content,
            false,
        );
        assert_eq!(mac_wrapped_like(frame, &command), command, "{name}");

        let name = format!("ECS17b_4.1.1_{case}_RESPONSE_GBCS.HEX");
        let expected = sample(&anchors, &name);
        let theirs = AccessResponse::decode(&expected.general_signing().content).unwrap();
        // The ciphertext comes from the device's key: take it from the sample.
        let protected = match theirs.data.first() {
            Some(crate::gbcs::dlms::Data::Structure(items)) => match &items[1] {
                crate::gbcs::dlms::Data::OctetString(bytes) => {
                    assert_eq!(bytes[0], 0x31, "{name}: authenticated and encrypted");
                    Some(reads::Protected {
                        invocation_counter: u32::from_be_bytes(bytes[1..5].try_into().unwrap()),
                        ciphertext_and_tag: bytes[5..].to_vec(),
                    })
                }
                other => panic!("{name}: {other:?}"),
            },
            _ => None,
        };
        assert_eq!(protected.is_some(), success, "{name}");
        let registers = protected.as_ref().ok_or(1);
        let content = reads::import_registers_response(counter, user, METER, registers);
        let ours = AccessResponse::decode(&content).unwrap();
        assert_eq!(ours.results, theirs.results, "{name}: results");
        assert_eq!(ours.data, theirs.data, "{name}: data");
        let frame = response_frame(
            &parties(user, counter),
            reads::IMPORT_REGISTERS_CODE,
            response_at(),
            content,
        );
        assert_eq!(mac_wrapped_like(frame, &expected), expected, "{name}");
    }
}

#[test]
fn generic_alerts_critical_signed_and_non_critical_behind_a_mac() {
    let Some(anchors) = anchors() else { return };
    let at = datetime!(2015-01-01 00:00:00 UTC);
    for (name, code) in [
        ("GCA-DLMS_NA_8F30_ALERT_GBCS.HEX", 0x8F30),
        ("GNCA-DLMS_NA_810E_ALERT_GBCS.HEX", 0x810E),
    ] {
        let expected = sample(&anchors, name);
        let (message_code, content) = alert::generic(2000, code, at);
        assert_eq!(
            DataNotification::decode(&content).unwrap(),
            DataNotification::decode(&expected.general_signing().content).unwrap(),
            "{name}"
        );
        let frame = alert_frame(METER, SUPPLIER, 2000, message_code, content);
        let ours = if alert::is_critical(code) {
            assert_eq!(message_code, MessageCode(0x1000));
            Apdu::Signing(frame_with_signature_of(frame, &expected))
        } else {
            assert_eq!(message_code, MessageCode(0x1001));
            mac_wrapped_like(frame, &expected)
        };
        assert_eq!(ours, expected, "{name}");
    }
}
