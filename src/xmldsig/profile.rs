//! The DUIS signature profile (brief §5), and reading a document's one `ds:Signature` into typed
//! values. Anything outside the profile — another algorithm, a second reference, a transform
//! more or less, key information other than an issuer and serial — is refused.

use std::ops::Range;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::identity::DistinguishedName;

pub const DS_NAMESPACE: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// The most bytes of base64 or text a signature field may hold (a serial is at most 20 octets,
/// an issuer name a few hundred bytes); more is refused, not read.
const MAX_FIELD_BYTES: usize = 4096;
/// Nesting the walk accepts; the gateway's parser bounds requests more tightly before this.
pub(super) const MAX_DEPTH: usize = 64;

/// A document's signature, read and checked against the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureElement {
    /// The whole `ds:Signature` element (what the enveloped-signature transform removes).
    pub signature: Range<usize>,
    /// The `ds:SignedInfo` element, which the signature value signs.
    pub signed_info: Range<usize>,
    pub digest: [u8; 32],
    /// ECDSA P-256 `r‖s`.
    pub value: [u8; 64],
    pub issuer: DistinguishedName,
    /// The serial number's big-endian magnitude, without leading zero octets.
    pub serial: Vec<u8>,
}

/// Why a signature is missing or outside the profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("the document has no ds:Signature as the last child of its root element")]
    Missing,
    #[error("the document has more than one ds:Signature")]
    Multiple,
    #[error("the document is not well-formed XML at byte {0}")]
    Malformed(usize),
    #[error("the document has a DOCTYPE or processing instruction")]
    Forbidden,
    #[error("the document nests deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("the signature's {0} is missing, repeated or out of order")]
    Structure(&'static str),
    #[error("the signature uses {field} algorithm {found}, not the profile's")]
    Algorithm {
        field: &'static str,
        /// At most 128 bytes of what the document named.
        found: String,
    },
    #[error("the reference is not to the whole document (URI=\"\")")]
    ReferenceUri,
    #[error("the signature's {0} is not valid base64 of the right length")]
    Encoding(&'static str),
    #[error("the X509IssuerName is not a distinguished name")]
    IssuerName,
    #[error("the X509SerialNumber is not a non-negative decimal integer")]
    SerialNumber,
}

/// Where the walk is inside `ds:Signature`: the path of profile elements from it.
#[derive(Default)]
struct Fields {
    signed_info: Option<Range<usize>>,
    canonicalization: Option<String>,
    signature_method: Option<String>,
    references: usize,
    reference_uri: Option<Option<String>>,
    transforms: Vec<String>,
    digest_method: Option<String>,
    digest_value: Option<String>,
    signature_value: Option<String>,
    issuer_name: Option<String>,
    serial_number: Option<String>,
}

/// The expected children of each profile element, in order; `?` marks optional ones. Any other
/// element inside `ds:Signature` is refused.
fn allowed_children(parent: &str) -> &'static [&'static str] {
    match parent {
        "Signature" => &["SignedInfo", "SignatureValue", "KeyInfo"],
        "SignedInfo" => &["CanonicalizationMethod", "SignatureMethod", "Reference"],
        "Reference" => &["Transforms", "DigestMethod", "DigestValue"],
        "Transforms" => &["Transform"],
        "KeyInfo" => &["X509Data"],
        "X509Data" => &["X509IssuerSerial"],
        "X509IssuerSerial" => &["X509IssuerName", "X509SerialNumber"],
        _ => &[],
    }
}

/// One strict pass over the whole document (the canonicaliser's reader): one root element,
/// XML names, no DOCTYPE, processing instruction or unknown entity.
fn strictly_well_formed(doc: &[u8]) -> Result<(), ProfileError> {
    use super::c14n::{root, C14nError, C14nLimits};
    match root(doc, &C14nLimits::default()) {
        Ok(_) => Ok(()),
        Err(
            C14nError::Doctype { .. }
            | C14nError::ProcessingInstruction { .. }
            | C14nError::EntityReference { .. },
        ) => Err(ProfileError::Forbidden),
        Err(C14nError::TooDeep { .. }) => Err(ProfileError::TooDeep),
        Err(_) => Err(ProfileError::Malformed(0)),
    }
}

/// Reads the signature at `signature` — a span the caller's parser found as the root element's
/// last child, the only `ds:Signature` there — from the root's start tag and that element alone,
/// without walking the rest of the document again. Spans in the result are `doc`'s.
pub fn read_signature_at(
    doc: &[u8],
    signature: Range<usize>,
) -> Result<SignatureElement, ProfileError> {
    let mini = super::locate::mini_document(doc, &signature).ok_or(ProfileError::Missing)?;
    let mut sig = match super::read_at::read_signature_fast(&mini.bytes) {
        Some(sig) => sig,
        // Refused by the fast reader: this one says why, exactly as it always has.
        None => read_signature(&mini.bytes)?,
    };
    // Map the spans back: the signature element sits at `signature_start` in the mini document.
    let shift = |r: Range<usize>| {
        r.start - mini.signature_start + signature.start
            ..r.end - mini.signature_start + signature.start
    };
    if sig.signature.start != mini.signature_start {
        return Err(ProfileError::Missing);
    }
    sig.signed_info = shift(sig.signed_info);
    sig.signature = shift(sig.signature);
    Ok(sig)
}

/// Finds the document's signature — it must be the root's last element child, and the only
/// `ds:Signature` — and reads it.
pub fn read_signature(doc: &[u8]) -> Result<SignatureElement, ProfileError> {
    // quick-xml reads leniently (several roots, names that are not XML names); the document is
    // first held to the canonicaliser's stricter reading, which is what verification applies.
    strictly_well_formed(doc)?;
    // quick-xml does not count a byte-order mark in its positions: read after it and shift
    // the spans back onto `doc` (found by fuzzing: spans were three bytes short).
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let skip = if doc.starts_with(BOM) { BOM.len() } else { 0 };
    let mut sig = read_signature_after_bom(&doc[skip..])?;
    sig.signature = sig.signature.start + skip..sig.signature.end + skip;
    sig.signed_info = sig.signed_info.start + skip..sig.signed_info.end + skip;
    Ok(sig)
}

fn read_signature_after_bom(doc: &[u8]) -> Result<SignatureElement, ProfileError> {
    let mut reader = NsReader::from_reader(doc);
    reader.config_mut().check_end_names = true;
    let mut c = Collector::default();
    loop {
        let before = reader.buffer_position() as usize;
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|_| ProfileError::Malformed(before))?;
        let is_ds = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == DS_NAMESPACE.as_bytes());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                c.start(is_ds, local.as_ref(), before, |name| attribute(e, name))?;
                if empty {
                    c.end_empty(reader.buffer_position() as usize)?;
                }
            }
            Event::End(_) => c.end(reader.buffer_position() as usize)?,
            Event::Text(t) => {
                if c.wants_text() {
                    let t = t.unescape().map_err(|_| ProfileError::Malformed(before))?;
                    c.text(&t)?;
                }
            }
            Event::CData(t) => {
                if c.wants_text() {
                    c.text.push_str(
                        std::str::from_utf8(&t).map_err(|_| ProfileError::Malformed(before))?,
                    );
                }
            }
            Event::DocType(_) | Event::PI(_) => return Err(ProfileError::Forbidden),
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) => {}
        }
    }
    c.finish()
}

/// The profile checks on a stream of elements, whichever parser reports them: where the
/// signature is, which `ds:` elements it holds in which order, and their fields.
#[derive(Default)]
pub(super) struct Collector {
    depth: usize,
    /// The `ds:` path inside the signature: (local name, start offset, children seen in order).
    inside: Vec<(&'static str, usize, usize)>,
    signature: Option<Range<usize>>,
    root_child_after_signature: bool,
    misplaced: bool,
    fields: Fields,
    /// The character data of the innermost profile element so far.
    pub(super) text: String,
}

impl Collector {
    /// An element starts at `before`; `attribute` gives the value of one of its unprefixed
    /// attributes (at most 128 characters).
    pub(super) fn start(
        &mut self,
        is_ds: bool,
        local: &[u8],
        before: usize,
        attribute: impl Fn(&[u8]) -> Result<Option<String>, ProfileError>,
    ) -> Result<(), ProfileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ProfileError::TooDeep);
        }
        if self.depth == 2 && self.signature.is_some() {
            self.root_child_after_signature = true;
        }
        if is_ds && local == b"Signature" && self.inside.is_empty() {
            if self.signature.is_some() {
                return Err(ProfileError::Multiple);
            }
            if self.depth != 2 {
                // Not where the profile puts it; counted, so that a second one at the right
                // place is refused as a duplicate.
                self.misplaced = true;
                return Ok(());
            }
            self.inside.push(("Signature", before, 0));
            self.signature = Some(before..before);
        } else if let Some((parent, _, seen)) = self.inside.last_mut() {
            let allowed = allowed_children(parent);
            let name = std::str::from_utf8(local).unwrap_or("");
            let Some(at) = allowed.iter().position(|c| *c == name).filter(|_| is_ds) else {
                return Err(ProfileError::Structure(parent));
            };
            // In order; only Reference's Transform may repeat (checked below).
            if at + 1 < *seen || (at + 1 == *seen && name != "Transform") {
                return Err(ProfileError::Structure(allowed[at]));
            }
            *seen = at + 1;
            let name = allowed[at];
            start_field(name, &attribute, &mut self.fields)?;
            self.inside.push((name, before, 0));
            self.text.clear();
        }
        Ok(())
    }

    /// Whether character data here belongs to a profile field.
    pub(super) fn wants_text(&self) -> bool {
        !self.inside.is_empty()
    }

    /// Whether the field's text so far is over the bound.
    pub(super) fn text_too_long(&self) -> bool {
        self.text.len() > MAX_FIELD_BYTES
    }

    /// Character data inside the signature.
    pub(super) fn text(&mut self, t: &str) -> Result<(), ProfileError> {
        if self.text.len() + t.len() > MAX_FIELD_BYTES {
            return Err(ProfileError::Structure(
                self.inside.last().map_or("", |i| i.0),
            ));
        }
        self.text.push_str(t);
        Ok(())
    }

    /// The element just started was an empty-element tag, ending at `end`.
    pub(super) fn end_empty(&mut self, end: usize) -> Result<(), ProfileError> {
        self.depth -= 1;
        if let Some((name, start, _)) = self.inside.pop() {
            end_field(name, start..end, "", &mut self.fields, &mut self.signature)?;
        }
        Ok(())
    }

    /// The innermost open element ends at `end`.
    pub(super) fn end(&mut self, end: usize) -> Result<(), ProfileError> {
        self.depth = self.depth.saturating_sub(1);
        if let Some((name, start, _)) = self.inside.pop() {
            end_field(
                name,
                start..end,
                &self.text,
                &mut self.fields,
                &mut self.signature,
            )?;
            self.text.clear();
        }
        Ok(())
    }

    /// After the last element: the signature, checked against the profile.
    pub(super) fn finish(self) -> Result<SignatureElement, ProfileError> {
        let signature = self.signature.ok_or(ProfileError::Missing)?;
        if self.misplaced {
            return Err(ProfileError::Multiple);
        }
        if self.root_child_after_signature {
            return Err(ProfileError::Missing);
        }
        finish(signature, self.fields)
    }
}

fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, ProfileError> {
    for a in e.attributes() {
        let a = a.map_err(|_| ProfileError::Malformed(0))?;
        if a.key.as_ref() == name {
            let v = a.unescape_value().map_err(|_| ProfileError::Malformed(0))?;
            // At most 128 characters of it.
            let end = v.char_indices().nth(128).map_or(v.len(), |(i, _)| i);
            return Ok(Some(v[..end].to_owned()));
        }
    }
    Ok(None)
}

fn start_field(
    name: &'static str,
    attribute: impl Fn(&[u8]) -> Result<Option<String>, ProfileError>,
    f: &mut Fields,
) -> Result<(), ProfileError> {
    match name {
        "CanonicalizationMethod" => f.canonicalization = attribute(b"Algorithm")?,
        "SignatureMethod" => f.signature_method = attribute(b"Algorithm")?,
        "Reference" => {
            f.references += 1;
            f.reference_uri = Some(attribute(b"URI")?);
        }
        "Transform" => f
            .transforms
            .push(attribute(b"Algorithm")?.unwrap_or_default()),
        "DigestMethod" => f.digest_method = attribute(b"Algorithm")?,
        _ => {}
    }
    Ok(())
}

fn end_field(
    name: &'static str,
    span: Range<usize>,
    text: &str,
    f: &mut Fields,
    signature: &mut Option<Range<usize>>,
) -> Result<(), ProfileError> {
    match name {
        "Signature" => *signature = Some(span),
        "SignedInfo" => f.signed_info = Some(span),
        "DigestValue" => f.digest_value = Some(text.to_owned()),
        "SignatureValue" => f.signature_value = Some(text.to_owned()),
        "X509IssuerName" => f.issuer_name = Some(text.to_owned()),
        "X509SerialNumber" => f.serial_number = Some(text.to_owned()),
        _ => {}
    }
    Ok(())
}

fn algorithm(field: &'static str, found: Option<String>, want: &str) -> Result<(), ProfileError> {
    match found {
        Some(f) if f == want => Ok(()),
        found => Err(ProfileError::Algorithm {
            field,
            found: found.unwrap_or_default(),
        }),
    }
}

fn finish(signature: Range<usize>, f: Fields) -> Result<SignatureElement, ProfileError> {
    let signed_info = f.signed_info.ok_or(ProfileError::Structure("SignedInfo"))?;
    algorithm("canonicalization", f.canonicalization, EXC_C14N)?;
    algorithm("signature", f.signature_method, ECDSA_SHA256)?;
    if f.references != 1 {
        return Err(ProfileError::Structure("Reference"));
    }
    if f.reference_uri != Some(Some(String::new())) {
        return Err(ProfileError::ReferenceUri);
    }
    if f.transforms.len() != 1 {
        return Err(ProfileError::Structure("Transforms"));
    }
    algorithm(
        "transform",
        f.transforms.into_iter().next(),
        ENVELOPED_SIGNATURE,
    )?;
    algorithm("digest", f.digest_method, SHA256)?;
    let digest = decode::<32>(f.digest_value.as_deref(), "DigestValue")?;
    let value = decode::<64>(f.signature_value.as_deref(), "SignatureValue")?;
    let issuer = f
        .issuer_name
        .ok_or(ProfileError::Structure("X509IssuerName"))?
        .trim()
        .parse::<DistinguishedName>()
        .map_err(|_| ProfileError::IssuerName)?;
    let serial = decimal_to_bytes(
        f.serial_number
            .as_deref()
            .ok_or(ProfileError::Structure("X509SerialNumber"))?
            .trim(),
    )
    .ok_or(ProfileError::SerialNumber)?;
    Ok(SignatureElement {
        signature,
        signed_info,
        digest,
        value,
        issuer,
        serial,
    })
}

/// Base64 with any whitespace (line breaks, `&#13;`) removed, decoded to exactly `N` bytes.
fn decode<const N: usize>(
    text: Option<&str>,
    field: &'static str,
) -> Result<[u8; N], ProfileError> {
    const { assert!(N <= 64, "the buffers below hold 64 bytes' base64") };
    let text = text.ok_or(ProfileError::Structure(field))?;
    // Without its whitespace, into a buffer on the stack: 64 bytes are 88 characters of base64,
    // and a longer text decodes to more than `N` bytes, so it is refused either way.
    let mut compact = [0u8; 128];
    let mut len = 0;
    for b in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let slot = compact.get_mut(len).ok_or(ProfileError::Encoding(field))?;
        *slot = b;
        len += 1;
    }
    let mut bytes = [0u8; 96];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(&compact[..len], &mut bytes)
        .map_err(|_| ProfileError::Encoding(field))?;
    bytes[..n]
        .try_into()
        .map_err(|_| ProfileError::Encoding(field))
}

/// A non-negative decimal integer (at most 60 digits: serials are at most 20 octets) to its
/// minimal big-endian bytes; zero is `[0]`.
pub fn decimal_to_bytes(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() > 60 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Little-endian 64-bit limbs: 10^60 < 2^200, so four hold any accepted value. Nineteen
    // digits at a time (10^19 < 2^64): value = value * 10^len + chunk.
    let mut limbs = [0u64; 4];
    for chunk in s.as_bytes().chunks(19) {
        let digits = chunk
            .iter()
            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        let scale = 10u64.pow(chunk.len() as u32);
        let mut carry = u128::from(digits);
        for limb in &mut limbs {
            let v = u128::from(*limb) * u128::from(scale) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    let mut be = [0u8; 32];
    for (i, limb) in limbs.iter().rev().enumerate() {
        be[i * 8..i * 8 + 8].copy_from_slice(&limb.to_be_bytes());
    }
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
    Some(be[first..].to_vec())
}
