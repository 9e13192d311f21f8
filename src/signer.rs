//! The DCC's XML-signing key (`OU=89`): signs every response, acknowledgement and alert the
//! gateway emits. Owns the private key and the random source ECDSA needs; keys never print.

use std::fmt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::domain::SmkiRole;
use crate::identity::{identity_from_pem, CertIdentity};
use crate::xmldsig::{SignBytes, SignError};

pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    issuer: String,
    serial: String,
    identity: CertIdentity,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an SMKI certificate")]
    Certificate {
        path: PathBuf,
        #[source]
        source: crate::identity::IdentityError,
    },
    #[error("{path} holds no PKCS#8 EC P-256 private key")]
    Key { path: PathBuf },
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    Mismatch { key: PathBuf, cert: PathBuf },
    #[error("the certificate in {path} has role {role}, not {expected}")]
    Role {
        path: PathBuf,
        role: SmkiRole,
        expected: SmkiRole,
    },
}

impl Signer {
    /// Loads a PKCS#8 PEM key and its certificate, and checks that they match. `role` is the
    /// SMKI role the certificate must carry (`89` for the gateway's responses, `87` for a User).
    pub fn load(key: &Path, cert: &Path, role: Option<SmkiRole>) -> Result<Self, SignerError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| SignerError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let identity =
            identity_from_pem(&read(cert)?).map_err(|source| SignerError::Certificate {
                path: cert.to_owned(),
                source,
            })?;
        if let Some(expected) = role.filter(|r| *r != identity.role) {
            return Err(SignerError::Role {
                path: cert.to_owned(),
                role: identity.role,
                expected,
            });
        }
        let key_pem = read(key)?;
        let pkcs8 = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .ok()
            .flatten()
            .ok_or_else(|| SignerError::Key {
                path: key.to_owned(),
            })?;
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.secret_der(), &rng)
                .map_err(|_| SignerError::Key {
                    path: key.to_owned(),
                })?;
        if pair.public_key().as_ref() != identity.public_key.as_slice() {
            return Err(SignerError::Mismatch {
                key: key.to_owned(),
                cert: cert.to_owned(),
            });
        }
        Ok(Self {
            key: pair,
            rng,
            issuer: identity.issuer.to_string(),
            serial: identity.serial_decimal.clone(),
            identity,
        })
    }

    pub fn identity(&self) -> &CertIdentity {
        &self.identity
    }
}

impl SignBytes for Signer {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let sig = self
            .key
            .sign(&self.rng, message)
            .map_err(|_| SignError::Key)?;
        sig.as_ref().try_into().map_err(|_| SignError::Key)
    }

    fn issuer_name(&self) -> &str {
        &self.issuer
    }

    fn serial_decimal(&self) -> &str {
        &self.serial
    }
}
