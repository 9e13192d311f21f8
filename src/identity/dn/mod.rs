//! Distinguished names as structures: read from a certificate, or parsed from the RFC 4514
//! string form XMLDSig's `X509IssuerName` carries (`CN=Z1,OU=07`), and compared structurally,
//! so that `CN=Z1, OU=07` in a message finds the certificate whose issuer is DER `OU=07, CN=Z1`.

use std::fmt;
use std::str::FromStr;

use x509_parser::der_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::X509Name;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("an attribute value in the certificate's name cannot be re-encoded")]
    Encoding,
    #[error("the name is not RFC 4514 syntax (at byte {at})")]
    Syntax { at: usize },
    #[error("unknown attribute type {0:?}")]
    UnknownAttributeType(String),
}

/// A distinguished name: its RDNs in DER order (most significant first, as in the certificate;
/// the string form lists them the other way round).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DistinguishedName {
    rdns: Vec<Vec<DnAttribute>>,
}

/// One attribute of an RDN: its type as a dotted OID, and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnAttribute {
    pub oid: String,
    pub value: DnValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DnValue {
    /// A directory string (UTF8String, PrintableString, IA5String, NumericString).
    Text(String),
    /// Any other value, as its whole DER encoding (tag, length, content): the
    /// `x500UniqueIdentifier` BIT STRING, or a `#hex` value of the string form.
    Der(Vec<u8>),
}

/// Attribute type keywords: RFC 4514 §3 and the ones the DCC's certificates use.
const KEYWORDS: [(&str, &str); 12] = [
    ("CN", "2.5.4.3"),
    ("OU", "2.5.4.11"),
    ("O", "2.5.4.10"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("STREET", "2.5.4.9"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("x500UniqueIdentifier", "2.5.4.45"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
];

impl DistinguishedName {
    /// The RDNs in DER order.
    pub fn rdns(&self) -> &[Vec<DnAttribute>] {
        &self.rdns
    }

    /// Reads a certificate's name.
    pub fn from_x509(name: &X509Name<'_>) -> Result<Self, DnError> {
        let mut rdns = Vec::new();
        for rdn in name.iter() {
            let mut attrs = Vec::new();
            for atv in rdn.iter() {
                attrs.push(DnAttribute {
                    oid: atv.attr_type().to_id_string(),
                    value: value_from_any(atv.attr_value())?,
                });
            }
            rdns.push(attrs);
        }
        Ok(Self { rdns })
    }

    /// Whether two names denote the same entry: the same RDNs in the same order, attributes
    /// within an RDN in any order, text compared ignoring case and runs of spaces (X.520
    /// caseIgnoreMatch, simplified), and a `#hex` string value equal to the same text.
    pub fn matches(&self, other: &DistinguishedName) -> bool {
        self.rdns.len() == other.rdns.len()
            && self
                .rdns
                .iter()
                .zip(&other.rdns)
                .all(|(a, b)| normalised(a) == normalised(b))
    }

    /// As [`matches`](Self::matches), but with the RDNs in any order: signers write an issuer
    /// as `CN=Z1,OU=07`, `OU=07, CN=Z1` or otherwise, and a serial number already narrows the
    /// search to one issuer's certificates.
    pub fn matches_in_any_order(&self, other: &DistinguishedName) -> bool {
        let sorted = |n: &DistinguishedName| {
            let mut v: Vec<_> = n.rdns.iter().map(|r| normalised(r)).collect();
            v.sort();
            v
        };
        self.rdns.len() == other.rdns.len() && sorted(self) == sorted(other)
    }
}

fn value_from_any(any: &Any<'_>) -> Result<DnValue, DnError> {
    let text = matches!(
        any.tag(),
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString
    );
    if any.class() == Class::Universal && text {
        if let Ok(s) = std::str::from_utf8(any.data) {
            return Ok(DnValue::Text(s.to_owned()));
        }
    }
    // Re-encode the TLV: a low tag number (< 31) in one identifier octet, a definite length.
    let tag = any.tag().0;
    if tag >= 31 {
        return Err(DnError::Encoding);
    }
    let class = any.class() as u8;
    let constructed = u8::from(any.header.is_constructed());
    // tag < 31 was checked, so the identifier fits one octet.
    let mut out = vec![(class << 6) | (constructed << 5) | tag as u8];
    push_length(&mut out, any.data.len());
    out.extend_from_slice(any.data);
    Ok(DnValue::Der(out))
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Checked just above: fits seven bits.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    // At most size_of::<usize>() = 8 octets follow, so the count fits.
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// An RDN's attributes in a canonical order with their values folded for comparison.
fn normalised(rdn: &[DnAttribute]) -> Vec<(String, Result<String, Vec<u8>>)> {
    let mut out: Vec<_> = rdn
        .iter()
        .map(|a| {
            let value = match &a.value {
                DnValue::Text(t) => Ok(fold(t)),
                DnValue::Der(der) => der_string(der).map(fold).ok_or_else(|| der.clone()),
            };
            (a.oid.clone(), value)
        })
        .collect();
    out.sort();
    out
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The text of a DER directory string with a short-form length, if `der` is one.
fn der_string(der: &[u8]) -> Option<&str> {
    let (&tag, rest) = der.split_first()?;
    let (&len, content) = rest.split_first()?;
    let string_tag = matches!(tag, 0x0C | 0x12 | 0x13 | 0x16);
    if !string_tag || len >= 0x80 || usize::from(len) != content.len() {
        return None;
    }
    std::str::from_utf8(content).ok()
}

impl fmt::Display for DistinguishedName {
    /// RFC 4514: the last RDN first, `,` between RDNs, `+` inside one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, attr) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                let keyword = KEYWORDS.iter().find(|(_, oid)| *oid == attr.oid);
                f.write_str(keyword.map_or(attr.oid.as_str(), |(k, _)| k))?;
                f.write_str("=")?;
                match &attr.value {
                    DnValue::Text(t) => write_escaped(f, t)?,
                    DnValue::Der(der) => {
                        f.write_str("#")?;
                        for b in der {
                            write!(f, "{b:02X}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if c == '\0' {
            f.write_str("\\00")?;
        } else if special {
            write!(f, "\\{c}")?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

impl FromStr for DistinguishedName {
    type Err = DnError;

    /// RFC 4514, leniently: spaces around `=`, `,` and `+` are allowed (as in `CN=U1, OU=07`),
    /// `;` separates RDNs as in RFC 2253, types are keywords (any case) or dotted OIDs.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let mut rdns = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { rdns });
        }
        let mut current = Vec::new();
        let mut at = 0;
        loop {
            let eq = bytes[at..]
                .iter()
                .position(|&b| b == b'=')
                .map(|p| at + p)
                .ok_or(DnError::Syntax { at })?;
            let oid = attribute_oid(s[at..eq].trim()).map_err(|e| match e {
                DnError::Syntax { .. } => DnError::Syntax { at },
                other => other,
            })?;
            let (value, end) = parse_value(bytes, eq + 1)?;
            current.push(DnAttribute { oid, value });
            match bytes.get(end) {
                None => {
                    rdns.push(current);
                    break;
                }
                Some(b'+') => {}
                Some(_) => rdns.push(std::mem::take(&mut current)),
            }
            at = end + 1;
        }
        rdns.reverse();
        Ok(Self { rdns })
    }
}

fn attribute_oid(ty: &str) -> Result<String, DnError> {
    if let Some((_, oid)) = KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(ty)) {
        return Ok((*oid).to_owned());
    }
    let dotted = ty
        .strip_prefix("OID.")
        .or_else(|| ty.strip_prefix("oid."))
        .unwrap_or(ty);
    let is_oid = dotted.starts_with(|c: char| c.is_ascii_digit())
        && dotted.split('.').count() >= 2
        && dotted
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    if is_oid {
        Ok(dotted.to_owned())
    } else if ty.is_empty() {
        Err(DnError::Syntax { at: 0 })
    } else {
        Err(DnError::UnknownAttributeType(ty.to_owned()))
    }
}

/// Parses one value starting at `at`; returns it and the index of the separator that ended it
/// (`,`, `;`, `+`) or the input's length.
fn parse_value(bytes: &[u8], mut at: usize) -> Result<(DnValue, usize), DnError> {
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    let is_separator = |b: u8| matches!(b, b',' | b';' | b'+');
    if bytes.get(at) == Some(&b'#') {
        let start = at + 1;
        let mut end = start;
        while bytes.get(end).is_some_and(|&b| !is_separator(b)) {
            end += 1;
        }
        let hex = std::str::from_utf8(&bytes[start..end])
            .map_err(|_| DnError::Syntax { at: start })?
            .trim_end();
        return Ok((DnValue::Der(decode_hex(hex, start)?), end));
    }
    let mut out = Vec::new();
    // Length of `out` up to its last character that is not an unescaped trailing space.
    let mut keep = 0;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'\\' => {
                let next = *bytes.get(at + 1).ok_or(DnError::Syntax { at })?;
                if b"\"+,;<>\\ #=".contains(&next) {
                    out.push(next);
                    at += 2;
                } else {
                    let pair = bytes.get(at + 1..at + 3).ok_or(DnError::Syntax { at })?;
                    out.extend(decode_hex(std::str::from_utf8(pair).unwrap_or(""), at)?);
                    at += 3;
                }
                keep = out.len();
            }
            b'"' => return Err(DnError::Syntax { at }),
            b if is_separator(b) => break,
            b => {
                out.push(b);
                at += 1;
                if b != b' ' {
                    keep = out.len();
                }
            }
        }
    }
    out.truncate(keep);
    let text = String::from_utf8(out).map_err(|_| DnError::Syntax { at })?;
    Ok((DnValue::Text(text), at))
}

fn decode_hex(hex: &str, at: usize) -> Result<Vec<u8>, DnError> {
    if hex.is_empty() || hex.len() % 2 != 0 {
        return Err(DnError::Syntax { at });
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(DnError::Syntax { at: at + i })
        })
        .collect()
}
