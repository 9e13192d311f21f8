use std::path::Path;

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::pki::{self, Ca, Validity};

/// The DCC's public test certificates (`../shared/anchors/certs/zaz1-public`), as DER.
fn public_certs() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = crate::testing::anchors()?.join("certs/zaz1-public");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let pem = std::fs::read(&path).unwrap();
        let der = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, der.as_ref().to_vec()));
    }
    out.sort();
    Some(out)
}

/// A CA named as the DCC's test issuing authority (`OU=07, CN=Z1`).
fn z1() -> Ca {
    let now = OffsetDateTime::now_utc();
    let validity = Validity {
        not_before: now - time::Duration::days(365 * 20),
        not_after: now + time::Duration::days(365 * 20),
    };
    Ca::generate("Z1", validity).unwrap()
}

fn trust_in(ca: &Ca) -> Trust {
    Trust::new(vec![Anchor::from_der(&ca.cert_der()).unwrap()])
}

/// The middle of a certificate's validity (unix seconds).
fn midlife(der: &[u8]) -> i64 {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    (c.validity().not_before.timestamp() + c.validity().not_after.timestamp()) / 2
}

#[test]
fn the_public_certificates_are_judged_by_their_role() {
    let Some(certs) = public_certs() else { return };
    let ca = z1();
    let trust = trust_in(&ca);
    let mut admitted = Vec::new();
    for (name, der) in &certs {
        let again = ca.reissue(der).unwrap();
        let got = trust.verify_tls_client(&again.cert_der, &[], midlife(der), Clients::Users);
        let role = crate::identity::identity_from_der(der).unwrap().role;
        match got {
            Ok(identity) => {
                assert!(is_user_tls_role(identity.role), "{name}");
                admitted.push(name.as_str());
            }
            Err(Refusal::Role(r)) => {
                assert_eq!(r, role, "{name}");
                assert!(!is_user_tls_role(r), "{name}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The suppliers' and network operators' organisation certificates, and only those.
    assert_eq!(
        admitted,
        [
            "Z1-networkOperator-ds.pem",
            "Z1-supplier-ds.pem",
            "Z1-supplier2-ds.pem",
            "Z1b-networkOperator-ds.pem",
            "Z1b-supplier-ds.pem",
        ]
    );
}

#[test]
fn the_public_certificates_are_refused_when_expired_or_untrusted() {
    let Some(certs) = public_certs() else { return };
    let (_, der) = certs
        .iter()
        .find(|(n, _)| n == "Z1-supplier-ds.pem")
        .unwrap();
    let ca = z1();
    let again = ca.reissue(der).unwrap();
    let (_, c) = X509Certificate::from_der(der).unwrap();
    let after = c.validity().not_after.timestamp() + 1;
    let before = c.validity().not_before.timestamp() - 1;
    let trust = trust_in(&ca);
    let verify = |t: &Trust, now| t.verify_tls_client(&again.cert_der, &[], now, Clients::Users);
    assert_eq!(verify(&trust, after), Err(Refusal::Expired));
    assert_eq!(verify(&trust, before), Err(Refusal::NotValidYet));
    // A CA of the same name but another key is not the issuer.
    assert_eq!(
        verify(&trust_in(&z1()), midlife(der)),
        Err(Refusal::UnknownIssuer)
    );
    // Without the re-issue, the public certificate's signature is the real Z1's.
    assert_eq!(
        trust.verify_tls_client(der, &[], midlife(der), Clients::Users),
        Err(Refusal::UnknownIssuer)
    );
}

/// `der` with one more extension, of OID `oid`, critical or not (its signature no longer holds:
/// re-issue it).
fn with_extension(der: &[u8], oid: &str, critical: bool) -> Vec<u8> {
    let mut cert = x509_cert::Certificate::from_der(der).unwrap();
    let ext = x509_cert::ext::Extension {
        extn_id: der::asn1::ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: der::asn1::OctetString::new(vec![0x05, 0x00]).unwrap(),
    };
    cert.tbs_certificate
        .extensions
        .get_or_insert_with(Vec::new)
        .push(ext);
    cert.to_der().unwrap()
}

#[test]
fn an_unknown_critical_extension_is_refused_and_a_known_one_is_not() {
    let Some(certs) = public_certs() else { return };
    let (_, der) = certs
        .iter()
        .find(|(n, _)| n == "Z1-supplier-ds.pem")
        .unwrap();
    let ca = z1();
    let trust = trust_in(&ca);
    let verify = |der: &[u8]| {
        let again = ca.reissue(der).unwrap();
        trust.verify_tls_client(&again.cert_der, &[], midlife(der), Clients::Users)
    };
    // The DCC's own: certificatePolicies critical.
    assert!(verify(der).is_ok());
    assert_eq!(
        verify(&with_extension(der, "1.2.3.4", true)),
        Err(Refusal::UnknownCriticalExtension("1.2.3.4".into()))
    );
    assert!(verify(&with_extension(der, "1.2.3.4", false)).is_ok());
}

#[test]
fn the_dev_pki_is_judged_by_purpose_and_role() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let made = pki::init(dir.path(), now).unwrap();
    let pem = std::fs::read(&made.ca.cert).unwrap();
    let trust = Trust::new(Anchor::from_pem(&pem));
    let der = |p: &Path| -> Vec<u8> {
        let pem = std::fs::read(p).unwrap();
        let first = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        first.as_ref().to_vec()
    };
    let t = now.unix_timestamp();
    for user in &made.users {
        let got = trust.verify_tls_client(&der(&user.tls.cert), &[], t, Clients::Users);
        assert_eq!(got.map(|i| i.user_id), Ok(user.user_id), "{}", user.name);
        // An XML-signing certificate is not a TLS client's: no such role at the DUIS port.
        let sign = trust.verify_tls_client(&der(&user.xml_sign.cert), &[], t, Clients::Users);
        assert_eq!(
            sign,
            Err(Refusal::Role(SmkiRole::XmlSigning)),
            "{}",
            user.name
        );
    }
    let acb = der(&made.dcc_acb.cert);
    assert_eq!(
        trust.verify_tls_client(&acb, &[], t, Clients::Users),
        Err(Refusal::Role(SmkiRole::AccessControlBroker))
    );
    assert!(trust
        .verify_tls_client(&acb, &[], t, Clients::AnyRole)
        .is_ok());
    // A server certificate's extended key usage is serverAuth only.
    assert_eq!(
        trust.verify_tls_client(&der(&made.server.cert), &[], t, Clients::AnyRole),
        Err(Refusal::ExtendedKeyUsage)
    );
    // The CA itself is no client.
    assert!(trust
        .verify_tls_client(&der(&made.ca.cert), &[], t, Clients::AnyRole)
        .is_err());
}

#[test]
fn a_crl_revokes_what_it_lists_and_only_its_issuer_may_sign_one() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let made = pki::init(dir.path(), now).unwrap();
    let ca = Ca::load(&made.ca.cert, &made.ca.key).unwrap();
    let pem = |p: &Path| std::fs::read(p).unwrap();
    let der_of = |p: &Path| -> Vec<u8> {
        let bytes = pem(p);
        let first = rustls_pemfile::certs(&mut bytes.as_slice())
            .next()
            .unwrap()
            .unwrap();
        first.as_ref().to_vec()
    };
    let supplier = der_of(&made.user("supplier").unwrap().tls.cert);
    let other = der_of(&made.user("network-operator").unwrap().tls.cert);
    let crl_pem = ca.crl(&[&supplier], Validity::days_from(now, 7)).unwrap();
    let crl = rustls_pemfile::crls(&mut crl_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let mut trust = Trust::new(Anchor::from_pem(&pem(&made.ca.cert)));
    let t = now.unix_timestamp();
    assert!(trust
        .verify_tls_client(&supplier, &[], t, Clients::Users)
        .is_ok());
    trust.add_crl(crl.as_ref()).unwrap();
    assert_eq!(
        trust.verify_tls_client(&supplier, &[], t, Clients::Users),
        Err(Refusal::Revoked)
    );
    assert!(trust
        .verify_tls_client(&other, &[], t, Clients::Users)
        .is_ok());
    assert_eq!(trust.revocations().len(), 1);
    assert_eq!(trust.revocations()[0].len(), 1);

    // A CRL signed by a stranger naming our CA is refused.
    let stranger = Ca::generate("dccgw dev IA", Validity::days_from(now, 7)).unwrap();
    let forged = stranger
        .crl(&[&other], Validity::days_from(now, 7))
        .unwrap();
    let forged = rustls_pemfile::crls(&mut forged.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(trust.add_crl(forged.as_ref()), Err(CrlError::UnknownIssuer));
    assert!(trust
        .verify_tls_client(&other, &[], t, Clients::Users)
        .is_ok());
    assert_eq!(trust.add_crl(b"not a crl"), Err(CrlError::Malformed));
}

#[test]
fn a_peer_may_not_send_a_pile_of_certificates() {
    let trust = Trust::default();
    let junk = vec![&b"x"[..]; MAX_PRESENTED + 1];
    assert_eq!(
        trust.verify_tls_client(b"x", &junk, 0, Clients::Users),
        Err(Refusal::TooManyPresented)
    );
    assert_eq!(
        trust.verify_tls_client(b"x", &[], 0, Clients::Users),
        Err(Refusal::Malformed)
    );
}
