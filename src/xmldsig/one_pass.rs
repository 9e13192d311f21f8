//! Everything a verification does but the ECDSA operation, in one walk of the document: the
//! inclusive canonical form of the document without its signature, hashed as it is written; the
//! signature's fields, read by the profile's [`Collector`](super::profile); and `SignedInfo`'s
//! exclusive canonical form. The multi-pass path — [`read_signature_at`], then
//! [`signed_bytes`] — walks the signature three times and the document twice.
//!
//! The one pass shows the profile reader exactly the events the multi-pass reader sees in its
//! small document (the root's start and end tags and the signature element), so it reads the
//! same fields; and the signature is the root's child, so `SignedInfo` has the same namespaces
//! in scope as in that reader's even smaller document. It walks within the tighter of the
//! caller's limits and the reader's, so anything it accepts both multi-pass walks accept.
//! Whenever it stops for any reason, [`prepare_at`] takes the multi-pass path, so every refusal
//! is exactly the one that path gives (both paths are tested to agree on every public sample and
//! on random edits of signed requests).

use std::ops::Range;

use ring::digest::{Context, SHA256 as RING_SHA256};

use super::c14n::{
    walk, C14nError, C14nLimits, C14nMode, Canonicalizer, Region, Sink, StartTag, TextOut, Visitor,
};
use super::profile::{read_signature_at, ProfileError, SignatureElement};
use super::read_at::{self, FieldText, ProfileVisitor};
use super::verify::{ecdsa_p256, signed_bytes, VerifyError};

#[cfg(test)]
mod tests;

/// A signature read and checked up to the ECDSA operation, which needs the signer's key: the
/// caller looks the certificate up by the fields read, then calls [`Prepared::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// What [`read_signature_at`] reads.
    pub signature: SignatureElement,
    /// The canonical `SignedInfo` the signature value signs, or why verification fails before
    /// the ECDSA operation (the digest does not match, or the document cannot be canonicalised).
    signed_info: Result<Vec<u8>, VerifyError>,
}

impl Prepared {
    /// The bytes the signature value must sign, as [`signed_bytes`] writes them, or its error.
    pub fn signed_bytes(&self) -> Result<&[u8], VerifyError> {
        self.signed_info.as_deref().map_err(Clone::clone)
    }

    /// The verification's result with the public key (an uncompressed P-256 point) of the
    /// certificate the signature names: the same as [`verify_read`](super::verify_read)'s.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), VerifyError> {
        ecdsa_p256(self.signed_bytes()?, &self.signature.value, public_key)
    }
}

/// Reads the signature at `signature` — the span the caller's parser found as the root element's
/// last child — and does everything verification does before the ECDSA operation. Refuses
/// exactly what [`read_signature_at`] refuses; the other errors of
/// [`verify_read`](super::verify_read) wait in [`Prepared::verify`], so a caller can check the
/// signer first and report in the same order as before.
pub fn prepare_at(
    doc: &[u8],
    signature: Range<usize>,
    limits: &C14nLimits,
) -> Result<Prepared, ProfileError> {
    if let Some(prepared) = one_pass(doc, &signature, limits) {
        return Ok(prepared);
    }
    // The one pass stopped: the multi-pass path says why, exactly as it always has.
    let signature = read_signature_at(doc, signature)?;
    let mut buf = Vec::with_capacity(doc.len());
    let signed_info = signed_bytes(doc, &signature, limits, &mut buf).map(|()| buf);
    Ok(Prepared {
        signature,
        signed_info,
    })
}

/// Canonical output is hashed and the buffer cleared whenever it holds this much, so a large
/// document needs no buffer of its own size.
const FLUSH_AT: usize = 4096;

/// The one pass, or `None` wherever it stops.
fn one_pass(doc: &[u8], signature: &Range<usize>, limits: &C14nLimits) -> Option<Prepared> {
    let reader = read_at::limits();
    let limits = C14nLimits {
        max_bytes: limits.max_bytes.min(reader.max_bytes),
        max_depth: limits.max_depth.min(reader.max_depth),
        max_attributes: limits.max_attributes.min(reader.max_attributes),
    };
    let mut document = Vec::with_capacity(doc.len().min(FLUSH_AT) + 256);
    let mut signed_info = Vec::with_capacity(1024);
    let (sig, digest, signed_info_span) = {
        let mut pass = OnePass {
            document: Canonicalizer::new(
                &mut document,
                Region::Document,
                Some(signature.clone()),
                C14nMode::Inclusive,
            ),
            hash: Context::new(&RING_SHA256),
            signed_info: Canonicalizer::new(
                &mut signed_info,
                Region::FirstElement,
                None,
                C14nMode::Exclusive,
            ),
            profile: ProfileVisitor::default(),
            signature: signature.clone(),
            in_signature: false,
            signed_info_depth: None,
            signed_info_span: None,
        };
        walk(doc, &limits, &mut pass).ok()?;
        pass.document.finish().ok()?;
        pass.signed_info.finish().ok()?;
        pass.hash.update(pass.document.output());
        let sig = pass.profile.finish()?;
        (sig, pass.hash.finish(), pass.signed_info_span)
    };
    // The profile's spans are where the walk found the signature and `SignedInfo`.
    if sig.signature != *signature || signed_info_span.as_ref() != Some(&sig.signed_info) {
        return None;
    }
    let signed_info = if digest.as_ref() == sig.digest {
        Ok(signed_info)
    } else {
        Err(VerifyError::Digest)
    };
    Some(Prepared {
        signature: sig,
        signed_info,
    })
}

/// The walk's one visitor, showing each event to the parts that want it.
struct OnePass<'a, 'o> {
    /// Inclusive c14n of the whole document without the signature.
    document: Canonicalizer<'a, 'o>,
    hash: Context,
    /// Exclusive c14n of `SignedInfo`, shown its events only.
    signed_info: Canonicalizer<'a, 'o>,
    /// Shown the root's start and end tags and the signature's events.
    profile: ProfileVisitor,
    /// Where the caller's parser found the signature.
    signature: Range<usize>,
    /// The signature element is open.
    in_signature: bool,
    /// `SignedInfo`'s depth while it is open.
    signed_info_depth: Option<usize>,
    /// `SignedInfo`'s span, once it has ended.
    signed_info_span: Option<Range<usize>>,
}

/// The depth of the signature: the root's child.
const SIGNATURE_DEPTH: usize = 2;

impl OnePass<'_, '_> {
    fn flush(&mut self) {
        let out = self.document.output();
        if out.len() >= FLUSH_AT {
            self.hash.update(out);
            out.clear();
        }
    }
}

/// Where character data goes: outside the signature to the document's canonical form only;
/// inside it to `SignedInfo`'s and to the profile field being read, either, both or neither.
enum OnePassText<'s> {
    Document(TextOut<'s>),
    Signature(Option<TextOut<'s>>, Option<FieldText<'s>>),
}

impl Sink for OnePassText<'_> {
    fn run(&mut self, s: &str) {
        match self {
            Self::Document(out) => out.run(s),
            Self::Signature(info, field) => {
                if let Some(info) = info {
                    info.run(s);
                }
                if let Some(field) = field {
                    field.run(s);
                }
            }
        }
    }

    fn ch(&mut self, c: char) {
        match self {
            Self::Document(out) => out.ch(c),
            Self::Signature(info, field) => {
                if let Some(info) = info {
                    info.ch(c);
                }
                if let Some(field) = field {
                    field.ch(c);
                }
            }
        }
    }
}

impl<'a> Visitor<'a> for OnePass<'a, '_> {
    type Text<'s>
        = OnePassText<'s>
    where
        Self: 's;

    fn start(&mut self, tag: &StartTag<'a, '_>) -> Result<(), C14nError> {
        // The document's form leaves the signature out: it is shown the signature's start and
        // end tags (to know what to leave out), not what lies between.
        if !self.in_signature {
            self.document.start(tag)?;
        }
        if tag.start == self.signature.start {
            if tag.depth != SIGNATURE_DEPTH {
                return Err(C14nError::SpanNotAnElement {
                    span: self.signature.clone(),
                });
            }
            self.in_signature = true;
        }
        if self.in_signature {
            // `SignedInfo` is the signature's first element child (the profile refuses any
            // other order).
            if tag.depth == SIGNATURE_DEPTH + 1 && self.signed_info_span.is_none() {
                self.signed_info_depth = Some(tag.depth);
                self.signed_info_span = Some(tag.start..tag.start);
            }
            if self.signed_info_depth.is_some() {
                self.signed_info.start(tag)?;
            }
            self.profile.start(tag)?;
        } else if tag.depth == 1 {
            self.profile.start(tag)?;
        }
        self.flush();
        Ok(())
    }

    fn text(&mut self) -> Option<OnePassText<'_>> {
        if !self.in_signature {
            return self.document.text().map(OnePassText::Document);
        }
        let info = if self.signed_info_depth.is_some() {
            self.signed_info.text()
        } else {
            None
        };
        let field = self.profile.text();
        (info.is_some() || field.is_some()).then_some(OnePassText::Signature(info, field))
    }

    fn end(&mut self, qname: &'a str, span: Range<usize>, depth: usize) -> Result<(), C14nError> {
        if !self.in_signature || depth == SIGNATURE_DEPTH {
            self.document.end(qname, span.clone(), depth)?;
        }
        if self.in_signature || depth == 1 {
            if self.signed_info_depth.is_some() {
                self.signed_info.end(qname, span.clone(), depth)?;
                if self.signed_info_depth == Some(depth) {
                    self.signed_info_depth = None;
                    self.signed_info_span = Some(span.clone());
                }
            }
            self.profile.end(qname, span, depth)?;
            if depth == SIGNATURE_DEPTH {
                self.in_signature = false;
            }
        }
        self.flush();
        Ok(())
    }
}
