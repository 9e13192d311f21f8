//! The `sr:Header` of a request: its fields in schema order, parsed into domain types.

use super::error::{ParseError, PartialHeader};
use crate::domain::{CommandVariant, RequestId, ServiceReference, Srv};

/// The `sr:Header` of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub request_id: RequestId,
    pub first_in_sequence: Option<bool>,
    pub preceding_request_id: Option<RequestId>,
    pub command_variant: CommandVariant,
    pub service_reference: ServiceReference,
    pub srv: Srv,
}

/// The header fields in schema order (DUIS 5.4 XSD, `Request/Header`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Field {
    RequestId,
    FirstInSequence,
    PrecedingRequestId,
    CommandVariant,
    ServiceReference,
    Srv,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Self::RequestId,
        Self::FirstInSequence,
        Self::PrecedingRequestId,
        Self::CommandVariant,
        Self::ServiceReference,
        Self::Srv,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::RequestId => "RequestID",
            Self::FirstInSequence => "FirstInSequence",
            Self::PrecedingRequestId => "PrecedingServiceRequestID",
            Self::CommandVariant => "CommandVariant",
            Self::ServiceReference => "ServiceReference",
            Self::Srv => "ServiceReferenceVariant",
        }
    }
}

/// The header as it is being read: every field optional until the end tag.
#[derive(Default)]
pub(super) struct HeaderFields {
    request_id: Option<RequestId>,
    first_in_sequence: Option<bool>,
    preceding_request_id: Option<RequestId>,
    command_variant: Option<CommandVariant>,
    service_reference: Option<ServiceReference>,
    srv: Option<Srv>,
}

impl HeaderFields {
    /// Parses one field's (trimmed) text into its place, and into `partial` if it is echoed.
    pub fn set(
        &mut self,
        field: Field,
        value: &str,
        partial: &mut PartialHeader,
    ) -> Result<(), ParseError> {
        match field {
            Field::RequestId => {
                let id = value.parse().map_err(ParseError::BadRequestId)?;
                partial.request_id = Some(id);
                self.request_id = Some(id);
            }
            Field::FirstInSequence => {
                let first = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(ParseError::BadFirstInSequence),
                };
                self.first_in_sequence = Some(first);
            }
            Field::PrecedingRequestId => {
                let id = value.parse().map_err(ParseError::BadPrecedingRequestId)?;
                self.preceding_request_id = Some(id);
            }
            Field::CommandVariant => {
                let cv = value.parse().map_err(|_| ParseError::BadCommandVariant)?;
                self.command_variant = Some(cv);
            }
            Field::ServiceReference => {
                let sr = value.parse().map_err(|_| ParseError::BadServiceReference)?;
                partial.service_reference = Some(sr);
                self.service_reference = Some(sr);
            }
            Field::Srv => {
                let srv = value.parse().map_err(|_| ParseError::BadSrv)?;
                partial.srv = Some(srv);
                self.srv = Some(srv);
            }
        }
        Ok(())
    }

    /// The header, once its end tag is read: the required fields must all be there.
    pub fn finish(self) -> Result<RequestHeader, ParseError> {
        let missing = |f: Field| ParseError::MissingHeaderField(f.name());
        Ok(RequestHeader {
            request_id: self.request_id.ok_or(missing(Field::RequestId))?,
            first_in_sequence: self.first_in_sequence,
            preceding_request_id: self.preceding_request_id,
            command_variant: self.command_variant.ok_or(missing(Field::CommandVariant))?,
            service_reference: self
                .service_reference
                .ok_or(missing(Field::ServiceReference))?,
            srv: self.srv.ok_or(missing(Field::Srv))?,
        })
    }
}
