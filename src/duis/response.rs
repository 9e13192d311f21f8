//! The DUIS 5.4 `sr:Response` writer for acknowledgements and service responses (XSD
//! `Response`, `ResponseMessage`). The document is written unsigned and on one line; signing
//! inserts `ds:Signature` just before [`RESPONSE_CLOSE`], the document's last bytes.

use base64::Engine as _;
use time::{OffsetDateTime, UtcOffset};

use super::escape::escape;
use super::tokens::SR_NAMESPACE;
use crate::domain::{RequestId, ResponseCode, ServiceReference, Srv};

/// The DUIS response-and-alert namespace (`ra`).
pub const RA_NAMESPACE: &str = "http://www.dccinterface.co.uk/ResponseAndAlert";

/// The schema version every written response declares.
pub const RESPONSE_SCHEMA_VERSION: &str = "5.4";

/// The closing tag a written response ends with; the signature goes immediately before it.
pub const RESPONSE_CLOSE: &str = "</sr:Response>";

/// The `sr:Header` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeaderOut {
    /// The request's RequestID, when the request got far enough to have one.
    pub request_id: Option<RequestId>,
    /// The device answer's ResponseID (see [`RequestId::response_id`]); must be of that form.
    pub response_id: Option<String>,
    pub code: ResponseCode,
    /// Written in UTC with milliseconds, whatever its offset.
    pub date_time: OffsetDateTime,
}

/// What `sr:ResponseMessage` carries after its ServiceReference and ServiceReferenceVariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePayload {
    None,
    /// GBCS bytes, written base64 in `sr:GBCSPayload`.
    GbcsPayload(Vec<u8>),
    /// One already-serialised child element of `sr:ResponseMessage` (e.g. `sr:DSPInventory`),
    /// written by the gateway itself with the `sr` prefix; inserted verbatim.
    Raw(String),
}

/// Writes an unsigned `sr:Response` with a `sr:ResponseMessage` body.
pub fn write_response(
    header: &ResponseHeaderOut,
    service_reference: ServiceReference,
    srv: Srv,
    payload: &ResponsePayload,
) -> String {
    let payload_len = match payload {
        ResponsePayload::None => 0,
        ResponsePayload::GbcsPayload(bytes) => bytes.len() * 4 / 3 + 40,
        ResponsePayload::Raw(xml) => xml.len(),
    };
    let mut out = String::with_capacity(640 + payload_len);
    open_with_header(&mut out, header);

    out.push_str("<sr:Body><sr:ResponseMessage>");
    element(&mut out, "ServiceReference", &service_reference.to_string());
    element(&mut out, "ServiceReferenceVariant", &srv.text());
    match payload {
        ResponsePayload::None => {}
        ResponsePayload::GbcsPayload(bytes) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            element(&mut out, "GBCSPayload", &encoded);
        }
        ResponsePayload::Raw(xml) => out.push_str(xml),
    }
    out.push_str("</sr:ResponseMessage></sr:Body>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// Writes the answer to a request refused before a Service Reference Variant the catalogue knows
/// could be read from it: the header, and an empty `sr:Body`. The schema requires a variant in
/// every `sr:ResponseMessage`, so no schema-valid answer exists for that case; this one still
/// carries the code (see `docs/response-codes.md`).
pub fn write_header_only_response(header: &ResponseHeaderOut) -> String {
    let mut out = String::with_capacity(640);
    open_with_header(&mut out, header);
    out.push_str("<sr:Body/>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// The XML declaration, the `sr:Response` start tag and the whole `sr:Header`.
pub(super) fn open_with_header(out: &mut String, header: &ResponseHeaderOut) {
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(r#"<sr:Response xmlns:sr=""#);
    out.push_str(SR_NAMESPACE);
    out.push_str(r#"" xmlns:ra=""#);
    out.push_str(RA_NAMESPACE);
    out.push_str(r#"" schemaVersion=""#);
    out.push_str(RESPONSE_SCHEMA_VERSION);
    out.push_str(r#"">"#);

    out.push_str("<sr:Header>");
    if let Some(id) = &header.request_id {
        element(out, "RequestID", &id.to_string());
    }
    if let Some(id) = &header.response_id {
        element(out, "ResponseID", id);
    }
    element(out, "ResponseCode", header.code.as_str());
    element(out, "ResponseDateTime", &xs_date_time(header.date_time));
    out.push_str("</sr:Header>");
}

/// `<sr:name>text</sr:name>`, text escaped.
pub(super) fn element(out: &mut String, name: &str, text: &str) {
    out.push_str("<sr:");
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</sr:");
    out.push_str(name);
    out.push('>');
}

/// An xs:dateTime in UTC with milliseconds: `2022-07-22T09:37:56.134Z`.
pub fn xs_date_time(t: OffsetDateTime) -> String {
    // Out of range only within hours of the years ±9999; there the time is written unshifted.
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    let year = t.year();
    let sign = if year < 0 { "-" } else { "" };
    format!(
        "{sign}{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        year.unsigned_abs(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond(),
    )
}
