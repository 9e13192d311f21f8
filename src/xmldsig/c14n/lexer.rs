//! The tokenizer: the pieces of XML syntax one at a time, each from a byte position in a
//! document already known to be UTF-8 and free of forbidden characters. Nothing here allocates
//! except the caller's reusable attribute list.

use super::chars::{ends_name, is_qname, is_space, scan_ascii_qname};
use super::error::{C14nError, MalformedKind};

/// An attribute as written: name and raw (undecoded) value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawAttr<'a> {
    pub qname: &'a str,
    pub value: &'a str,
    /// Where the name starts.
    pub position: usize,
    /// Where the value starts (after the quote).
    pub value_position: usize,
}

/// A start or empty-element tag; its attributes go to the caller's list.
pub(crate) struct Tag<'a> {
    pub qname: &'a str,
    pub empty: bool,
    /// Just after the tag's `>`.
    pub end: usize,
}

pub(crate) fn malformed(position: usize, kind: MalformedKind) -> C14nError {
    C14nError::Malformed { position, kind }
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).copied().is_some_and(is_space) {
        i += 1;
    }
    i
}

/// A name inside a tag, starting at `i`; returns it and the index just after it.
fn name_at(doc: &str, i: usize) -> Result<(&str, usize), C14nError> {
    let bytes = doc.as_bytes();
    // The usual name is ASCII: scan and check it in one pass, and take the byte-by-byte way
    // only if the ASCII run is not where the name ends.
    let (len, ascii_valid) = scan_ascii_qname(&bytes[i.min(bytes.len())..]);
    let mut end = i + len;
    let fast = bytes.get(end).is_some_and(|&b| ends_name(b));
    if !fast {
        while bytes.get(end).is_some_and(|&b| !ends_name(b)) {
            end += 1;
        }
    }
    if end == bytes.len() {
        return Err(malformed(end, MalformedKind::UnexpectedEnd));
    }
    // `end` stops at an ASCII byte (or the end), so both ends are character boundaries.
    let name = &doc[i..end];
    let valid = if fast { ascii_valid } else { is_qname(name) };
    if !valid {
        return Err(malformed(i, MalformedKind::BadName));
    }
    Ok((name, end))
}

/// The start tag at `start` (which holds `<`). Refuses a tag with more than `max_attributes`
/// attributes as soon as it sees one too many.
pub(crate) fn start_tag<'a>(
    doc: &'a str,
    start: usize,
    max_attributes: usize,
    attrs: &mut Vec<RawAttr<'a>>,
) -> Result<Tag<'a>, C14nError> {
    let bytes = doc.as_bytes();
    attrs.clear();
    let (qname, mut i) = name_at(doc, start + 1)?;
    loop {
        let before = i;
        i = skip_space(bytes, i);
        match bytes.get(i) {
            None => return Err(malformed(i, MalformedKind::UnexpectedEnd)),
            Some(b'>') => {
                return Ok(Tag {
                    qname,
                    empty: false,
                    end: i + 1,
                })
            }
            Some(b'/') => {
                return match bytes.get(i + 1) {
                    Some(b'>') => Ok(Tag {
                        qname,
                        empty: true,
                        end: i + 2,
                    }),
                    None => Err(malformed(i + 1, MalformedKind::UnexpectedEnd)),
                    Some(_) => Err(malformed(i, MalformedKind::BadAttribute)),
                }
            }
            Some(_) if i == before => return Err(malformed(i, MalformedKind::BadAttribute)),
            Some(_) => {}
        }
        if attrs.len() == max_attributes {
            return Err(C14nError::TooManyAttributes {
                position: start,
                limit: max_attributes,
            });
        }
        let position = i;
        let (name, after_name) = name_at(doc, i)?;
        i = skip_space(bytes, after_name);
        if bytes.get(i) != Some(&b'=') {
            return Err(malformed(i, MalformedKind::BadAttribute));
        }
        i = skip_space(bytes, i + 1);
        let quote = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            None => return Err(malformed(i, MalformedKind::UnexpectedEnd)),
            Some(_) => return Err(malformed(i, MalformedKind::BadAttribute)),
        };
        let value_position = i + 1;
        let Some(len) = memchr::memchr(quote, &bytes[value_position..]) else {
            return Err(malformed(doc.len(), MalformedKind::UnexpectedEnd));
        };
        attrs.push(RawAttr {
            qname: name,
            value: &doc[value_position..value_position + len],
            position,
            value_position,
        });
        i = value_position + len + 1;
    }
}

/// The end tag at `start` (which holds `</`), which must close the element named `open`: the
/// index just after its `>`.
pub(crate) fn end_tag(doc: &str, start: usize, open: &str) -> Result<usize, C14nError> {
    let bytes = doc.as_bytes();
    let after = start + 2 + open.len();
    let same_name = bytes.get(start + 2..after) == Some(open.as_bytes())
        && bytes.get(after).is_some_and(|&b| ends_name(b));
    if !same_name {
        return Err(malformed(start, MalformedKind::MismatchedEndTag));
    }
    let i = skip_space(bytes, after);
    match bytes.get(i) {
        Some(b'>') => Ok(i + 1),
        None => Err(malformed(i, MalformedKind::UnexpectedEnd)),
        Some(_) => Err(malformed(i, MalformedKind::MismatchedEndTag)),
    }
}

/// The comment at `start` (which holds `<!--`): the index just after its `-->`.
pub(crate) fn comment(doc: &str, start: usize) -> Result<usize, C14nError> {
    let body = start + 4;
    let Some(dashes) = doc[body..].find("--") else {
        return Err(malformed(doc.len(), MalformedKind::UnexpectedEnd));
    };
    let at = body + dashes;
    match doc.as_bytes().get(at + 2) {
        Some(b'>') => Ok(at + 3),
        None => Err(malformed(doc.len(), MalformedKind::UnexpectedEnd)),
        Some(_) => Err(malformed(at, MalformedKind::DoubleHyphenInComment)),
    }
}

/// The CDATA section at `start` (which holds `<![CDATA[`): its content and the index after `]]>`.
pub(crate) fn cdata(doc: &str, start: usize) -> Result<(&str, usize), C14nError> {
    let body = start + CDATA_OPEN.len();
    let Some(len) = doc[body..].find("]]>") else {
        return Err(malformed(doc.len(), MalformedKind::UnexpectedEnd));
    };
    Ok((&doc[body..body + len], body + len + 3))
}

pub(crate) const CDATA_OPEN: &str = "<![CDATA[";

/// The XML declaration, if the document (after any byte-order mark, at `start`) opens with one:
/// the index just after it. Only version 1.0 and encoding UTF-8 are accepted.
pub(crate) fn xml_declaration(doc: &str, start: usize) -> Result<usize, C14nError> {
    let bytes = doc.as_bytes();
    if !(doc[start..].starts_with("<?xml") && bytes.get(start + 5).copied().is_some_and(is_space)) {
        return Ok(start);
    }
    let bad = malformed(start, MalformedKind::BadDeclaration);
    let Some(len) = doc[start..].find("?>") else {
        return Err(malformed(doc.len(), MalformedKind::UnexpectedEnd));
    };
    let end = start + len;
    let mut i = start + 5;
    // version, then optionally encoding, then optionally standalone, in that order.
    for (index, key) in ["version", "encoding", "standalone"]
        .into_iter()
        .enumerate()
    {
        let at = skip_space(bytes, i);
        if at == i || !doc[at..end].starts_with(key) {
            if index == 0 {
                return Err(bad);
            }
            continue;
        }
        let mut j = skip_space(bytes, at + key.len());
        if bytes.get(j) != Some(&b'=') {
            return Err(bad);
        }
        j = skip_space(bytes, j + 1);
        let quote = match bytes.get(j) {
            Some(&q @ (b'"' | b'\'')) if j < end => char::from(q),
            _ => return Err(bad),
        };
        let Some(vlen) = doc[j + 1..end].find(quote) else {
            return Err(bad);
        };
        let value = &doc[j + 1..j + 1 + vlen];
        let acceptable = match key {
            "version" => value == "1.0",
            "encoding" => value.eq_ignore_ascii_case("UTF-8"),
            _ => value == "yes" || value == "no",
        };
        if !acceptable {
            return Err(if key == "standalone" {
                bad
            } else {
                C14nError::UnsupportedDeclaration { position: at }
            });
        }
        i = j + 1 + vlen + 1;
    }
    if skip_space(bytes, i) != end {
        return Err(bad);
    }
    Ok(end + 2)
}
