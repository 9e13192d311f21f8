//! What a simulated device does with a GBCS command, and the GBCS it answers in.
//!
//! It reads the command the routing envelope carries: behind the DCC's MAC header (whose
//! stand-in MAC it checks, `gbcs::command::mac_holds`), a General Signing APDU addressed to it
//! from the request's User under the request's counter. A critical command (Command Variant 5 or
//! 7) must carry the User's signature, which the device verifies with the Users' Digital Signing
//! certificates it trusts (as a real device holds its supplier's and network operator's keys in
//! its trust anchor cells); anything it cannot read or verify it refuses.
//!
//! It answers under the command's message code and counter: for the named use cases (ECS01a,
//! CS02b, ECS42, ECS52, ECS17b) with the content the public samples show, for the rest with the
//! body encoding's response (`usecase::body`) carrying the simulated data. A response to a
//! critical command, and a critical alert (`8Fxx`), is signed by the device and travels bare; any
//! other is unsigned behind the MAC header, as in the samples. The simulated devices share one
//! signing key, derived from the simulator's seed (no device certificates are simulated).

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use time::OffsetDateTime;

use crate::domain::{DeviceId, Eui64, Srv};
use crate::dscerts::DigitalSigningCerts;
use crate::gbcs::command::{mac_holds, seal};
use crate::gbcs::usecase::credentials::{self, ExecutionOutcome, ReplacementMode};
use crate::gbcs::usecase::{alert, alert_frame, body, reads, response_to, supply, tariff};
use crate::gbcs::{
    self, Apdu, Cra, DlmsDateTime, GeneralSigning, MessageCode, SignDigitally, SignatureError,
    SignatureField,
};
use crate::routing::Command;

/// Why a device refused a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the payload is not a GBCS command")]
    Unreadable,
    #[error("the MAC does not match the command")]
    Mac,
    #[error("the command is not addressed to this device from this User under this counter")]
    NotAddressed,
    #[error("a critical command without the User's signature")]
    Unsigned,
    #[error("the User's signature verifies with no Digital Signing certificate the device trusts")]
    Signature,
}

/// The simulated devices' GBCS: the Users' Digital Signing certificates they trust, and the key
/// they sign with.
pub struct Devices {
    trust: DigitalSigningCerts,
    key: DeviceKey,
}

impl Devices {
    pub fn new(seed: u64, trust: DigitalSigningCerts) -> Self {
        Self {
            trust,
            key: DeviceKey::from_seed(seed),
        }
    }

    /// The command `cmd` carries, checked as the device checks it at `now`.
    pub fn read(&self, cmd: &Command, now: OffsetDateTime) -> Result<GeneralSigning, Refusal> {
        let apdu = Apdu::decode(cmd.payload()).map_err(|_| Refusal::Unreadable)?;
        let Apdu::Mac(sealed) = &apdu else {
            return Err(Refusal::Unreadable);
        };
        if !mac_holds(sealed) {
            return Err(Refusal::Mac);
        }
        let frame = sealed.inner.clone();
        let id = cmd.request_id();
        if frame.transaction.cra != Cra::Command
            || frame.transaction.counter != id.counter
            || frame.originator != id.originator
            || frame.recipient != cmd.device()
        {
            return Err(Refusal::NotAddressed);
        }
        if matches!(cmd.variant().get(), 5 | 7) {
            self.verify_user(&frame, now)?;
        }
        Ok(frame)
    }

    /// The User's signature on a critical command, with any certificate of that User trusted.
    fn verify_user(&self, frame: &GeneralSigning, now: OffsetDateTime) -> Result<(), Refusal> {
        if !matches!(frame.signature, SignatureField::Ecdsa(_)) {
            return Err(Refusal::Unsigned);
        }
        let roles = [
            crate::domain::SmkiRole::Supplier,
            crate::domain::SmkiRole::NetworkOperator,
        ];
        let verified = roles.into_iter().any(|role| {
            self.trust
                .usable(frame.originator, role, now)
                .any(|c| gbcs::verify(frame, &c.identity.public_key).is_ok())
        });
        verified.then_some(()).ok_or(Refusal::Signature)
    }

    /// The device's response to `command` (for `srv`) at `at`, `data` standing for what it
    /// read or did; `future_dated` when it holds the command for later.
    pub fn respond(
        &self,
        command: &GeneralSigning,
        srv: Srv,
        at: OffsetDateTime,
        data: &[u8],
        future_dated: bool,
    ) -> Vec<u8> {
        let content = response_content(command, srv, data, future_dated);
        let frame = response_to(command, Some(DlmsDateTime::from_utc(at)), content);
        self.out(frame, matches!(command.signature, SignatureField::Ecdsa(_)))
    }

    /// The outcome alert (`8F66` ran, `8F67` failed) of future-dated `command`, executed at
    /// `executed`, under the device's alert counter `counter`.
    pub fn future_dated(
        &self,
        command: &GeneralSigning,
        counter: u64,
        code: u16,
        executed: OffsetDateTime,
    ) -> Vec<u8> {
        let c = command.other.message_code;
        let (message_code, content) = if c == tariff::MESSAGE_CODE {
            let activated = tariff::ACTIVATIONS[0];
            let tc = command.transaction.counter;
            let content = alert::future_dated_dlms(counter, code, executed, c, tc, activated);
            (alert::FUTURE_DATED_DLMS, content)
        } else if let Some(mode) = replacement_mode(c) {
            let outcome = outcome(command, mode);
            let content = credentials::alert_content(code, executed, &outcome);
            (credentials::ALERT_MESSAGE_CODE, content)
        } else {
            alert::generic(counter, code, executed)
        };
        let frame = alert_frame(
            command.recipient,
            command.originator,
            counter,
            message_code,
            content,
        );
        self.out(frame, alert::is_critical(code))
    }

    /// A spontaneous alert `code` from `device` to `recipient`, under alert counter `counter`.
    pub fn alert(
        &self,
        device: DeviceId,
        recipient: Eui64,
        counter: u64,
        code: u16,
        at: OffsetDateTime,
    ) -> Vec<u8> {
        let (message_code, content) = alert::generic(counter, code, at);
        let frame = alert_frame(device, recipient, counter, message_code, content);
        self.out(frame, alert::is_critical(code))
    }

    /// `frame` signed by the device and bare, or unsigned behind the MAC header. Frames built
    /// here stay within the GBCS bound (their content is at most the configured response size);
    /// should one not, it goes out empty and the gateway reports what it received.
    fn out(&self, frame: GeneralSigning, signed: bool) -> Vec<u8> {
        let bytes = if signed {
            gbcs::sign(frame, &self.key).and_then(|f| Ok(f.encode()?))
        } else {
            seal(frame).map_err(SignatureError::from)
        };
        bytes.unwrap_or_default()
    }
}

/// The response content for `command`: the named use cases' real shape, else the body encoding.
fn response_content(
    command: &GeneralSigning,
    srv: Srv,
    data: &[u8],
    future_dated: bool,
) -> Vec<u8> {
    let counter = command.transaction.counter;
    let code = command.other.message_code;
    if code == tariff::MESSAGE_CODE {
        tariff::response_content(counter, &[0; tariff::ATTRIBUTES])
    } else if code == supply::MESSAGE_CODE {
        supply::response_content(counter, 0)
    } else if code == reads::FIRMWARE_VERSION_CODE {
        reads::firmware_version_response(counter, Ok(data.get(..4).unwrap_or(data)))
    } else if code == reads::IMPORT_REGISTERS_CODE {
        let protected = reads::Protected {
            invocation_counter: counter as u32,
            ciphertext_and_tag: data.to_vec(),
        };
        let (user, device) = (command.originator, command.recipient);
        reads::import_registers_response(counter, user, device, Ok(&protected))
    } else if let Some(mode) = replacement_mode(code) {
        let outcome = (!future_dated).then(|| outcome(command, mode));
        credentials::response_content(outcome.as_ref())
    } else {
        body::response_content(srv, 0, data).unwrap_or_default()
    }
}

/// The replacement mode a CS02b message code (`0x0100` + mode) names.
fn replacement_mode(code: MessageCode) -> Option<ReplacementMode> {
    use ReplacementMode::*;
    [
        RootBySupplier,
        RootByWanProvider,
        SupplierBySupplier,
        NetworkOperatorByNetworkOperator,
        AccessControlBrokerByAccessControlBroker,
        WanProviderByWanProvider,
        TransCoSByTransCoS,
        SupplierByTransCoS,
        AnyExceptAbnormalRootByRecovery,
        AnyByContingency,
    ]
    .into_iter()
    .find(|m| m.message_code() == code)
}

/// A credentials update's outcome as the simulated device reports it: accepted under the
/// command's counter, no cell outcomes itemised.
fn outcome(command: &GeneralSigning, mode: ReplacementMode) -> ExecutionOutcome {
    ExecutionOutcome {
        authorising_seq: command.transaction.counter,
        mode,
        seq_changes: Vec::new(),
        outcomes: Vec::new(),
    }
}

/// The simulated devices' signing key: a P-256 scalar derived from the simulator's seed.
struct DeviceKey(SigningKey);

impl DeviceKey {
    fn from_seed(seed: u64) -> Self {
        let mut input = seed.to_be_bytes().to_vec();
        loop {
            let digest = ring::digest::digest(&ring::digest::SHA256, &input);
            if let Ok(key) = SigningKey::from_slice(digest.as_ref()) {
                return Self(key);
            }
            // A digest outside the curve's order (probability about 2^-128): hash it again.
            input = digest.as_ref().to_vec();
        }
    }
}

impl SignDigitally for DeviceKey {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignatureError> {
        let signature: Signature = self.0.sign(message);
        Ok(signature.to_bytes().into())
    }
}
