//! The critical flow. A Transform (Command Variant 4, `serviceT`) is answered at once, `I0`,
//! with its GBCS pre-command (`ResponseMessage/PreCommand`), which the pre-command ledger
//! remembers (journalled before the answer leaves) until its signed form arrives or it expires.
//! The signed form comes back under the same RequestID as `SignedPreCommand` with Command
//! Variant 5 (`serviceS`: to the device), 6 (`serviceD`: for local delivery) or 7 (`serviceS`:
//! both); it must be exactly the pre-command issued followed by a signature that verifies with
//! one of the User's Digital Signing certificates for the role it acts in. Then the pre-command
//! is used (once, journalled), and the signed command goes on behind the DCC's MAC header.
//!
//! A signed pre-command's counter was accepted with its Transform; what makes it once-only is
//! the pre-command ledger, not the counter (so other requests of the User may come between a
//! Transform and its signed form).

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::dscerts::{signing_role, PreCommandSignatureError};
use crate::duis::critical::{read_signed_precommand, write_precommand, PreCommandRefusal};
use crate::duis::ResponsePayload;
use crate::error::{Error, Resource};
use crate::store::{JournalError, Ledger, LedgerLimits, UseError};

use super::command::{execute_at, seal};
use super::local::{self, LocalCommand};
use super::plan::{Effect, Plan, Planning, Reply};
use super::Gateway;

/// The GBCS version the gateway's pre-commands are written in (`PreCommand/GBCSVersion`): the
/// version of the public samples the encodings are checked against.
pub const GBCS_VERSION: &str = "4.0";

/// A pre-command as its ledger keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPreCommand {
    pub srv: crate::domain::Srv,
    /// The pre-command's GBCS bytes, base64.
    pub precommand: String,
    /// When the device runs the command, for a device-held future-dated one (unix seconds).
    pub execute_at: Option<i64>,
    /// The Transform body's values of the attributes anomaly detection bounds, read when an
    /// attribute limit was in force, for the screening of the signed pre-command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(crate::anomaly::Attribute, Option<i64>)>,
}

/// The ledgers of the critical flow and of local delivery.
pub struct Ledgers {
    /// Pre-commands issued by Transforms, until signed and sent or expired (issued and used
    /// through the request log, with the request's decision).
    pub precommands: Arc<Ledger<HeldPreCommand>>,
    /// Commands sent for local delivery, until their 8.13 or expired.
    pub local_commands: Arc<Ledger<LocalCommand>>,
}

impl Ledgers {
    /// Opens both under `state_dir` (`precommands/`, `local-commands/`) at `now` (unix seconds).
    /// Blocking.
    pub fn open(
        state_dir: &Path,
        precommands: LedgerLimits,
        local_commands: LedgerLimits,
        now: i64,
    ) -> Result<Self, JournalError> {
        Ok(Self {
            precommands: Arc::new(Ledger::open(
                &state_dir.join("precommands"),
                precommands,
                now,
            )?),
            local_commands: Arc::new(Ledger::open(
                &state_dir.join("local-commands"),
                local_commands,
                now,
            )?),
        })
    }
}

impl Gateway {
    /// In cluster mode, a signed pre-command's Transform issued through another instance: its
    /// ledger record read from the cluster into this instance's ledger before the request is
    /// planned (a use there is read as used). Nothing when this instance knows it, or the
    /// cluster cannot be read (the plan then refuses the request as it refuses one unknown).
    pub(super) async fn fetch_precommand(&self, request: &crate::duis::ParsedRequest) {
        let Some(shared) = self.anomaly.shared.get() else {
            return;
        };
        let id = request.header.request_id;
        if !(5..=7).contains(&request.header.command_variant.get())
            || self.ledgers.precommands.knows(&id)
        {
            return;
        }
        match shared.precommand(id.to_string()).await {
            Ok(Some(record)) => self.ledgers.precommands.recover(&[record]),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "A pre-command could not be read from the cluster.")
            }
        }
    }

    /// Command Variant 4: `I0` with the pre-command, remembered before the answer leaves.
    pub(super) fn transform(&self, p: &Planning<'_>) -> Result<Plan, Error> {
        let precommand = self
            .gbcs_command(p)?
            .encode()
            .map_err(|e| Error::CommandBody(e.into()))?;
        let held = HeldPreCommand {
            srv: p.entry.srv,
            precommand: base64::engine::general_purpose::STANDARD.encode(&precommand),
            execute_at: execute_at(p),
            attributes: self.transform_attributes(p),
        };
        let id = p.request.header.request_id;
        Ok(Plan {
            reply: Reply::Done(ResponsePayload::Raw(write_precommand(
                GBCS_VERSION,
                &precommand,
            ))),
            effects: vec![Effect::RememberPreCommand { id, held }],
        })
    }

    /// Command Variants 5, 6 and 7: the signed pre-command checked, then sent to the device, to
    /// the User for local delivery, or both (the local copy first).
    pub(super) fn signed_precommand(&self, p: &Planning<'_>) -> Result<Plan, Error> {
        let refuse = Error::PreCommand;
        let id = p.request.header.request_id;
        let span = p.body.get(p.request.body.clone()).unwrap_or_default();
        let signed =
            read_signed_precommand(span).map_err(|e| refuse(PreCommandRefusal::Body(e)))?;
        let held = self
            .ledgers
            .precommands
            .peek(&id, p.now.unix_timestamp())
            .map_err(use_error)?;
        let precommand = base64::engine::general_purpose::STANDARD
            .decode(&held.precommand)
            .ok()
            .filter(|_| held.srv == p.entry.srv)
            .ok_or(refuse(PreCommandRefusal::NotThePreCommand))?;
        let frame = self
            .state
            .digital_signing()
            .verify_signed_precommand(
                id.originator,
                signing_role(p.permit.role()),
                p.now,
                &precommand,
                &signed,
            )
            .map_err(|e| {
                refuse(match e {
                    PreCommandSignatureError::NotThePreCommand => {
                        PreCommandRefusal::NotThePreCommand
                    }
                    PreCommandSignatureError::NoCertificate(_) => PreCommandRefusal::NoCertificate,
                    PreCommandSignatureError::BadSignature => PreCommandRefusal::BadSignature,
                })
            })?;
        let code = frame.other.message_code;
        let sealed = seal(frame)?;
        let cv = p.request.header.command_variant.get();
        let mut effects = vec![Effect::UsePreCommand(id)];
        if matches!(cv, 6 | 7) {
            effects.push(local::delivery(self, p, &sealed, code)?);
        }
        if matches!(cv, 5 | 7) {
            let at = execute_at(p).or(held.execute_at);
            effects.push(Effect::Route(self.envelope(p, sealed, at)?));
        }
        Ok(Plan::acknowledged(effects))
    }
}

/// A pre-command that cannot be used, or its ledger failed.
pub(super) fn use_error(e: UseError) -> Error {
    Error::PreCommand(match e {
        UseError::Unknown => PreCommandRefusal::Unknown,
        UseError::Used => PreCommandRefusal::Used,
        UseError::Expired => PreCommandRefusal::Expired,
        UseError::Journal(e) => return Error::resource(Resource::Ledger, e),
    })
}
