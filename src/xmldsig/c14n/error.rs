//! Why a document could not be canonicalised.

use std::ops::Range;

/// Why [`canonicalize`](super::canonicalize) (or one of the element helpers) refused a document.
/// Positions are byte offsets into the document; nothing the peer sent is echoed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum C14nError {
    #[error("the document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("elements are nested deeper than {limit} (at byte {position})")]
    TooDeep { position: usize, limit: usize },
    #[error("an element has more than {limit} attributes (at byte {position})")]
    TooManyAttributes { position: usize, limit: usize },
    #[error("the document is not UTF-8 (at byte {position})")]
    NotUtf8 { position: usize },
    #[error("the XML declaration names a version other than 1.0 or an encoding other than UTF-8")]
    UnsupportedDeclaration { position: usize },
    #[error("the document has a document type declaration (at byte {position})")]
    Doctype { position: usize },
    #[error("the document has a processing instruction (at byte {position})")]
    ProcessingInstruction { position: usize },
    #[error(
        "the document refers to an entity other than the five predefined ones (at byte {position})"
    )]
    EntityReference { position: usize },
    #[error("the document is not well-formed XML at byte {position}: {kind:?}")]
    Malformed {
        position: usize,
        kind: MalformedKind,
    },
    #[error("a namespace prefix is used but not declared (at byte {position})")]
    UnboundPrefix { position: usize },
    #[error("a namespace declaration misuses the xml or xmlns prefix or namespace, or undeclares a prefix (at byte {position})")]
    ReservedNamespace { position: usize },
    #[error(
        "a namespace declaration has a relative URI, which c14n must refuse (at byte {position})"
    )]
    RelativeNamespaceUri { position: usize },
    #[error("an element has the same attribute twice (at byte {position})")]
    DuplicateAttribute { position: usize },
    #[error("the span {span:?} is not exactly one element of the document")]
    SpanNotAnElement { span: Range<usize> },
}

impl C14nError {
    /// The byte offset the error is at (where a span starts; 0 for the document's size).
    pub fn position(&self) -> usize {
        match self {
            Self::TooLarge { .. } => 0,
            Self::SpanNotAnElement { span } => span.start,
            Self::TooDeep { position, .. }
            | Self::TooManyAttributes { position, .. }
            | Self::NotUtf8 { position }
            | Self::UnsupportedDeclaration { position }
            | Self::Doctype { position }
            | Self::ProcessingInstruction { position }
            | Self::EntityReference { position }
            | Self::Malformed { position, .. }
            | Self::UnboundPrefix { position }
            | Self::ReservedNamespace { position }
            | Self::RelativeNamespaceUri { position }
            | Self::DuplicateAttribute { position } => *position,
        }
    }
}

/// The well-formedness rule a document broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedKind {
    /// The document ended inside a construct, or before its root element closed.
    UnexpectedEnd,
    /// A character XML does not allow (a C0 control other than tab, LF, CR; U+FFFE; U+FFFF).
    ForbiddenChar,
    /// There is no root element.
    NoRoot,
    /// Something other than whitespace, a comment or the root element outside the root element.
    ContentOutsideRoot,
    /// An element or attribute name that is not an XML QName.
    BadName,
    /// An attribute is not `name="value"` or `name='value'`, or lacks whitespace before it.
    BadAttribute,
    /// A literal `<` in an attribute value.
    LtInAttributeValue,
    /// An end tag that does not match the open element, or one with nothing open.
    MismatchedEndTag,
    /// A `&` that does not start a well-formed reference, or a reference to a forbidden character.
    BadReference,
    /// A literal `]]>` in text.
    CdataEndInText,
    /// `--` inside a comment.
    DoubleHyphenInComment,
    /// A `<!` that is neither a comment nor a CDATA section.
    BadMarkup,
    /// A malformed XML declaration (or one that is not at the very start).
    BadDeclaration,
}
