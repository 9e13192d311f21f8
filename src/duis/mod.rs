//! The DUIS 5.4 wire format: the request parser and the response writer. Layer 0: pure, no I/O,
//! no clock (a response's date-time is passed in).
//!
//! - [`parse_request`] reads an `sr:Request` into a [`ParsedRequest`]: the header parsed into
//!   domain types, the body left as a byte span for later stages, the signature's span if any.
//!   Every peer-controlled size is bounded by [`Limits`]; DOCTYPEs, processing instructions and
//!   entity references other than the predefined five are refused outright.
//! - [`write_response`] writes an unsigned `sr:Response`; signing appends `ds:Signature` before
//!   [`RESPONSE_CLOSE`].
//! - [`outbound`] writes what the DCC sends to a User's Receive Response Service: asynchronous
//!   Service Responses, Device Alerts, future-dated alerts and DCC Alerts.
//! - [`services`] reads the bodies of the DCC's own services and writes their answers.

pub mod body;
pub mod critical;
mod error;
mod escape;
mod header;
pub mod inventory;
mod limits;
pub mod outbound;
mod parse;
mod response;
pub mod schedule;
pub mod services;
mod tokens;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use error::{MalformedKind, ParseError, ParseFailure, PartialHeader, MAX_NAME_IN_ERROR};
pub use header::RequestHeader;
pub use limits::Limits;
pub use parse::{parse_request, ParsedRequest};
pub use response::{
    write_header_only_response, write_response, xs_date_time, ResponseHeaderOut, ResponsePayload,
    RA_NAMESPACE, RESPONSE_CLOSE, RESPONSE_SCHEMA_VERSION,
};
pub use tokens::{DS_NAMESPACE, SR_NAMESPACE};
