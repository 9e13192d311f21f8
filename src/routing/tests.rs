use proptest::prelude::*;

use super::*;
use crate::catalogue::Catalogue;
use crate::domain::{Eui64, UserRole};
use crate::testing::fixture::{self, Fleet, NETWORK_OPERATOR, SUPPLIER};

fn cv(v: u8) -> CommandVariant {
    CommandVariant::try_from(v).unwrap()
}

fn rid(originator: UserId, target: DeviceId, counter: u64) -> RequestId {
    RequestId {
        originator,
        target,
        counter,
    }
}

#[test]
fn a_command_needs_a_permit_that_matches_it() {
    let fleet = Fleet::new(2);
    let esme = fleet.esmes[0];
    let permit = fleet.permit(SUPPLIER, esme, "4.1.1");
    let ok = Command::from_permit(&permit, rid(SUPPLIER, esme, 7), cv(1), None, vec![1]).unwrap();
    assert_eq!(
        (ok.request_id().counter, ok.device(), ok.srv().to_string()),
        (7, esme, "4.1.1".to_owned())
    );

    let other = fleet.esmes[1];
    assert!(matches!(
        Command::from_permit(&permit, rid(SUPPLIER, other, 7), cv(1), None, vec![]),
        Err(RoutingError::TargetMismatch { target, permitted }) if target == other && permitted == esme
    ));
    assert!(matches!(
        Command::from_permit(&permit, rid(NETWORK_OPERATOR, esme, 7), cv(1), None, vec![]),
        Err(RoutingError::OriginatorMismatch { .. })
    ));
    for v in [2, 4, 6, 8] {
        assert!(
            matches!(
                Command::from_permit(&permit, rid(SUPPLIER, esme, 7), cv(v), None, vec![]),
                Err(RoutingError::NotSentToDevice(x)) if x == cv(v)
            ),
            "CV{v}"
        );
    }
    for v in [1, 3, 5, 7] {
        assert!(sent_to_device(cv(v)));
    }
    let big = vec![0; MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(
        Command::from_permit(&permit, rid(SUPPLIER, esme, 7), cv(1), None, big),
        Err(RoutingError::PayloadTooLarge(_))
    ));
}

#[test]
fn a_non_device_permit_makes_no_command() {
    let fleet = Fleet::new(1);
    let entry = Catalogue::builtin()
        .iter()
        .find(|e| e.non_device && e.roles.contains(&UserRole::ImportSupplier))
        .expect("a non-device SRV open to suppliers");
    let permit = fleet.permit(SUPPLIER, crate::domain::DCC_ID, &entry.srv.to_string());
    assert!(matches!(
        Command::from_permit(&permit, rid(SUPPLIER, crate::domain::DCC_ID, 1), cv(1), None, vec![]),
        Err(RoutingError::NonDevice(s)) if s == entry.srv
    ));
}

#[test]
fn signed_commands_verify_and_keep_every_field() {
    let fleet = Fleet::new(1);
    let (signer, verifier, _) = fixture::broker();
    let permit = fleet.permit(SUPPLIER, fleet.esmes[0], "1.1.1");
    for (execute_at, payload) in [
        (None, vec![]),
        (Some(1_800_000_000), b"\xDF\x09payload".to_vec()),
        (Some(-5), vec![0xAB; MAX_PAYLOAD_BYTES]),
    ] {
        let cmd = Command::from_permit(
            &permit,
            rid(SUPPLIER, fleet.esmes[0], u64::MAX),
            cv(5),
            execute_at,
            payload,
        )
        .unwrap();
        let signed = signer.sign(&cmd).unwrap();
        assert!(signed.as_bytes().len() <= MAX_COMMAND_BYTES);
        assert_eq!(verifier.verify(signed.as_bytes()).unwrap(), cmd);
        let h = signed.header().unwrap();
        assert_eq!(
            (h.request_id, h.srv, h.variant, h.device, h.execute_at),
            (
                cmd.request_id(),
                cmd.srv(),
                cmd.variant(),
                cmd.device(),
                execute_at
            )
        );
    }
}

#[test]
fn forged_unsigned_and_untrusted_commands_are_refused() {
    let fleet = Fleet::new(1);
    let (signer, verifier, _) = fixture::broker();
    let good = fleet.command(&signer, fleet.esmes[0], "4.1.1", 1, None);
    let bytes = good.as_bytes();

    // Unsigned: the signature cut off.
    let unsigned = &bytes[..bytes.len() - 64];
    assert!(matches!(
        verifier.verify(unsigned),
        Err(RoutingError::Truncated)
    ));

    // Tampered: the counter changed after signing.
    let mut tampered = bytes.to_vec();
    tampered[4 + 1 + 16 + 7] ^= 1;
    assert!(matches!(
        verifier.verify(&tampered),
        Err(RoutingError::BadSignature)
    ));

    // Forged: another key signs, naming the trusted certificate.
    let (other, _, _) = fixture::broker();
    let forged_sig = other.sign(&good_command(&fleet)).unwrap();
    let mut forged = bytes[..bytes.len() - 64].to_vec();
    forged.extend_from_slice(&forged_sig.as_bytes()[forged_sig.as_bytes().len() - 64..]);
    assert!(matches!(
        verifier.verify(&forged),
        Err(RoutingError::BadSignature)
    ));

    // Untrusted: signed by a broker certificate the verifier does not hold.
    let stranger = fleet.command(&other, fleet.esmes[0], "4.1.1", 1, None);
    assert!(matches!(
        verifier.verify(stranger.as_bytes()),
        Err(RoutingError::UnknownSigner { .. })
    ));

    // Trailing bytes after the signature.
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(matches!(
        verifier.verify(&long),
        Err(RoutingError::TrailingBytes(1))
    ));
    assert!(matches!(verifier.verify(b"XXXX"), Err(RoutingError::Magic)));
    assert!(matches!(
        verifier.verify(&vec![0; MAX_COMMAND_BYTES + 1]),
        Err(RoutingError::TooLarge(_))
    ));
}

fn good_command(fleet: &Fleet) -> Command {
    let permit = fleet.permit(SUPPLIER, fleet.esmes[0], "4.1.1");
    Command::from_permit(
        &permit,
        rid(SUPPLIER, fleet.esmes[0], 1),
        cv(1),
        None,
        b"GBCS".to_vec(),
    )
    .unwrap()
}

#[test]
fn only_a_broker_certificate_signs_or_verifies() {
    use crate::signer::{self, SignerError};
    let (key, cert) = fixture::issue(SmkiRole::XmlSigning);
    assert!(matches!(
        fixture::broker_signer(&key, &cert),
        Err(SignerError::Broker {
            source: RoutingError::Role(SmkiRole::XmlSigning),
            ..
        })
    ));
    assert!(matches!(
        CommandVerifier::new(&[cert.as_bytes()]),
        Err(RoutingError::Role(SmkiRole::XmlSigning))
    ));
    let (_, broker_cert) = fixture::issue(SmkiRole::AccessControlBroker);
    assert!(matches!(
        fixture::broker_signer(&key, &broker_cert),
        Err(SignerError::Mismatch { .. })
    ));
    assert!(matches!(
        fixture::broker_signer("no key", &broker_cert),
        Err(SignerError::Key { .. })
    ));
    assert!(matches!(
        signer::command_signer(
            std::path::Path::new("/nonexistent/key"),
            std::path::Path::new("/x")
        ),
        Err(SignerError::Read { .. })
    ));
}

#[test]
fn signed_command_debug_shows_no_bytes() {
    let s = SignedCommand::from_bytes(vec![0x41; 10]);
    assert_eq!(format!("{s:?}"), "SignedCommand { len: 10, .. }");
    let _ = Eui64::from_bytes([0; 8]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (_, verifier, _) = verifier_once();
        prop_assert!(verifier.verify(&bytes).is_err());
        let _ = SignedCommand::from_bytes(bytes).header();
    }

    #[test]
    fn any_change_to_a_signed_command_is_refused(at in 0usize..200, flip in 1u8..=255, cut in 0usize..8) {
        let (signed, verifier, _) = verifier_once();
        let mut bytes = signed.as_bytes().to_vec();
        let at = at % bytes.len();
        bytes[at] ^= flip;
        prop_assert!(verifier.verify(&bytes).is_err());
        let mut short = signed.as_bytes().to_vec();
        short.truncate(short.len().saturating_sub(cut + 1));
        prop_assert!(verifier.verify(&short).is_err());
    }
}

/// One signed command and its verifier, made once (key generation is slow).
fn verifier_once() -> &'static (SignedCommand, CommandVerifier, ()) {
    static ONCE: std::sync::OnceLock<(SignedCommand, CommandVerifier, ())> =
        std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let fleet = Fleet::new(1);
        let (signer, verifier, _) = fixture::broker();
        let signed = fleet.command(&signer, fleet.esmes[0], "4.1.1", 42, Some(1_900_000_000));
        (signed, verifier, ())
    })
}
