//! A device request's GBCS command, and what goes where: the command the DCC builds from the
//! request (`gbcs::command`), behind the DCC's MAC header, inside the broker-signed routing
//! envelope for the hub network; or to the User for local delivery. Command Variant 1 routes,
//! 2 delivers locally, 3 does both.

use crate::catalogue::FutureDated;
use crate::error::Error;
use crate::gbcs::command::{self as gbcs_command, CommandRequest};
use crate::gbcs::usecase::{Parties, CANCELLATION};
use crate::gbcs::GeneralSigning;
use crate::routing::{Command, SignedCommand};

use super::local;
use super::plan::{Effect, Plan, Planning};
use super::Gateway;

impl Gateway {
    /// The GBCS command for a device request: a pre-command for a critical one, else an
    /// unsigned command.
    pub(super) fn gbcs_command(&self, p: &Planning<'_>) -> Result<GeneralSigning, Error> {
        let id = p.request.header.request_id;
        // The permit of a device request names its device; a non-device one has no command.
        let device_type = p.permit.device_type().ok_or(Error::Command(
            crate::routing::RoutingError::NonDevice(p.entry.srv),
        ))?;
        let request = CommandRequest {
            srv: p.entry.srv,
            device_type,
            parties: Parties {
                user: id.originator,
                device: id.target,
                counter: id.counter,
            },
            document: p.body,
            body: p.request.body.clone(),
            execution: p.request.execution_date_time.is_some().then_some(p.at),
            critical: p.entry.critical,
        };
        gbcs_command::build(&request, &self.c14n_limits).map_err(Error::CommandBody)
    }

    /// The signed routing envelope of a non-critical device request: its GBCS command behind
    /// the DCC's MAC header, made from the permit alone and signed with the broker key. A held
    /// request released later is sent with this too.
    pub(super) fn sign_command(&self, p: &Planning<'_>) -> Result<SignedCommand, Error> {
        let command = self.gbcs_command(p)?;
        let sealed = seal(command)?;
        self.envelope(p, sealed, execute_at(p))
    }

    /// `payload` (the GBCS bytes for the device) in the broker-signed routing envelope;
    /// `execute_at` tells the hub network when a device-held future-dated command runs.
    pub(super) fn envelope(
        &self,
        p: &Planning<'_>,
        payload: Vec<u8>,
        execute_at: Option<i64>,
    ) -> Result<SignedCommand, Error> {
        let header = &p.request.header;
        Command::from_permit(
            p.permit,
            header.request_id,
            header.command_variant,
            execute_at,
            payload,
        )
        .and_then(|c| self.routing.signer.sign(&c))
        .map_err(Error::Command)
    }

    /// A non-critical device request (Command Variant 1, 2 or 3): its command to the device,
    /// to the User for local delivery, or both; the local copy goes first.
    pub(super) fn device_command(&self, p: &Planning<'_>) -> Result<Plan, Error> {
        let cv = p.request.header.command_variant.get();
        if cv == 1 {
            return Ok(Plan::acknowledged(vec![Effect::Route(
                self.sign_command(p)?,
            )]));
        }
        let command = self.gbcs_command(p)?;
        let code = command.other.message_code;
        let sealed = seal(command)?;
        let mut effects = Vec::new();
        effects.push(local::delivery(self, p, &sealed, code)?);
        if cv == 3 {
            effects.push(Effect::Route(self.envelope(p, sealed, execute_at(p))?));
        }
        Ok(Plan::acknowledged(effects))
    }
}

/// `command` behind the DCC's MAC header.
pub(super) fn seal(command: GeneralSigning) -> Result<Vec<u8>, Error> {
    gbcs_command::seal(command).map_err(|e| Error::CommandBody(e.into()))
}

/// When a device holds the request's command until (unix seconds): its `ExecutionDateTime`
/// when the device is the one to hold it (the `device` pattern; a request the DSP held is sent
/// at its time and runs on arrival), unless that is the cancellation date, which runs at once
/// (it cancels what the device holds).
pub(super) fn execute_at(p: &Planning<'_>) -> Option<i64> {
    let device_held = p.entry.future_dated == FutureDated::Device;
    (device_held && p.request.execution_date_time.is_some() && p.at != CANCELLATION)
        .then(|| p.at.unix_timestamp())
}
