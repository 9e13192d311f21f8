//! Why a request was refused, and what of its header could be read first.

use quick_xml::errors::{IllFormedError, SyntaxError};
use quick_xml::events::attributes::AttrError;
use quick_xml::name::NamespaceError;

use crate::domain::{RequestId, RequestIdError, ServiceReference, Srv};

/// Why [`parse_request`](super::parse_request) refused a document. Peer-supplied names are
/// carried truncated (see [`ParseError::UnexpectedElement`]); nothing here is preformatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the request is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("elements are nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("the request has more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("the document declares more than {limit} namespaces")]
    TooManyNamespaces { limit: usize },
    #[error("a text node is longer than {limit} bytes")]
    TextTooLong { limit: usize },
    #[error("the request is not UTF-8")]
    NotUtf8,
    #[error("the request has a document type declaration")]
    Doctype,
    #[error("the request has a processing instruction")]
    ProcessingInstruction,
    #[error("the request refers to an entity other than the five predefined ones")]
    EntityReference,
    #[error("the request is not well-formed XML at byte {position}: {kind:?}")]
    Malformed {
        position: usize,
        kind: MalformedKind,
    },
    #[error("the root element is not a Request")]
    WrongRoot,
    #[error("the Request element is not in the DUIS namespace")]
    WrongNamespace,
    #[error("the Request has no schemaVersion")]
    MissingSchemaVersion,
    #[error("in {parent}, expected {expected}, found {found:?}")]
    UnexpectedElement {
        parent: &'static str,
        expected: &'static str,
        /// The local name found (at most [`MAX_NAME_IN_ERROR`] bytes), or `None` for the end
        /// of `parent`.
        found: Option<String>,
    },
    #[error("{parent} has text where only elements may be")]
    UnexpectedText { parent: &'static str },
    #[error("the header has no {0}")]
    MissingHeaderField(&'static str),
    #[error("the header has {0} twice")]
    DuplicateHeaderField(&'static str),
    #[error("the header field {0} is out of schema order")]
    HeaderFieldOutOfOrder(&'static str),
    #[error("the Body is empty")]
    EmptyBody,
    #[error("the Body has more than one element")]
    MultipleBodyElements,
    #[error("bad RequestID: {0}")]
    BadRequestId(RequestIdError),
    #[error("bad PrecedingServiceRequestID: {0}")]
    BadPrecedingRequestId(RequestIdError),
    #[error("bad CommandVariant")]
    BadCommandVariant,
    #[error("bad ServiceReference")]
    BadServiceReference,
    #[error("bad ServiceReferenceVariant")]
    BadSrv,
    #[error("FirstInSequence is not a boolean")]
    BadFirstInSequence,
    #[error("a ds:Signature is somewhere other than the last child of the Request")]
    SignatureNotLast,
    #[error("the Request has more than one ds:Signature")]
    MultipleSignatures,
    #[error("there is content after the Request element")]
    TrailingContent,
}

/// How a document fails to be well-formed (namespace-well-formed) XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MalformedKind {
    Syntax(SyntaxError),
    IllFormed(IllFormedError),
    Attribute(AttrError),
    Namespace(NamespaceError),
    /// An element or attribute prefix with no namespace declaration in scope.
    UnboundPrefix,
    /// A namespace declaration whose value uses a character or entity reference; refused so
    /// that no two readers can disagree on which namespace a name is in.
    EscapedNamespaceName,
    /// A character XML 1.0 does not allow (a control character, U+FFFE, U+FFFF).
    IllegalCharacter,
    /// An element or attribute name that is not an XML name.
    BadName,
    /// A `&` not starting a reference, or a character reference to a character XML forbids.
    BadReference,
    /// A `<` inside an attribute value.
    LessThanInAttribute,
    /// The document ends inside an element.
    UnexpectedEof,
    /// The document has no element at all.
    NoRootElement,
    /// Non-whitespace text before the root element.
    TextOutsideRoot,
    /// An XML declaration with a version other than 1.0.
    UnsupportedXmlVersion,
    /// quick-xml reported an error kind with no better home here (I/O cannot happen on a slice).
    Reader,
}

/// Whatever of the header was read before a failure, so that the error answer can echo it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialHeader {
    pub request_id: Option<RequestId>,
    pub service_reference: Option<ServiceReference>,
    pub srv: Option<Srv>,
}

/// A refused request: the reason, and the header fields read before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ParseFailure {
    pub error: ParseError,
    pub partial: PartialHeader,
}

impl From<ParseError> for ParseFailure {
    fn from(error: ParseError) -> Self {
        Self {
            error,
            partial: PartialHeader::default(),
        }
    }
}

/// The most bytes of a peer-supplied element name an error carries.
pub const MAX_NAME_IN_ERROR: usize = 64;

/// A peer-supplied name cut to [`MAX_NAME_IN_ERROR`] bytes on a character boundary.
pub(super) fn truncated_name(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME_IN_ERROR);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}
