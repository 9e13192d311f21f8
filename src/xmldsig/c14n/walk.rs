//! One pass over a whole document: well-formedness, bounds and namespace resolution, reported
//! to a [`Visitor`] as start tags (attributes resolved and in canonical order), character data
//! and end tags. The canonicaliser and the element helpers are both visitors, so they accept
//! and refuse exactly the same documents.

use std::borrow::Cow;
use std::ops::Range;

use super::chars::{
    check_attr, check_text, decode_attr, decode_cdata, decode_text, is_space, Discard, Sink,
};
use super::error::{C14nError, MalformedKind};
use super::lexer::{self, malformed, RawAttr, CDATA_OPEN};
use super::scope::ScopedMap;
use super::C14nLimits;

pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The namespace of an element or attribute name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace (an unprefixed attribute, or an unprefixed element with no default).
    None,
    /// The `xml` prefix's fixed namespace.
    Xml,
    /// A declaration in scope (an index into the bindings).
    Bound(usize),
}

/// An attribute that is not a namespace declaration, its name resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attr<'a> {
    pub qname: &'a str,
    pub prefix: &'a str,
    pub local: &'a str,
    pub ns: Ns,
    pub raw: &'a str,
    pub value_position: usize,
}

/// A start tag as a visitor sees it.
pub(crate) struct StartTag<'a, 'w> {
    /// Where the tag's `<` is.
    pub start: usize,
    /// The root element is depth 1.
    pub depth: usize,
    pub qname: &'a str,
    pub prefix: &'a str,
    pub local: &'a str,
    pub ns: Ns,
    /// Sorted by namespace URI, then local name (canonical order).
    pub attrs: &'w [Attr<'a>],
    /// The namespace declarations on this tag (prefix `""` for the default), `xmlns:xml` left out.
    pub declared: &'w [(&'a str, Ns)],
    bindings: &'w ScopedMap<'a, Cow<'a, str>>,
    xml_attrs: &'w ScopedMap<'a, Attr<'a>>,
}

impl<'a, 'w> StartTag<'a, 'w> {
    /// The URI a resolved name is in; `""` for no namespace.
    pub fn uri(&self, ns: Ns) -> &'w str {
        uri(self.bindings, ns)
    }

    /// Every namespace binding in scope here (the default as prefix `""`), in no order.
    pub fn in_scope(&self) -> impl Iterator<Item = (&'a str, Ns)> + 'w {
        self.bindings
            .live()
            .map(|(prefix, index)| (prefix, Ns::Bound(index)))
    }

    /// Every `xml:*` attribute in scope here, this element's own or the nearest ancestor's.
    pub fn xml_attrs_in_scope(&self) -> impl Iterator<Item = Attr<'a>> + 'w {
        let map = self.xml_attrs;
        map.live()
            .filter_map(move |(_, index)| map.value(index).copied())
    }

    /// The same URI, to keep beyond this call (borrowed from the document unless it had to be
    /// decoded).
    pub fn uri_owned(&self, ns: Ns) -> Cow<'a, str> {
        match ns {
            Ns::None => Cow::Borrowed(""),
            Ns::Xml => Cow::Borrowed(XML_NS),
            Ns::Bound(i) => self.bindings.value(i).cloned().unwrap_or_default(),
        }
    }
}

fn uri<'w>(bindings: &'w ScopedMap<'_, Cow<'_, str>>, ns: Ns) -> &'w str {
    match ns {
        Ns::None => "",
        Ns::Xml => XML_NS,
        // A resolved index stays in scope while its element is open.
        Ns::Bound(i) => bindings.value(i).map_or("", |v| v.as_ref()),
    }
}

pub(crate) trait Visitor<'a> {
    type Text<'s>: Sink
    where
        Self: 's;
    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError>;
    /// Where the character data inside the innermost open element goes, if anywhere.
    fn text(&mut self) -> Option<Self::Text<'_>>;
    /// The element that started at `span.start` ends at `span.end`.
    fn end(&mut self, qname: &'a str, span: Range<usize>, depth: usize) -> Result<(), C14nError>;
}

/// Reusable state for walks (one per call; its buffers are reused element to element).
pub(crate) struct Walker<'a> {
    doc: &'a str,
    limits: C14nLimits,
    bindings: ScopedMap<'a, Cow<'a, str>>,
    /// Open elements: qualified name and where the start tag began.
    open: Vec<(&'a str, usize)>,
    raw: Vec<RawAttr<'a>>,
    attrs: Vec<Attr<'a>>,
    declared: Vec<(&'a str, Ns)>,
    /// `xml:*` attributes by local name, scoped like the elements (inclusive c14n inherits them).
    xml_attrs: ScopedMap<'a, Attr<'a>>,
}

/// Checks size, encoding and characters, and walks `doc`, telling `visitor` what it finds.
pub(crate) fn walk<'a, V: Visitor<'a>>(
    doc: &'a [u8],
    limits: &C14nLimits,
    visitor: &mut V,
) -> Result<(), C14nError> {
    if doc.len() > limits.max_bytes {
        return Err(C14nError::TooLarge {
            size: doc.len(),
            limit: limits.max_bytes,
        });
    }
    let doc = std::str::from_utf8(doc).map_err(|e| C14nError::NotUtf8 {
        position: e.valid_up_to(),
    })?;
    check_chars(doc)?;
    let mut walker = Walker {
        doc,
        limits: *limits,
        bindings: ScopedMap::new(),
        // Sized for a typical DUIS request, so a walk rarely grows them (they are bounded by the
        // limits either way).
        open: Vec::with_capacity(limits.max_depth.min(16)),
        raw: Vec::with_capacity(limits.max_attributes.min(8)),
        attrs: Vec::with_capacity(limits.max_attributes.min(8)),
        declared: Vec::with_capacity(limits.max_attributes.min(8)),
        xml_attrs: ScopedMap::new(),
    };
    walker.run(visitor)
}

/// Refuses C0 controls other than TAB, LF, CR, and U+FFFE / U+FFFF (the only UTF-8 sequences
/// that are not XML characters).
fn check_chars(doc: &str) -> Result<(), C14nError> {
    let bytes = doc.as_bytes();
    // Most chunks hold neither a forbidden control byte nor 0xEF: test a whole chunk with
    // branch-free compares (this vectorises), and look closer only at one that might.
    const CHUNK: usize = 64;
    let suspect = |chunk: &[u8]| {
        chunk.iter().fold(0u8, |acc, &b| {
            let control = (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r');
            acc | u8::from(control) | u8::from(b == 0xEF)
        }) != 0
    };
    let mut chunks = bytes.chunks_exact(CHUNK);
    for (n, chunk) in chunks.by_ref().enumerate() {
        if suspect(chunk) {
            check_chunk(bytes, n * CHUNK, CHUNK)?;
        }
    }
    let tail = chunks.remainder();
    check_chunk(bytes, bytes.len() - tail.len(), tail.len())
}

fn check_chunk(bytes: &[u8], from: usize, len: usize) -> Result<(), C14nError> {
    for (i, &b) in bytes.iter().enumerate().skip(from).take(len) {
        let bad = match b {
            b'\t' | b'\n' | b'\r' => false,
            0..=0x1F => true,
            0xEF => {
                bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))
            }
            _ => false,
        };
        if bad {
            return Err(malformed(i, MalformedKind::ForbiddenChar));
        }
    }
    Ok(())
}

impl<'a> Walker<'a> {
    fn run<V: Visitor<'a>>(&mut self, visitor: &mut V) -> Result<(), C14nError> {
        let doc = self.doc;
        let bytes = doc.as_bytes();
        let mut pos = if doc.starts_with('\u{FEFF}') { 3 } else { 0 };
        pos = lexer::xml_declaration(doc, pos)?;
        let mut seen_root = false;
        while pos < bytes.len() {
            if bytes[pos] != b'<' {
                let end = memchr::memchr(b'<', &bytes[pos..]).map_or(doc.len(), |n| pos + n);
                let raw = &doc[pos..end];
                if self.open.is_empty() {
                    if let Some(n) = raw.bytes().position(|b| !is_space(b)) {
                        return Err(malformed(pos + n, MalformedKind::ContentOutsideRoot));
                    }
                } else {
                    match visitor.text() {
                        Some(mut sink) => decode_text(raw, pos, &mut sink)?,
                        None => check_text(raw, pos)?,
                    }
                }
                pos = end;
                continue;
            }
            pos = match bytes.get(pos + 1) {
                Some(b'/') => self.end_tag(pos, visitor)?,
                Some(b'?') => return Err(C14nError::ProcessingInstruction { position: pos }),
                Some(b'!') => self.markup_declaration(pos, visitor)?,
                _ if self.open.is_empty() && seen_root => {
                    return Err(malformed(pos, MalformedKind::ContentOutsideRoot))
                }
                _ => {
                    seen_root = true;
                    self.start_tag(pos, visitor)?
                }
            };
        }
        if !self.open.is_empty() {
            return Err(malformed(doc.len(), MalformedKind::UnexpectedEnd));
        }
        if !seen_root {
            return Err(malformed(doc.len(), MalformedKind::NoRoot));
        }
        Ok(())
    }

    /// A comment, or a CDATA section inside the root; the rest of `<!` is refused.
    fn markup_declaration<V: Visitor<'a>>(
        &mut self,
        pos: usize,
        visitor: &mut V,
    ) -> Result<usize, C14nError> {
        let doc = self.doc;
        let rest = &doc[pos..];
        if rest.starts_with("<!--") {
            lexer::comment(doc, pos)
        } else if rest.starts_with("<!DOCTYPE") {
            Err(C14nError::Doctype { position: pos })
        } else if rest.starts_with(CDATA_OPEN) && !self.open.is_empty() {
            let (raw, end) = lexer::cdata(doc, pos)?;
            match visitor.text() {
                Some(mut sink) => decode_cdata(raw, &mut sink),
                None => decode_cdata(raw, &mut Discard),
            }
            Ok(end)
        } else {
            Err(malformed(pos, MalformedKind::BadMarkup))
        }
    }

    fn start_tag<V: Visitor<'a>>(
        &mut self,
        start: usize,
        visitor: &mut V,
    ) -> Result<usize, C14nError> {
        let doc = self.doc;
        let depth = self.open.len() + 1;
        if depth > self.limits.max_depth {
            return Err(C14nError::TooDeep {
                position: start,
                limit: self.limits.max_depth,
            });
        }
        let tag = lexer::start_tag(doc, start, self.limits.max_attributes, &mut self.raw)?;
        self.bindings.enter();
        self.xml_attrs.enter();
        self.read_attributes()?;
        let (prefix, local) = split(tag.qname);
        let ns = if prefix.is_empty() {
            self.bindings.index_of("").map_or(Ns::None, Ns::Bound)
        } else {
            self.resolve(prefix, start + 1)?
        };
        self.sort_attributes()?;
        let bindings = &self.bindings;
        visitor.start(&StartTag {
            start,
            depth,
            qname: tag.qname,
            prefix,
            local,
            ns,
            attrs: &self.attrs,
            declared: &self.declared,
            bindings,
            xml_attrs: &self.xml_attrs,
        })?;
        if tag.empty {
            visitor.end(tag.qname, start..tag.end, depth)?;
            self.bindings.leave();
            self.xml_attrs.leave();
        } else {
            self.open.push((tag.qname, start));
        }
        Ok(tag.end)
    }

    /// The start tag's attributes in `raw`, split into namespace declarations (in scope from
    /// now) and attributes with their namespaces resolved.
    fn read_attributes(&mut self) -> Result<(), C14nError> {
        self.attrs.clear();
        self.declared.clear();
        for i in 0..self.raw.len() {
            let a = self.raw[i];
            let (prefix, local) = split(a.qname);
            if a.qname == "xmlns" {
                self.declare("", a)?;
            } else if prefix == "xmlns" {
                self.declare(local, a)?;
            } else {
                check_attr(a.value, a.value_position)?;
                let ns = if prefix.is_empty() {
                    Ns::None
                } else {
                    self.resolve(prefix, a.position)?
                };
                let attr = Attr {
                    qname: a.qname,
                    prefix,
                    local,
                    ns,
                    raw: a.value,
                    value_position: a.value_position,
                };
                if ns == Ns::Xml {
                    self.xml_attrs.insert(local, attr);
                }
                self.attrs.push(attr);
            }
        }
        Ok(())
    }

    /// Attributes in canonical order (namespace URI, then local name); two with the same
    /// expanded name are refused.
    fn sort_attributes(&mut self) -> Result<(), C14nError> {
        let bindings = &self.bindings;
        self.attrs.sort_unstable_by(|x, y| {
            (uri(bindings, x.ns), x.local).cmp(&(uri(bindings, y.ns), y.local))
        });
        for pair in self.attrs.windows(2) {
            if (uri(bindings, pair[0].ns), pair[0].local)
                == (uri(bindings, pair[1].ns), pair[1].local)
            {
                return Err(C14nError::DuplicateAttribute {
                    position: pair[1].value_position,
                });
            }
        }
        Ok(())
    }

    fn end_tag<V: Visitor<'a>>(
        &mut self,
        start: usize,
        visitor: &mut V,
    ) -> Result<usize, C14nError> {
        match self.open.last() {
            Some(&(name, open_start)) => {
                let end = lexer::end_tag(self.doc, start, name)?;
                let depth = self.open.len();
                visitor.end(name, open_start..end, depth)?;
                self.open.pop();
                self.bindings.leave();
                self.xml_attrs.leave();
                Ok(end)
            }
            None => Err(malformed(start, MalformedKind::MismatchedEndTag)),
        }
    }

    /// Binds `prefix` (`""` for the default namespace) from the declaration `a`.
    fn declare(&mut self, prefix: &'a str, a: RawAttr<'a>) -> Result<(), C14nError> {
        let reserved = C14nError::ReservedNamespace {
            position: a.position,
        };
        if self.bindings.bound_in_innermost(prefix) {
            return Err(C14nError::DuplicateAttribute {
                position: a.position,
            });
        }
        let value = normalise(a.value, a.value_position)?;
        if prefix == "xml" {
            // Declaring `xml` is allowed only with its own namespace; it is never rendered.
            return if value == XML_NS {
                Ok(())
            } else {
                Err(reserved)
            };
        }
        if prefix == "xmlns" || value == XML_NS || value == XMLNS_NS {
            return Err(reserved);
        }
        if value.is_empty() {
            // `xmlns=""` undeclares the default; `xmlns:p=""` is not allowed in XML 1.0.
            if !prefix.is_empty() {
                return Err(reserved);
            }
        } else if !has_scheme(&value) {
            return Err(C14nError::RelativeNamespaceUri {
                position: a.value_position,
            });
        }
        let index = self.bindings.insert(prefix, value);
        self.declared.push((prefix, Ns::Bound(index)));
        Ok(())
    }

    fn resolve(&self, prefix: &str, position: usize) -> Result<Ns, C14nError> {
        match prefix {
            "xml" => Ok(Ns::Xml),
            "xmlns" => Err(C14nError::ReservedNamespace { position }),
            _ => self
                .bindings
                .index_of(prefix)
                .map(Ns::Bound)
                .ok_or(C14nError::UnboundPrefix { position }),
        }
    }
}

/// `prefix:local` → (`prefix`, `local`); an unprefixed name has the prefix `""`.
fn split(qname: &str) -> (&str, &str) {
    // Names are short: a plain loop beats a vectorised search's set-up.
    match qname.bytes().position(|b| b == b':') {
        // `i` is the index of an ASCII byte, so both slices are on character boundaries.
        Some(i) => (&qname[..i], &qname[i + 1..]),
        None => ("", qname),
    }
}

/// An attribute value decoded, borrowed when it holds nothing to decode.
fn normalise(raw: &str, position: usize) -> Result<Cow<'_, str>, C14nError> {
    if !raw
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(Cow::Borrowed(raw));
    }
    let mut value = String::with_capacity(raw.len());
    decode_attr(raw, position, &mut value)?;
    Ok(Cow::Owned(value))
}

/// Whether a URI reference is absolute (RFC 3986 `scheme ":"`), as c14n requires of namespaces.
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}
