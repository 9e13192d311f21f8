//! The DUIS signature profile: an enveloped signature over the whole document, exclusive
//! canonicalisation of `SignedInfo`, SHA-256, ECDSA P-256, and `KeyInfo` naming the certificate
//! by issuer and serial. [`Collector`] checks a document's one `ds:Signature` against it as a
//! reader reports the elements, and reads its fields into typed values. Anything outside the
//! profile — another algorithm, a second reference, a transform more or less, key information
//! other than an issuer and serial — is refused.

use std::ops::Range;

use base64::Engine as _;

use crate::identity::DistinguishedName;

pub const DS_NAMESPACE: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// The most bytes of base64 or text a signature field may hold (a serial is at most 20 octets,
/// an issuer name a few hundred bytes); more is refused, not read.
const MAX_FIELD_BYTES: usize = 4096;
/// The most characters of an attribute value kept (the profile's URIs are under 60); a longer
/// one is cut there, and so differs from the profile's value.
pub(super) const MAX_ATTRIBUTE_CHARS: usize = 128;

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
    #[error("the document nests deeper than the limit")]
    TooDeep,
    #[error("the signature's {0} is missing, repeated or out of order")]
    Structure(&'static str),
    #[error("the signature uses {field} algorithm {found}, not the profile's")]
    Algorithm {
        field: &'static str,
        /// At most 128 characters of what the document named.
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

/// What the signature says, as read so far.
#[derive(Default)]
struct Fields {
    signed_info: Option<Range<usize>>,
    canonicalization: Option<String>,
    signature_method: Option<String>,
    references: usize,
    reference_uri: Option<Option<String>>,
    /// How many `Transform`s, and the first one's algorithm (the profile allows exactly one).
    transforms: usize,
    transform: Option<String>,
    digest_method: Option<String>,
    digest_value: Option<String>,
    signature_value: Option<String>,
    issuer_name: Option<String>,
    serial_number: Option<String>,
}

/// The children each profile element has, in this order; only `Transform` may repeat (and
/// [`finish`] allows exactly one). Any other element inside `ds:Signature` is refused.
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

/// The profile checks on a stream of elements, whichever reader reports them: where the
/// signature is, which `ds:` elements it holds in which order, and their fields. The reader
/// shows it every element inside the signature, every child of the root, and every other
/// element named `Signature`; the rest cannot change what it decides.
#[derive(Default)]
pub(super) struct Collector {
    /// The `ds:` path inside the signature: (local name, start offset, children seen in order).
    inside: Vec<(&'static str, usize, usize)>,
    signature: Option<Range<usize>>,
    root_child_after_signature: bool,
    misplaced: bool,
    fields: Fields,
    /// The character data of the innermost profile element so far.
    text: String,
    /// More character data came than [`MAX_FIELD_BYTES`]; the rest was not kept.
    text_over: bool,
}

impl Collector {
    /// An element starts at `before`, at `depth` (the root is 1); `attribute` gives the value
    /// of one of its unprefixed attributes (at most [`MAX_ATTRIBUTE_CHARS`] of it).
    pub(super) fn start(
        &mut self,
        depth: usize,
        is_ds: bool,
        local: &[u8],
        before: usize,
        attribute: impl Fn(&[u8]) -> Result<Option<String>, ProfileError>,
    ) -> Result<(), ProfileError> {
        self.check_text()?;
        if depth == 2 && self.signature.is_some() {
            self.root_child_after_signature = true;
        }
        if is_ds && local == b"Signature" && self.inside.is_empty() {
            if self.signature.is_some() {
                return Err(ProfileError::Multiple);
            }
            if depth != 2 {
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

    /// Whether the signature is open: the reader shows it every element and all character data
    /// until it closes.
    pub(super) fn inside(&self) -> bool {
        !self.inside.is_empty()
    }

    /// Character data inside the signature, as the reader decodes it (references replaced,
    /// line ends normalised). Past [`MAX_FIELD_BYTES`] it is not kept, and the element is
    /// refused at its next tag.
    pub(super) fn push_text(&mut self, t: &str) {
        if self.text.len() + t.len() > MAX_FIELD_BYTES {
            self.text_over = true;
        } else {
            self.text.push_str(t);
        }
    }

    /// One character of character data, as [`Collector::push_text`].
    pub(super) fn push_char(&mut self, c: char) {
        if self.text.len() + c.len_utf8() > MAX_FIELD_BYTES {
            self.text_over = true;
        } else {
            self.text.push(c);
        }
    }

    fn check_text(&self) -> Result<(), ProfileError> {
        match self.inside.last() {
            Some((name, _, _)) if self.text_over => Err(ProfileError::Structure(name)),
            _ => Ok(()),
        }
    }

    /// The innermost open element inside the signature ends at `end`.
    pub(super) fn end(&mut self, end: usize) -> Result<(), ProfileError> {
        self.check_text()?;
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
        "Transform" => {
            f.transforms += 1;
            if f.transform.is_none() {
                f.transform = Some(attribute(b"Algorithm")?.unwrap_or_default());
            }
        }
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
    if f.transforms != 1 {
        return Err(ProfileError::Structure("Transforms"));
    }
    algorithm("transform", f.transform, ENVELOPED_SIGNATURE)?;
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
