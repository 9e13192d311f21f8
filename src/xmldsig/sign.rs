//! Signing a document under the profile: the signature goes in as the root element's last child,
//! with `KeyInfo` naming the certificate by issuer and serial. The ECDSA operation itself is the
//! caller's ([`SignBytes`]), so that keys and randomness stay in the layer that owns them.

use base64::Engine as _;

use super::c14n::{self, canonicalize, C14nError, C14nLimits, C14nMode};
use super::profile::{DS_NAMESPACE, ECDSA_SHA256, ENVELOPED_SIGNATURE, EXC_C14N, SHA256};
use super::verify::sha256;

/// An ECDSA P-256 key that signs bytes, and the certificate `KeyInfo` names.
pub trait SignBytes {
    /// The raw `r‖s` signature over `message` (SHA-256 inside).
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError>;
    /// The certificate issuer's distinguished name as `X509IssuerName` carries it.
    fn issuer_name(&self) -> &str;
    /// The certificate serial number in decimal.
    fn serial_decimal(&self) -> &str;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the document has no root element end tag to sign before")]
    NoRoot,
    #[error("the document cannot be canonicalised")]
    Canonicalisation(#[from] C14nError),
    #[error("the key refused to sign")]
    Key,
}

/// Signs `doc` (which must have no signature yet) and returns it with `ds:Signature` inserted
/// just before the root element's end tag.
pub fn sign_document(
    doc: &str,
    key: &dyn SignBytes,
    limits: &C14nLimits,
) -> Result<String, SignError> {
    let insert_at = root_end_tag(doc).ok_or(SignError::NoRoot)?;
    let mut buf = Vec::with_capacity(doc.len());
    // The signature will sit exactly at `insert_at`: removing it again (the enveloped transform)
    // gives back `doc` byte for byte, so the digest is over `doc` as it is.
    canonicalize(
        doc.as_bytes(),
        None,
        None,
        C14nMode::Inclusive,
        limits,
        &mut buf,
    )?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let digest = b64.encode(sha256(&buf));
    let signed_info = format!(
        r#"<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{ECDSA_SHA256}"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="{ENVELOPED_SIGNATURE}"/></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"#
    );
    let open = format!(r#"<ds:Signature xmlns:ds="{DS_NAMESPACE}">"#);
    // Canonicalise SignedInfo where it will stand, so inherited namespaces are as a verifier sees.
    let mut draft = String::with_capacity(doc.len() + 1024);
    draft.push_str(&doc[..insert_at]);
    draft.push_str(&open);
    let si_start = draft.len();
    draft.push_str(&signed_info);
    let si_end = draft.len();
    draft.push_str("</ds:Signature>");
    draft.push_str(&doc[insert_at..]);
    buf.clear();
    canonicalize(
        draft.as_bytes(),
        Some(si_start..si_end),
        None,
        C14nMode::Exclusive,
        limits,
        &mut buf,
    )?;
    let value = b64.encode(key.sign(&buf)?);

    let mut out = String::with_capacity(draft.len() + 512);
    out.push_str(&doc[..insert_at]);
    out.push_str(&open);
    out.push_str(&signed_info);
    out.push_str("<ds:SignatureValue>");
    out.push_str(&value);
    out.push_str(
        "</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>",
    );
    out.push_str(&escape(key.issuer_name()));
    out.push_str("</ds:X509IssuerName><ds:X509SerialNumber>");
    out.push_str(key.serial_decimal());
    out.push_str(
        "</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature>",
    );
    out.push_str(&doc[insert_at..]);
    Ok(out)
}

/// `doc` without its signature (the root's last element child, when it is a `ds:Signature`),
/// for re-signing a template whose signature is a placeholder: only the element's place is
/// read, not its content. A document without one is returned as it is.
pub fn strip_signature(doc: &str, limits: &C14nLimits) -> Result<String, C14nError> {
    let root = c14n::root(doc.as_bytes(), limits)?;
    let last = c14n::children(doc.as_bytes(), root.span, limits)?.pop();
    Ok(match last {
        Some(e) if e.namespace == DS_NAMESPACE && e.local == "Signature" => {
            format!("{}{}", &doc[..e.span.start], &doc[e.span.end..])
        }
        _ => doc.to_owned(),
    })
}

/// The offset of the root element's end tag: the last `</` in the document, when only
/// whitespace follows its `>`.
fn root_end_tag(doc: &str) -> Option<usize> {
    let trimmed = doc.trim_end();
    if !trimmed.ends_with('>') {
        return None;
    }
    let at = trimmed.rfind("</")?;
    trimmed[at..].contains('>').then_some(at)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
