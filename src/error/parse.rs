//! The codes of requests the parser refused.

use crate::domain::ResponseCode;
use crate::duis::ParseError;

pub(super) fn parse_code(e: &ParseError) -> (ResponseCode, u16, &'static str) {
    use ResponseCode::*;
    match e {
        ParseError::TooLarge { .. } => (E42, 413, "body_too_large"),
        ParseError::TooDeep { .. } => (E42, 400, "xml_too_deep"),
        ParseError::TooManyElements { .. } => (E42, 400, "xml_too_many_elements"),
        ParseError::TooManyAttributes { .. } => (E42, 400, "xml_too_many_attributes"),
        ParseError::TooManyNamespaces { .. } => (E42, 400, "xml_too_many_namespaces"),
        ParseError::TextTooLong { .. } => (E42, 400, "xml_text_too_long"),
        ParseError::Doctype => (E41, 400, "xml_doctype"),
        ParseError::ProcessingInstruction => (E41, 400, "xml_processing_instruction"),
        ParseError::EntityReference => (E41, 400, "xml_entity"),
        ParseError::NotUtf8 | ParseError::Malformed { .. } | ParseError::TrailingContent => {
            (E40, 400, "xml_malformed")
        }
        ParseError::WrongRoot
        | ParseError::WrongNamespace
        | ParseError::MissingSchemaVersion
        | ParseError::UnexpectedElement { .. }
        | ParseError::UnexpectedText { .. }
        | ParseError::HeaderFieldOutOfOrder(_)
        | ParseError::MissingHeaderField(_)
        | ParseError::DuplicateHeaderField(_)
        | ParseError::EmptyBody
        | ParseError::MultipleBodyElements
        | ParseError::BadFirstInSequence
        | ParseError::SignatureNotLast
        | ParseError::MultipleSignatures => (E40, 400, "duis_structure"),
        ParseError::BadRequestId(_) | ParseError::BadPrecedingRequestId(_) => {
            (E43, 400, "request_id")
        }
        ParseError::BadCommandVariant => (E12, 400, "command_variant"),
        ParseError::BadServiceReference | ParseError::BadSrv => (E44, 400, "unknown_srv"),
    }
}
