//! The client-certificate verifier: the chain and the SMKI profile judged by `smki::Trust`, then
//! the handshake signature checked with rustls' own helper over the leaf's public key (rustls'
//! certificate-parsing helpers would refuse the DCC's critical certificate policy again).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{
    verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::smki::{Clients, Refusal, Trust};

/// The one handshake signature scheme the profile's keys (EC P-256) make.
const SCHEME: SignatureScheme = SignatureScheme::ECDSA_NISTP256_SHA256;

/// Judges client certificates against one [`Trust`] (anchors and CRLs); a reload builds a new
/// verifier and a new server configuration rather than changing this one.
#[derive(Debug)]
pub struct SmkiClientVerifier {
    trust: Arc<Trust>,
    clients: Clients,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SmkiClientVerifier {
    pub fn new(trust: Arc<Trust>, clients: Clients, provider: &CryptoProvider) -> Self {
        let hints = trust
            .anchors()
            .iter()
            .map(|a| DistinguishedName::from(a.subject_der.clone()))
            .collect();
        Self {
            trust,
            clients,
            hints,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// The handshake signature over `message` by the key of `cert`, which the verifier has
    /// already accepted; the same check in TLS 1.2 and 1.3 for the one scheme offered.
    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SCHEME {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        let (_, parsed) = X509Certificate::from_der(cert.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let spki = SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }
}

/// The rustls error a refusal becomes: the closest standard one (so the peer gets the usual
/// alert), or `Other` carrying the refusal itself for the failure's metric label.
fn rustls_error(refusal: Refusal) -> rustls::Error {
    let e = match refusal {
        Refusal::Expired => CertificateError::Expired,
        Refusal::NotValidYet => CertificateError::NotValidYet,
        Refusal::Revoked => CertificateError::Revoked,
        Refusal::UnknownIssuer => CertificateError::UnknownIssuer,
        Refusal::Malformed => CertificateError::BadEncoding,
        Refusal::UnknownCriticalExtension(_) => CertificateError::UnhandledCriticalExtension,
        Refusal::KeyUsage | Refusal::ExtendedKeyUsage => CertificateError::InvalidPurpose,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(e)
}

impl ClientCertVerifier for SmkiClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let others: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        // Seconds since 1970 fit an i64 for 292 billion years.
        let now = now.as_secs() as i64;
        self.trust
            .verify_tls_client(end_entity.as_ref(), &others, now, self.clients)
            .map_err(rustls_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SCHEME]
    }
}
