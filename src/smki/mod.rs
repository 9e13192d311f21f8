//! Layer 0: certificates judged by the SMKI Organisation profile, against a [`Trust`] — the
//! configured issuing authorities (trust anchors) and the revocation lists they issued.
//!
//! A TLS client certificate ([`Trust::verify_tls_client`]) must chain to an anchor through at most
//! [`MAX_INTERMEDIATES`] intermediate CAs, each signature ecdsa-with-SHA256 under a P-256 key;
//! every certificate in the chain must be valid at the time given, carry no critical extension
//! this module does not process, and not be revoked by its issuer's CRL. The leaf must also have
//! an EC P-256 key, a key usage with `digitalSignature`, no extended key usage or one with
//! `clientAuth`, the SMKI Organisation policy ([`SMKI_ORG_POLICY`]), an SMKI identity, and a role
//! a User connects with ([`is_user_tls_role`]). The DCC's certificates mark their policy critical,
//! which is why this is ours and not webpki's (which refuses any critical extension it does not
//! know).
//!
//! Nothing here reads a file or a clock: the caller passes DER and the time.

mod crl;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::domain::SmkiRole;
use crate::identity::{identity_from_der, CertIdentity, DistinguishedName};

pub use crl::{CrlError, Revocations};

/// The SMKI Organisation certificate policy.
pub const SMKI_ORG_POLICY: &str = "1.2.826.0.1.8641679.1.2.1.4";
/// Intermediate CAs between a leaf and its anchor, at most; a longer chain is refused.
pub const MAX_INTERMEDIATES: usize = 3;
/// Certificates a peer may send beside its leaf; more are refused unread.
pub const MAX_PRESENTED: usize = 8;

const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
const ANY_EKU: &str = "2.5.29.37.0";
/// Extensions this module processes, and so may be critical: key usage, subject alternative
/// name, basic constraints, certificate policies, extended key usage.
const UNDERSTOOD: [&str; 5] = [
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.32",
    "2.5.29.37",
];

/// The SMKI roles whose certificates a User connects with: supplier (`02`), network operator
/// (`03`) and other User (`7F`). Signing roles (`87`, `89`), the DCC's own (`04`), issuing
/// authorities (`07`) and codes the profile does not define are refused.
pub const fn is_user_tls_role(role: SmkiRole) -> bool {
    matches!(
        role,
        SmkiRole::Supplier | SmkiRole::NetworkOperator | SmkiRole::Other
    )
}

/// Which roles a TLS server admits as clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clients {
    /// Users: [`is_user_tls_role`] (the gateway's DUIS port).
    Users,
    /// Any SMKI role; the server checks the role itself (a User's Receive Response Service,
    /// which admits the DCC's access-control broker).
    AnyRole,
}

impl Clients {
    pub const fn admits(self, role: SmkiRole) -> bool {
        match self {
            Self::Users => is_user_tls_role(role),
            Self::AnyRole => true,
        }
    }
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a DER X.509 certificate")]
    Malformed,
    #[error("more than {MAX_PRESENTED} certificates were presented")]
    TooManyPresented,
    #[error("no chain to a configured trust anchor")]
    UnknownIssuer,
    #[error("a certificate in the chain is expired")]
    Expired,
    #[error("a certificate in the chain is not yet valid")]
    NotValidYet,
    #[error("a certificate in the chain is revoked by its issuer's CRL")]
    Revoked,
    #[error("a certificate in the chain has a critical extension {0} that is not processed")]
    UnknownCriticalExtension(String),
    #[error("an issuer in the chain is not a CA that may sign certificates")]
    NotACa,
    #[error("the certificate is a CA's, not an end entity's")]
    LeafIsCa,
    #[error("the certificate's key is not EC P-256")]
    KeyType,
    #[error("the certificate's key usage does not allow digital signatures")]
    KeyUsage,
    #[error("the certificate's extended key usage does not allow TLS client authentication")]
    ExtendedKeyUsage,
    #[error("the certificate does not carry the SMKI Organisation policy")]
    Policy,
    #[error("the certificate has no SMKI identity")]
    NoIdentity,
    #[error("the certificate's role {0} is not one this server admits")]
    Role(SmkiRole),
}

/// An issuing authority trusted as the end of a chain: its name and P-256 key.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub subject: DistinguishedName,
    /// The subject as DER, for the hints a TLS server sends.
    pub subject_der: Vec<u8>,
    /// The subjectPublicKey bits (a SEC 1 point).
    key: Vec<u8>,
    /// The anchor certificate's own expiry (unix seconds), for the operators' dashboard.
    pub not_after: i64,
}

impl Anchor {
    /// One anchor from a DER certificate (`None` if it cannot be read).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(Self {
            subject: DistinguishedName::from_x509(cert.subject()).ok()?,
            subject_der: cert.subject().as_raw().to_vec(),
            key: cert.public_key().subject_public_key.data.to_vec(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Every certificate in PEM text that can be read, as anchors.
    pub fn from_pem(pem: &[u8]) -> Vec<Self> {
        rustls_pemfile::certs(&mut &pem[..])
            .filter_map(Result::ok)
            .filter_map(|der| Self::from_der(der.as_ref()))
            .collect()
    }

    /// Whether this anchor signed `signed` (its TBS bytes, signature algorithm and value).
    fn signed(&self, signed: &Signed<'_>) -> bool {
        signed.by(&self.key)
    }
}

/// The trust anchors and the revocation lists in force.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    anchors: Vec<Anchor>,
    revocations: Vec<Revocations>,
}

/// What a signature covers and how it was made, from a certificate or a CRL.
pub(crate) struct Signed<'a> {
    pub tbs: &'a [u8],
    pub algorithm: String,
    pub signature: &'a [u8],
}

impl Signed<'_> {
    /// Whether `key` (a P-256 point) made this ecdsa-with-SHA256 signature.
    pub(crate) fn by(&self, key: &[u8]) -> bool {
        self.algorithm == ECDSA_WITH_SHA256
            && UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
                .verify(self.tbs, self.signature)
                .is_ok()
    }
}

fn signed<'a>(cert: &'a X509Certificate<'a>) -> Signed<'a> {
    Signed {
        tbs: cert.tbs_certificate.as_ref(),
        algorithm: cert.signature_algorithm.algorithm.to_id_string(),
        signature: cert.signature_value.data.as_ref(),
    }
}

impl Trust {
    /// Trust in `anchors`, with no revocation list yet.
    pub fn new(anchors: Vec<Anchor>) -> Self {
        Self {
            anchors,
            revocations: Vec::new(),
        }
    }

    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// The revocation lists in force, one per issuer.
    pub fn revocations(&self) -> &[Revocations] {
        &self.revocations
    }

    /// Adds a CRL (DER), which must be signed by one of the anchors; it replaces an earlier one
    /// from the same issuer only if it is newer (`thisUpdate`).
    pub fn add_crl(&mut self, der: &[u8]) -> Result<(), CrlError> {
        let list = Revocations::from_der(der, &self.anchors)?;
        match self
            .revocations
            .iter_mut()
            .find(|r| r.issuer.matches(&list.issuer))
        {
            Some(held) if held.this_update >= list.this_update => {}
            Some(held) => *held = list,
            None => self.revocations.push(list),
        }
        Ok(())
    }

    /// Whether `issuer`'s CRL lists `serial` (its magnitude, big-endian).
    pub fn is_revoked(&self, issuer: &DistinguishedName, serial: &[u8]) -> bool {
        self.revocations
            .iter()
            .any(|r| r.issuer.matches(issuer) && r.lists(serial))
    }

    /// The anchor that signed `der` directly, if any (no time, profile or revocation check):
    /// what a signing-certificate store records as "chained".
    pub fn issuing_anchor(&self, der: &[u8]) -> Option<&Anchor> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let issuer = DistinguishedName::from_x509(cert.issuer()).ok()?;
        let signed = signed(&cert);
        self.anchors
            .iter()
            .find(|a| a.subject.matches(&issuer) && a.signed(&signed))
    }

    /// A TLS client certificate judged by the profile at `now` (unix seconds), with the
    /// intermediates the peer sent, for a server that admits `clients`; its identity when
    /// accepted.
    pub fn verify_tls_client(
        &self,
        leaf: &[u8],
        intermediates: &[&[u8]],
        now: i64,
        clients: Clients,
    ) -> Result<CertIdentity, Refusal> {
        if intermediates.len() > MAX_PRESENTED {
            return Err(Refusal::TooManyPresented);
        }
        let (rest, cert) = X509Certificate::from_der(leaf).map_err(|_| Refusal::Malformed)?;
        if !rest.is_empty() {
            return Err(Refusal::Malformed);
        }
        let others = intermediates
            .iter()
            .map(|der| X509Certificate::from_der(der).map(|(_, c)| c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Refusal::Malformed)?;
        check_common(&cert, now)?;
        check_leaf_profile(&cert)?;
        self.check_chain(&cert, &others, now)?;
        let identity = identity_from_der(leaf).map_err(|_| Refusal::NoIdentity)?;
        if !clients.admits(identity.role) {
            return Err(Refusal::Role(identity.role));
        }
        Ok(identity)
    }

    /// Walks from `cert` to an anchor through `others`, checking each link's signature, each
    /// issuer's CA status and validity, and each certificate's revocation.
    fn check_chain(
        &self,
        cert: &X509Certificate<'_>,
        others: &[X509Certificate<'_>],
        now: i64,
    ) -> Result<(), Refusal> {
        let mut current = cert;
        let mut used = HashSet::new();
        for _ in 0..=MAX_INTERMEDIATES {
            let issuer =
                DistinguishedName::from_x509(current.issuer()).map_err(|_| Refusal::Malformed)?;
            if self.is_revoked(&issuer, magnitude(current.raw_serial())) {
                return Err(Refusal::Revoked);
            }
            let link = signed(current);
            if self
                .anchors
                .iter()
                .any(|a| a.subject.matches(&issuer) && a.signed(&link))
            {
                return Ok(());
            }
            let next = others.iter().enumerate().find(|(i, c)| {
                !used.contains(i)
                    && DistinguishedName::from_x509(c.subject()).is_ok_and(|s| s.matches(&issuer))
                    && link.by(&c.public_key().subject_public_key.data)
            });
            let Some((i, next)) = next else {
                return Err(Refusal::UnknownIssuer);
            };
            used.insert(i);
            check_common(next, now)?;
            check_ca(next)?;
            current = next;
        }
        Err(Refusal::UnknownIssuer)
    }
}

/// What every certificate in a chain must keep: validity at `now`, and no critical extension
/// this module does not process.
fn check_common(cert: &X509Certificate<'_>, now: i64) -> Result<(), Refusal> {
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(Refusal::NotValidYet);
    }
    if now > validity.not_after.timestamp() {
        return Err(Refusal::Expired);
    }
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if ext.critical && !UNDERSTOOD.contains(&oid.as_str()) {
            return Err(Refusal::UnknownCriticalExtension(oid));
        }
        if matches!(ext.parsed_extension(), ParsedExtension::ParseError { .. }) {
            return Err(Refusal::Malformed);
        }
    }
    Ok(())
}

/// An issuer: basic constraints saying CA, and `keyCertSign` if it has a key usage.
fn check_ca(cert: &X509Certificate<'_>) -> Result<(), Refusal> {
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    let may_sign = cert
        .key_usage()
        .ok()
        .flatten()
        .is_none_or(|ku| ku.value.key_cert_sign());
    if is_ca && may_sign {
        Ok(())
    } else {
        Err(Refusal::NotACa)
    }
}

/// The leaf's own profile: P-256 key, `digitalSignature`, `clientAuth` if it limits its
/// purposes, the SMKI Organisation policy, and not a CA.
fn check_leaf_profile(cert: &X509Certificate<'_>) -> Result<(), Refusal> {
    let spki = cert.public_key();
    let p256 = spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|curve| curve == OID_EC_P256);
    if !p256 {
        return Err(Refusal::KeyType);
    }
    let key_usage = cert.key_usage().map_err(|_| Refusal::Malformed)?;
    if !key_usage.is_some_and(|ku| ku.value.digital_signature()) {
        return Err(Refusal::KeyUsage);
    }
    let eku = cert.extended_key_usage().map_err(|_| Refusal::Malformed)?;
    if let Some(eku) = eku {
        let allowed = eku.value.client_auth
            || eku.value.any
            || eku.value.other.iter().any(|o| {
                let o = o.to_id_string();
                o == CLIENT_AUTH || o == ANY_EKU
            });
        if !allowed {
            return Err(Refusal::ExtendedKeyUsage);
        }
    }
    let has_policy = cert
        .extensions()
        .iter()
        .any(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => policies
                .iter()
                .any(|p| p.policy_id.to_id_string() == SMKI_ORG_POLICY),
            _ => false,
        });
    if !has_policy {
        return Err(Refusal::Policy);
    }
    if cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(Refusal::LeafIsCa);
    }
    Ok(())
}

/// A serial number's magnitude: no leading zero octets.
pub fn magnitude(serial: &[u8]) -> &[u8] {
    let first = serial
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    &serial[first..]
}
