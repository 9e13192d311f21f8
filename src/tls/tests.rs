use super::*;

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
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/server.pem"), "{err}");
}
