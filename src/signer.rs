//! The DCC's XML-signing key (`OU=89`): signs every response, acknowledgement and alert the
//! gateway emits. Owns the private key and the random source ECDSA needs; keys never print.

use std::fmt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::domain::SmkiRole;
use crate::identity::{identity_from_pem, CertIdentity};
use crate::routing::{CommandSigner, CommandVerifier, RoutingError};
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
    #[error("{path} is not an access-control broker certificate the hub network can use")]
    Broker {
        path: PathBuf,
        #[source]
        source: RoutingError,
    },
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
        let key_pem = read(key)?;
        Self::from_pem((key, &key_pem), (cert, &read(cert)?), role)
    }

    /// As [`Signer::load`], from the PEM texts; the paths name them in errors.
    pub fn from_pem(
        (key, key_pem): (&Path, &[u8]),
        (cert, cert_pem): (&Path, &[u8]),
        role: Option<SmkiRole>,
    ) -> Result<Self, SignerError> {
        let identity = identity_from_pem(cert_pem).map_err(|source| SignerError::Certificate {
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
        let pkcs8 = rustls_pemfile::private_key(&mut &key_pem[..])
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

fn read(path: &Path) -> Result<Vec<u8>, SignerError> {
    std::fs::read(path).map_err(|source| SignerError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The access-control broker's key (`OU=04`) and certificate, as the signer of every command.
pub fn command_signer(key: &Path, cert: &Path) -> Result<CommandSigner, SignerError> {
    let signer = Signer::load(key, cert, Some(SmkiRole::AccessControlBroker))?;
    let identity = signer.identity().clone();
    CommandSigner::new(Box::new(signer), &identity).map_err(|source| SignerError::Broker {
        path: cert.to_owned(),
        source,
    })
}

/// The broker certificates in these PEM files, as the hub network's check of commands.
pub fn command_verifier(paths: &[impl AsRef<Path>]) -> Result<CommandVerifier, SignerError> {
    let pems = paths
        .iter()
        .map(|p| read(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&[u8]> = pems.iter().map(Vec::as_slice).collect();
    CommandVerifier::new(&refs).map_err(|source| SignerError::Broker {
        path: paths
            .first()
            .map_or_else(PathBuf::new, |p| p.as_ref().to_owned()),
        source,
    })
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

/// A User's Digital Signing key signs GBCS pre-commands with the same ECDSA P-256 operation.
impl crate::gbcs::SignDigitally for Signer {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], crate::gbcs::SignatureError> {
        SignBytes::sign(self, message).map_err(|_| crate::gbcs::SignatureError::Key)
    }
}
