//! Finding elements by structure, for the signature verifier: the root, an element's element
//! children, an element's text. Each call is one full walk, so it accepts and refuses exactly
//! the documents [`canonicalize`](super::canonicalize) does.

use std::ops::Range;

use super::chars::{decode_attr, Discard};
use super::error::C14nError;
use super::walk::{walk, StartTag, Visitor};
use super::C14nLimits;

/// An element: where it is, its expanded name, and its attributes (namespace declarations
/// left out), values decoded as an XML parser reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// From its `<` to just after its end tag's `>` (or after `/>`).
    pub span: Range<usize>,
    /// Its namespace URI; empty for none.
    pub namespace: String,
    pub local: String,
    pub attributes: Vec<Attribute>,
}

/// An attribute of an [`Element`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Its namespace URI; empty for an unprefixed attribute.
    pub namespace: String,
    pub local: String,
    pub value: String,
}

impl Element {
    /// The value of the unprefixed attribute `local`.
    pub fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_empty() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Whether this is the element `{namespace}local`.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace == namespace && self.local == local
    }
}

/// The document's root element.
pub fn root(doc: &[u8], limits: &C14nLimits) -> Result<Element, C14nError> {
    let mut found = collect(doc, None, limits)?;
    // A walk that succeeds has seen exactly one root element.
    found
        .pop()
        .ok_or(C14nError::SpanNotAnElement { span: 0..0 })
}

/// The element children of the element whose span is `parent`, in document order.
pub fn children(
    doc: &[u8],
    parent: Range<usize>,
    limits: &C14nLimits,
) -> Result<Vec<Element>, C14nError> {
    collect(doc, Some(parent), limits)
}

/// The text of the element whose span is `element` and of all its descendants, in document
/// order: references resolved, CDATA included, line ends normalised, comments left out.
pub fn text_content(
    doc: &[u8],
    element: Range<usize>,
    limits: &C14nLimits,
) -> Result<String, C14nError> {
    let mut visitor = Text {
        span: element,
        depth: None,
        found: false,
        text: String::new(),
    };
    walk(doc, limits, &mut visitor)?;
    if !visitor.found {
        return Err(C14nError::SpanNotAnElement { span: visitor.span });
    }
    Ok(visitor.text)
}

fn collect(
    doc: &[u8],
    parent: Option<Range<usize>>,
    limits: &C14nLimits,
) -> Result<Vec<Element>, C14nError> {
    let mut visitor = Children {
        parent_depth: if parent.is_none() { Some(0) } else { None },
        found: parent.is_none(),
        parent,
        elements: Vec::new(),
    };
    walk(doc, limits, &mut visitor)?;
    match visitor.parent {
        Some(span) if !visitor.found => Err(C14nError::SpanNotAnElement { span }),
        _ => Ok(visitor.elements),
    }
}

struct Children {
    /// `None` for the document.
    parent: Option<Range<usize>>,
    /// The parent's depth while it is open (0 for the document).
    parent_depth: Option<usize>,
    found: bool,
    elements: Vec<Element>,
}

impl<'a> Visitor<'a> for Children {
    type Text<'s> = Discard;

    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError> {
        if self.parent.as_ref().is_some_and(|p| p.start == tag.start) {
            self.parent_depth = Some(tag.depth);
            self.found = true;
        } else if self.parent_depth.is_some_and(|d| d + 1 == tag.depth) {
            let mut attributes = Vec::with_capacity(tag.attrs.len());
            for a in tag.attrs {
                let mut value = String::new();
                decode_attr(a.raw, a.value_position, &mut value)?;
                attributes.push(Attribute {
                    namespace: tag.uri(a.ns).to_owned(),
                    local: a.local.to_owned(),
                    value,
                });
            }
            self.elements.push(Element {
                // The end is filled in when the element ends.
                span: tag.start..tag.start,
                namespace: tag.uri(tag.ns).to_owned(),
                local: tag.local.to_owned(),
                attributes,
            });
        }
        Ok(())
    }

    fn text(&mut self) -> Option<Discard> {
        None
    }

    fn end(&mut self, _: &'a str, span: Range<usize>, depth: usize) -> Result<(), C14nError> {
        let Some(parent_depth) = self.parent_depth else {
            return Ok(());
        };
        if depth == parent_depth + 1 {
            if let Some(last) = self.elements.last_mut() {
                last.span.end = span.end;
            }
        } else if depth == parent_depth {
            self.parent_depth = None;
            if let Some(wanted) = &self.parent {
                if *wanted != span {
                    return Err(C14nError::SpanNotAnElement {
                        span: wanted.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

struct Text {
    span: Range<usize>,
    /// The element's depth while it is open.
    depth: Option<usize>,
    found: bool,
    text: String,
}

impl<'a> Visitor<'a> for Text {
    type Text<'s> = &'s mut String;

    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError> {
        if tag.start == self.span.start {
            self.depth = Some(tag.depth);
            self.found = true;
        }
        Ok(())
    }

    fn text(&mut self) -> Option<&mut String> {
        self.depth.is_some().then_some(&mut self.text)
    }

    fn end(&mut self, _: &'a str, span: Range<usize>, depth: usize) -> Result<(), C14nError> {
        if self.depth == Some(depth) {
            self.depth = None;
            if span != self.span {
                return Err(C14nError::SpanNotAnElement {
                    span: self.span.clone(),
                });
            }
        }
        Ok(())
    }
}
