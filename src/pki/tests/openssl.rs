//! The `openssl` CLI as the oracle: chains, subjects, keys, extensions, expiry.

use std::path::Path;
use std::process::{Command, Output};

use super::*;

fn have_openssl() -> bool {
    crate::testing::have_tool("openssl", "version")
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_certificate_verifies_against_the_ca() {
    if !have_openssl() {
        return;
    }
    let (_tmp, pki) = fresh_pki();
    for (cert, _, _) in leaf_certs(&pki) {
        let out = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            s(&pki.ca.cert),
            s(&cert),
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            cert.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout(&out).trim_end().ends_with(": OK"),
            "{}",
            stdout(&out)
        );
    }
    let ca = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        s(&pki.ca.cert),
        s(&pki.ca.cert),
    ]);
    assert!(ca.status.success(), "the CA verifies as its own anchor");
}

#[test]
fn subjects_are_in_the_smki_organisation_profile() {
    if !have_openssl() {
        return;
    }
    let (_tmp, pki) = fresh_pki();
    let u = |name: &str| pki.user(name).unwrap();
    let cases = [
        (&pki.ca.cert, "OU = 07, CN = dccgw dev IA".to_owned()),
        (
            &pki.server.cert,
            "CN = localhost, OU = 04, x500UniqueIdentifier = #03090090B3D51F30000002".to_owned(),
        ),
        (
            &pki.dcc_xml_sign.cert,
            "OU = 89, x500UniqueIdentifier = #03090090B3D51F30000002".to_owned(),
        ),
        (
            &pki.dcc_acb.cert,
            "OU = 04, x500UniqueIdentifier = #03090090B3D51F30000002".to_owned(),
        ),
        (
            &u("supplier").tls.cert,
            "CN = supplier, OU = 02, x500UniqueIdentifier = #03090090B3D51F30010000".to_owned(),
        ),
        (
            &u("supplier").xml_sign.cert,
            "OU = 87, x500UniqueIdentifier = #03090090B3D51F30010000".to_owned(),
        ),
        (
            &u("network-operator").tls.cert,
            "CN = network-operator, OU = 03, x500UniqueIdentifier = #03090090B3D51F30020000"
                .to_owned(),
        ),
        (
            &u("supplier2").xml_sign.cert,
            "OU = 87, x500UniqueIdentifier = #03090090B3D51F30030000".to_owned(),
        ),
        (
            &u("other-user").tls.cert,
            "CN = other-user, OU = 7F, x500UniqueIdentifier = #03090000DB123456780004".to_owned(),
        ),
        (
            &u("other-user").client_bundle,
            "CN = other-user, OU = 7F, x500UniqueIdentifier = #03090000DB123456780004".to_owned(),
        ),
    ];
    for (cert, subject) in cases {
        let out = openssl(&["x509", "-noout", "-subject", "-issuer", "-in", s(cert)]);
        assert!(out.status.success());
        let want = format!("subject={subject}\nissuer=OU = 07, CN = dccgw dev IA\n");
        assert_eq!(stdout(&out), want, "{}", cert.display());
    }
}

#[test]
fn every_key_reads_and_matches_its_certificate() {
    if !have_openssl() {
        return;
    }
    let (_tmp, pki) = fresh_pki();
    let mut pairs = vec![
        (&pki.ca.cert, &pki.ca.key),
        (&pki.server.cert, &pki.server.key),
    ];
    pairs.push((&pki.dcc_xml_sign.cert, &pki.dcc_xml_sign.key));
    pairs.push((&pki.dcc_acb.cert, &pki.dcc_acb.key));
    for u in &pki.users {
        pairs.extend([
            (&u.tls.cert, &u.tls.key),
            (&u.xml_sign.cert, &u.xml_sign.key),
        ]);
        pairs.push((&u.tls.cert, &u.client_bundle));
    }
    for (cert, key) in pairs {
        let from_key = openssl(&["pkey", "-in", s(key), "-pubout"]);
        assert!(from_key.status.success(), "{}", key.display());
        let text = stdout(&openssl(&["pkey", "-in", s(key), "-noout", "-text"]));
        assert!(text.contains("prime256v1"), "{}: {text}", key.display());
        let from_cert = openssl(&["x509", "-in", s(cert), "-noout", "-pubkey"]);
        assert_eq!(stdout(&from_key), stdout(&from_cert), "{}", key.display());
    }
    let pem = std::fs::read_to_string(&pki.ca.key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
}

#[test]
fn extensions_follow_the_profile() {
    if !have_openssl() {
        return;
    }
    let (_tmp, pki) = fresh_pki();
    let text = |p: &Path| stdout(&openssl(&["x509", "-noout", "-text", "-in", s(p)]));
    let ca = text(&pki.ca.cert);
    for want in [
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
        "X509v3 Basic Constraints: critical\n                CA:TRUE",
        "X509v3 Certificate Policies: critical\n                Policy: 1.2.826.0.1.8641679.1.2.1.4",
        "X509v3 Subject Key Identifier",
        "Signature Algorithm: ecdsa-with-SHA256",
        "ASN1 OID: prime256v1",
    ] {
        assert!(ca.contains(want), "CA lacks {want:?}:\n{ca}");
    }
    let sign = text(&pki.user("supplier").unwrap().xml_sign.cert);
    for want in [
        "X509v3 Key Usage: critical\n                Digital Signature\n",
        "X509v3 Basic Constraints: critical\n                CA:FALSE",
        "X509v3 Certificate Policies: critical\n                Policy: 1.2.826.0.1.8641679.1.2.1.4",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(sign.contains(want), "XML-signing cert lacks {want:?}:\n{sign}");
    }
    assert!(
        !sign.contains("Extended Key Usage"),
        "no EKU on a signing cert"
    );
    let client = text(&pki.user("supplier").unwrap().tls.cert);
    assert!(
        client
            .contains("X509v3 Extended Key Usage: \n                TLS Web Client Authentication"),
        "{client}"
    );
    assert!(
        client.contains("X509v3 Certificate Policies: \n"),
        "non-critical on TLS certs: {client}"
    );
    let server = text(&pki.server.cert);
    assert!(server.contains("TLS Web Server Authentication"), "{server}");
    let san = stdout(&openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        s(&pki.server.cert),
    ]));
    assert!(
        san.contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"),
        "{san}"
    );
}

#[test]
fn a_foreign_ca_does_not_verify() {
    if !have_openssl() {
        return;
    }
    let (tmp, pki) = fresh_pki();
    let foreign = Ca::generate("dccgw dev IA", Validity::days_from(now(), 10)).unwrap();
    let spec = LeafSpec::new(
        SmkiRole::XmlSigning,
        eui("90-B3-D5-1F-30-01-00-00"),
        Usage::XmlSigning,
        Validity::days_from(now(), 5),
    );
    let path = tmp.path().join("foreign.pem");
    std::fs::write(&path, foreign.issue(&spec).unwrap().cert_pem).unwrap();
    let out = openssl(&["verify", "-CAfile", s(&pki.ca.cert), s(&path)]);
    assert!(
        !out.status.success(),
        "same CA name, different key: must not verify"
    );
    let foreign_ca = tmp.path().join("foreign-ca.pem");
    std::fs::write(&foreign_ca, foreign.cert_pem()).unwrap();
    let out = openssl(&["verify", "-CAfile", s(&foreign_ca), s(&path)]);
    assert!(out.status.success(), "but it does against its own CA");
}

#[test]
fn an_expired_validity_is_really_expired() {
    if !have_openssl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::generate(
        "t",
        Validity::days_from(now() - time::Duration::days(60), 3650),
    )
    .unwrap();
    for (name, validity, live) in [
        ("expired", Validity::expired_at(now()), false),
        (
            "fresh",
            Validity::days_from(now() - time::Duration::hours(1), 30),
            true,
        ),
    ] {
        let spec = LeafSpec::new(SmkiRole::XmlSigning, DCC_ID, Usage::XmlSigning, validity);
        let path = tmp.path().join(format!("{name}.pem"));
        std::fs::write(&path, ca.issue(&spec).unwrap().cert_pem).unwrap();
        let out = openssl(&["x509", "-checkend", "0", "-noout", "-in", s(&path)]);
        assert_eq!(out.status.success(), live, "{name}");
    }
}
