//! Signatures over a frame: ours checked by openssl, openssl's checked by ours, and the public
//! command samples' User signatures checked with the public supplier Digital Signing certificate.

use std::path::Path;
use std::process::Command;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::frames::{sample, samples};
use super::{METER, SUPPLIER};
use crate::gbcs::usecase::{command_frame, supply, Parties};
use crate::gbcs::*;
use crate::identity::identity_from_pem;
use crate::testing::{anchors, have_tool};

struct TestKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl TestKey {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self { pair, rng }
    }

    fn public(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }
}

impl SignDigitally for TestKey {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignatureError> {
        let sig = self
            .pair
            .sign(&self.rng, message)
            .map_err(|_| SignatureError::Key)?;
        sig.as_ref().try_into().map_err(|_| SignatureError::Key)
    }
}

fn precommand(counter: u64) -> GeneralSigning {
    let parties = Parties {
        user: SUPPLIER,
        device: METER,
        counter,
    };
    command_frame(
        &parties,
        supply::MESSAGE_CODE,
        supply::content(counter),
        true,
    )
}

/// `r‖s` as the DER `ECDSA-Sig-Value` openssl reads and writes.
fn to_der(sig: &[u8; 64]) -> Vec<u8> {
    let int = |half: &[u8]| {
        let start = half.iter().position(|&b| b != 0).unwrap_or(31);
        let mut v = half[start..].to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        [vec![0x02, v.len() as u8], v].concat()
    };
    let body = [int(&sig[..32]), int(&sig[32..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

fn from_der(der: &[u8]) -> [u8; 64] {
    assert_eq!(der[0], 0x30);
    let mut out = [0u8; 64];
    let mut at = 2;
    for half in out.chunks_mut(32) {
        assert_eq!(der[at], 0x02);
        let len = usize::from(der[at + 1]);
        let v = &der[at + 2..at + 2 + len];
        let v = &v[v.len().saturating_sub(32)..];
        half[32 - v.len()..].copy_from_slice(v);
        at += 2 + len;
    }
    out
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .status()
        .unwrap()
        .success()
}

/// SubjectPublicKeyInfo for a P-256 point, DER.
fn spki(point: &[u8]) -> Vec<u8> {
    let prefix = super::frames::hex("3059301306072A8648CE3D020106082A8648CE3D030107034200");
    [prefix, point.to_vec()].concat()
}

#[test]
fn openssl_verifies_what_we_sign() {
    if !have_tool("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::new();
    let signed = sign(precommand(1000), &key).unwrap();
    let SignatureField::Ecdsa(sig) = &signed.signature else {
        panic!("not signed")
    };
    std::fs::write(dir.path().join("msg"), signed_bytes(&signed).unwrap()).unwrap();
    std::fs::write(dir.path().join("sig.der"), to_der(sig)).unwrap();
    std::fs::write(dir.path().join("pub.der"), spki(&key.public())).unwrap();
    let verify = ["dgst", "-sha256", "-verify", "pub.der", "-keyform", "DER"];
    let args = [&verify[..], &["-signature", "sig.der", "msg"]].concat();
    assert!(openssl(dir.path(), &args), "openssl refused our signature");

    // One byte of the frame changed: openssl refuses it too.
    let mut tampered = signed_bytes(&signed).unwrap();
    tampered[20] ^= 1;
    std::fs::write(dir.path().join("msg"), tampered).unwrap();
    assert!(
        !openssl(dir.path(), &args),
        "openssl accepted a tampered frame"
    );
}

#[test]
fn we_verify_what_openssl_signs() {
    if !have_tool("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem"
        ]
    ));
    assert!(openssl(
        d,
        &["ec", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"]
    ));
    let public = std::fs::read(d.join("pub.der")).unwrap();
    let point = &public[public.len() - 65..];

    let mut frame = precommand(1001);
    std::fs::write(d.join("msg"), signed_bytes(&frame).unwrap()).unwrap();
    assert!(openssl(
        d,
        &["dgst", "-sha256", "-sign", "key.pem", "-out", "sig.der", "msg"]
    ));
    frame.signature = SignatureField::Ecdsa(from_der(&std::fs::read(d.join("sig.der")).unwrap()));
    assert_eq!(verify(&frame, point), Ok(()));

    // The signed frame as the User sends it back is the pre-command, 0x40 and the signature.
    let pre = precommand(1001).encode().unwrap();
    let signed = frame.encode().unwrap();
    assert_eq!(
        verify_signed_precommand(&pre, &signed, point),
        Ok(frame.clone())
    );

    frame.transaction.counter += 1;
    assert_eq!(verify(&frame, point), Err(SignatureError::Invalid));
    let other = precommand(1002).encode().unwrap();
    assert_eq!(
        verify_signed_precommand(&other, &signed, point),
        Err(SignatureError::NotThePreCommand)
    );
    assert_eq!(
        verify_signed_precommand(&pre, &pre, point),
        Err(SignatureError::Unsigned)
    );
}

#[test]
fn a_user_signs_a_pre_command_as_the_dcc_tools_do() {
    let key = TestKey::new();
    let pre = precommand(7).encode().unwrap();
    let signed = signature::sign_precommand(&pre, &key).unwrap();
    assert_eq!(signed.len(), pre.len() + 65);
    assert_eq!(&signed[..pre.len()], &pre[..]);
    assert_eq!(signed[pre.len()], 0x40);
    assert!(verify_signed_precommand(&pre, &signed, &key.public()).is_ok());
    assert_eq!(
        signature::sign_precommand(&signed, &key),
        Err(SignatureError::AlreadySigned)
    );
    let wrong = TestKey::new();
    assert_eq!(
        verify_signed_precommand(&pre, &signed, &wrong.public()),
        Err(SignatureError::Invalid)
    );
}

/// The public supplier's Digital Signing key signed every User-signed command in the samples.
#[test]
fn the_sample_commands_verify_with_the_public_supplier_certificate() {
    let Some(anchors) = anchors() else { return };
    let pem = std::fs::read(anchors.join("certs/zaz1-public/Z1-supplier-ds.pem")).unwrap();
    let supplier = identity_from_pem(&pem).unwrap();
    assert_eq!(supplier.user_id, SUPPLIER);
    let mut verified = 0;
    for (path, bytes) in samples(&anchors) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let apdu = Apdu::decode(&bytes).unwrap();
        let SignatureField::Ecdsa(_) = apdu.general_signing().signature else {
            continue;
        };
        let result = verify_apdu(&apdu, &supplier.public_key);
        if name.contains("_COMMAND_") {
            assert_eq!(result, Ok(()), "{name}");
            let pre = sample(&anchors, &name.replace("_COMMAND_", "_PRECOMMAND_"));
            let inner = apdu.general_signing().encode().unwrap();
            let pre = pre.encode().unwrap();
            assert!(verify_signed_precommand(&pre, &inner, &supplier.public_key).is_ok());
            verified += 1;
        } else {
            // Responses and alerts are signed by the device, whose key is not public.
            assert_eq!(result, Err(SignatureError::Invalid), "{name}");
        }
    }
    assert_eq!(verified, 14);
}
