//! The `TBSCertificate` of the SMKI Organisation profile, assembled from `x509-cert`'s types and
//! signed with a P-256 key (ecdsa-with-SHA256).

use std::net::IpAddr;

use der::asn1::{Any, BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString};
use der::asn1::{SetOfVec, UtcTime};
use der::{Encode, Tag};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use rand_core::{OsRng, RngCore};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::certpolicy::{CertificatePolicies, PolicyInformation};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity as X509Validity};

use super::{PkiError, Usage, Validity, SMKI_ORG_POLICY};
use crate::domain::{Eui64, SmkiRole};

const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const OID_X500_UNIQUE_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.45");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const OID_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");

/// The kind of certificate being made: it decides the extensions.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// An issuing authority: `keyCertSign`, `cRLSign`, basic constraints CA.
    Ca,
    Leaf(Usage),
}

/// The subject `[CN=name,] OU=<role>, [x500UniqueIdentifier=<EUI-64>]`, in that order (the order
/// of the DCC's own certificates), strings as UTF8String.
pub(super) fn subject(
    common_name: Option<&str>,
    role: SmkiRole,
    user_id: Option<Eui64>,
) -> Result<Name, PkiError> {
    let mut rdns = Vec::with_capacity(3);
    if let Some(cn) = common_name {
        rdns.push(rdn(OID_CN, Any::new(Tag::Utf8String, cn.as_bytes())?)?);
    }
    let ou = role.to_string();
    rdns.push(rdn(OID_OU, Any::new(Tag::Utf8String, ou.as_bytes())?)?);
    if let Some(id) = user_id {
        // BIT STRING content: no unused bits, then the eight octets.
        let mut bits = Vec::with_capacity(9);
        bits.push(0);
        bits.extend_from_slice(id.as_bytes());
        rdns.push(rdn(OID_X500_UNIQUE_ID, Any::new(Tag::BitString, bits)?)?);
    }
    Ok(RdnSequence(rdns))
}

/// The issuing authority's name `OU=07, CN=<cn>`, in the order of the DCC's own (`Z1`), so that
/// its RFC 4514 form, as XMLDSig's `X509IssuerName` writes it, reads `CN=<cn>,OU=07` like theirs.
pub(super) fn ca_subject(cn: &str) -> Result<Name, PkiError> {
    let ou = SmkiRole::IssuingAuthority.to_string();
    Ok(RdnSequence(vec![
        rdn(OID_OU, Any::new(Tag::Utf8String, ou.as_bytes())?)?,
        rdn(OID_CN, Any::new(Tag::Utf8String, cn.as_bytes())?)?,
    ]))
}

fn rdn(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, PkiError> {
    let mut set = SetOfVec::new();
    set.insert(AttributeTypeAndValue { oid, value })?;
    Ok(RelativeDistinguishedName(set))
}

/// Everything that varies between certificates.
pub(super) struct TbsParts<'a> {
    pub kind: Kind,
    pub subject: Name,
    pub subject_key: &'a p256::ecdsa::VerifyingKey,
    pub issuer: Name,
    pub issuer_key: &'a p256::ecdsa::VerifyingKey,
    pub validity: Validity,
    pub dns_names: &'a [String],
    pub ip_addresses: &'a [IpAddr],
}

/// Builds the certificate and signs it with `signer` (the issuer's key).
pub(super) fn make_certificate(
    parts: TbsParts<'_>,
    signer: &SigningKey,
) -> Result<Certificate, PkiError> {
    let spki = SubjectPublicKeyInfoOwned::from_key(*parts.subject_key)?;
    let issuer_spki = SubjectPublicKeyInfoOwned::from_key(*parts.issuer_key)?;
    let algorithm = ecdsa_sha256();
    let extensions = extensions(&parts, &spki, &issuer_spki)?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial()?,
        signature: algorithm.clone(),
        issuer: parts.issuer,
        validity: x509_validity(parts.validity)?,
        subject: parts.subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signature: DerSignature = signer.sign(&tbs.to_der()?);
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.as_bytes())?,
    })
}

/// ecdsa-with-SHA256, without parameters.
pub(super) fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    }
}

/// Sixteen random octets, positive (top bit clear) and never zero.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7F) | 0x01;
    Ok(SerialNumber::new(&bytes)?)
}

fn x509_validity(v: Validity) -> Result<X509Validity, PkiError> {
    // Compared in whole seconds, as the certificate will carry them.
    if v.not_before.unix_timestamp() >= v.not_after.unix_timestamp() {
        return Err(PkiError::EmptyValidity {
            not_before: v.not_before,
            not_after: v.not_after,
        });
    }
    Ok(X509Validity {
        not_before: x509_time(v.not_before)?,
        not_after: x509_time(v.not_after)?,
    })
}

/// RFC 5280 §4.1.2.5: UTCTime up to 2049, GeneralizedTime from 2050.
pub(super) fn x509_time(t: time::OffsetDateTime) -> Result<Time, PkiError> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| PkiError::TimeOutOfRange(t))?;
    let since_epoch = std::time::Duration::from_secs(secs);
    let encoded = if t.year() < 2050 {
        UtcTime::from_unix_duration(since_epoch).map(Time::UtcTime)
    } else {
        GeneralizedTime::from_unix_duration(since_epoch).map(Time::GeneralTime)
    };
    encoded.map_err(|_| PkiError::TimeOutOfRange(t))
}

/// The extensions, in the order the DCC's certificates carry them.
fn extensions(
    parts: &TbsParts<'_>,
    spki: &SubjectPublicKeyInfoOwned,
    issuer_spki: &SubjectPublicKeyInfoOwned,
) -> Result<Vec<Extension>, PkiError> {
    let mut out = Vec::with_capacity(7);
    let key_usage = match parts.kind {
        Kind::Ca => KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        Kind::Leaf(_) => KeyUsages::DigitalSignature.into(),
    };
    out.push(extension(KeyUsage(key_usage), true)?);
    out.push(extension(SubjectKeyIdentifier(key_id(spki)?), false)?);
    // The DCC marks its policy critical. rustls' webpki refuses any critical extension it does
    // not know, policies included, so TLS certificates carry it non-critical; the CA (only ever a
    // trust anchor, whose extensions webpki does not judge) and XML-signing certificates keep the
    // DCC's form.
    let policy_critical = !matches!(parts.kind, Kind::Leaf(Usage::TlsServer | Usage::TlsClient));
    let policies = CertificatePolicies(vec![PolicyInformation {
        policy_identifier: ObjectIdentifier::new_unwrap(SMKI_ORG_POLICY),
        policy_qualifiers: None,
    }]);
    out.push(extension(policies, policy_critical)?);
    if !matches!(parts.kind, Kind::Ca) || parts.issuer != parts.subject {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(key_id(issuer_spki)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        out.push(extension(aki, false)?);
    }
    let basic = BasicConstraints {
        ca: matches!(parts.kind, Kind::Ca),
        path_len_constraint: None,
    };
    out.push(extension(basic, true)?);
    let eku = match parts.kind {
        Kind::Leaf(Usage::TlsServer) => Some(OID_SERVER_AUTH),
        Kind::Leaf(Usage::TlsClient) => Some(OID_CLIENT_AUTH),
        Kind::Leaf(Usage::XmlSigning | Usage::DigitalSigning) | Kind::Ca => None,
    };
    if let Some(oid) = eku {
        out.push(extension(ExtendedKeyUsage(vec![oid]), false)?);
    }
    let names = alt_names(parts.dns_names, parts.ip_addresses)?;
    if !names.is_empty() {
        out.push(extension(SubjectAltName(names), false)?);
    }
    Ok(out)
}

fn extension<E: Encode + der::oid::AssociatedOid>(
    value: E,
    critical: bool,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: E::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// RFC 5280 §4.2.1.2 method 1: the SHA-1 of the subjectPublicKey bits.
fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString, PkiError> {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        spki.subject_public_key.raw_bytes(),
    );
    Ok(OctetString::new(digest.as_ref())?)
}

fn alt_names(dns: &[String], ips: &[IpAddr]) -> Result<Vec<GeneralName>, PkiError> {
    let mut out = Vec::with_capacity(dns.len() + ips.len());
    for name in dns {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*');
        if !valid {
            return Err(PkiError::DnsName(name.clone()));
        }
        let ia5 = Ia5String::new(name).map_err(|_| PkiError::DnsName(name.clone()))?;
        out.push(GeneralName::DnsName(ia5));
    }
    for ip in ips {
        let octets = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        out.push(GeneralName::IpAddress(OctetString::new(octets)?));
    }
    Ok(out)
}
