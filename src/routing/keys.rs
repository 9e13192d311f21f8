//! The access-control broker key (SMKI role `04`) that signs every command, and the set of
//! broker certificates the hub network trusts to check them. Keys never print.

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};

use crate::domain::SmkiRole;
use crate::identity::{identity_from_pem, CertIdentity};

use super::wire::{decode, encode_unsigned};
use super::{Command, RoutingError, SignedCommand};

/// Signs commands with the DCC access-control broker key.
pub struct CommandSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    issuer: String,
    serial: Vec<u8>,
}

impl fmt::Debug for CommandSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSigner")
            .field("issuer", &self.issuer)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, RoutingError> {
    std::fs::read(path).map_err(|source| RoutingError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificate's identity, if it is an access-control broker's P-256 certificate.
fn broker_identity(cert_pem: &[u8]) -> Result<CertIdentity, RoutingError> {
    let identity = identity_from_pem(cert_pem).map_err(RoutingError::Certificate)?;
    if identity.role != SmkiRole::AccessControlBroker {
        return Err(RoutingError::Role(identity.role));
    }
    if !identity.key_is_p256 {
        return Err(RoutingError::NotP256);
    }
    Ok(identity)
}

impl CommandSigner {
    /// Loads the broker's PKCS#8 PEM key and its certificate (which must carry role `04` and
    /// the key's public half).
    pub fn load(key: &Path, cert: &Path) -> Result<Self, RoutingError> {
        Self::from_pem(&read(key)?, &read(cert)?)
    }

    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, RoutingError> {
        let identity = broker_identity(cert_pem)?;
        let pkcs8 = rustls_pemfile::private_key(&mut &key_pem[..])
            .ok()
            .flatten()
            .ok_or(RoutingError::Key)?;
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.secret_der(), &rng)
                .map_err(|_| RoutingError::Key)?;
        if key.public_key().as_ref() != identity.public_key.as_slice() {
            return Err(RoutingError::KeyMismatch);
        }
        Ok(Self {
            key,
            rng,
            issuer: identity.issuer.to_string(),
            serial: identity.serial,
        })
    }

    pub fn sign(&self, cmd: &Command) -> Result<SignedCommand, RoutingError> {
        let mut bytes = encode_unsigned(cmd, &self.issuer, &self.serial)?;
        let sig = self
            .key
            .sign(&self.rng, &bytes)
            .map_err(|_| RoutingError::Sign)?;
        bytes.extend_from_slice(sig.as_ref());
        Ok(SignedCommand::from_bytes(bytes))
    }
}

/// The broker certificates whose signatures the hub network accepts, found by (issuer, serial).
#[derive(Clone, Default)]
pub struct CommandVerifier {
    keys: Vec<TrustedKey>,
}

#[derive(Clone)]
struct TrustedKey {
    issuer: String,
    serial: Vec<u8>,
    public_key: Vec<u8>,
}

impl fmt::Debug for CommandVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandVerifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl CommandVerifier {
    /// Trusts these broker certificates (PEM). Each must carry role `04` and a P-256 key.
    pub fn new(certs_pem: &[&[u8]]) -> Result<Self, RoutingError> {
        let keys = certs_pem
            .iter()
            .map(|pem| {
                broker_identity(pem).map(|id| TrustedKey {
                    issuer: id.issuer.to_string(),
                    serial: id.serial,
                    public_key: id.public_key,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// Loads the certificates from PEM files.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, RoutingError> {
        let pems = paths
            .iter()
            .map(|p| read(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&[u8]> = pems.iter().map(Vec::as_slice).collect();
        Self::new(&refs)
    }

    /// Checks a signed command and returns it. Never panics, whatever the bytes.
    pub fn verify(&self, bytes: &[u8]) -> Result<Command, RoutingError> {
        let decoded = decode(bytes)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.issuer == decoded.issuer && k.serial == decoded.serial)
            .ok_or_else(|| RoutingError::UnknownSigner {
                issuer: decoded.issuer.to_owned(),
                serial: decoded.serial.to_vec(),
            })?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.public_key)
            .verify(decoded.signed, decoded.signature)
            .map_err(|_| RoutingError::BadSignature)?;
        decoded.into_command()
    }
}
