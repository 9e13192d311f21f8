//! rustls configurations: the Users' mTLS clients, and the servers this tool runs itself (the
//! Receive Response endpoint and the bare hyper + rustls reference), which require a client
//! certificate chained to the work directory's CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsConfError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("{0} holds no private key")]
    NoKey(PathBuf),
    #[error("the TLS configuration is not usable")]
    Rustls(#[from] rustls::Error),
    #[error("the client verifier cannot be built")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsConfError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsConfError::NoKey(path.to_owned()))
}

fn roots(ca: &Path) -> Result<RootCertStore, TlsConfError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts `ca` and presents `cert`/`key`. Without `resumption` every handshake
/// is a full one (no session cache, no tickets).
pub fn client(
    ca: &Path,
    cert: &Path,
    key_path: &Path,
    resumption: bool,
) -> Result<Arc<ClientConfig>, TlsConfError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(certs(cert)?, key(key_path)?)?;
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server presenting `cert`/`key` that requires a client certificate chained to `client_ca`.
pub fn server(
    cert: &Path,
    key_path: &Path,
    client_ca: &Path,
) -> Result<Arc<ServerConfig>, TlsConfError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca)?), provider())
            .build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert)?, key(key_path)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfError> {
    std::fs::read(path).map_err(|source| TlsConfError::Read {
        path: path.to_owned(),
        source,
    })
}
