//! Frames: every public sample decodes and re-encodes to its own bytes; generated frames round
//! trip; any bytes decode or are refused without a panic; each refusal names the right cause.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::super::*;
use crate::domain::Eui64;
use crate::testing::anchors;

/// Every `*.HEX` sample under `gbcs-samples`, with its bytes.
pub(super) fn samples(anchors: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let root = anchors.join("gbcs-samples");
    for dir in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "HEX") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, hex(text.trim())));
            }
        }
    }
    out.sort();
    out
}

pub(super) fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The one sample whose file name ends with `suffix`.
pub(in crate::gbcs) fn sample(anchors: &Path, suffix: &str) -> Apdu {
    let all = samples(anchors);
    let found: Vec<_> = all
        .iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{suffix}");
    Apdu::decode(&found[0].1).unwrap()
}

fn kind(path: &Path) -> &'static str {
    let name = path.file_name().unwrap().to_string_lossy();
    ["_PRECOMMAND_", "_COMMAND_", "_RESPONSE_", "_ALERT_"]
        .into_iter()
        .find(|k| name.contains(k))
        .unwrap_or_else(|| panic!("{name}: not a command, pre-command, response or alert"))
}

#[test]
fn every_sample_decodes_and_re_encodes_to_the_same_bytes() {
    let Some(anchors) = anchors() else { return };
    let all = samples(&anchors);
    assert!(all.len() >= 60, "{} samples", all.len());
    for (path, bytes) in &all {
        let apdu = Apdu::decode(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&apdu.encode().unwrap(), bytes, "{}", path.display());
        let frame = apdu.general_signing();
        let (cra, mac, signature) = match kind(path) {
            // The DCC's form for the User to sign: no signature field, no MAC header.
            "_PRECOMMAND_" => (Cra::Command, false, Some(SignatureField::Absent)),
            // Every command travels behind the MAC header.
            "_COMMAND_" => (Cra::Command, true, None),
            "_RESPONSE_" => (Cra::Response, matches!(apdu, Apdu::Mac(_)), None),
            _ => (Cra::Alert, matches!(apdu, Apdu::Mac(_)), None),
        };
        assert_eq!(frame.transaction.cra, cra, "{}", path.display());
        assert_eq!(matches!(apdu, Apdu::Mac(_)), mac, "{}", path.display());
        if let Some(signature) = signature {
            assert_eq!(frame.signature, signature, "{}", path.display());
        }
    }
}

#[test]
fn a_command_is_its_pre_command_signed_and_wrapped() {
    let Some(anchors) = anchors() else { return };
    let all = samples(&anchors);
    let mut pairs = 0;
    for (path, pre) in all.iter().filter(|(p, _)| kind(p) == "_PRECOMMAND_") {
        let command_path = path.to_string_lossy().replace("_PRECOMMAND_", "_COMMAND_");
        let (_, command) = all
            .iter()
            .find(|(p, _)| p.to_string_lossy() == command_path)
            .unwrap();
        let Apdu::Mac(wrapped) = Apdu::decode(command).unwrap() else {
            panic!("{command_path}: no MAC header")
        };
        let SignatureField::Ecdsa(_) = wrapped.inner.signature else {
            panic!("{command_path}: not signed")
        };
        let inner = wrapped.inner.encode().unwrap();
        assert_eq!(&inner[..pre.len()], &pre[..], "{command_path}");
        assert_eq!(inner.len(), pre.len() + 65, "{command_path}");
        assert_eq!(inner[pre.len()], 0x40, "{command_path}");
        pairs += 1;
    }
    assert!(pairs >= 14, "{pairs} pre-command / command pairs");
}

#[test]
fn the_header_fields_read_as_the_samples_have_them() {
    let Some(anchors) = anchors() else { return };
    let supplier = Eui64::from_compact_hex("90B3D51F30010000").unwrap();
    let meter = Eui64::from_compact_hex("00DB1234567890A0").unwrap();

    let pre = sample(&anchors, "ECS42_7.1_SUCCESS_PRECOMMAND_GBCS.HEX");
    let f = pre.general_signing();
    assert_eq!(f.transaction.counter, 1000);
    assert_eq!((f.originator, f.recipient), (supplier, meter));
    assert_eq!(f.date_time, None);
    assert_eq!(f.other.message_code, MessageCode(0x004F));
    assert_eq!(f.other.supplement, Supplement::None);
    assert_eq!(f.content.len(), 21);

    let response = sample(
        &anchors,
        "ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_RESPONSE_GBCS.HEX",
    );
    let f = response.general_signing();
    assert_eq!((f.originator, f.recipient), (meter, supplier));
    assert_eq!(f.transaction.counter, 1006);
    assert_eq!(
        f.date_time,
        Some(DlmsDateTime([
            0x07, 0xDF, 1, 1, 0xFF, 0, 0, 0, 0, 0x80, 0, 0xFF
        ]))
    );

    let Apdu::Mac(read) = sample(&anchors, "ECS52_11.2_SUCCESS_COMMAND_GBCS.HEX") else {
        panic!("no MAC header")
    };
    assert_eq!(read.invocation_counter, 0);
    assert_eq!(read.inner.signature, SignatureField::Empty);
    assert_eq!(read.inner.other.message_code, MessageCode(0x0059));
}

fn frame(content: Vec<u8>, signature: SignatureField) -> GeneralSigning {
    GeneralSigning {
        transaction: TransactionId {
            cra: Cra::Command,
            counter: 1000,
        },
        originator: Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 1, 0, 0]),
        recipient: Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]),
        date_time: None,
        other: OtherInformation {
            message_code: MessageCode(0x0059),
            supplement: Supplement::None,
        },
        content,
        signature,
    }
}

#[test]
fn refusals_name_their_cause() {
    let good = frame(vec![1, 2, 3], SignatureField::Empty)
        .encode()
        .unwrap();
    assert!(GeneralSigning::decode(&good).is_ok());
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![], FrameError::Truncated { at: 0 }),
        (vec![0xE0, 0], FrameError::Tag { tag: 0xE0 }),
        (good[..10].to_vec(), FrameError::Truncated { at: 3 }),
        (
            [&good[..], &[0]].concat(),
            FrameError::Trailing { at: good.len() },
        ),
        (with(&good, 2, 4), FrameError::Cra { value: 4 }),
        (with(&good, 11, 7), FrameError::Unexpected { at: 11 }),
        (with(&good, 29, 2), FrameError::DateTimeLength { len: 2 }),
        (
            with(&good, 30, 0),
            FrameError::OtherInformationLength { len: 0 },
        ),
        (
            vec![0; MAX_FRAME_LEN + 1],
            FrameError::TooLong {
                len: MAX_FRAME_LEN + 1,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(Apdu::decode(&input), Err(expected), "{input:02X?}");
    }
    // A length in a longer form than it needs.
    let mut long_form = good[..33].to_vec();
    long_form.extend_from_slice(&[0x81, 3, 1, 2, 3, 0]);
    assert_eq!(Apdu::decode(&long_form), Err(FrameError::Length { at: 33 }));
    // A signature that is neither empty nor 64 octets.
    let mut short_sig = good[..good.len() - 1].to_vec();
    short_sig.extend_from_slice(&[2, 1, 2]);
    assert_eq!(
        Apdu::decode(&short_sig),
        Err(FrameError::SignatureLength { len: 2 })
    );
}

fn with(bytes: &[u8], at: usize, value: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] = value;
    out
}

#[test]
fn a_mac_header_with_encryption_or_parameters_is_refused() {
    let inner = frame(vec![9; 3], SignatureField::Empty);
    let wrapped = MacProtected {
        invocation_counter: 7,
        inner,
        mac: [0xAB; 12],
    }
    .encode()
    .unwrap();
    assert!(Apdu::decode(&wrapped).is_ok());
    let encrypted = with(&wrapped, 8, 0x31);
    assert_eq!(
        Apdu::decode(&encrypted),
        Err(FrameError::SecurityControl { value: 0x31 })
    );
    let with_transaction_id = with(&wrapped, 1, 9);
    assert_eq!(
        Apdu::decode(&with_transaction_id),
        Err(FrameError::Unexpected { at: 1 })
    );
}

#[test]
fn a_frame_over_the_bound_cannot_be_built() {
    let big = frame(vec![0; MAX_FRAME_LEN], SignatureField::Empty);
    assert!(matches!(big.encode(), Err(FrameError::TooLong { .. })));
}

fn arb_eui() -> impl Strategy<Value = Eui64> {
    any::<[u8; 8]>().prop_map(Eui64::from_bytes)
}

fn arb_supplement() -> impl Strategy<Value = Supplement> {
    prop_oneof![
        Just(Supplement::None),
        arb_eui().prop_map(|id| Supplement::RemoteParty { id }),
        (arb_eui(), any::<u64>())
            .prop_map(|(id, counter)| Supplement::RemotePartyCounter { id, counter }),
        (arb_eui(), any::<u64>(), any::<u64>()).prop_map(|(id, counter, originator_counter)| {
            Supplement::OriginatorCounter {
                id,
                counter,
                originator_counter,
            }
        }),
        (
            arb_eui(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 9..600)
        )
            .prop_map(|(id, counter, der)| Supplement::Certificate {
                id,
                counter,
                certificate: RemotePartyCertificate::new(der).unwrap(),
            }),
    ]
}

fn arb_signature() -> impl Strategy<Value = SignatureField> {
    prop_oneof![
        Just(SignatureField::Absent),
        Just(SignatureField::Empty),
        any::<[u8; 64]>().prop_map(SignatureField::Ecdsa),
    ]
}

fn arb_frame() -> impl Strategy<Value = GeneralSigning> {
    (
        (
            prop_oneof![Just(Cra::Command), Just(Cra::Response), Just(Cra::Alert)],
            any::<u64>(),
        ),
        arb_eui(),
        arb_eui(),
        proptest::option::of(any::<[u8; 12]>().prop_map(DlmsDateTime)),
        (any::<u16>(), arb_supplement()),
        proptest::collection::vec(any::<u8>(), 0..1200),
        arb_signature(),
    )
        .prop_map(
            |(
                (cra, counter),
                originator,
                recipient,
                date_time,
                (code, supplement),
                content,
                signature,
            )| {
                GeneralSigning {
                    transaction: TransactionId { cra, counter },
                    originator,
                    recipient,
                    date_time,
                    other: OtherInformation {
                        message_code: MessageCode(code),
                        supplement,
                    },
                    content,
                    signature,
                }
            },
        )
}

fn arb_apdu() -> impl Strategy<Value = Apdu> {
    prop_oneof![
        arb_frame().prop_map(Apdu::Signing),
        (any::<u32>(), arb_frame(), any::<[u8; 12]>()).prop_map(|(ic, inner, mac)| {
            Apdu::Mac(MacProtected {
                invocation_counter: ic,
                inner,
                mac,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_decode_or_are_refused_and_what_decodes_re_encodes_exactly(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        if let Ok(apdu) = Apdu::decode(&bytes) {
            prop_assert_eq!(apdu.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn a_valid_frame_with_bytes_changed_decodes_exactly_or_is_refused(
        apdu in arb_apdu(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6)
    ) {
        let mut bytes = apdu.encode().unwrap();
        for (at, value, how) in edits {
            let at = at.index(bytes.len() + 1);
            match how {
                0 if at < bytes.len() => bytes[at] = value,
                1 => bytes.insert(at, value),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        if let Ok(decoded) = Apdu::decode(&bytes) {
            prop_assert_eq!(decoded.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn valid_frames_round_trip(apdu in arb_apdu()) {
        let bytes = apdu.encode().unwrap();
        let decoded = Apdu::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &apdu);
        prop_assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn every_truncation_of_a_valid_frame_is_refused_or_a_pre_command(
        apdu in arb_apdu(), cut in any::<prop::sample::Index>()
    ) {
        let bytes = apdu.encode().unwrap();
        let cut = cut.index(bytes.len());
        if let Ok(shorter) = Apdu::decode(&bytes[..cut]) {
            // Only cutting a signature field off leaves a frame: the pre-command form.
            prop_assert_eq!(&shorter.general_signing().signature, &SignatureField::Absent);
        }
    }
}
