//! The DUIS parts of the critical and local-delivery flows: the `PreCommand` a Transform
//! (Command Variant 4) is answered with, the `SignedPreCommand` a Command Variant 5, 6 or 7
//! request carries back, the `LocalCommand` a User receives for local delivery (Command
//! Variants 2, 3, 6, 7), and the `ReturnLocalCommandResponse` (SRV 8.13) with which it reports
//! the device's answer to a locally delivered command (XSD `PreCommand`, `SignedPreCommand`,
//! `LocalCommand`, `ReturnLocalCommandResponse`).

use base64::Engine as _;

use super::body::{BodyError, Node};
use super::escape::escape;
use crate::domain::RequestId;

/// The largest GBCS payload read from a request body, in bytes (a GBCS frame's bound,
/// `gbcs::MAX_FRAME_LEN`); a larger one is refused before it is decoded.
pub const MAX_GBCS_PAYLOAD: usize = 60 * 1024;

/// `sr:PreCommand`, a child of `sr:ResponseMessage`: the GBCS version and the pre-command.
pub fn write_precommand(gbcs_version: &str, precommand: &[u8]) -> String {
    format!(
        "<sr:PreCommand><sr:GBCSVersion>{}</sr:GBCSVersion><sr:GBCSPayload>{}</sr:GBCSPayload></sr:PreCommand>",
        escape(gbcs_version),
        base64(precommand)
    )
}

/// `sr:LocalCommand`, a child of `sr:ResponseMessage`: the command to deliver locally.
pub fn write_local_command(command: &[u8]) -> String {
    format!(
        "<sr:LocalCommand><sr:GBCSPayload>{}</sr:GBCSPayload></sr:LocalCommand>",
        base64(command)
    )
}

/// The signed pre-command in a `sr:SignedPreCommand` body (its bytes, start tag to end tag).
pub fn read_signed_precommand(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let node = Node::parse(body)?;
    if node.name != "SignedPreCommand" {
        return Err(BodyError::Missing("SignedPreCommand"));
    }
    payload(node.need("GBCSPayload")?, "GBCSPayload")
}

/// What an 8.13 Return Local Command Response reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCommandResponse {
    /// The request whose command was delivered locally, when the User names it.
    pub original: Option<RequestId>,
    /// The device's GBCS response.
    pub response: Vec<u8>,
}

/// Reads a `sr:ReturnLocalCommandResponse` body.
pub fn read_local_command_response(body: &[u8]) -> Result<LocalCommandResponse, BodyError> {
    let node = Node::parse(body)?;
    if node.name != "ReturnLocalCommandResponse" {
        return Err(BodyError::Missing("ReturnLocalCommandResponse"));
    }
    let original = node.optional("OriginalRequestID")?;
    let response = payload(node.need("DeviceGBCSResponse")?, "DeviceGBCSResponse")?;
    Ok(LocalCommandResponse { original, response })
}

/// A base64 GBCS payload (whitespace allowed, as XML tools wrap it), at most
/// [`MAX_GBCS_PAYLOAD`] bytes.
fn payload(node: &Node, what: &'static str) -> Result<Vec<u8>, BodyError> {
    let text: String = node.text.split_whitespace().collect();
    if text.len() / 4 * 3 > MAX_GBCS_PAYLOAD + 3 {
        return Err(BodyError::Invalid(what));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| BodyError::Invalid(what))
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Why a signed pre-command (Command Variant 5, 6 or 7) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreCommandRefusal {
    #[error("the SignedPreCommand body cannot be read")]
    Body(#[source] BodyError),
    #[error("no pre-command was issued for this RequestID (no Command Variant 4, or forgotten)")]
    Unknown,
    #[error("the pre-command was signed and sent already")]
    Used,
    #[error("the pre-command expired")]
    Expired,
    #[error("the payload is not the pre-command issued for this RequestID and a signature")]
    NotThePreCommand,
    #[error("the User holds no Digital Signing certificate usable for this role now")]
    NoCertificate,
    #[error("the signature verifies with none of the User's Digital Signing certificates")]
    BadSignature,
}

/// Why an 8.13 Return Local Command Response is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalResponseRefusal {
    #[error("the ReturnLocalCommandResponse body cannot be read")]
    Body(#[source] BodyError),
    #[error("no command for local delivery is outstanding for that RequestID")]
    Unknown,
    #[error("the response is not the device's answer to that command")]
    NotTheResponse,
}

/// What a Transform's answer (`I0` with `ResponseMessage/PreCommand`) gives the User.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformResponse {
    pub request_id: RequestId,
    pub srv: crate::domain::Srv,
    pub gbcs_version: String,
    pub precommand: Vec<u8>,
}

/// Reads a Transform's answer: an `sr:Response` with `ResponseCode` `I0` and a `PreCommand`.
pub fn read_transform_response(xml: &[u8]) -> Result<TransformResponse, BodyError> {
    let root = Node::parse(xml)?;
    if root.name != "Response" {
        return Err(BodyError::Missing("Response"));
    }
    let header = root.need("Header")?;
    if header.need("ResponseCode")?.text != "I0" {
        return Err(BodyError::Invalid("ResponseCode"));
    }
    let message = root.need("Body")?.need("ResponseMessage")?;
    let pre = message.need("PreCommand")?;
    Ok(TransformResponse {
        request_id: header.value("RequestID")?,
        srv: message.value("ServiceReferenceVariant")?,
        gbcs_version: pre.need("GBCSVersion")?.text.clone(),
        precommand: payload(pre.need("GBCSPayload")?, "GBCSPayload")?,
    })
}

/// The unsigned request that carries `signed` (a signed pre-command) back under its Transform's
/// RequestID, as Command Variant `variant` (5, 6 or 7); XML-sign it before sending.
pub fn write_signed_precommand_request(
    request_id: &RequestId,
    variant: crate::domain::CommandVariant,
    srv: crate::domain::Srv,
    signed: &[u8],
) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<sr:Request xmlns:sr="{ns}" schemaVersion="5.4"><sr:Header>"#,
            "<sr:RequestID>{id}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant>",
            "<sr:ServiceReference>{sr}</sr:ServiceReference>",
            "<sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header>",
            "<sr:Body><sr:SignedPreCommand><sr:GBCSPayload>{payload}</sr:GBCSPayload>",
            "</sr:SignedPreCommand></sr:Body></sr:Request>"
        ),
        ns = super::SR_NAMESPACE,
        id = request_id,
        cv = variant,
        sr = srv.service_reference(),
        srv = srv,
        payload = base64(signed),
    )
}
