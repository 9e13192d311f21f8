//! The register of Digital Signing certificates: which certificates it takes, and the check of
//! a signed pre-command against the User's certificates (a changed byte, another User's key, a
//! certificate of the wrong role, an expired or untrusted one).

use std::path::Path;

use time::{Duration, OffsetDateTime};

use super::*;
use crate::domain::Eui64;
use crate::gbcs::usecase::{command_frame, supply, Parties};
use crate::pki::{Ca, Issued, LeafSpec, Usage, Validity};
use crate::signer::Signer;
use crate::smki::Anchor;

const SUPPLIER: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]);
const SUPPLIER2: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x03, 0, 0]);
const METER: Eui64 = Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]);

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn ca() -> Ca {
    Ca::generate(
        "test IA",
        Validity::days_from(now() - Duration::days(1), 30),
    )
    .unwrap()
}

fn issue(ca: &Ca, role: SmkiRole, user: Eui64, usage: Usage, validity: Validity) -> Issued {
    ca.issue(&LeafSpec::new(role, user, usage, validity))
        .unwrap()
}

fn valid() -> Validity {
    Validity::days_from(now() - Duration::hours(1), 10)
}

fn anchors(ca: &Ca) -> Arc<Trust> {
    Arc::new(Trust::new(Anchor::from_pem(ca.cert_pem().as_bytes())))
}

fn signer(issued: &Issued) -> Signer {
    let p = Path::new("test");
    Signer::from_pem(
        (p, issued.key_pkcs8_pem.as_bytes()),
        (p, issued.cert_pem.as_bytes()),
        None,
    )
    .unwrap()
}

fn precommand() -> Vec<u8> {
    let parties = Parties {
        user: SUPPLIER,
        device: METER,
        counter: 1000,
    };
    command_frame(&parties, supply::MESSAGE_CODE, supply::content(1000), true)
        .encode()
        .unwrap()
}

#[test]
fn only_supplier_and_network_operator_digital_signing_certificates_are_taken() {
    let ca = ca();
    let mut certs = DigitalSigningCerts::new(anchors(&ca));
    let ds = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER,
        Usage::DigitalSigning,
        valid(),
    );
    certs.add(&ds.cert_der, Path::new("a")).unwrap();
    assert_eq!(
        certs.add(&ds.cert_der, Path::new("a")),
        Err(DsRefusal::Duplicate)
    );
    let xml = issue(
        &ca,
        SmkiRole::XmlSigning,
        SUPPLIER,
        Usage::XmlSigning,
        valid(),
    );
    assert_eq!(
        certs.add(&xml.cert_der, Path::new("b")),
        Err(DsRefusal::Role(SmkiRole::XmlSigning))
    );
    // The User's TLS client certificate has the same role and key usage, and clientAuth.
    let tls = issue(&ca, SmkiRole::Supplier, SUPPLIER, Usage::TlsClient, valid());
    assert_eq!(
        certs.add(&tls.cert_der, Path::new("t")),
        Err(DsRefusal::ExtendedKeyUsage)
    );
    let no = issue(
        &ca,
        SmkiRole::NetworkOperator,
        SUPPLIER2,
        Usage::DigitalSigning,
        valid(),
    );
    certs.add(&no.cert_der, Path::new("c")).unwrap();
    assert_eq!(certs.len(), 2);
    // At run time, an untrusted one is refused outright.
    let stranger = issue(
        &self::ca(),
        SmkiRole::Supplier,
        SUPPLIER2,
        Usage::DigitalSigning,
        valid(),
    );
    assert_eq!(
        certs.with_pem(&stranger.cert_pem, Path::new("admin")).err(),
        Some(DsRefusal::Untrusted)
    );
    let another = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER2,
        Usage::DigitalSigning,
        valid(),
    );
    let (next, user) = certs
        .with_pem(&another.cert_pem, Path::new("admin"))
        .unwrap();
    assert_eq!((user, next.len(), certs.len()), (SUPPLIER2, 3, 2));
}

#[test]
fn a_signed_pre_command_verifies_with_the_users_certificate_and_nothing_else() {
    let ca = ca();
    let mut certs = DigitalSigningCerts::new(anchors(&ca));
    let mine = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER,
        Usage::DigitalSigning,
        valid(),
    );
    let theirs = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER2,
        Usage::DigitalSigning,
        valid(),
    );
    certs.add(&mine.cert_der, Path::new("mine")).unwrap();
    certs.add(&theirs.cert_der, Path::new("theirs")).unwrap();
    let pre = precommand();
    let signed = gbcs::sign_precommand(&pre, &signer(&mine)).unwrap();
    let check =
        |user, role, signed: &[u8]| certs.verify_signed_precommand(user, role, now(), &pre, signed);
    assert!(check(SUPPLIER, SmkiRole::Supplier, &signed).is_ok());
    // A changed byte in the pre-command part: not the pre-command issued.
    let mut changed = signed.clone();
    changed[20] ^= 1;
    assert_eq!(
        check(SUPPLIER, SmkiRole::Supplier, &changed).unwrap_err(),
        PreCommandSignatureError::NotThePreCommand
    );
    // A changed byte in the signature: it does not verify.
    let mut forged = signed.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        check(SUPPLIER, SmkiRole::Supplier, &forged).unwrap_err(),
        PreCommandSignatureError::BadSignature
    );
    // Another User's key over the same pre-command.
    let other = gbcs::sign_precommand(&pre, &signer(&theirs)).unwrap();
    assert_eq!(
        check(SUPPLIER, SmkiRole::Supplier, &other).unwrap_err(),
        PreCommandSignatureError::BadSignature
    );
    // The User acting in a role it holds no certificate for.
    assert_eq!(
        check(SUPPLIER, SmkiRole::NetworkOperator, &signed).unwrap_err(),
        PreCommandSignatureError::NoCertificate(SmkiRole::NetworkOperator)
    );
    // The bare pre-command, unsigned.
    assert_eq!(
        check(SUPPLIER, SmkiRole::Supplier, &pre).unwrap_err(),
        PreCommandSignatureError::NotThePreCommand
    );
}

#[test]
fn expired_and_untrusted_certificates_are_never_used() {
    let ca = ca();
    let pre = precommand();
    let expired = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER,
        Usage::DigitalSigning,
        Validity::expired_at(now()),
    );
    let stranger_ca = self::ca();
    let untrusted = issue(
        &stranger_ca,
        SmkiRole::Supplier,
        SUPPLIER,
        Usage::DigitalSigning,
        valid(),
    );
    for issued in [expired, untrusted] {
        let mut certs = DigitalSigningCerts::new(anchors(&ca));
        certs.add(&issued.cert_der, Path::new("x")).unwrap();
        let signed = gbcs::sign_precommand(&pre, &signer(&issued)).unwrap();
        assert_eq!(
            certs
                .verify_signed_precommand(SUPPLIER, SmkiRole::Supplier, now(), &pre, &signed)
                .unwrap_err(),
            PreCommandSignatureError::NoCertificate(SmkiRole::Supplier)
        );
    }
}

#[test]
fn each_role_signs_with_its_organisation_certificate() {
    assert_eq!(signing_role(UserRole::ImportSupplier), SmkiRole::Supplier);
    assert_eq!(signing_role(UserRole::GasSupplier), SmkiRole::Supplier);
    assert_eq!(
        signing_role(UserRole::ElectricityDistributor),
        SmkiRole::NetworkOperator
    );
    assert_eq!(
        signing_role(UserRole::GasTransporter),
        SmkiRole::NetworkOperator
    );
    assert_eq!(signing_role(UserRole::OtherUser), SmkiRole::Other);
}

/// A certificate its issuer's CRL lists is refused at run time and never used when loaded.
#[test]
fn a_revoked_digital_signing_certificate_is_refused_and_never_used() {
    let ca = ca();
    let revoked = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER,
        Usage::DigitalSigning,
        valid(),
    );
    let crl_pem = ca
        .crl(
            &[revoked.cert_der.as_slice()],
            Validity::days_from(now(), 7),
        )
        .unwrap();
    let crl = rustls_pemfile::crls(&mut crl_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let mut trust = Trust::new(Anchor::from_pem(ca.cert_pem().as_bytes()));
    trust.add_crl(crl.as_ref()).unwrap();
    let mut certs = DigitalSigningCerts::new(Arc::new(trust));
    assert_eq!(
        certs.with_pem(&revoked.cert_pem, Path::new("admin")).err(),
        Some(DsRefusal::Revoked)
    );
    certs.add(&revoked.cert_der, Path::new("dir")).unwrap();
    let usable = certs.usable(SUPPLIER, SmkiRole::Supplier, now()).count();
    assert_eq!(usable, 0, "loaded, but never trusted");
    // Its twin, not on the list, is usable.
    let other = issue(
        &ca,
        SmkiRole::Supplier,
        SUPPLIER,
        Usage::DigitalSigning,
        valid(),
    );
    certs.add(&other.cert_der, Path::new("dir")).unwrap();
    assert_eq!(certs.usable(SUPPLIER, SmkiRole::Supplier, now()).count(), 1);
}
