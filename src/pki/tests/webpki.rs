//! rustls' webpki as the oracle: chain building for the TLS client and server certificates.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::*;

fn der_of(path: &Path) -> CertificateDer<'static> {
    let pem = std::fs::read(path).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    der.into_owned()
}

fn roots(ca: &Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(der_of(ca)).unwrap();
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[test]
fn client_certificates_chain_to_the_ca() {
    let (tmp, pki) = fresh_pki();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&pki.ca.cert), provider())
        .build()
        .unwrap();
    for u in &pki.users {
        let got = verifier.verify_client_cert(&der_of(&u.tls.cert), &[], UnixTime::now());
        assert!(got.is_ok(), "{}: {got:?}", u.name);
    }
    assert!(verifier
        .verify_client_cert(&der_of(&pki.dcc_acb.cert), &[], UnixTime::now())
        .is_ok());
    // A server certificate is not a client certificate (extended key usage).
    let server = verifier.verify_client_cert(&der_of(&pki.server.cert), &[], UnixTime::now());
    assert!(server.is_err());

    let foreign = Ca::generate("dccgw dev IA", Validity::days_from(now(), 10)).unwrap();
    let supplier = eui("90-B3-D5-1F-30-01-00-00");
    let spec = LeafSpec::new(
        SmkiRole::Supplier,
        supplier,
        Usage::TlsClient,
        Validity::days_from(now(), 5),
    );
    let cert = CertificateDer::from(foreign.issue(&spec).unwrap().cert_der);
    assert!(
        verifier
            .verify_client_cert(&cert, &[], UnixTime::now())
            .is_err(),
        "foreign CA"
    );

    let ca = Ca::load(&pki.ca.cert, &pki.ca.key).unwrap();
    let expired = LeafSpec {
        validity: Validity::expired_at(now()),
        ..spec
    };
    let cert = CertificateDer::from(ca.issue(&expired).unwrap().cert_der);
    let got = verifier.verify_client_cert(&cert, &[], UnixTime::now());
    let expired = matches!(
        got,
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
        ))
    );
    assert!(expired, "{got:?}");
    drop(tmp);
}

#[test]
fn the_server_certificate_verifies_for_localhost() {
    let (_tmp, pki) = fresh_pki();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(&pki.ca.cert), provider())
        .build()
        .unwrap();
    let cert = der_of(&pki.server.cert);
    for name in ["localhost", "127.0.0.1", "::1"] {
        let server_name = ServerName::try_from(name).unwrap();
        let got = verifier.verify_server_cert(&cert, &[], &server_name, &[], UnixTime::now());
        assert!(got.is_ok(), "{name}: {got:?}");
    }
    let other = ServerName::try_from("dcc.example").unwrap();
    let got = verifier.verify_server_cert(&cert, &[], &other, &[], UnixTime::now());
    assert!(got.is_err(), "wrong name must fail");
    // A client certificate is not a server certificate.
    let client = der_of(&pki.user("supplier").unwrap().tls.cert);
    let localhost = ServerName::try_from("localhost").unwrap();
    assert!(verifier
        .verify_server_cert(&client, &[], &localhost, &[], UnixTime::now())
        .is_err());
}
