//! XML canonicalisation as DUIS signatures use it, without comments: exclusive c14n 1.0
//! (<http://www.w3.org/2001/10/xml-exc-c14n#>, empty InclusiveNamespaces PrefixList) for
//! `SignedInfo`, and inclusive Canonical XML 1.0 for the enveloped Reference's node-set (XMLDSig
//! §4.3.3.2 converts a node-set to octets with it when no transform names a canonicalisation);
//! plus the element look-ups a verifier needs. Layer 0: pure, no I/O.
//!
//! Its own small XML reader, not a general parser: it works on the bytes, so spans are exact
//! and nothing is allocated per event. It implements what c14n needs of XML 1.0 and Namespaces
//! 1.0 — line-end and attribute-value normalisation, character and predefined-entity
//! references, CDATA, namespace scoping — and refuses, as the secure choice for a signature
//! verifier, what DUIS never carries: a DOCTYPE (so no entity expansion, no external entities,
//! no default attributes), entity references other than the five predefined ones, processing
//! instructions, encodings other than UTF-8, XML 1.1, and relative namespace URIs (c14n must
//! refuse those). Every bound is checked before the work it bounds: size first, then depth and
//! attribute count as the walk reaches them; everything else is linear in the document.
//!
//! Rendering (c14n 1.0 §2.3, exc-c14n §3): the XML declaration, comments and whitespace outside
//! the root are dropped; empty-element tags become start–end pairs; attributes are written in
//! canonical order (namespace declarations by prefix, default first; then the others by
//! namespace URI, then local name); an element writes only the namespace declarations it or
//! its attributes visibly use (exclusive) or has in scope (inclusive) and its nearest output
//! ancestor has not already written with the same value (`xmlns=""` only when that ancestor
//! wrote a non-empty default); in inclusive mode an apex whose parent is not output inherits
//! its ancestors' `xml:*` attributes (c14n 1.0 §2.4).

mod chars;
mod elements;
mod error;
mod lexer;
mod render;
mod scope;
mod walk;

#[cfg(test)]
mod tests;

use std::ops::Range;

/// The reader itself, for the walk that reads a signature (`super::prepare`).
pub(crate) use chars::{decode_attr, Sink, TextOut};
pub use elements::{children, root, text_content, Attribute, Element};
pub use error::{C14nError, MalformedKind};
pub(crate) use render::{Canonicalizer, Region};
pub(crate) use walk::{walk, StartTag, Visitor};

/// Bounds on a document; when one is hit the walk stops at once with the matching
/// [`C14nError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C14nLimits {
    /// Whole document, checked before anything else.
    pub max_bytes: usize,
    /// Element nesting; the root element is depth 1.
    pub max_depth: usize,
    /// Attributes on one element, namespace declarations included.
    pub max_attributes: usize,
}

impl Default for C14nLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_attributes: 32,
        }
    }
}

/// Which canonicalisation, both omitting comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum C14nMode {
    /// Canonical XML 1.0 (<http://www.w3.org/TR/2001/REC-xml-c14n-20010315>). XMLDSig uses it
    /// to turn a Reference's node-set into octets when no transform names a canonicalisation,
    /// as in DUIS, whose only Reference transform is the enveloped-signature one.
    Inclusive,
    /// Exclusive XML Canonicalization 1.0 (<http://www.w3.org/2001/10/xml-exc-c14n#>) with an
    /// empty InclusiveNamespaces PrefixList: DUIS's CanonicalizationMethod for SignedInfo.
    Exclusive,
}

impl C14nMode {
    pub const INCLUSIVE_URI: &'static str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
    pub const EXCLUSIVE_URI: &'static str = "http://www.w3.org/2001/10/xml-exc-c14n#";

    /// The mode an XMLDSig `Algorithm` URI names, if it is one of these two.
    pub fn from_algorithm(uri: &str) -> Option<Self> {
        match uri {
            Self::INCLUSIVE_URI => Some(Self::Inclusive),
            Self::EXCLUSIVE_URI => Some(Self::Exclusive),
            _ => None,
        }
    }

    /// The XMLDSig `Algorithm` URI of this mode.
    pub fn algorithm(self) -> &'static str {
        match self {
            Self::Inclusive => Self::INCLUSIVE_URI,
            Self::Exclusive => Self::EXCLUSIVE_URI,
        }
    }
}

/// Canonicalises `doc` (or part of it) in `mode`, omitting comments; exclusive mode has an
/// empty InclusiveNamespaces PrefixList.
/// - `subtree: None` canonicalises the whole document (the XML declaration, anything outside the
///   root element, and comments are dropped); `Some(span)` canonicalises only the element whose
///   byte span in `doc` is `span` (from its `<` to just after its end tag's `>`, or after `/>`),
///   as a document subset, using the namespace declarations in scope from its ancestors.
/// - `exclude: Some(span)` leaves out that element and everything in it (the enveloped-signature
///   transform); the text around it stays.
///
/// Appends the canonical bytes to `out`; on error `out` is left as it was. The whole document
/// is always checked, whichever part is written.
pub fn canonicalize(
    doc: &[u8],
    subtree: Option<Range<usize>>,
    exclude: Option<Range<usize>>,
    mode: C14nMode,
    limits: &C14nLimits,
    out: &mut Vec<u8>,
) -> Result<(), C14nError> {
    let before = out.len();
    let result = canonicalize_into(doc, subtree, exclude, mode, limits, out);
    if result.is_err() {
        out.truncate(before);
    }
    result
}

fn canonicalize_into(
    doc: &[u8],
    subtree: Option<Range<usize>>,
    exclude: Option<Range<usize>>,
    mode: C14nMode,
    limits: &C14nLimits,
    out: &mut Vec<u8>,
) -> Result<(), C14nError> {
    let region = subtree.map_or(render::Region::Document, render::Region::Element);
    let mut writer = render::Canonicalizer::new(out, region, exclude, mode);
    walk::walk(doc, limits, &mut writer)?;
    writer.finish()
}
