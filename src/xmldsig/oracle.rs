//! The oracle the one reading path is tested against: the signature read by quick-xml (another
//! tokenizer, with XML's line-end and attribute-value normalisation added, which quick-xml
//! leaves to its caller) into the same profile [`Collector`]; then the digest and `SignedInfo`
//! canonicalised in two more walks of the whole document, by [`canonicalize`]. Slower, and
//! built differently at every step where the production path could go wrong: where the
//! signature is, what its fields say, which bytes are hashed and which signed.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::c14n::{canonicalize, root, C14nError, C14nLimits, C14nMode};
use super::profile::{
    Collector, ProfileError, SignatureElement, DS_NAMESPACE, MAX_ATTRIBUTE_CHARS,
};
use super::verify::{sha256, VerifyError};

/// The signature read, then the canonical `SignedInfo` or why verification fails before the
/// ECDSA operation.
pub type Outcome = Result<(SignatureElement, Result<Vec<u8>, VerifyError>), ProfileError>;

/// Everything a verification does but the ECDSA operation, the slow way.
pub fn prepare(doc: &[u8], limits: &C14nLimits) -> Outcome {
    let sig = read_signature(doc, limits)?;
    let signed = signed_bytes(doc, &sig, limits);
    Ok((sig, signed))
}

fn signed_bytes(
    doc: &[u8],
    sig: &SignatureElement,
    limits: &C14nLimits,
) -> Result<Vec<u8>, VerifyError> {
    let mut buf = Vec::new();
    // XMLDSig turns the enveloped Reference's node-set into octets by inclusive c14n.
    canonicalize(
        doc,
        None,
        Some(sig.signature.clone()),
        C14nMode::Inclusive,
        limits,
        &mut buf,
    )?;
    if sha256(&buf) != sig.digest {
        return Err(VerifyError::Digest);
    }
    buf.clear();
    canonicalize(
        doc,
        Some(sig.signed_info.clone()),
        None,
        C14nMode::Exclusive,
        limits,
        &mut buf,
    )?;
    Ok(buf)
}

/// Finds the document's signature and reads it with quick-xml, after holding the document to
/// the canonicaliser's stricter reading (quick-xml accepts several roots, names that are not
/// XML names, and more).
pub(super) fn read_signature(
    doc: &[u8],
    limits: &C14nLimits,
) -> Result<SignatureElement, ProfileError> {
    match root(doc, limits) {
        Ok(_) => {}
        Err(
            C14nError::Doctype { .. }
            | C14nError::ProcessingInstruction { .. }
            | C14nError::EntityReference { .. },
        ) => return Err(ProfileError::Forbidden),
        Err(C14nError::TooDeep { .. }) => return Err(ProfileError::TooDeep),
        Err(e) => return Err(ProfileError::Malformed(e.position())),
    }
    // quick-xml does not count a byte-order mark in its positions: read after it and shift
    // the spans back onto `doc`.
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let skip = if doc.starts_with(BOM) { BOM.len() } else { 0 };
    let mut sig = read_after_bom(&doc[skip..])?;
    sig.signature = shift(sig.signature, skip);
    sig.signed_info = shift(sig.signed_info, skip);
    Ok(sig)
}

fn shift(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

fn read_after_bom(doc: &[u8]) -> Result<SignatureElement, ProfileError> {
    let mut reader = NsReader::from_reader(doc);
    reader.config_mut().check_end_names = true;
    let mut c = Collector::default();
    let mut depth = 0;
    loop {
        let before = reader.buffer_position() as usize;
        let malformed = |_| ProfileError::Malformed(before);
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        let is_ds = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == DS_NAMESPACE.as_bytes());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                c.start(depth + 1, is_ds, local.as_ref(), before, |name| {
                    attribute(e, name)
                })?;
                if matches!(event, Event::Empty(_)) {
                    c.end(reader.buffer_position() as usize)?;
                } else {
                    depth += 1;
                }
            }
            Event::End(_) => {
                c.end(reader.buffer_position() as usize)?;
                depth -= 1;
            }
            Event::Text(t) if c.inside() => {
                let raw = std::str::from_utf8(&t).map_err(|_| ProfileError::Malformed(before))?;
                let text = quick_xml::escape::unescape(&line_ends(raw))
                    .map_err(|_| ProfileError::Malformed(before))?
                    .into_owned();
                c.push_text(&text);
            }
            Event::CData(t) if c.inside() => {
                let raw = std::str::from_utf8(&t).map_err(|_| ProfileError::Malformed(before))?;
                c.push_text(&line_ends(raw));
            }
            Event::DocType(_) | Event::PI(_) => return Err(ProfileError::Forbidden),
            Event::Eof => break,
            Event::Text(_) | Event::CData(_) | Event::Comment(_) | Event::Decl(_) => {}
        }
    }
    c.finish()
}

/// XML's end-of-line handling, which quick-xml leaves to its caller: CR LF and a lone CR are
/// read as LF.
fn line_ends(raw: &str) -> Cow<'_, str> {
    if raw.contains('\r') {
        Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(raw)
    }
}

/// An unprefixed attribute's value, normalised as XML does (each literal TAB, LF and CR a
/// space, after line-end handling), at most [`MAX_ATTRIBUTE_CHARS`] characters of it.
fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, ProfileError> {
    for a in e.attributes() {
        let a = a.map_err(|_| ProfileError::Malformed(0))?;
        if a.key.as_ref() != name {
            continue;
        }
        let raw = std::str::from_utf8(&a.value).map_err(|_| ProfileError::Malformed(0))?;
        let spaced = line_ends(raw).replace(['\t', '\n'], " ");
        let v = quick_xml::escape::unescape(&spaced).map_err(|_| ProfileError::Malformed(0))?;
        let end = v
            .char_indices()
            .nth(MAX_ATTRIBUTE_CHARS)
            .map_or(v.len(), |(i, _)| i);
        return Ok(Some(v[..end].to_owned()));
    }
    Ok(None)
}
