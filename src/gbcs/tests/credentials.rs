//! CS02b (SRV 6.15.1, supplier by supplier) against the public samples, field by field: the
//! pre-command from the DUIS body's fields (the certificates as the sample carries them), the
//! device's responses with their execution outcome, and the future-dated 8F66/8F67 alerts.

use time::macros::datetime;

use super::frames::sample;
use super::{frame_with_signature_of, mac_wrapped_like, METER, SUPPLIER};
use crate::gbcs::usecase::credentials::*;
use crate::gbcs::usecase::{alert_frame, command_frame, response_frame};
use crate::gbcs::usecase::{Execution, Parties};
use crate::gbcs::{Apdu, DlmsDateTime};
use crate::testing::anchors;

/// The elements of a DER SEQUENCE (or any constructed value), each with its tag and length.
fn children(der: &[u8]) -> Vec<Vec<u8>> {
    fn length(b: &[u8], at: usize) -> (usize, usize) {
        match b[at] {
            n @ 0..=0x7F => (usize::from(n), at + 1),
            0x81 => (usize::from(b[at + 1]), at + 2),
            0x82 => (usize::from(b[at + 1]) << 8 | usize::from(b[at + 2]), at + 3),
            other => panic!("length form {other:#04X}"),
        }
    }
    let (len, start) = length(der, 1);
    assert_eq!(start + len, der.len(), "one value");
    let mut out = Vec::new();
    let mut at = start;
    while at < der.len() {
        let (n, body) = length(der, at + 1);
        out.push(der[at..body + n].to_vec());
        at = body + n;
    }
    out
}

const DS: TrustAnchorCell = TrustAnchorCell {
    role: RemotePartyRole::Supplier,
    key_usage: KeyUsage::DigitalSignature,
    prepayment_top_up: false,
};
const KA: TrustAnchorCell = TrustAnchorCell {
    key_usage: KeyUsage::KeyAgreement,
    ..DS
};
const KA_TOP_UP: TrustAnchorCell = TrustAnchorCell {
    prepayment_top_up: true,
    ..KA
};

/// The DUIS body's fields: the three replacement certificates (Digital Signing, Key Agreement,
/// Key Agreement Top-Up) and the certification path, taken from the sample's own content.
fn request(sample_content: &[u8], execution: Execution, cpv: bool) -> UpdateSecurityCredentials {
    let parts = children(sample_content);
    let certificates: Vec<Vec<u8>> = children(&parts[1])
        .iter()
        .map(|r| children(r)[0].clone())
        .collect();
    assert_eq!(certificates.len(), 3);
    UpdateSecurityCredentials {
        execution,
        mode: ReplacementMode::SupplierBySupplier,
        apply_time_based_cpv_checks: cpv,
        authorising: DS,
        new_floor_seq: Some(0),
        new_prepayment_top_up_floor_seq: Some(0),
        replacements: certificates
            .into_iter()
            .zip([DS, KA, KA_TOP_UP])
            .map(|(certificate, target)| Replacement {
                certificate,
                target,
            })
            .collect(),
        certification_path: children(&parts[2]),
    }
}

const FUTURE: time::OffsetDateTime = datetime!(2030-01-15 00:00:00 UTC);

fn cases() -> Vec<(&'static str, u64, Execution, bool)> {
    vec![
        ("IMMEDIATE_SUCCESS", 1000, Execution::Now, false),
        ("FUTURE_DATED_SUCCESS", 1001, Execution::At(FUTURE), true),
        ("CANCELLATION_SUCCESS", 1002, Execution::Cancel, true),
        ("IMMEDIATE_ERROR", 1003, Execution::Now, true),
        ("FUTURE_DATED_ERROR", 1004, Execution::At(FUTURE), true),
    ]
}

const PREFIX: &str = "CS02bSupplierBySupplier_6.15.1_";

#[test]
fn the_pre_commands_and_commands_are_built_from_the_request_fields() {
    let Some(anchors) = anchors() else { return };
    for (case, counter, execution, cpv) in cases() {
        let name = format!("{PREFIX}{case}_PRECOMMAND_GBCS.HEX");
        let Apdu::Signing(expected) = sample(&anchors, &name) else {
            panic!("{name}: not a bare pre-command")
        };
        let content = request(&expected.content, execution, cpv)
            .content(counter)
            .unwrap();
        let (ours, theirs) = (children(&content), children(&expected.content));
        assert_eq!(ours.len(), theirs.len(), "{name}: top-level fields");
        let (our_control, their_control) = (children(&ours[0]), children(&theirs[0]));
        for (i, (a, b)) in our_control.iter().zip(&their_control).enumerate() {
            assert_eq!(a, b, "{name}: authorising remote party control, field {i}");
        }
        assert_eq!(
            our_control.len(),
            their_control.len(),
            "{name}: control fields"
        );
        for (i, (a, b)) in children(&ours[1])
            .iter()
            .zip(&children(&theirs[1]))
            .enumerate()
        {
            assert_eq!(
                children(a)[1],
                children(b)[1],
                "{name}: replacement {i} cell"
            );
            assert_eq!(a, b, "{name}: replacement {i}");
        }
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate().skip(2) {
            assert_eq!(a, b, "{name}: field {i}");
        }
        assert_eq!(content, expected.content, "{name}: bytes");

        let parties = Parties {
            user: SUPPLIER,
            device: METER,
            counter,
        };
        let frame = command_frame(
            &parties,
            ReplacementMode::SupplierBySupplier.message_code(),
            content,
            true,
        );
        assert_eq!(frame, expected, "{name}");
        let command = name.replace("_PRECOMMAND_", "_COMMAND_");
        let signed = frame_with_signature_of(frame, &sample(&anchors, &command));
        assert_eq!(
            mac_wrapped_like(signed, &sample(&anchors, &command)),
            sample(&anchors, &command),
            "{command}"
        );
    }
}

/// The outcome the samples report: the Digital Signing and Key Agreement Top-Up cells replaced,
/// the Key Agreement cell replaced too or, in the error cases, left as it was (no trust anchor).
fn outcome(
    authorising_seq: u64,
    key_agreement_failed: bool,
    certificates: &[Vec<u8>],
) -> ExecutionOutcome {
    let held = |key_id: &str| (SUPPLIER, super::frames::hex(key_id));
    let mut outcomes = vec![
        ReplacementOutcome::replaced(DS, held("44899792D196F4B8"), &certificates[0]).unwrap(),
        ReplacementOutcome::replaced(KA, held("405B8C62687D8F70"), &certificates[1]).unwrap(),
        ReplacementOutcome::replaced(KA_TOP_UP, held("41FB49221588C570"), &certificates[2])
            .unwrap(),
    ];
    if key_agreement_failed {
        let ka = &mut outcomes[1];
        ka.status = 10;
        ka.replacing_key_id = ka.existing_key_id.clone();
    }
    ExecutionOutcome {
        authorising_seq,
        mode: ReplacementMode::SupplierBySupplier,
        seq_changes: vec![SeqNumberChange {
            role: RemotePartyRole::Supplier,
            floor: 0,
            prepayment_top_up_floor: Some(0),
        }],
        outcomes,
    }
}

fn certificates(anchors: &std::path::Path) -> Vec<Vec<u8>> {
    let pre = sample(
        anchors,
        &format!("{PREFIX}IMMEDIATE_SUCCESS_PRECOMMAND_GBCS.HEX"),
    );
    request(&pre.general_signing().content, Execution::Now, true)
        .replacements
        .into_iter()
        .map(|r| r.certificate)
        .collect()
}

#[test]
fn the_responses_carry_the_outcome_of_an_immediate_update() {
    let Some(anchors) = anchors() else { return };
    let certificates = certificates(&anchors);
    for (case, counter, execution, _) in cases() {
        let name = format!("{PREFIX}{case}_RESPONSE_GBCS.HEX");
        let expected = sample(&anchors, &name);
        let outcome = (execution == Execution::Now)
            .then(|| outcome(counter, case.ends_with("ERROR"), &certificates));
        let content = response_content(outcome.as_ref());
        assert_eq!(content, expected.general_signing().content, "{name}");
        let parties = Parties {
            user: SUPPLIER,
            device: METER,
            counter,
        };
        let at = DlmsDateTime::from_utc(datetime!(2015-01-01 00:00:00 UTC));
        let frame = response_frame(
            &parties,
            ReplacementMode::SupplierBySupplier.message_code(),
            Some(at),
            content,
        );
        assert_eq!(
            Apdu::Signing(frame_with_signature_of(frame, &expected)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn a_future_dated_update_reports_its_outcome_in_an_alert() {
    let Some(anchors) = anchors() else { return };
    let certificates = certificates(&anchors);
    let cases = [
        ("8F66_FUTURE_DATED_SUCCESS", 0x8F66, 2000, 1001, false),
        ("8F67_FUTURE_DATED_ERROR", 0x8F67, 2002, 1004, true),
    ];
    for (case, code, alert_counter, command_counter, failed) in cases {
        let name = format!("{PREFIX}{case}_ALERT_GBCS.HEX");
        let expected = sample(&anchors, &name);
        let content = alert_content(
            code,
            FUTURE,
            &outcome(command_counter, failed, &certificates),
        );
        for (i, (a, b)) in children(&content)
            .iter()
            .zip(&children(&expected.general_signing().content))
            .enumerate()
        {
            assert_eq!(a, b, "{name}: field {i}");
        }
        let frame = alert_frame(METER, SUPPLIER, alert_counter, ALERT_MESSAGE_CODE, content);
        assert_eq!(
            Apdu::Signing(frame_with_signature_of(frame, &expected)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn the_message_code_follows_the_replacement_mode() {
    assert_eq!(ReplacementMode::SupplierBySupplier.message_code().0, 0x0102);
    assert_eq!(ReplacementMode::RootBySupplier.message_code().0, 0x0100);
    assert_eq!(ReplacementMode::AnyByContingency.message_code().0, 0x0109);
}
