//! An issuing authority: a P-256 key and its self-signed certificate.

use std::path::Path;

use der::pem::LineEnding;
use der::{Decode, DecodePem, Encode, EncodePem};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand_core::OsRng;
use x509_cert::certificate::Certificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::tbs::{ca_subject, ecdsa_sha256, make_certificate, subject, x509_time, Kind, TbsParts};
use super::{Issued, LeafSpec, PkiError, Validity};

/// An Issuing Authority (SMKI role `07`): its key and self-signed certificate.
pub struct Ca {
    key: SigningKey,
    cert: Certificate,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("subject", &self.cert.tbs_certificate.subject.to_string())
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA, `OU=07, CN=<cn>` (DER order; `CN=<cn>,OU=07` as RFC 4514 writes it), with a
    /// fresh key. Like the DCC's own issuing authority it has no `x500UniqueIdentifier`: it is
    /// not a User.
    pub fn generate(cn: &str, validity: Validity) -> Result<Ca, PkiError> {
        let key = SigningKey::random(&mut OsRng);
        let name = ca_subject(cn)?;
        let parts = TbsParts {
            kind: Kind::Ca,
            subject: name.clone(),
            subject_key: key.verifying_key(),
            issuer: name,
            issuer_key: key.verifying_key(),
            validity,
            dns_names: &[],
            ip_addresses: &[],
        };
        let cert = make_certificate(parts, &key)?;
        Self::from_parts(key, cert)
    }

    /// A CA loaded back from its certificate and PKCS#8 key (the files [`super::init`] writes).
    pub fn from_pem(cert_pem: &str, key_pkcs8_pem: &str) -> Result<Ca, PkiError> {
        let cert = Certificate::from_pem(cert_pem)?;
        let key = SigningKey::from_pkcs8_pem(key_pkcs8_pem)?;
        let own = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())?;
        if own != cert.tbs_certificate.subject_public_key_info {
            return Err(PkiError::KeyMismatch);
        }
        Self::from_parts(key, cert)
    }

    /// A CA loaded from its certificate and key files (`ca.pem`, `ca.key.pem`).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Ca, PkiError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| PkiError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        Self::from_pem(&read(cert_path)?, &read(key_path)?)
    }

    fn from_parts(key: SigningKey, cert: Certificate) -> Result<Ca, PkiError> {
        let cert_der = cert.to_der()?;
        let cert_pem = cert.to_pem(LineEnding::LF)?;
        Ok(Ca {
            key,
            cert,
            cert_der,
            cert_pem,
        })
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA's private key, PKCS#8 PEM.
    pub fn key_pkcs8_pem(&self) -> Result<String, PkiError> {
        Ok(self.key.to_pkcs8_pem(LineEnding::LF)?.to_string())
    }

    fn name(&self) -> &Name {
        &self.cert.tbs_certificate.subject
    }

    /// Issues a leaf certificate with a fresh P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued, PkiError> {
        let key = SigningKey::random(&mut OsRng);
        self.issue_for_key(spec, key.verifying_key())
            .and_then(|(cert_pem, cert_der)| {
                Ok(Issued {
                    cert_pem,
                    cert_der,
                    key_pkcs8_pem: key.to_pkcs8_pem(LineEnding::LF)?.to_string(),
                })
            })
    }

    /// Certifies an existing public key (a re-issue: one key, a new serial). Returns the
    /// certificate as PEM and DER.
    pub fn issue_for_key(
        &self,
        spec: &LeafSpec,
        key: &VerifyingKey,
    ) -> Result<(String, Vec<u8>), PkiError> {
        let parts = TbsParts {
            kind: Kind::Leaf(spec.usage),
            subject: subject(spec.common_name.as_deref(), spec.role, spec.user_id)?,
            subject_key: key,
            issuer: self.name().clone(),
            issuer_key: self.key.verifying_key(),
            validity: spec.validity,
            dns_names: &spec.dns_names,
            ip_addresses: &spec.ip_addresses,
        };
        let cert = make_certificate(parts, &self.key)?;
        Ok((cert.to_pem(LineEnding::LF)?, cert.to_der()?))
    }

    /// A CRL (PEM) signed by this CA that revokes the certificates `revoked` (DER), issued at
    /// `validity.not_before` with its next update at `validity.not_after`.
    pub fn crl(&self, revoked: &[&[u8]], validity: Validity) -> Result<String, PkiError> {
        let this_update = x509_time(validity.not_before)?;
        let entries = revoked
            .iter()
            .map(|der| {
                Ok(RevokedCert {
                    serial_number: Certificate::from_der(der)?.tbs_certificate.serial_number,
                    revocation_date: this_update,
                    crl_entry_extensions: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: ecdsa_sha256(),
            issuer: self.name().clone(),
            this_update,
            next_update: Some(x509_time(validity.not_after)?),
            revoked_certificates: (!entries.is_empty()).then_some(entries),
            crl_extensions: None,
        };
        let signature: p256::ecdsa::DerSignature =
            p256::ecdsa::signature::Signer::sign(&self.key, &tbs.to_der()?);
        let list = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: ecdsa_sha256(),
            signature: der::asn1::BitString::from_bytes(signature.as_bytes())?,
        };
        der::pem::encode_string("X509 CRL", LineEnding::LF, &list.to_der()?)
            .map_err(|e| PkiError::Der(e.into()))
    }

    /// `original` (a DER certificate, say one of the DCC's public test certificates, whose key
    /// is not public) issued again by this CA for a fresh key: the same subject, serial,
    /// validity and extensions with their criticality, only the key and the issuer's signature
    /// new. With a CA named as the original's issuer, the result has the original's profile
    /// byte for byte outside the key and the signature.
    pub fn reissue(&self, original: &[u8]) -> Result<Issued, PkiError> {
        let key = SigningKey::random(&mut OsRng);
        let mut tbs = Certificate::from_der(original)?.tbs_certificate;
        tbs.subject_public_key_info = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())?;
        tbs.issuer = self.name().clone();
        tbs.signature = ecdsa_sha256();
        let signature: p256::ecdsa::DerSignature =
            p256::ecdsa::signature::Signer::sign(&self.key, &tbs.to_der()?);
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: ecdsa_sha256(),
            signature: der::asn1::BitString::from_bytes(signature.as_bytes())?,
        };
        Ok(Issued {
            cert_pem: cert.to_pem(LineEnding::LF)?,
            cert_der: cert.to_der()?,
            key_pkcs8_pem: key.to_pkcs8_pem(LineEnding::LF)?.to_string(),
        })
    }
}
