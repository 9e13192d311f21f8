//! The bounded token stream under the request parser: quick-xml's namespace-aware reader over
//! the input slice, with every bound and every forbidden construct checked as the bytes go by.
//!
//! What it refuses, and when: non-UTF-8 input and characters XML forbids before the first event;
//! then, event by event, a DOCTYPE, any processing instruction other than a leading XML
//! declaration, any entity reference other than the five predefined ones, names and attributes
//! that are not well-formed, unbound prefixes, and the depth, element, attribute and text bounds.
//! Comments are skipped. The reader borrows from the input; nothing here allocates more than one
//! text node's decoded copy at a time.

use std::borrow::Cow;

use quick_xml::errors::IllFormedError;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;

use super::error::{MalformedKind, ParseError};
use super::escape::{is_name_byte, is_xml_char, unescape, RefError};
use super::limits::Limits;

/// The DUIS service-user-gateway namespace (`sr`).
pub const SR_NAMESPACE: &str = "http://www.dccinterface.co.uk/ServiceUserGateway";
/// The XML-Signature namespace (`ds`).
pub const DS_NAMESPACE: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The namespace an element is in, as far as the parser cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Ns {
    Sr,
    Ds,
    /// Any other namespace, or none.
    Other,
}

/// A start tag (or an empty-element tag, which is followed by its own [`Token::End`]).
pub(super) struct Element<'a> {
    pub ns: Ns,
    /// Offset of the `<` in the caller's input.
    pub start: usize,
    tag: BytesStart<'a>,
}

impl Element<'_> {
    pub fn local(&self) -> &str {
        // The input was checked to be UTF-8 and the local name is cut at an ASCII `:`.
        std::str::from_utf8(self.tag.local_name().into_inner()).unwrap_or("")
    }

    pub fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local() == local
    }

    /// The decoded value of the unprefixed attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Result<Option<String>, ParseError> {
        for attr in self.tag.attributes() {
            // Every attribute was checked when the tag was read; an error here cannot happen.
            let Ok(attr) = attr else { continue };
            if attr.key.as_ref() == name.as_bytes() {
                let value = std::str::from_utf8(&attr.value).map_err(|_| ParseError::NotUtf8)?;
                return unescape(value)
                    .map(|v| Some(v.into_owned()))
                    .map_err(|_| ParseError::EntityReference);
            }
        }
        Ok(None)
    }
}

pub(super) enum Token<'a> {
    Start(Element<'a>),
    /// The end of the innermost open element; `end` is the offset just past its `>`.
    End {
        end: usize,
    },
    /// A text node with its references replaced, or a CDATA section's content.
    Text(Cow<'a, str>),
    Eof,
}

pub(super) struct Tokens<'a> {
    reader: NsReader<&'a [u8]>,
    /// Bytes of the caller's input before the slice the reader reads (a UTF-8 byte-order mark).
    base: usize,
    limits: Limits,
    depth: usize,
    elements: usize,
    /// Namespace declarations seen in the whole document.
    namespaces: usize,
    /// The end of an empty-element tag, still to be reported as a [`Token::End`].
    pending_end: Option<usize>,
    first_event: bool,
}

impl<'a> Tokens<'a> {
    pub fn new(input: &'a [u8], limits: &Limits) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(input).map_err(|_| ParseError::NotUtf8)?;
        let (base, text) = match text.strip_prefix('\u{FEFF}') {
            Some(rest) => (input.len() - rest.len(), rest),
            None => (0, text),
        };
        if let Some((at, _)) = text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
            return Err(malformed(base + at, MalformedKind::IllegalCharacter));
        }
        let mut reader = NsReader::from_reader(text.as_bytes());
        let config = reader.config_mut();
        config.check_comments = true;
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Self {
            reader,
            base,
            limits: *limits,
            depth: 0,
            elements: 0,
            namespaces: 0,
            pending_end: None,
            first_event: true,
        })
    }

    /// Reads the whole document, only for its checks.
    pub fn drain(mut self) -> Result<(), ParseError> {
        loop {
            if let Token::Eof = self.next()? {
                return Ok(());
            }
        }
    }

    pub fn next(&mut self) -> Result<Token<'a>, ParseError> {
        if let Some(end) = self.pending_end.take() {
            self.depth = self.depth.saturating_sub(1);
            return Ok(Token::End { end });
        }
        loop {
            let first = std::mem::replace(&mut self.first_event, false);
            let (ns, event) = match self.reader.read_resolved_event() {
                Ok((resolved, event)) => (classify(&resolved), event),
                Err(e) => return Err(self.reader_error(e)),
            };
            let end = self.position();
            match event {
                Event::Decl(decl) if first => check_decl(&decl)?,
                Event::Decl(_) | Event::PI(_) => return Err(ParseError::ProcessingInstruction),
                Event::DocType(_) => return Err(ParseError::Doctype),
                Event::Comment(_) => {}
                Event::Text(text) => {
                    self.check_text_len(text.len())?;
                    let raw = utf8(text.into_inner())?;
                    let decoded = match raw {
                        Cow::Borrowed(raw) => unescape(raw),
                        Cow::Owned(raw) => unescape(&raw).map(|t| Cow::Owned(t.into_owned())),
                    };
                    return decoded.map(Token::Text).map_err(|e| ref_error(e, end));
                }
                Event::CData(text) => {
                    self.check_text_len(text.len())?;
                    return Ok(Token::Text(utf8(text.into_inner())?));
                }
                Event::Start(tag) => return self.open(ns, tag, end, false),
                Event::Empty(tag) => return self.open(ns, tag, end, true),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Token::End { end });
                }
                Event::Eof if self.depth > 0 => {
                    return Err(malformed(end, MalformedKind::UnexpectedEof));
                }
                Event::Eof => return Ok(Token::Eof),
            }
        }
    }

    fn open(
        &mut self,
        ns: Option<Ns>,
        tag: BytesStart<'a>,
        end: usize,
        empty: bool,
    ) -> Result<Token<'a>, ParseError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(ParseError::TooManyElements {
                limit: self.limits.max_elements,
            });
        }
        let depth = self.depth + 1;
        if depth > self.limits.max_depth {
            return Err(ParseError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        // The tag is `<` + content + (`/`) + `>`, and the reader stands just past the `>`.
        let tag_len = tag.len() + if empty { 3 } else { 2 };
        let start = end
            .checked_sub(tag_len)
            .ok_or(malformed(end, MalformedKind::Reader))?;
        let ns = ns.ok_or(malformed(start, MalformedKind::UnboundPrefix))?;
        if !is_xml_name(tag.name().as_ref()) {
            return Err(malformed(start, MalformedKind::BadName));
        }
        self.check_attributes(&tag, start)?;
        self.depth = depth;
        if empty {
            self.pending_end = Some(end);
        }
        Ok(Token::Start(Element { ns, start, tag }))
    }

    fn check_attributes(&mut self, tag: &BytesStart<'_>, at: usize) -> Result<(), ParseError> {
        let mut count = 0;
        // The iterator refuses duplicate names and values without quotes.
        for attr in tag.attributes() {
            count += 1;
            if count > self.limits.max_attributes {
                return Err(ParseError::TooManyAttributes {
                    limit: self.limits.max_attributes,
                });
            }
            let attr = attr.map_err(|e| malformed(at, MalformedKind::Attribute(e)))?;
            let key = attr.key.as_ref();
            if !is_xml_name(key) {
                return Err(malformed(at, MalformedKind::BadName));
            }
            let value = std::str::from_utf8(&attr.value).map_err(|_| ParseError::NotUtf8)?;
            if value.contains('<') {
                return Err(malformed(at, MalformedKind::LessThanInAttribute));
            }
            if attr.key.as_namespace_binding().is_some() {
                // Each declaration is in scope for everything below it, and canonicalisation
                // (before the signature is checked) pays for every one in scope at every element:
                // the document's total is bounded.
                self.namespaces += 1;
                if self.namespaces > self.limits.max_namespaces {
                    return Err(ParseError::TooManyNamespaces {
                        limit: self.limits.max_namespaces,
                    });
                }
                // quick-xml binds the raw value: a reference in it would bind a namespace other
                // than the one a conforming reader (the signature verifier's) would see.
                if value.contains('&') {
                    return Err(malformed(at, MalformedKind::EscapedNamespaceName));
                }
            } else if key.contains(&b':') {
                if let (ResolveResult::Unknown(_), _) = self.reader.resolve_attribute(attr.key) {
                    return Err(malformed(at, MalformedKind::UnboundPrefix));
                }
            }
            unescape(value).map_err(|e| ref_error(e, at))?;
        }
        Ok(())
    }

    fn check_text_len(&self, len: usize) -> Result<(), ParseError> {
        if len > self.limits.max_text_bytes {
            return Err(ParseError::TextTooLong {
                limit: self.limits.max_text_bytes,
            });
        }
        Ok(())
    }

    pub fn position(&self) -> usize {
        // The position is within the input slice, so it fits a usize.
        self.base + usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX - self.base)
    }

    fn reader_error(&self, error: quick_xml::Error) -> ParseError {
        let position = usize::try_from(self.reader.error_position()).unwrap_or(0) + self.base;
        let kind = match error {
            quick_xml::Error::Syntax(quick_xml::errors::SyntaxError::UnclosedDoctype)
            | quick_xml::Error::IllFormed(IllFormedError::MissingDoctypeName) => {
                return ParseError::Doctype
            }
            quick_xml::Error::Encoding(_) => return ParseError::NotUtf8,
            quick_xml::Error::Syntax(e) => MalformedKind::Syntax(e),
            quick_xml::Error::IllFormed(e) => MalformedKind::IllFormed(e),
            quick_xml::Error::InvalidAttr(e) => MalformedKind::Attribute(e),
            quick_xml::Error::Namespace(e) => MalformedKind::Namespace(e),
            quick_xml::Error::Io(_) | quick_xml::Error::Escape(_) => MalformedKind::Reader,
        };
        malformed(position, kind)
    }
}

fn classify(resolved: &ResolveResult<'_>) -> Option<Ns> {
    match resolved {
        ResolveResult::Bound(Namespace(ns)) if *ns == SR_NAMESPACE.as_bytes() => Some(Ns::Sr),
        ResolveResult::Bound(Namespace(ns)) if *ns == DS_NAMESPACE.as_bytes() => Some(Ns::Ds),
        ResolveResult::Bound(_) | ResolveResult::Unbound => Some(Ns::Other),
        ResolveResult::Unknown(_) => None,
    }
}

/// The leading XML declaration: version 1.0, and UTF-8 if it names an encoding.
fn check_decl(decl: &BytesDecl<'_>) -> Result<(), ParseError> {
    match decl.version() {
        Ok(v) if v.as_ref() == b"1.0" => {}
        Ok(_) => return Err(malformed(0, MalformedKind::UnsupportedXmlVersion)),
        Err(_) => {
            let kind = MalformedKind::IllFormed(IllFormedError::MissingDeclVersion(None));
            return Err(malformed(0, kind));
        }
    }
    match decl.encoding() {
        None => Ok(()),
        Some(Ok(enc)) if enc.eq_ignore_ascii_case(b"UTF-8") => Ok(()),
        Some(_) => Err(ParseError::NotUtf8),
    }
}

/// An XML `QName`: name bytes only, not starting with a digit, `-`, `.` or `:`, at most one `:`
/// and not at the end.
fn is_xml_name(name: &[u8]) -> bool {
    let starts_well =
        matches!(name.first(), Some(b) if !b.is_ascii_digit() && !matches!(b, b'-' | b'.' | b':'));
    let colons = name.iter().filter(|b| **b == b':').count();
    starts_well
        && name.iter().all(|b| is_name_byte(*b))
        && colons <= 1
        && name.last() != Some(&b':')
}

fn utf8(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>, ParseError> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| ParseError::NotUtf8),
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|_| ParseError::NotUtf8),
    }
}

fn ref_error(e: RefError, position: usize) -> ParseError {
    match e {
        RefError::Entity => ParseError::EntityReference,
        RefError::Malformed => malformed(position, MalformedKind::BadReference),
    }
}

fn malformed(position: usize, kind: MalformedKind) -> ParseError {
    ParseError::Malformed { position, kind }
}
