//! Local delivery. A command for local delivery (Command Variants 2, 3, 6, 7) reaches its User as
//! a signed `ResponseMessage/LocalCommand` through the outbox (the request's final message, made
//! durable before the `I99`), and is remembered in the local-command ledger. The User delivers
//! it over the HAN and reports the device's answer with an 8.13 Return Local Command Response,
//! which is checked against the command sent (the same device, counter and message code, a
//! response addressed to the User) and recorded against it, once; the 8.13 is answered `I0`.

use serde::{Deserialize, Serialize};

use crate::domain::{RequestId, ResponseCode, Srv};
use crate::duis::critical::{
    read_local_command_response, write_local_command, LocalResponseRefusal,
};
use crate::duis::{write_response, ResponseHeaderOut, ResponsePayload};
use crate::error::{Error, Resource};
use crate::gbcs::{Apdu, Cra, MessageCode};
use crate::outbox::{Outbound, OutboundKind};
use crate::store::UseError;
use crate::xmldsig;

use super::plan::{Effect, Plan, Planning};
use super::Gateway;

/// A command sent to a User for local delivery, as its ledger keeps it until the 8.13 that
/// reports the device's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCommand {
    pub srv: Srv,
    /// The command's GBCS message code; the device's response carries the same.
    pub message_code: u16,
}

/// The local delivery of `sealed` (the command as the device would get it, message code
/// `code`) for the request being planned: the signed `LocalCommand` message for its User.
pub(super) fn delivery(
    gw: &Gateway,
    p: &Planning<'_>,
    sealed: &[u8],
    code: MessageCode,
) -> Result<Effect, Error> {
    let id = p.request.header.request_id;
    let srv = p.entry.srv;
    let header = ResponseHeaderOut {
        request_id: Some(id),
        response_id: None,
        code: ResponseCode::I0,
        date_time: p.now,
    };
    let payload = ResponsePayload::Raw(write_local_command(sealed));
    let xml = write_response(&header, srv.service_reference(), srv, &payload);
    let body = xmldsig::sign_document(&xml, &gw.signer, &gw.c14n_limits).map_err(|e| {
        tracing::error!(error = %e, "Signing a local command failed; check the DCC signing key.");
        Error::SignAnswer
    })?;
    let message = Outbound {
        id: gw.outbox.next_id(),
        user: id.originator,
        kind: OutboundKind::Response {
            request_id: id,
            code: ResponseCode::I0,
        },
        body: body.into_bytes(),
        raised_at: (p.now.unix_timestamp_nanos() / 1_000_000) as i64,
    };
    let record = LocalCommand {
        srv,
        message_code: code.0,
    };
    Ok(Effect::DeliverLocally {
        id,
        record,
        message,
    })
}

impl Gateway {
    /// 8.13 Return Local Command Response: the device's answer to a command this User was sent
    /// for local delivery, recorded against it (once); answered `I0`.
    pub(super) fn local_command_response(&self, p: &Planning<'_>) -> Result<Plan, Error> {
        let refuse = Error::LocalResponse;
        let span = p.body.get(p.request.body.clone()).unwrap_or_default();
        let returned =
            read_local_command_response(span).map_err(|e| refuse(LocalResponseRefusal::Body(e)))?;
        let not_it = || refuse(LocalResponseRefusal::NotTheResponse);
        let apdu = Apdu::decode(&returned.response).map_err(|_| not_it())?;
        let frame = apdu.general_signing();
        let user = p.request.header.request_id.originator;
        if frame.transaction.cra != Cra::Response || frame.recipient != user {
            return Err(not_it());
        }
        let id = RequestId {
            originator: user,
            target: frame.originator,
            counter: frame.transaction.counter,
        };
        match returned.original {
            Some(original) if original.originator != user => {
                return Err(refuse(LocalResponseRefusal::Unknown))
            }
            Some(original) if original != id => return Err(not_it()),
            _ => {}
        }
        let now = p.now.unix_timestamp();
        let sent = self
            .ledgers
            .local_commands
            .peek(&id, now)
            .map_err(use_error)?;
        if sent.message_code != frame.other.message_code.0 {
            return Err(not_it());
        }
        Ok(Plan {
            reply: super::plan::Reply::Done(ResponsePayload::None),
            effects: vec![Effect::LocalCommandAnswered(id)],
        })
    }
}

/// A local command that cannot be answered: never sent to this User, answered already,
/// expired (all three: nothing outstanding), or its ledger failed.
pub(super) fn use_error(e: UseError) -> Error {
    match e {
        UseError::Unknown | UseError::Used | UseError::Expired => {
            Error::LocalResponse(LocalResponseRefusal::Unknown)
        }
        UseError::Journal(e) => Error::resource(Resource::Ledger, e),
    }
}
