//! Reading the signature with the c14n module's own reader instead of quick-xml: one pass of
//! the walk that canonicalisation uses, over the small document of [`super::locate`], feeding
//! the same profile [`Collector`] as [`read_signature`](super::read_signature) does.
//!
//! This is the fast path only. Whenever it stops — the walk refuses the document, or the
//! profile refuses the signature — the caller reads again with `read_signature`, so every
//! refusal is exactly the one that function gives; a document both readers accept gives the
//! same fields (tested on every public sample and on random edits of a signed request).

use super::c14n::{decode_attr, walk, C14nError, C14nLimits, Sink, StartTag, Visitor};
use super::profile::{Collector, ProfileError, SignatureElement, DS_NAMESPACE, MAX_DEPTH};

/// The signature of `doc` as the profile reads it, or `None` if either the walk or the profile
/// refuses it (the caller then asks `read_signature` why).
pub(super) fn read_signature_fast(doc: &[u8]) -> Option<SignatureElement> {
    let limits = limits();
    let mut visitor = ProfileVisitor::default();
    walk(doc, &limits, &mut visitor).ok()?;
    visitor.finish()
}

/// The limits the fast reader walks with.
pub(super) fn limits() -> C14nLimits {
    C14nLimits {
        max_depth: MAX_DEPTH,
        ..C14nLimits::default()
    }
}

/// The profile's [`Collector`] as a walk's visitor (also shown events by the one-pass verifier).
#[derive(Default)]
pub(super) struct ProfileVisitor {
    collector: Collector,
    /// A field's text had a line end normalised (or a `\n` from a reference); quick-xml keeps
    /// a CR as written, so the fast path stops rather than risk reading a different value.
    line_end: bool,
}

impl ProfileVisitor {
    /// The signature read, if the profile accepts it.
    pub(super) fn finish(self) -> Option<SignatureElement> {
        self.collector.finish().ok()
    }
}

/// A field's character data, with line-end normalisation noted.
pub(super) struct FieldText<'s> {
    text: &'s mut String,
    line_end: &'s mut bool,
}

impl Sink for FieldText<'_> {
    fn run(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn ch(&mut self, c: char) {
        // In text, `\n` comes one character at a time only from a normalised CR or a reference.
        *self.line_end |= c == '\n';
        self.text.push(c);
    }
}

/// Stops the walk when the profile refuses; which error does not matter, as the caller reads
/// again for the real one.
fn stop<T>(r: Result<T, ProfileError>, position: usize) -> Result<T, C14nError> {
    r.map_err(|_| C14nError::SpanNotAnElement {
        span: position..position,
    })
}

impl<'a> Visitor<'a> for ProfileVisitor {
    type Text<'s>
        = FieldText<'s>
    where
        Self: 's;

    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError> {
        let is_ds = tag.uri(tag.ns) == DS_NAMESPACE;
        let attrs = tag.attrs;
        let attribute = |name: &[u8]| {
            let Some(a) = attrs.iter().find(|a| a.qname.as_bytes() == name) else {
                return Ok(None);
            };
            let mut value = String::with_capacity(a.raw.len());
            decode_attr(a.raw, a.value_position, &mut value)
                .map_err(|_| ProfileError::Malformed(a.value_position))?;
            // At most 128 characters of it, as `read_signature` keeps.
            let end = value
                .char_indices()
                .nth(128)
                .map_or(value.len(), |(i, _)| i);
            value.truncate(end);
            Ok(Some(value))
        };
        let r = self
            .collector
            .start(is_ds, tag.local.as_bytes(), tag.start, attribute);
        stop(r, tag.start)
    }

    fn text(&mut self) -> Option<FieldText<'_>> {
        if self.collector.wants_text() {
            Some(FieldText {
                text: &mut self.collector.text,
                line_end: &mut self.line_end,
            })
        } else {
            None
        }
    }

    fn end(
        &mut self,
        _qname: &'a str,
        span: std::ops::Range<usize>,
        _depth: usize,
    ) -> Result<(), C14nError> {
        // The field bound `read_signature` applies as it reads; checked here per element.
        if self.collector.text_too_long() || self.line_end {
            return stop(Err(ProfileError::Malformed(span.end)), span.end);
        }
        let r = self.collector.end(span.end);
        stop(r, span.end)
    }
}
