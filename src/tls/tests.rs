use super::*;
use crate::domain::SmkiRole;

fn wrapped(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[test]
fn handshake_failures_are_classified() {
    let cases = [
        (
            wrapped(rustls::Error::NoCertificatesPresented),
            HandshakeFailure::NoClientCertificate,
        ),
        (
            wrapped(rustls::Error::InvalidCertificate(CertificateError::Expired)),
            HandshakeFailure::ExpiredCertificate,
        ),
        (
            wrapped(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            HandshakeFailure::UntrustedCertificate,
        ),
        (
            wrapped(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            HandshakeFailure::NoSmkiIdentity,
        ),
        (
            wrapped(rustls::Error::DecryptError),
            HandshakeFailure::Protocol,
        ),
        (
            io::Error::from(io::ErrorKind::ConnectionReset),
            HandshakeFailure::Io,
        ),
    ];
    for (err, want) in cases {
        assert_eq!(HandshakeFailure::classify(&err), want, "{err}");
    }
}

#[test]
fn missing_files_are_named() {
    let err = server_config(
        Path::new("/nonexistent/server.pem"),
        Path::new("/nonexistent/key.pem"),
        Arc::default(),
        Clients::Users,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/server.pem"), "{err}");
}

/// A clock stopped at `secs` (unix seconds), for certificates whose validity has passed.
#[derive(Debug)]
struct StoppedClock(u64);

impl TimeProvider for StoppedClock {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(self.0),
        ))
    }
}

/// A client that presents one certificate whatever the server asks (rustls' own
/// `with_client_auth_cert` parses it with webpki first, which refuses the DCC's critical
/// certificate policy).
#[derive(Debug)]
struct Presents(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Runs one handshake between a server judging clients against `trust` at `clock` and a client
/// presenting `client` (certificate and PKCS#8 key, PEM); the server's outcome.
async fn handshake(
    pki: &crate::pki::DevPki,
    trust: Trust,
    clock: u64,
    client: &crate::pki::Issued,
) -> Result<PeerIdentity, io::Error> {
    let server = server_config_with_time(
        &pki.server.cert,
        &pki.server.key,
        Arc::new(trust),
        Clients::Users,
        Arc::new(StoppedClock(clock)),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let mut roots = rustls::RootCertStore::empty();
    for ca in load_certs(&pki.ca.cert).unwrap() {
        roots.add(ca).unwrap();
    }
    let chain = rustls_pemfile::certs(&mut client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut client.key_pkcs8_pem.as_bytes())
        .unwrap()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing = provider.key_provider.load_private_key(key).unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signing));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Presents(certified)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client_side = tokio::spawn(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        // Read until the server closes, so that a TLS 1.3 refusal reaches the client.
        if let Ok(mut s) = connector.connect(name, stream).await {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 16];
            let _ = s.read(&mut buf).await;
        }
    });
    let (stream, _) = listener.accept().await.unwrap();
    let accepted = acceptor.accept(stream).await;
    let identity = accepted.map(|s| peer_identity(s.get_ref().1).unwrap());
    client_side.abort();
    identity
}

#[tokio::test]
async fn the_public_smki_certificates_complete_a_handshake_when_their_ca_is_trusted() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::pki::init(dir.path(), time::OffsetDateTime::now_utc()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let z1 = crate::pki::Ca::generate(
        "Z1",
        crate::pki::Validity {
            not_before: now - time::Duration::days(365 * 20),
            not_after: now + time::Duration::days(365 * 20),
        },
    )
    .unwrap();
    let trust = || Trust::new(vec![Anchor::from_der(&z1.cert_der()).unwrap()]);
    let public = |name: &str| {
        let pem = std::fs::read(anchors.join("certs/zaz1-public").join(name)).unwrap();
        let der = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        // The DCC's test certificates keep their whole profile (critical certificate policy,
        // no extended key usage); only the key is new, since theirs is not public.
        z1.reissue(der.as_ref()).unwrap()
    };
    // 2025-06-01, inside the Z1 certificates' validity.
    let june_2025 = 1_748_736_000;
    let supplier = handshake(&pki, trust(), june_2025, &public("Z1-supplier-ds.pem"))
        .await
        .unwrap();
    assert_eq!(supplier.user_id.to_string(), "90-B3-D5-1F-30-01-00-00");
    assert_eq!(supplier.role, SmkiRole::Supplier);
    let operator = handshake(
        &pki,
        trust(),
        june_2025,
        &public("Z1-networkOperator-ds.pem"),
    )
    .await
    .unwrap();
    assert_eq!(operator.role, SmkiRole::NetworkOperator);

    // The DCC's access-control broker is not a User: refused, and counted as such.
    let broker = handshake(
        &pki,
        trust(),
        june_2025,
        &public("Z1-accessControlBroker-ds.pem"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        HandshakeFailure::classify(&broker),
        HandshakeFailure::RoleNotAllowed
    );
    // The same supplier certificate after its expiry (2025-10-29).
    let later = handshake(&pki, trust(), 1_767_225_600, &public("Z1-supplier-ds.pem"))
        .await
        .unwrap_err();
    assert_eq!(
        HandshakeFailure::classify(&later),
        HandshakeFailure::ExpiredCertificate
    );
}
