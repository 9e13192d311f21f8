//! Signed routing: what the DCC sends to the comms-hub network for one admitted request, and the
//! access-control broker's signature over it.
//!
//! A [`Command`] can only be made from an [`auth::Permit`](crate::auth::Permit) (outside tests
//! nothing else builds one), so an unchecked request cannot reach a device. It travels as a
//! [`SignedCommand`]: a compact, length-checked encoding signed with the DCC access-control
//! broker key (SMKI role `04`) by a [`CommandSigner`]; the hub network checks it with a
//! [`CommandVerifier`] and refuses anything unsigned, forged or malformed.
//!
//! Layer 0 (the key itself is the signer's): encoding and decoding are pure and bounded
//! (`wire.rs` documents the format), and decoding never panics on any input (a property test
//! says so).

mod keys;
mod wire;

#[cfg(test)]
mod tests;

use crate::auth::Permit;
use crate::domain::{CommandVariant, DeviceId, RequestId, SmkiRole, Srv, UserId};
use crate::identity::IdentityError;

pub use keys::{CommandSigner, CommandVerifier};
pub use wire::{CommandHeader, SignedCommand, MAX_COMMAND_BYTES, MAX_PAYLOAD_BYTES};

/// One command for one device, admitted by access control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    request_id: RequestId,
    srv: Srv,
    variant: CommandVariant,
    device: DeviceId,
    /// The `ExecutionDateTime` of a future-dated request (unix seconds); the device holds the
    /// command until then.
    execute_at: Option<i64>,
    /// The command's GBCS bytes, as the device gets them (behind the DCC's MAC header).
    payload: Vec<u8>,
}

/// Why a command could not be made, signed, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("service reference variant {0} is not for a device; nothing goes to the hub")]
    NonDevice(Srv),
    #[error("the request targets {target} but access control admitted device {permitted}")]
    TargetMismatch {
        target: DeviceId,
        permitted: DeviceId,
    },
    #[error("the request comes from {originator} but access control admitted {permitted}")]
    OriginatorMismatch {
        originator: UserId,
        permitted: UserId,
    },
    #[error("command variant {0} is not sent to a device (only 1, 3, 5 and 7 are)")]
    NotSentToDevice(CommandVariant),
    #[error("a command payload of {0} bytes is larger than the bound")]
    PayloadTooLarge(usize),
    #[error("a signed command of {0} bytes is larger than the bound")]
    TooLarge(usize),
    #[error("the signed command ends early")]
    Truncated,
    #[error("not a signed command (wrong magic bytes)")]
    Magic,
    #[error("signed command format version {0} is not known")]
    Version(u8),
    #[error("the signed command's {0} field is malformed")]
    Field(&'static str),
    #[error("{0} bytes follow the signature")]
    TrailingBytes(usize),
    #[error("no access-control broker certificate has issuer {issuer:?} and serial {serial:02X?}")]
    UnknownSigner { issuer: String, serial: Vec<u8> },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("not an SMKI certificate")]
    Certificate(#[source] IdentityError),
    #[error("the certificate has role {0}, not the access-control broker's (04)")]
    Role(SmkiRole),
    #[error("the certificate's key is not EC P-256")]
    NotP256,
    #[error("signing failed")]
    Sign,
}

impl Command {
    /// The command for an admitted request. The permit must name a device; the RequestID's
    /// originator and target must be the permit's User and device; only Command Variants that
    /// send to a device (1, 3, 5, 7) make one.
    pub fn from_permit(
        permit: &Permit,
        request_id: RequestId,
        variant: CommandVariant,
        execute_at: Option<i64>,
        payload: Vec<u8>,
    ) -> Result<Self, RoutingError> {
        let device = permit
            .device()
            .ok_or(RoutingError::NonDevice(permit.srv()))?;
        if request_id.target != device {
            return Err(RoutingError::TargetMismatch {
                target: request_id.target,
                permitted: device,
            });
        }
        if request_id.originator != permit.user() {
            return Err(RoutingError::OriginatorMismatch {
                originator: request_id.originator,
                permitted: permit.user(),
            });
        }
        Self::checked(
            request_id,
            permit.srv(),
            variant,
            device,
            execute_at,
            payload,
        )
    }

    /// The checks every command keeps, wherever it was made (also on decoding).
    fn checked(
        request_id: RequestId,
        srv: Srv,
        variant: CommandVariant,
        device: DeviceId,
        execute_at: Option<i64>,
        payload: Vec<u8>,
    ) -> Result<Self, RoutingError> {
        if !sent_to_device(variant) {
            return Err(RoutingError::NotSentToDevice(variant));
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(RoutingError::PayloadTooLarge(payload.len()));
        }
        Ok(Self {
            request_id,
            srv,
            variant,
            device,
            execute_at,
            payload,
        })
    }

    pub fn request_id(&self) -> RequestId {
        self.request_id
    }
    pub fn srv(&self) -> Srv {
        self.srv
    }
    pub fn variant(&self) -> CommandVariant {
        self.variant
    }
    pub fn device(&self) -> DeviceId {
        self.device
    }
    pub fn execute_at(&self) -> Option<i64> {
        self.execute_at
    }
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Command Variants whose command goes to the device over the WAN: 1 (non-critical), 3 (also
/// returned for local delivery), 5 (critical, signed pre-command) and 7 (5 plus local delivery).
/// 2 and 6 are local delivery only, 4 answers with a pre-command, 8 is non-device.
pub const fn sent_to_device(variant: CommandVariant) -> bool {
    matches!(variant.get(), 1 | 3 | 5 | 7)
}
