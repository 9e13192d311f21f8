//! Characters: names, references, and the three decoders (text, CDATA, attribute value) that
//! turn raw document bytes into the characters an XML parser reports, feeding them to a [`Sink`].

use super::error::{C14nError, MalformedKind};

/// Where decoded characters go. `run` gets verbatim stretches that hold none of the characters
/// the decoder treats as special; `ch` gets every other character one at a time.
pub(crate) trait Sink {
    fn run(&mut self, s: &str);
    fn ch(&mut self, c: char);
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn run(&mut self, s: &str) {
        (**self).run(s);
    }
    fn ch(&mut self, c: char) {
        (**self).ch(c);
    }
}

/// Decodes only to check the input.
pub(crate) struct Discard;

impl Sink for Discard {
    fn run(&mut self, _: &str) {}
    fn ch(&mut self, _: char) {}
}

impl Sink for String {
    fn run(&mut self, s: &str) {
        self.push_str(s);
    }
    fn ch(&mut self, c: char) {
        self.push(c);
    }
}

/// Canonical text: `&`, `<`, `>` and CR escaped (c14n 1.0 §2.3).
pub(crate) struct TextOut<'o>(pub &'o mut Vec<u8>);

impl Sink for TextOut<'_> {
    fn run(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }
    fn ch(&mut self, c: char) {
        match c {
            '&' => self.0.extend_from_slice(b"&amp;"),
            '<' => self.0.extend_from_slice(b"&lt;"),
            '>' => self.0.extend_from_slice(b"&gt;"),
            '\r' => self.0.extend_from_slice(b"&#xD;"),
            c => push_char(self.0, c),
        }
    }
}

/// A canonical attribute value: `&`, `<`, `"`, TAB, LF and CR escaped (c14n 1.0 §2.3).
pub(crate) struct AttrOut<'o>(pub &'o mut Vec<u8>);

impl Sink for AttrOut<'_> {
    fn run(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }
    fn ch(&mut self, c: char) {
        match c {
            '&' => self.0.extend_from_slice(b"&amp;"),
            '<' => self.0.extend_from_slice(b"&lt;"),
            '"' => self.0.extend_from_slice(b"&quot;"),
            '\t' => self.0.extend_from_slice(b"&#x9;"),
            '\n' => self.0.extend_from_slice(b"&#xA;"),
            '\r' => self.0.extend_from_slice(b"&#xD;"),
            c => push_char(self.0, c),
        }
    }
}

/// Writes an already-decoded value (a namespace URI) as a canonical attribute value.
pub(crate) fn write_attr_str(out: &mut Vec<u8>, value: &str) {
    let mut sink = AttrOut(out);
    let mut rest = value;
    while let Some(i) = rest.find(['&', '<', '"', '\t', '\n', '\r']) {
        sink.run(&rest[..i]);
        // `i` is the index of one of the ASCII characters searched for, so `i + 1` is a boundary.
        sink.ch(char::from(rest.as_bytes()[i]));
        rest = &rest[i + 1..];
    }
    sink.run(rest);
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// The four XML whitespace characters.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const SPECIAL_TEXT: u8 = 1;
const SPECIAL_CDATA: u8 = 2;
const SPECIAL_ATTR: u8 = 4;
const ENDS_NAME: u8 = 8;

/// Which bytes stop a verbatim run, per decoder.
static SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'&' as usize] = SPECIAL_TEXT | SPECIAL_CDATA | SPECIAL_ATTR;
    t[b'\r' as usize] = SPECIAL_TEXT | SPECIAL_CDATA | SPECIAL_ATTR;
    t[b'>' as usize] = SPECIAL_TEXT | SPECIAL_CDATA;
    t[b'<' as usize] = SPECIAL_CDATA | SPECIAL_ATTR;
    t[b'"' as usize] = SPECIAL_ATTR;
    t[b'\t' as usize] = SPECIAL_ATTR;
    t[b'\n' as usize] = SPECIAL_ATTR;
    let mut i = 0;
    let ends_name = b" \t\n\r/>=";
    while i < ends_name.len() {
        t[ends_name[i] as usize] |= ENDS_NAME;
        i += 1;
    }
    t
};

/// Decodes character data between tags (`raw` starts at byte `position` of the document):
/// references resolved, line ends normalised; refuses `]]>` and bad references.
pub(crate) fn decode_text(
    raw: &str,
    position: usize,
    sink: &mut impl Sink,
) -> Result<(), C14nError> {
    decode(raw, position, SPECIAL_TEXT, sink)
}

/// Decodes the inside of a CDATA section: line ends normalised, nothing else special.
pub(crate) fn decode_cdata(raw: &str, sink: &mut impl Sink) {
    // CDATA has no references, so the only error `decode` can report (a bad reference) cannot
    // happen when `&` is passed through as a plain character.
    let bytes = raw.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if SPECIAL[usize::from(b)] & SPECIAL_CDATA == 0 {
            i += 1;
            continue;
        }
        sink.run(&raw[start..i]);
        if b == b'\r' {
            sink.ch('\n');
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            sink.ch(char::from(b));
        }
        i += 1;
        start = i;
    }
    sink.run(&raw[start..]);
}

/// Decodes an attribute value as a non-validating parser does: references resolved, line ends
/// normalised, then literal TAB, LF and CR each become a space; refuses a literal `<`.
pub(crate) fn decode_attr(
    raw: &str,
    position: usize,
    sink: &mut impl Sink,
) -> Result<(), C14nError> {
    decode(raw, position, SPECIAL_ATTR, sink)
}

/// The index of the first byte at or after `i` that is special for `class`, or `bytes.len()`.
fn next_special(bytes: &[u8], mut i: usize, class: u8) -> usize {
    // Eight bytes per test while none is special (long runs of text or base64), then one by one.
    while let Some(chunk) = bytes.get(i..i + 8) {
        if chunk
            .iter()
            .fold(0, |acc, &b| acc | SPECIAL[usize::from(b)])
            & class
            != 0
        {
            break;
        }
        i += 8;
    }
    while bytes
        .get(i)
        .is_some_and(|&b| SPECIAL[usize::from(b)] & class == 0)
    {
        i += 1;
    }
    i
}

fn decode(raw: &str, position: usize, class: u8, sink: &mut impl Sink) -> Result<(), C14nError> {
    let bytes = raw.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        i = next_special(bytes, i, class);
        let Some(&b) = bytes.get(i) else {
            break;
        };
        sink.run(&raw[start..i]);
        let attr = class == SPECIAL_ATTR;
        match b {
            b'&' => {
                let (c, len) = reference(&raw[i..], position + i)?;
                sink.ch(c);
                i += len;
                start = i;
                continue;
            }
            b'\r' => {
                sink.ch(if attr { ' ' } else { '\n' });
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\t' | b'\n' => sink.ch(' '),
            b'<' => {
                return Err(C14nError::Malformed {
                    position: position + i,
                    kind: MalformedKind::LtInAttributeValue,
                })
            }
            b'>' => {
                if i >= 2 && &bytes[i - 2..i] == b"]]" {
                    return Err(C14nError::Malformed {
                        position: position + i - 2,
                        kind: MalformedKind::CdataEndInText,
                    });
                }
                sink.ch('>');
            }
            // b'"' in an attribute value
            other => sink.ch(char::from(other)),
        }
        i += 1;
        start = i;
    }
    sink.run(&raw[start..]);
    Ok(())
}

/// Longest reference body accepted: `#x10FFFF` with leading zeros trimmed is 8; allow padding.
const MAX_REFERENCE: usize = 16;

/// Resolves the reference at the start of `s` (which starts with `&`) to its character and the
/// number of bytes it took.
fn reference(s: &str, position: usize) -> Result<(char, usize), C14nError> {
    let bad = C14nError::Malformed {
        position,
        kind: MalformedKind::BadReference,
    };
    let window = &s.as_bytes()[1..s.len().min(MAX_REFERENCE + 2)];
    let Some(end) = window.iter().position(|&b| b == b';') else {
        return Err(bad);
    };
    let body = &window[..end];
    let c = match body {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        [b'#', b'x', hex @ ..] => char_ref(hex, 16).ok_or(bad)?,
        [b'#', dec @ ..] => char_ref(dec, 10).ok_or(bad)?,
        name => {
            // `name` is ASCII up to a `;`, or else not valid UTF-8 and so no name.
            let is_name = std::str::from_utf8(name).is_ok_and(is_qname);
            return Err(if is_name {
                C14nError::EntityReference { position }
            } else {
                bad
            });
        }
    };
    Ok((c, end + 2))
}

/// A character reference's digits to the character, if it is one XML allows.
fn char_ref(digits: &[u8], radix: u32) -> Option<char> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    for &d in digits {
        let v = char::from(d).to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(v)?;
    }
    let c = char::from_u32(value)?;
    is_xml_char(c).then_some(c)
}

/// XML 1.0 `Char`.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Whether a byte ends a name inside a tag.
pub(crate) fn ends_name(b: u8) -> bool {
    SPECIAL[usize::from(b)] & ENDS_NAME != 0
}

/// Namespaces 1.0 `QName`: one optional prefix, each part an `NCName`.
pub(crate) fn is_qname(name: &str) -> bool {
    match memchr::memchr(b':', name.as_bytes()) {
        None => is_ncname(name),
        // `i` is the index of an ASCII byte, so both slices are on character boundaries.
        Some(i) => is_ncname(&name[..i]) && is_ncname(&name[i + 1..]),
    }
}

/// ASCII bytes that may start an `NCName` (1) or continue one (2).
static ASCII_NAME: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = 3;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            t[b] = 2;
        }
        b += 1;
    }
    t
};

/// [`ASCII_NAME`] over all bytes, with `:` as 4.
static QNAME_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = ASCII_NAME[b];
        b += 1;
    }
    t[b':' as usize] = 4;
    t
};

/// The length of the leading run of ASCII name bytes (and `:`) in `bytes`, and whether that run
/// is a QName — the same answer [`is_qname`] gives for it.
pub(crate) fn scan_ascii_qname(bytes: &[u8]) -> (usize, bool) {
    // The run of NCName bytes from `from`.
    let part = |from: usize| {
        from + bytes[from..]
            .iter()
            .position(|&b| QNAME_BYTE[usize::from(b)] & 3 == 0)
            .unwrap_or(bytes.len() - from)
    };
    let starts_part = |at: usize| {
        bytes
            .get(at)
            .is_some_and(|&b| QNAME_BYTE[usize::from(b)] & 1 != 0)
    };
    let first = part(0);
    if bytes.get(first) != Some(&b':') {
        return (first, starts_part(0));
    }
    let second = part(first + 1);
    let valid = starts_part(0) && starts_part(first + 1);
    if bytes.get(second) != Some(&b':') {
        return (second, valid);
    }
    // A second colon: not a QName; the run goes on over any further name bytes and colons.
    let rest = bytes[second..]
        .iter()
        .position(|&b| QNAME_BYTE[usize::from(b)] == 0)
        .unwrap_or(bytes.len() - second);
    (second + rest, false)
}

/// Names and text runs are short: a plain loop beats a vectorised search's set-up.
fn has_either(bytes: &[u8], x: u8, y: u8) -> bool {
    bytes.iter().any(|&b| b == x || b == y)
}

/// Checks character data that is not output: only a reference or `]]>` can make it wrong, so
/// text with neither `&` nor `>` needs no decoding.
pub(crate) fn check_text(raw: &str, position: usize) -> Result<(), C14nError> {
    if !has_either(raw.as_bytes(), b'&', b'>') {
        return Ok(());
    }
    decode_text(raw, position, &mut Discard)
}

/// Checks an attribute value: only a reference or a literal `<` can make it wrong.
pub(crate) fn check_attr(raw: &str, position: usize) -> Result<(), C14nError> {
    if !has_either(raw.as_bytes(), b'&', b'<') {
        return Ok(());
    }
    decode_attr(raw, position, &mut Discard)
}

fn is_ncname(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_ascii() {
        return bytes
            .first()
            .is_some_and(|&b| ASCII_NAME[usize::from(b)] & 1 != 0)
            && bytes.iter().all(|&b| ASCII_NAME[usize::from(b)] != 0);
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if is_name_start(c) => chars.all(is_name_char),
        _ => false,
    }
}

/// XML 1.0 (fifth edition) `NameStartChar`, less the colon.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 (fifth edition) `NameChar`, less the colon.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}
