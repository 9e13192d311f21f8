//! Signing commands with the access-control broker key (SMKI role `04`), and the set of broker
//! certificates the hub network trusts to check them. The key itself, and the randomness ECDSA
//! needs, are the signer's (`crate::signer`): it comes in as a [`SignBytes`].

use std::fmt;

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use crate::domain::SmkiRole;
use crate::identity::{identity_from_pem, CertIdentity};
use crate::xmldsig::SignBytes;

use super::wire::{decode, encode_unsigned};
use super::{Command, RoutingError, SignedCommand};

/// Signs commands with the DCC access-control broker key.
pub struct CommandSigner {
    key: Box<dyn SignBytes + Send + Sync>,
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

/// The certificate's identity, if it is an access-control broker's P-256 certificate.
fn broker_identity(cert_pem: &[u8]) -> Result<CertIdentity, RoutingError> {
    let identity = identity_from_pem(cert_pem).map_err(RoutingError::Certificate)?;
    check_broker(&identity)?;
    Ok(identity)
}

fn check_broker(identity: &CertIdentity) -> Result<(), RoutingError> {
    if identity.role != SmkiRole::AccessControlBroker {
        return Err(RoutingError::Role(identity.role));
    }
    if !identity.key_is_p256 {
        return Err(RoutingError::NotP256);
    }
    Ok(())
}

impl CommandSigner {
    /// Signs with `key`, the private half of the broker certificate `identity` (which must carry
    /// role `04` and a P-256 key; the caller has checked that the key belongs to it).
    pub fn new(
        key: Box<dyn SignBytes + Send + Sync>,
        identity: &CertIdentity,
    ) -> Result<Self, RoutingError> {
        check_broker(identity)?;
        Ok(Self {
            key,
            issuer: identity.issuer.to_string(),
            serial: identity.serial.clone(),
        })
    }

    pub fn sign(&self, cmd: &Command) -> Result<SignedCommand, RoutingError> {
        let mut bytes = encode_unsigned(cmd, &self.issuer, &self.serial)?;
        let sig = self.key.sign(&bytes).map_err(|_| RoutingError::Sign)?;
        bytes.extend_from_slice(&sig);
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
