//! Reading a document's signature, the one way the gateway and `dccgw verify` both do it: one
//! walk of the canonicaliser's reader that, as it goes,
//! - writes the inclusive canonical form of the document without its signature (what the
//!   enveloped-signature transform leaves) and hashes it as it is written;
//! - shows the profile's [`Collector`] every element that decides where the signature is and
//!   what it holds, with the character data inside the signature;
//! - writes the exclusive canonical form of `SignedInfo` where it stands, with the namespaces
//!   in scope there.
//!
//! That is everything verification does but the ECDSA operation, which needs the key of the
//! certificate the signature names: [`prepare`] reads, [`Prepared::verify`] finishes.

use ring::digest::{Context, SHA256 as RING_SHA256};

use super::c14n::{
    decode_attr, walk, C14nError, C14nLimits, C14nMode, Canonicalizer, Region, Sink, StartTag,
    TextOut, Visitor,
};
use super::profile::{
    Collector, ProfileError, SignatureElement, DS_NAMESPACE, MAX_ATTRIBUTE_CHARS,
};
use super::verify::{ecdsa_p256, VerifyError};

#[cfg(test)]
mod tests;

/// A signature read and checked up to the ECDSA operation: the caller looks the certificate up
/// by the fields read, checks it, then calls [`Prepared::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub signature: SignatureElement,
    /// The canonical `SignedInfo`: the bytes the signature value signs.
    signed_info: Vec<u8>,
    /// The digest of the document without its signature is the signed `DigestValue`.
    digest_matches: bool,
}

impl Prepared {
    /// The bytes the signature value must sign, or [`VerifyError::Digest`] when the document is
    /// not the one whose digest was signed.
    pub fn signed_bytes(&self) -> Result<&[u8], VerifyError> {
        if self.digest_matches {
            Ok(&self.signed_info)
        } else {
            Err(VerifyError::Digest)
        }
    }

    /// The verification's result with the public key (an uncompressed P-256 point) of the
    /// certificate the signature names: the digest first, then the signature value.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), VerifyError> {
        ecdsa_p256(self.signed_bytes()?, &self.signature.value, public_key)
    }
}

/// Reads `doc`'s signature — the one `ds:Signature`, the root element's last element child —
/// and does everything verification does before the ECDSA operation, within `limits`. Refuses
/// a document the reader refuses (not well-formed, a DOCTYPE, a bound hit) or a signature
/// outside the profile; a digest that does not match waits in [`Prepared::verify`], so that a
/// caller can check the signer first.
pub fn prepare(doc: &[u8], limits: &C14nLimits) -> Result<Prepared, ProfileError> {
    let mut document = Vec::with_capacity(doc.len().min(FLUSH_AT) + 256);
    let mut signed_info = Vec::with_capacity(1024);
    let (signature, digest) = {
        let mut pass = OnePass {
            document: Canonicalizer::new(
                &mut document,
                Region::Document,
                None,
                C14nMode::Inclusive,
            ),
            hash: Context::new(&RING_SHA256),
            signed_info: Canonicalizer::new(
                &mut signed_info,
                Region::FirstElement,
                None,
                C14nMode::Exclusive,
            ),
            in_signed_info: false,
            signed_info_seen: false,
            profile: Collector::default(),
            refusal: None,
        };
        let walked = walk(doc, limits, &mut pass);
        if let Some(refusal) = pass.refusal {
            return Err(refusal);
        }
        walked.map_err(refused)?;
        let signature = pass.profile.finish()?;
        // Found: the profile has just accepted a signature whose first child is `SignedInfo`.
        pass.signed_info
            .finish()
            .map_err(|_| ProfileError::Structure("SignedInfo"))?;
        pass.document.finish().map_err(refused)?;
        pass.hash.update(pass.document.output());
        (signature, pass.hash.finish())
    };
    Ok(Prepared {
        digest_matches: digest.as_ref() == signature.digest,
        signature,
        signed_info,
    })
}

/// What the reader's refusal means for the signature: a construct the profile forbids, too
/// deep, or not XML the signature can be read from.
fn refused(e: C14nError) -> ProfileError {
    match e {
        C14nError::Doctype { .. }
        | C14nError::ProcessingInstruction { .. }
        | C14nError::EntityReference { .. } => ProfileError::Forbidden,
        C14nError::TooDeep { .. } => ProfileError::TooDeep,
        other => ProfileError::Malformed(other.position()),
    }
}

/// Canonical output is hashed and the buffer cleared whenever it holds this much, so a large
/// document needs no buffer of its own size.
const FLUSH_AT: usize = 4096;

/// The depth of the signature: the root's child.
const SIGNATURE_DEPTH: usize = 2;

/// The walk's one visitor, showing each event to the parts that want it.
struct OnePass<'a, 'o> {
    /// Inclusive c14n of the whole document, shown everything outside the signature.
    document: Canonicalizer<'a, 'o>,
    hash: Context,
    /// Exclusive c14n of `SignedInfo`, shown its events only.
    signed_info: Canonicalizer<'a, 'o>,
    /// `SignedInfo` is open.
    in_signed_info: bool,
    /// `SignedInfo` has started (it is the signature's first child).
    signed_info_seen: bool,
    profile: Collector,
    /// Why the profile stopped the walk.
    refusal: Option<ProfileError>,
}

impl OnePass<'_, '_> {
    fn flush(&mut self) {
        let out = self.document.output();
        if out.len() >= FLUSH_AT {
            self.hash.update(out);
            out.clear();
        }
    }

    /// Stops the walk when the profile refuses, keeping why.
    fn stop(&mut self, r: Result<(), ProfileError>, position: usize) -> Result<(), C14nError> {
        r.map_err(|e| {
            self.refusal = Some(e);
            C14nError::SpanNotAnElement {
                span: position..position,
            }
        })
    }

    /// Shows the profile a start tag.
    fn profile_start(&mut self, tag: &StartTag<'_, '_>) -> Result<(), ProfileError> {
        let is_ds = tag.uri(tag.ns) == DS_NAMESPACE;
        let attrs = tag.attrs;
        let attribute = |name: &[u8]| {
            let Some(a) = attrs.iter().find(|a| a.qname.as_bytes() == name) else {
                return Ok(None);
            };
            // Decoded whole (it is no longer than the document), then cut.
            let mut value = String::with_capacity(a.raw.len());
            decode_attr(a.raw, a.value_position, &mut value)
                .map_err(|_| ProfileError::Malformed(a.value_position))?;
            let end = value
                .char_indices()
                .nth(MAX_ATTRIBUTE_CHARS)
                .map_or(value.len(), |(i, _)| i);
            value.truncate(end);
            Ok(Some(value))
        };
        self.profile
            .start(tag.depth, is_ds, tag.local.as_bytes(), tag.start, attribute)
    }
}

impl<'a> Visitor<'a> for OnePass<'a, '_> {
    type Text<'s>
        = OnePassText<'s>
    where
        Self: 's;

    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError> {
        // The profile decides on the signature's content, the root's children (the signature
        // must be the last) and anything else named `Signature` (there must be one only).
        if self.profile.inside() || tag.depth == SIGNATURE_DEPTH || tag.local == "Signature" {
            let r = self.profile_start(tag);
            self.stop(r, tag.start)?;
        }
        if !self.profile.inside() {
            self.document.start(tag)?;
            self.flush();
            return Ok(());
        }
        // Inside the signature (or at its start tag): left out of the document's form.
        if tag.depth == SIGNATURE_DEPTH + 1 && !self.signed_info_seen {
            self.signed_info_seen = true;
            self.in_signed_info = true;
        }
        if self.in_signed_info {
            self.signed_info.start(tag)?;
        }
        Ok(())
    }

    fn text(&mut self) -> Option<OnePassText<'_>> {
        if !self.profile.inside() {
            return self.document.text().map(OnePassText::Document);
        }
        let info = if self.in_signed_info {
            self.signed_info.text()
        } else {
            None
        };
        Some(OnePassText::Signature(info, &mut self.profile))
    }

    fn end(
        &mut self,
        qname: &'a str,
        span: std::ops::Range<usize>,
        depth: usize,
    ) -> Result<(), C14nError> {
        if !self.profile.inside() {
            self.document.end(qname, span, depth)?;
            self.flush();
            return Ok(());
        }
        if self.in_signed_info {
            self.signed_info.end(qname, span.clone(), depth)?;
            self.in_signed_info = depth != SIGNATURE_DEPTH + 1;
        }
        let r = self.profile.end(span.end);
        self.stop(r, span.end)
    }
}

/// Where character data goes: outside the signature to the document's canonical form only;
/// inside it to the profile and, within `SignedInfo`, to its canonical form.
enum OnePassText<'s> {
    Document(TextOut<'s>),
    Signature(Option<TextOut<'s>>, &'s mut Collector),
}

impl Sink for OnePassText<'_> {
    fn run(&mut self, s: &str) {
        match self {
            Self::Document(out) => out.run(s),
            Self::Signature(info, profile) => {
                if let Some(info) = info {
                    info.run(s);
                }
                profile.push_text(s);
            }
        }
    }

    fn ch(&mut self, c: char) {
        match self {
            Self::Document(out) => out.ch(c),
            Self::Signature(info, profile) => {
                if let Some(info) = info {
                    info.ch(c);
                }
                profile.push_char(c);
            }
        }
    }
}
