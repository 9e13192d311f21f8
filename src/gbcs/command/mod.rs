//! The GBCS command the DCC builds for a device request: the use case's content from the DUIS
//! body (the real encoding for the use cases `usecase` names, the documented body encoding for
//! the rest), in a General Signing APDU between the User and the device under the request's
//! originator counter; and the MAC header the DCC puts around a command before it travels.
//!
//! A critical request's command is a pre-command (no signature field) for the User to sign; any
//! other is unsigned (an empty signature field). Which device a request addresses picks the use
//! case ([`Target`]): `1.1.1` to an electricity meter is ECS01a, to a gas meter GCS01a.
//!
//! A use case with no public message code (ECS46d, ECS47a, CS02f, …) is sent under
//! [`NO_PUBLIC_CODE`], with the body encoding: its content names the SRV, so the device can
//! still tell what it is asked.

mod credentials;
mod tariff;

#[cfg(test)]
mod tests;

use std::ops::Range;

use time::OffsetDateTime;

use super::frame::{ComputeMac, GeneralSigning, MacProtected, MessageCode};
use super::table::{Table, Target};
use super::usecase::{self, body, reads, supply, ContentError, Execution, Parties};
use super::FrameError;
use crate::domain::{DeviceType, Srv};
use crate::duis::body::{BodyError, Node};
use crate::xmldsig::c14n::{C14nError, C14nLimits};

/// The message code a command carries when its use case has none in the public data.
pub const NO_PUBLIC_CODE: MessageCode = MessageCode(0xFFFF);

/// The invocation counter of the MAC header the DCC writes (the public samples' value).
const INVOCATION_COUNTER: u32 = 0;

/// What a device request gives the command.
#[derive(Clone, Debug)]
pub struct CommandRequest<'a> {
    pub srv: Srv,
    /// The type of the device the request targets.
    pub device_type: DeviceType,
    /// The User (originator), the device (target) and the originator counter.
    pub parties: Parties,
    /// The whole request document, and where its body element is in it.
    pub document: &'a [u8],
    pub body: Range<usize>,
    /// The request's `ExecutionDateTime`, if any.
    pub execution: Option<OffsetDateTime>,
    /// Whether the SRV is critical: the command is a pre-command for the User to sign.
    pub critical: bool,
}

/// Why a request's command could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the request body cannot be read")]
    Body(#[source] BodyError),
    #[error("the request body cannot be canonicalised")]
    Canonical(#[source] C14nError),
    #[error("the command's content cannot be built")]
    Content(#[source] ContentError),
}

impl From<BodyError> for CommandError {
    fn from(e: BodyError) -> Self {
        Self::Body(e)
    }
}

impl From<ContentError> for CommandError {
    fn from(e: ContentError) -> Self {
        Self::Content(e)
    }
}

impl From<FrameError> for CommandError {
    fn from(e: FrameError) -> Self {
        Self::Content(e.into())
    }
}

/// Which use case a device of `device_type` takes.
pub fn target_of(device_type: DeviceType) -> Target {
    match device_type {
        DeviceType::Esme => Target::Electricity,
        DeviceType::Gsme | DeviceType::Gpf => Target::Gas,
        _ => Target::Any,
    }
}

/// The command for `request`: a pre-command when it is critical, else an unsigned command.
/// What it returns encodes (its frame is within the bound).
pub fn build(
    request: &CommandRequest<'_>,
    limits: &C14nLimits,
) -> Result<GeneralSigning, CommandError> {
    let (code, content) = content(request, limits)?;
    let frame = usecase::command_frame(&request.parties, code, content, request.critical);
    frame.encode()?;
    Ok(frame)
}

/// The message code and content of `request`'s command.
fn content(
    request: &CommandRequest<'_>,
    limits: &C14nLimits,
) -> Result<(MessageCode, Vec<u8>), CommandError> {
    let target = target_of(request.device_type);
    let p = &request.parties;
    let execution = Execution::from_duis(request.execution);
    let named = match (request.srv.to_string().as_str(), target) {
        ("1.1.1", Target::Electricity) => {
            let tariff = tariff::from_duis(&body_tree(request)?, execution)?;
            Some((usecase::tariff::MESSAGE_CODE, tariff.content(p.counter)?))
        }
        ("6.15.1", _) => match credentials::from_duis(&body_tree(request)?, execution)? {
            Some(u) => Some((u.mode.message_code(), u.content(p.counter)?)),
            // Not a supplier's or network operator's own credentials: CS02g (a load
            // controller's), whose message code is not public.
            None => return body_encoded(request, limits, use_case_code(request.srv, "CS02g")),
        },
        ("7.1", Target::Electricity) => Some((supply::MESSAGE_CODE, supply::content(p.counter))),
        ("11.2", Target::Electricity) => Some((
            reads::FIRMWARE_VERSION_CODE,
            reads::firmware_version_content(p.counter),
        )),
        ("4.1.1", Target::Electricity) => Some((
            reads::IMPORT_REGISTERS_CODE,
            reads::import_registers_content(p.counter, p.user, p.device),
        )),
        _ => None,
    };
    if let Some(named) = named {
        return Ok(named);
    }
    let code = Table::builtin()
        .use_case_for(request.srv, target)
        .and_then(|u| u.message_code())
        .unwrap_or(NO_PUBLIC_CODE);
    body_encoded(request, limits, code)
}

/// The body encoding of `request` under `code`.
fn body_encoded(
    request: &CommandRequest<'_>,
    limits: &C14nLimits,
    code: MessageCode,
) -> Result<(MessageCode, Vec<u8>), CommandError> {
    let canonical = body::canonical_body(request.document, request.body.clone(), limits)
        .map_err(CommandError::Canonical)?;
    Ok((code, body::command_content(request.srv, &canonical)?))
}

/// The message code of `srv`'s use case `name`, or the stand-in.
fn use_case_code(srv: Srv, name: &str) -> MessageCode {
    Table::builtin()
        .lookup(srv)
        .iter()
        .find(|u| u.code == name)
        .and_then(|u| u.message_code())
        .unwrap_or(NO_PUBLIC_CODE)
}

fn body_tree(request: &CommandRequest<'_>) -> Result<Node, CommandError> {
    let bytes = request
        .document
        .get(request.body.clone())
        .ok_or(BodyError::Malformed)?;
    Ok(Node::parse(bytes)?)
}

/// The MAC the DCC's command wrapper carries here: the first twelve octets of SHA-256 over the
/// security header and the APDU. GBCS computes it with a key agreed between the access-control
/// broker's and the device's key-agreement keys, which neither the gateway nor the simulated
/// devices hold; this stand-in lets a device tell a command was not changed on the way, while
/// the broker's signature on the routing envelope is what proves who sent it.
pub struct StandInMac;

impl ComputeMac for StandInMac {
    fn mac(&self, security_header: &[u8; 5], apdu: &[u8]) -> [u8; 12] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(security_header);
        ctx.update(apdu);
        let digest = ctx.finish();
        let mut mac = [0u8; 12];
        mac.copy_from_slice(&digest.as_ref()[..12]);
        mac
    }
}

/// `command` (unsigned, or signed by its User) behind the DCC's MAC header, as it travels to
/// the device and as a User receives it for local delivery.
pub fn seal(command: GeneralSigning) -> Result<Vec<u8>, FrameError> {
    MacProtected::seal(command, INVOCATION_COUNTER, &StandInMac)?.encode()
}

/// Whether `sealed`'s MAC is the stand-in MAC of what it carries.
pub fn mac_holds(sealed: &MacProtected) -> bool {
    sealed
        .inner
        .encode()
        .is_ok_and(|apdu| StandInMac.mac(&sealed.security_header(), &apdu) == sealed.mac)
}
