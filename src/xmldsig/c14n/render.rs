//! The canonical writer: a [`Visitor`] that writes the output region of the walk in canonical
//! form, inclusive or exclusive.

use std::borrow::Cow;
use std::ops::Range;

use super::chars::{decode_attr, write_attr_str, AttrOut, TextOut};
use super::error::C14nError;
use super::scope::ScopedMap;
use super::walk::{Attr, Ns, StartTag, Visitor};
use super::C14nMode;

/// The part of the document a [`Canonicalizer`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Region {
    Document,
    /// The element with exactly this span.
    Element(Range<usize>),
    /// The first element whose start tag the canonicaliser is shown, wherever it ends: for a
    /// visitor that shows it one element's events only (`SignedInfo`, in the walk that reads a
    /// signature and learns its span as it goes).
    FirstElement,
}

pub(crate) struct Canonicalizer<'a, 'o> {
    out: &'o mut Vec<u8>,
    mode: C14nMode,
    /// What to canonicalise.
    region: Region,
    /// The element to leave out.
    exclude: Option<Range<usize>>,
    /// The depth of the element output began at, while it is open.
    apex: Option<usize>,
    /// The depth of the excluded element, while it is open.
    excluded: Option<usize>,
    found_subtree: bool,
    found_exclude: bool,
    /// The namespace declarations output so far, scoped like the elements that wrote them.
    rendered: ScopedMap<'a, Cow<'a, str>>,
    /// Scratch: the prefixes the current element visibly utilises.
    utilised: Vec<(&'a str, Ns)>,
    /// Scratch: the apex's attributes with the `xml:*` ones it inherits (inclusive only).
    merged: Vec<Attr<'a>>,
}

impl<'a, 'o> Canonicalizer<'a, 'o> {
    pub(crate) fn new(
        out: &'o mut Vec<u8>,
        region: Region,
        exclude: Option<Range<usize>>,
        mode: C14nMode,
    ) -> Self {
        Self {
            out,
            mode,
            region,
            exclude,
            apex: None,
            excluded: None,
            found_subtree: false,
            found_exclude: false,
            rendered: ScopedMap::new(),
            utilised: Vec::with_capacity(8),
            merged: Vec::new(),
        }
    }

    /// After the walk: both spans must have named an element.
    pub(crate) fn finish(&self) -> Result<(), C14nError> {
        let subtree = match &self.region {
            Region::Element(span) => Some(span),
            Region::Document | Region::FirstElement => None,
        };
        for (span, found) in [
            (subtree, self.found_subtree),
            (self.exclude.as_ref(), self.found_exclude),
        ] {
            if let (Some(span), false) = (span, found) {
                return Err(C14nError::SpanNotAnElement { span: span.clone() });
            }
        }
        if self.region == Region::FirstElement && !self.found_subtree {
            return Err(C14nError::SpanNotAnElement { span: 0..0 });
        }
        Ok(())
    }

    /// What has been written so far (the walk that reads a signature hashes and clears it as
    /// it goes).
    pub(crate) fn output(&mut self) -> &mut Vec<u8> {
        self.out
    }

    fn writing(&self) -> bool {
        self.apex.is_some() && self.excluded.is_none()
    }

    /// Writes the namespace declarations `tag` needs: each candidate whose value differs from
    /// what the nearest output ancestor rendered. Candidates: exclusive, the prefixes the element
    /// and its attributes use (exc-c14n §3); inclusive, every binding in scope (c14n 1.0 §2.3) —
    /// at the apex all of them, below it only the tag's own declarations, since everything
    /// else in scope was rendered by an output ancestor already.
    fn namespaces(&mut self, tag: &StartTag<'a, '_>, apex: bool) {
        self.utilised.clear();
        match self.mode {
            C14nMode::Exclusive => {
                if tag.prefix != "xml" {
                    self.utilised.push((tag.prefix, tag.ns));
                }
                for a in tag.attrs {
                    if !a.prefix.is_empty() && a.prefix != "xml" {
                        self.utilised.push((a.prefix, a.ns));
                    }
                }
            }
            C14nMode::Inclusive if apex => self.utilised.extend(tag.in_scope()),
            C14nMode::Inclusive => self.utilised.extend_from_slice(tag.declared),
        }
        self.utilised.sort_unstable_by_key(|&(prefix, _)| prefix);
        self.utilised.dedup_by_key(|&mut (prefix, _)| prefix);
        for &(prefix, ns) in &self.utilised {
            let uri = tag.uri(ns);
            // No default rendered means the default is "no namespace"; a prefixed name always
            // has a non-empty URI, so an absent prefix always differs.
            let current = self.rendered.get(prefix).map_or("", |v| v.as_ref());
            if current == uri {
                continue;
            }
            self.out.extend_from_slice(b" xmlns");
            if !prefix.is_empty() {
                self.out.push(b':');
                self.out.extend_from_slice(prefix.as_bytes());
            }
            self.out.extend_from_slice(b"=\"");
            write_attr_str(self.out, uri);
            self.out.push(b'"');
            self.rendered.insert(prefix, tag.uri_owned(ns));
        }
    }
}

impl<'a> Visitor<'a> for Canonicalizer<'a, '_> {
    type Text<'s>
        = TextOut<'s>
    where
        Self: 's;

    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError> {
        let apex = match &self.region {
            Region::Document => tag.depth == 1,
            Region::Element(span) => span.start == tag.start,
            Region::FirstElement => !self.found_subtree,
        };
        if apex {
            self.apex = Some(tag.depth);
            self.found_subtree = true;
        }
        if self.exclude.as_ref().is_some_and(|x| x.start == tag.start) {
            self.excluded = Some(tag.depth);
            self.found_exclude = true;
        }
        self.rendered.enter();
        if !self.writing() {
            return Ok(());
        }
        let apex = self.apex == Some(tag.depth);
        self.out.push(b'<');
        self.out.extend_from_slice(tag.qname.as_bytes());
        self.namespaces(tag, apex);
        let mut attrs = tag.attrs;
        if apex && self.mode == C14nMode::Inclusive {
            // c14n 1.0 §2.4: an apex whose parent is not output inherits its ancestors' xml:*
            // attributes; the walker's in-scope set already lets the nearest one win.
            self.merged.clear();
            self.merged
                .extend(tag.attrs.iter().filter(|a| a.ns != Ns::Xml).copied());
            self.merged.extend(tag.xml_attrs_in_scope());
            self.merged
                .sort_unstable_by(|x, y| (tag.uri(x.ns), x.local).cmp(&(tag.uri(y.ns), y.local)));
            attrs = &self.merged;
        }
        for a in attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(a.qname.as_bytes());
            self.out.extend_from_slice(b"=\"");
            decode_attr(a.raw, a.value_position, &mut AttrOut(self.out))?;
            self.out.push(b'"');
        }
        self.out.push(b'>');
        Ok(())
    }

    fn text(&mut self) -> Option<TextOut<'_>> {
        self.writing().then_some(TextOut(self.out))
    }

    fn end(&mut self, qname: &'a str, span: Range<usize>, depth: usize) -> Result<(), C14nError> {
        if self.writing() {
            self.out.extend_from_slice(b"</");
            self.out.extend_from_slice(qname.as_bytes());
            self.out.push(b'>');
        }
        self.rendered.leave();
        if self.excluded == Some(depth) {
            self.excluded = None;
            check_span(self.exclude.as_ref(), &span)?;
        }
        if self.apex == Some(depth) {
            self.apex = None;
            if let Region::Element(wanted) = &self.region {
                check_span(Some(wanted), &span)?;
            }
        }
        Ok(())
    }
}

/// The element that started where `wanted` starts must also end where it ends.
fn check_span(wanted: Option<&Range<usize>>, actual: &Range<usize>) -> Result<(), C14nError> {
    match wanted {
        Some(w) if w != actual => Err(C14nError::SpanNotAnElement { span: w.clone() }),
        _ => Ok(()),
    }
}
