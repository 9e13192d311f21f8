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
    let start = i;
    let name_end = start
        + 1
        + doc[start + 1..]
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
}
