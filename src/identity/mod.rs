//! Layer 0: the identity a certificate proves, read from its DER (SMKI Organisation profile).
//! The subject's `x500UniqueIdentifier` (a BIT STRING holding the eight octets of the User ID),
//! the subject `OU` (the SMKI role code), the optional CN, the issuer as a structured name,
//! serial number, validity and whether the key is EC P-256.
//!
//! A certificate proves a User ID, not a User Role: the party register maps one to the other.
//! Nothing here checks a signature or a chain; the TLS layer and the XML verifier do that.

mod dn;

#[cfg(test)]
mod tests;

use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_X509_COMMON_NAME, OID_X509_UNIQUE_IDENTIFIER,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::domain::{Eui64, SmkiRole};

pub use dn::{DistinguishedName, DnAttribute, DnError, DnValue};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("not a DER X.509 certificate")]
    NotACertificate,
    #[error("no PEM CERTIFICATE block")]
    NoPemCertificate,
    #[error("the subject has no x500UniqueIdentifier (User ID)")]
    NoUserId,
    #[error("the subject has more than one x500UniqueIdentifier")]
    MultipleUserIds,
    #[error("the x500UniqueIdentifier is not a BIT STRING of whole octets")]
    UserIdEncoding,
    #[error("the x500UniqueIdentifier holds {0} octets, not 8")]
    UserIdNotEightBytes(usize),
    #[error("the subject has no OU (SMKI role code)")]
    NoRole,
    #[error("the subject has more than one OU")]
    MultipleRoles,
    #[error("the subject OU {0:?} is not an SMKI role code")]
    RoleSyntax(String),
    #[error("the serial number is negative")]
    NegativeSerial,
    #[error("the certificate's {0} name cannot be read")]
    Name(&'static str, #[source] DnError),
}

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub user_id: Eui64,
    pub role: SmkiRole,
    pub common_name: Option<String>,
    pub subject: DistinguishedName,
    pub issuer: DistinguishedName,
    /// The serial number's magnitude, big-endian, without leading zero octets.
    pub serial: Vec<u8>,
    /// The serial number in decimal, as XMLDSig's `X509SerialNumber` writes it.
    pub serial_decimal: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The key is `id-ecPublicKey` on `prime256v1` (P-256).
    pub key_is_p256: bool,
    /// The subjectPublicKey bits (for P-256, the SEC 1 point).
    pub public_key: Vec<u8>,
}

impl CertIdentity {
    /// Whether `now` is within `not_before ..= not_after`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// Reads the identity from one DER certificate (nothing may follow it).
pub fn identity_from_der(der: &[u8]) -> Result<CertIdentity, IdentityError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|_| IdentityError::NotACertificate)?;
    if !rest.is_empty() {
        return Err(IdentityError::NotACertificate);
    }
    let subject = cert.subject();
    let (serial, serial_decimal) = serial(cert.raw_serial())?;
    let spki = cert.public_key();
    let key_is_p256 = spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|curve| curve == OID_EC_P256);
    Ok(CertIdentity {
        user_id: user_id(subject)?,
        role: role(subject)?,
        common_name: common_name(subject),
        subject: DistinguishedName::from_x509(subject)
            .map_err(|e| IdentityError::Name("subject", e))?,
        issuer: DistinguishedName::from_x509(cert.issuer())
            .map_err(|e| IdentityError::Name("issuer", e))?,
        serial,
        serial_decimal,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        key_is_p256,
        public_key: spki.subject_public_key.data.to_vec(),
    })
}

/// Reads the identity from the first `CERTIFICATE` block of a PEM file (other blocks, such as
/// a key in a `client.pem` bundle, are skipped).
pub fn identity_from_pem(pem: &[u8]) -> Result<CertIdentity, IdentityError> {
    let mut reader = pem;
    let first = rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or(IdentityError::NoPemCertificate)?
        .map_err(|_| IdentityError::NoPemCertificate)?;
    identity_from_der(first.as_ref())
}

fn only_one<T>(
    mut it: impl Iterator<Item = T>,
    none: IdentityError,
    many: IdentityError,
) -> Result<T, IdentityError> {
    let first = it.next().ok_or(none)?;
    match it.next() {
        Some(_) => Err(many),
        None => Ok(first),
    }
}

fn user_id(subject: &X509Name<'_>) -> Result<Eui64, IdentityError> {
    let oid: &Oid<'_> = &OID_X509_UNIQUE_IDENTIFIER;
    let attr = only_one(
        subject.iter_by_oid(oid),
        IdentityError::NoUserId,
        IdentityError::MultipleUserIds,
    )?;
    let value = attr.attr_value();
    if value.tag() != Tag::BitString {
        return Err(IdentityError::UserIdEncoding);
    }
    // BIT STRING content: the count of unused bits, then the octets.
    let (unused, octets) = value
        .data
        .split_first()
        .ok_or(IdentityError::UserIdEncoding)?;
    if *unused != 0 {
        return Err(IdentityError::UserIdEncoding);
    }
    let bytes: [u8; 8] = octets
        .try_into()
        .map_err(|_| IdentityError::UserIdNotEightBytes(octets.len()))?;
    Ok(Eui64::from_bytes(bytes))
}

fn role(subject: &X509Name<'_>) -> Result<SmkiRole, IdentityError> {
    let attr = only_one(
        subject.iter_organizational_unit(),
        IdentityError::NoRole,
        IdentityError::MultipleRoles,
    )?;
    let text = attr.as_str().map_err(|_| {
        IdentityError::RoleSyntax(String::from_utf8_lossy(attr.as_slice()).into_owned())
    })?;
    parse_role(text).ok_or_else(|| IdentityError::RoleSyntax(text.to_owned()))
}

/// Two hex digits (`02`, `7F`, `87`); or the three decimal digits of a code from `0x64` up,
/// the form the DCC's pre-1.4.1 tooling wrote (`OU=137` is `89`: see the anchor
/// `dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem`). Three digits cannot be mistaken for the
/// two-hex-digit form, so the two readings never collide.
fn parse_role(text: &str) -> Option<SmkiRole> {
    if let Ok(role) = text.parse::<SmkiRole>() {
        return Some(role);
    }
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0') {
        return text.parse::<u8>().ok().map(SmkiRole::from_code);
    }
    None
}

fn common_name(subject: &X509Name<'_>) -> Option<String> {
    // The CN is informational (the User ID is the identity): the first one readable as text.
    let oid: &Oid<'_> = &OID_X509_COMMON_NAME;
    subject
        .iter_by_oid(oid)
        .find_map(|attr| attr.as_str().ok())
        .map(str::to_owned)
}

/// The serial's magnitude (leading zero octets stripped) and its decimal form.
fn serial(raw: &[u8]) -> Result<(Vec<u8>, String), IdentityError> {
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(IdentityError::NegativeSerial);
    }
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let magnitude = raw[start..].to_vec();
    Ok((magnitude.clone(), to_decimal(&magnitude)))
}

/// A big-endian unsigned integer in decimal, by repeated division by 10.
fn to_decimal(be: &[u8]) -> String {
    let mut digits = Vec::new();
    let mut n = be.to_vec();
    while n.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            // cur < 10 * 256, so cur / 10 fits in a byte.
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        return "0".to_owned();
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}
