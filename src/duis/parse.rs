//! The DUIS 5.4 request parser: `sr:Request` → `sr:Header` → `sr:Body` → `ds:Signature`?
//!
//! Two passes over the same bytes. The first runs the whole document through the
//! [`Tokens`] checks alone, so that a DOCTYPE, a foreign entity reference, a processing
//! instruction or a bound anywhere is refused before any of the document is interpreted. The
//! second reads the structure. Whether the Service Reference Variant exists, fits the body element
//! or the URL is not decided here (the catalogue does that); the body element's name and span are
//! recorded so it can.

use std::ops::Range;

use super::error::{truncated_name, MalformedKind, ParseError, ParseFailure, PartialHeader};
use super::header::{Field, HeaderFields, RequestHeader};
use super::limits::Limits;
use super::tokens::{Element, Ns, Token, Tokens};

/// A DUIS request whose structure and header have been read. The body is left as a span of the
/// input for later stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// `sr:Request/@schemaVersion` as written (whitespace trimmed), e.g. `5.4`; not checked here.
    pub schema_version: String,
    pub header: RequestHeader,
    /// Local name of the single child of `sr:Body`, e.g. `ReadInstantaneousImportRegisters`.
    pub body_element: String,
    /// Byte span of that child element (start tag to end tag) in the input.
    pub body: Range<usize>,
    /// Whitespace-trimmed text of the first `sr:ExecutionDateTime` inside the body, if any;
    /// not yet checked to be a date-time.
    pub execution_date_time: Option<String>,
    /// Byte span of the `ds:Signature` that is the last child of `sr:Request`, if any.
    pub signature: Option<Range<usize>>,
}

/// Parses a DUIS request. Never panics; allocates at most in proportion to `limits`.
pub fn parse_request(input: &[u8], limits: &Limits) -> Result<ParsedRequest, ParseFailure> {
    // Checked before a single byte is looked at.
    if input.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            limit: limits.max_bytes,
        }
        .into());
    }
    Tokens::new(input, limits)?.drain()?;
    let mut reader = Reader {
        tokens: Tokens::new(input, limits)?,
        partial: PartialHeader::default(),
        max_text: limits.max_text_bytes,
    };
    reader.request().map_err(|error| ParseFailure {
        error,
        partial: reader.partial,
    })
}

struct Body {
    element: String,
    span: Range<usize>,
    execution_date_time: Option<String>,
}

struct Reader<'a> {
    tokens: Tokens<'a>,
    partial: PartialHeader,
    max_text: usize,
}

impl<'a> Reader<'a> {
    fn request(&mut self) -> Result<ParsedRequest, ParseError> {
        let root = self.root()?;
        if root.local() != "Request" {
            return Err(ParseError::WrongRoot);
        }
        if root.ns != Ns::Sr {
            return Err(ParseError::WrongNamespace);
        }
        let schema_version = root
            .attribute("schemaVersion")?
            .ok_or(ParseError::MissingSchemaVersion)?;
        let header = match self.child("Request")? {
            Some(e) if e.is(Ns::Sr, "Header") => self.header()?,
            other => return Err(misplaced("Request", "Header", other)),
        };
        let body = match self.child("Request")? {
            Some(e) if e.is(Ns::Sr, "Body") => self.body()?,
            other => return Err(misplaced("Request", "Body", other)),
        };
        let signature = match self.child("Request")? {
            None => None,
            Some(e) if is_signature(&e) => Some(e.start..self.skip_element()?),
            other => {
                return Err(misplaced(
                    "Request",
                    "Signature or the end of Request",
                    other,
                ))
            }
        };
        if signature.is_some() {
            match self.child("Request")? {
                None => {}
                Some(e) if is_signature(&e) => return Err(ParseError::MultipleSignatures),
                Some(_) => return Err(ParseError::SignatureNotLast),
            }
        }
        self.epilogue()?;
        Ok(ParsedRequest {
            schema_version: trim(&schema_version).to_owned(),
            header,
            body_element: body.element,
            body: body.span,
            execution_date_time: body.execution_date_time,
            signature,
        })
    }

    fn header(&mut self) -> Result<RequestHeader, ParseError> {
        let mut fields = HeaderFields::default();
        let mut seen: Vec<Field> = Vec::with_capacity(Field::ALL.len());
        while let Some(e) = self.child("Header")? {
            let field = Field::ALL
                .into_iter()
                .find(|f| e.is(Ns::Sr, f.name()))
                .ok_or_else(|| unexpected("Header", "a header field", &e))?;
            if seen.contains(&field) {
                return Err(ParseError::DuplicateHeaderField(field.name()));
            }
            if seen.last().is_some_and(|last| *last > field) {
                return Err(ParseError::HeaderFieldOutOfOrder(field.name()));
            }
            seen.push(field);
            let text = self.simple_text(field.name())?;
            fields.set(field, trim(&text), &mut self.partial)?;
        }
        fields.finish()
    }

    /// The single child of `sr:Body` (its start tag already read), through the end of `sr:Body`.
    fn body(&mut self) -> Result<Body, ParseError> {
        let first = self.child("Body")?.ok_or(ParseError::EmptyBody)?;
        if is_signature(&first) {
            return Err(ParseError::SignatureNotLast);
        }
        if first.ns != Ns::Sr {
            return Err(unexpected("Body", "a DUIS request body", &first));
        }
        let element = first.local().to_owned();
        let mut execution_date_time = None;
        let mut depth = 1usize;
        let end = loop {
            match self.tokens.next()? {
                Token::Start(e) if is_signature(&e) => return Err(ParseError::SignatureNotLast),
                Token::Start(e)
                    if execution_date_time.is_none() && e.is(Ns::Sr, "ExecutionDateTime") =>
                {
                    // Reads through its end tag, so `depth` is unchanged.
                    let text = self.simple_text("ExecutionDateTime")?;
                    execution_date_time = Some(trim(&text).to_owned());
                }
                Token::Start(_) => depth += 1,
                Token::End { end } => {
                    depth -= 1;
                    if depth == 0 {
                        break end;
                    }
                }
                Token::Text(_) => {}
                Token::Eof => return Err(self.eof()),
            }
        };
        if self.child("Body")?.is_some() {
            return Err(ParseError::MultipleBodyElements);
        }
        Ok(Body {
            element,
            span: first.start..end,
            execution_date_time,
        })
    }

    fn root(&mut self) -> Result<Element<'a>, ParseError> {
        loop {
            match self.tokens.next()? {
                Token::Start(e) => return Ok(e),
                Token::Text(t) if is_blank(&t) => {}
                Token::Text(_) => return Err(self.malformed(MalformedKind::TextOutsideRoot)),
                Token::End { .. } => return Err(self.malformed(MalformedKind::Reader)),
                Token::Eof => return Err(self.malformed(MalformedKind::NoRootElement)),
            }
        }
    }

    /// The next child element of the open element `parent`, or `None` at its end tag.
    fn child(&mut self, parent: &'static str) -> Result<Option<Element<'a>>, ParseError> {
        loop {
            match self.tokens.next()? {
                Token::Start(e) => return Ok(Some(e)),
                Token::End { .. } => return Ok(None),
                Token::Text(t) if is_blank(&t) => {}
                Token::Text(_) => return Err(ParseError::UnexpectedText { parent }),
                Token::Eof => return Err(self.eof()),
            }
        }
    }

    /// The text of an element with simple content (its start tag already read), through its
    /// end tag.
    fn simple_text(&mut self, element: &'static str) -> Result<String, ParseError> {
        let mut text = String::new();
        loop {
            match self.tokens.next()? {
                Token::Text(t) => {
                    if text.len() + t.len() > self.max_text {
                        return Err(ParseError::TextTooLong {
                            limit: self.max_text,
                        });
                    }
                    text.push_str(&t);
                }
                Token::End { .. } => return Ok(text),
                Token::Start(e) => return Err(unexpected(element, "text", &e)),
                Token::Eof => return Err(self.eof()),
            }
        }
    }

    /// Skips the rest of an element whose start tag was read; returns the offset past its end.
    fn skip_element(&mut self) -> Result<usize, ParseError> {
        let mut depth = 1usize;
        loop {
            match self.tokens.next()? {
                Token::Start(_) => depth += 1,
                Token::End { end } => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(end);
                    }
                }
                Token::Text(_) => {}
                Token::Eof => return Err(self.eof()),
            }
        }
    }

    /// After the root: only whitespace and comments.
    fn epilogue(&mut self) -> Result<(), ParseError> {
        loop {
            match self.tokens.next()? {
                Token::Eof => return Ok(()),
                Token::Text(t) if is_blank(&t) => {}
                Token::Start(_) | Token::End { .. } | Token::Text(_) => {
                    return Err(ParseError::TrailingContent)
                }
            }
        }
    }

    /// The first pass has seen the whole document end properly, so this cannot happen.
    fn eof(&self) -> ParseError {
        self.malformed(MalformedKind::UnexpectedEof)
    }

    fn malformed(&self, kind: MalformedKind) -> ParseError {
        ParseError::Malformed {
            position: self.tokens.position(),
            kind,
        }
    }
}

fn is_signature(e: &Element<'_>) -> bool {
    e.is(Ns::Ds, "Signature")
}

fn unexpected(parent: &'static str, expected: &'static str, found: &Element<'_>) -> ParseError {
    ParseError::UnexpectedElement {
        parent,
        expected,
        found: Some(truncated_name(found.local())),
    }
}

/// An element other than the one expected where it is (or the end of `parent`).
fn misplaced(
    parent: &'static str,
    expected: &'static str,
    found: Option<Element<'_>>,
) -> ParseError {
    match found {
        Some(e) if is_signature(&e) => ParseError::SignatureNotLast,
        Some(e) => unexpected(parent, expected, &e),
        None => ParseError::UnexpectedElement {
            parent,
            expected,
            found: None,
        },
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_blank(text: &str) -> bool {
    text.chars().all(is_xml_space)
}

/// xs:token and friends: leading and trailing XML whitespace removed.
fn trim(text: &str) -> &str {
    text.trim_matches(is_xml_space)
}
