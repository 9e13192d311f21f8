//! The dev PKI against independent oracles: the `openssl` CLI and rustls' webpki.

mod openssl;
mod webpki;

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::*;
use crate::domain::{Eui64, SmkiRole, DCC_ID};
use crate::identity::{identity_from_pem, IdentityError};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn fresh_pki() -> (tempfile::TempDir, DevPki) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = init(&tmp.path().join("dev"), now()).unwrap();
    (tmp, pki)
}

fn eui(s: &str) -> Eui64 {
    s.parse().unwrap()
}

/// Every certificate file `init` writes, with the User ID and role it must carry.
fn leaf_certs(pki: &DevPki) -> Vec<(PathBuf, Eui64, SmkiRole)> {
    let mut out = vec![
        (
            pki.server.cert.clone(),
            DCC_ID,
            SmkiRole::AccessControlBroker,
        ),
        (
            pki.dcc_xml_sign.cert.clone(),
            DCC_ID,
            SmkiRole::DccXmlSigning,
        ),
        (
            pki.dcc_acb.cert.clone(),
            DCC_ID,
            SmkiRole::AccessControlBroker,
        ),
    ];
    for u in &pki.users {
        out.push((u.tls.cert.clone(), u.user_id, u.tls_role));
        out.push((u.client_bundle.clone(), u.user_id, u.tls_role));
        out.push((u.xml_sign.cert.clone(), u.user_id, SmkiRole::XmlSigning));
        if let Some(ds) = &u.digital_signing {
            out.push((ds.cert.clone(), u.user_id, u.tls_role));
        }
    }
    out
}

fn key_files(pki: &DevPki) -> Vec<PathBuf> {
    let mut out = vec![
        pki.ca.key.clone(),
        pki.server.key.clone(),
        pki.dcc_xml_sign.key.clone(),
        pki.dcc_acb.key.clone(),
    ];
    for u in &pki.users {
        out.extend([
            u.tls.key.clone(),
            u.xml_sign.key.clone(),
            u.client_bundle.clone(),
        ]);
        out.extend(u.digital_signing.iter().map(|ds| ds.key.clone()));
    }
    out
}

fn relative_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn init_writes_exactly_the_documented_files() {
    let (_tmp, pki) = fresh_pki();
    let mut want: Vec<String> = [
        "ca.pem",
        "ca.key.pem",
        "server.pem",
        "server.key.pem",
        "dcc-xml-sign.pem",
        "dcc-xml-sign.key.pem",
        "dcc-acb.pem",
        "dcc-acb.key.pem",
    ]
    .map(str::to_owned)
    .to_vec();
    for user in ["supplier", "network-operator", "supplier2", "other-user"] {
        for f in [
            "tls.pem",
            "tls.key.pem",
            "xml-sign.pem",
            "xml-sign.key.pem",
            "client.pem",
        ] {
            want.push(format!("users/{user}/{f}"));
        }
    }
    // Digital Signing keys for the roles that send critical requests.
    for user in ["supplier", "network-operator", "supplier2"] {
        for f in ["digital-signing.pem", "digital-signing.key.pem"] {
            want.push(format!("users/{user}/{f}"));
        }
    }
    want.sort();
    assert_eq!(relative_files(&pki.dir), want);

    let ids: Vec<(&str, String, SmkiRole)> = pki
        .users
        .iter()
        .map(|u| (u.name, u.user_id.to_string(), u.tls_role))
        .collect();
    assert_eq!(
        ids,
        [
            (
                "supplier",
                "90-B3-D5-1F-30-01-00-00".to_owned(),
                SmkiRole::Supplier
            ),
            (
                "network-operator",
                "90-B3-D5-1F-30-02-00-00".to_owned(),
                SmkiRole::NetworkOperator
            ),
            (
                "supplier2",
                "90-B3-D5-1F-30-03-00-00".to_owned(),
                SmkiRole::Supplier
            ),
            (
                "other-user",
                "00-DB-12-34-56-78-00-04".to_owned(),
                SmkiRole::Other
            ),
        ]
    );
    assert_eq!(
        pki.user("supplier2").map(|u| u.user_id),
        Some(eui("90-B3-D5-1F-30-03-00-00"))
    );
    assert!(pki.user("nobody").is_none());
}

#[cfg(unix)]
#[test]
fn keys_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, pki) = fresh_pki();
    for key in key_files(&pki) {
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    let mode = std::fs::metadata(&pki.ca.cert)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn refuses_to_overwrite_unless_forced() {
    let (_tmp, pki) = fresh_pki();
    let before = std::fs::read_to_string(&pki.ca.cert).unwrap();
    match init(&pki.dir, now()) {
        Err(PkiError::OutputExists { path }) => assert_eq!(path, pki.dir),
        other => panic!("expected OutputExists, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&pki.ca.cert).unwrap(),
        before,
        "untouched"
    );

    let again = init_force(&pki.dir, now()).unwrap();
    assert_ne!(
        std::fs::read_to_string(&again.ca.cert).unwrap(),
        before,
        "a new CA"
    );
    // An empty existing directory is fine without force.
    let empty = tempfile::tempdir().unwrap();
    assert!(init(empty.path(), now()).is_ok());
}

#[test]
fn our_identity_reader_reads_every_certificate() {
    let (_tmp, pki) = fresh_pki();
    for (path, user_id, role) in leaf_certs(&pki) {
        let got = identity_from_pem(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            (got.user_id, got.role),
            (user_id, role),
            "{}",
            path.display()
        );
        assert!(got.key_is_p256);
        assert_eq!(got.issuer.to_string(), "CN=dccgw dev IA,OU=07");
    }
    let ca = std::fs::read(&pki.ca.cert).unwrap();
    assert_eq!(
        identity_from_pem(&ca),
        Err(IdentityError::NoUserId),
        "the CA is not a User"
    );
}

#[test]
fn a_ca_loads_back_from_its_files() {
    let (_tmp, pki) = fresh_pki();
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
    let ca = Ca::load(&pki.ca.cert, &pki.ca.key).unwrap();
    assert_eq!(ca.cert_pem(), read(&pki.ca.cert));
    let missing = pki.dir.join("missing.pem");
    assert!(
        matches!(Ca::load(&missing, &pki.ca.key), Err(PkiError::Io { path, .. }) if path == missing)
    );
    let other = Ca::generate("other", Validity::days_from(now(), 1)).unwrap();
    let mismatch = Ca::from_pem(&read(&pki.ca.cert), &other.key_pkcs8_pem().unwrap());
    assert!(
        matches!(mismatch, Err(PkiError::KeyMismatch)),
        "{mismatch:?}"
    );
    assert!(matches!(
        Ca::from_pem("junk", "junk"),
        Err(PkiError::Der(_))
    ));
}

#[test]
fn refuses_impossible_specs() {
    let n = now();
    let ca = Ca::generate("t", Validity::days_from(n, 1)).unwrap();
    let empty = Validity {
        not_before: n,
        not_after: n,
    };
    let spec = LeafSpec::new(SmkiRole::XmlSigning, DCC_ID, Usage::XmlSigning, empty);
    assert!(matches!(
        ca.issue(&spec),
        Err(PkiError::EmptyValidity { .. })
    ));
    let before_1970 = Validity::days_from(time::macros::datetime!(1969-12-01 0:00 UTC), 60);
    let spec = LeafSpec {
        validity: before_1970,
        ..spec
    };
    assert!(matches!(ca.issue(&spec), Err(PkiError::TimeOutOfRange(_))));
    for bad in ["", "bad name", "ünï.example", "a,b"] {
        let spec = LeafSpec {
            dns_names: vec![bad.to_owned()],
            ..LeafSpec::new(
                SmkiRole::XmlSigning,
                DCC_ID,
                Usage::TlsServer,
                Validity::days_from(n, 1),
            )
        };
        assert!(
            matches!(ca.issue(&spec), Err(PkiError::DnsName(ref d)) if d == bad),
            "{bad:?}"
        );
    }
}

#[test]
fn debug_never_prints_a_key() {
    let ca = Ca::generate("t", Validity::days_from(now(), 1)).unwrap();
    let spec = LeafSpec::new(
        SmkiRole::XmlSigning,
        DCC_ID,
        Usage::XmlSigning,
        Validity::days_from(now(), 1),
    );
    let issued = ca.issue(&spec).unwrap();
    assert!(issued.key_pkcs8_pem.contains("PRIVATE KEY"));
    for shown in [format!("{issued:?}"), format!("{ca:?}")] {
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}

#[test]
fn validity_helpers() {
    let n = time::macros::datetime!(2026-03-01 12:00 UTC);
    let v = Validity::days_from(n, 730);
    assert_eq!(
        (v.not_before, v.not_after),
        (n, time::macros::datetime!(2028-02-29 12:00 UTC))
    );
    let e = Validity::expired_at(n);
    assert!(e.not_before < e.not_after && e.not_after < n);
}
