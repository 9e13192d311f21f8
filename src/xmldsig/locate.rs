//! The signature and what it depends on, without re-reading the whole document: the profile puts
//! `ds:Signature` as the root element's last child, so the namespaces in scope inside it come
//! from the root's start tag and its own. The pair — root start tag, signature element, root end
//! tag — is a small document of its own in which `SignedInfo` canonicalises exactly as it does in
//! the whole one (exclusive c14n inherits nothing else from ancestors).

use std::ops::Range;

/// The root element's start tag span and its qualified name, found by skipping the prolog
/// (declaration, comments, processing instructions, whitespace). `None` for anything else before
/// the root (a DOCTYPE), or an empty root element.
fn root_start_tag(doc: &[u8]) -> Option<(Range<usize>, &[u8])> {
    let mut i = if doc.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    loop {
        while doc.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        let rest = doc.get(i..)?;
        if rest.starts_with(b"<?") {
            i += find(rest, b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            i += find(rest, b"-->")? + 3;
        } else if rest.starts_with(b"<") && !rest.starts_with(b"<!") {
            break;
        } else {
            return None;
        }
    }
    tag_at(doc, i)
}

/// The start tag at `start` (which holds `<`): its span and qualified name; `None` for an
/// empty-element tag or one that does not end.
fn tag_at(doc: &[u8], start: usize) -> Option<(Range<usize>, &[u8])> {
    let name_end = start
        + 1
        + doc
            .get(start + 1..)?
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')?;
    let mut quote = None;
    for (k, &b) in doc.iter().enumerate().skip(name_end) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => {
                if doc[k - 1] == b'/' {
                    return None;
                }
                return Some((start..k + 1, &doc[start + 1..name_end]));
            }
            _ => {}
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The small document `root start tag + signature + root end tag`, and the offset that maps a
/// position inside the signature in it back to the whole document (`doc_pos = mini_pos + shift`,
/// as a signed difference).
pub(super) struct MiniDocument {
    pub bytes: Vec<u8>,
    /// Where the signature element starts in `bytes`.
    pub signature_start: usize,
}

pub(super) fn mini_document(doc: &[u8], signature: &Range<usize>) -> Option<MiniDocument> {
    let (tag, name) = root_start_tag(doc)?;
    if signature.start < tag.end || signature.end > doc.len() || signature.start >= signature.end {
        return None;
    }
    let mut bytes = Vec::with_capacity(tag.len() + signature.len() + name.len() + 3);
    bytes.extend_from_slice(&doc[tag]);
    let signature_start = bytes.len();
    bytes.extend_from_slice(&doc[signature.clone()]);
    bytes.extend_from_slice(b"</");
    bytes.extend_from_slice(name);
    bytes.push(b'>');
    Some(MiniDocument {
        bytes,
        signature_start,
    })
}

/// The smaller document `root start tag + signature start tag + SignedInfo + both end tags`,
/// in which `SignedInfo` canonicalises exclusively exactly as in the whole one: exclusive c14n
/// takes only namespace declarations from ancestors, and those are on the two start tags.
/// `signature_start` is where `SignedInfo` starts in it.
pub(super) fn signed_info_document(
    doc: &[u8],
    signature: &Range<usize>,
    signed_info: &Range<usize>,
) -> Option<MiniDocument> {
    let (root_tag, root_name) = root_start_tag(doc)?;
    let (sig_tag, sig_name) = tag_at(doc, signature.start)?;
    let inside = sig_tag.end <= signed_info.start
        && signed_info.start < signed_info.end
        && signed_info.end <= signature.end
        && signature.end <= doc.len()
        && root_tag.end <= signature.start;
    if !inside {
        return None;
    }
    let mut bytes = Vec::with_capacity(
        root_tag.len() + sig_tag.len() + signed_info.len() + root_name.len() + sig_name.len() + 6,
    );
    bytes.extend_from_slice(&doc[root_tag]);
    bytes.extend_from_slice(&doc[sig_tag]);
    let signature_start = bytes.len();
    bytes.extend_from_slice(&doc[signed_info.clone()]);
    for name in [sig_name, root_name] {
        bytes.extend_from_slice(b"</");
        bytes.extend_from_slice(name);
        bytes.push(b'>');
    }
    Some(MiniDocument {
        bytes,
        signature_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_root_start_tag_past_the_prolog() {
        let doc = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- c > -->\n<sr:Request a='>' b=\"/>\">x</sr:Request>";
        let (span, name) = root_start_tag(doc).unwrap();
        assert_eq!(&doc[span], b"<sr:Request a='>' b=\"/>\">");
        assert_eq!(name, b"sr:Request");
        assert!(root_start_tag(b"<!DOCTYPE r><r></r>").is_none());
        assert!(root_start_tag(b"<r/>").is_none());
        assert!(root_start_tag(b"text<r></r>").is_none());
        assert!(root_start_tag(b"<r a='").is_none());
        assert!(root_start_tag(b"").is_none());
    }

    #[test]
    fn the_mini_document_is_root_and_signature() {
        let doc = b"<r xmlns:ds='d'><a/><ds:Signature>s</ds:Signature></r>";
        let at = doc.windows(13).position(|w| w == b"<ds:Signature").unwrap();
        let mini = mini_document(doc, &(at..doc.len() - 4)).unwrap();
        assert_eq!(
            mini.bytes,
            b"<r xmlns:ds='d'><ds:Signature>s</ds:Signature></r>"
        );
        assert_eq!(mini.signature_start, 16);
        assert!(mini_document(doc, &(0..5)).is_none());
        assert!(mini_document(doc, &(at..doc.len() + 1)).is_none());
    }

    #[test]
    fn the_signed_info_document_is_root_signature_tag_and_signed_info() {
        let doc = b"<r xmlns:ds='d'><a/><ds:Signature x='>'><ds:SignedInfo>i</ds:SignedInfo><ds:V/></ds:Signature></r>";
        let sig = doc.windows(13).position(|w| w == b"<ds:Signature").unwrap();
        let info = doc
            .windows(14)
            .position(|w| w == b"<ds:SignedInfo")
            .unwrap();
        let info_end = info + b"<ds:SignedInfo>i</ds:SignedInfo>".len();
        let mini = signed_info_document(doc, &(sig..doc.len() - 4), &(info..info_end)).unwrap();
        assert_eq!(
            mini.bytes,
            b"<r xmlns:ds='d'><ds:Signature x='>'><ds:SignedInfo>i</ds:SignedInfo></ds:Signature></r>"
        );
        assert_eq!(mini.signature_start, 36);
        assert!(signed_info_document(doc, &(sig..doc.len() - 4), &(sig..info_end)).is_none());
        assert!(signed_info_document(doc, &(sig..info_end - 1), &(info..info_end)).is_none());
    }
}
