//! The canonicaliser and the element look-ups on arbitrary bytes: whole documents in both
//! modes, and (from the first four bytes) a subtree and an exclusion span over the rest.
//! Nothing may panic; canonical output must be a fixed point; every element the look-ups
//! find must be a span `canonicalize` accepts.
#![no_main]

use dccgw::xmldsig::c14n::{canonicalize, children, root, text_content, C14nLimits, C14nMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = C14nLimits::default();
    // Canonical output can outgrow the input's bounds: `<a/>` doubles, `&#13;` stays five
    // bytes, and an element may gain one declaration per prefixed attribute.
    let relaxed = C14nLimits {
        max_bytes: usize::MAX,
        max_attributes: 2 * limits.max_attributes + 1,
        ..limits
    };
    let mut out = Vec::new();
    for mode in [C14nMode::Exclusive, C14nMode::Inclusive] {
        out.clear();
        if canonicalize(data, None, None, mode, &limits, &mut out).is_ok() {
            // A document that canonicalises has a root, and its canonical form canonicalises
            // to itself.
            assert!(root(data, &limits).is_ok());
            let mut again = Vec::new();
            canonicalize(&out, None, None, mode, &relaxed, &mut again)
                .expect("canonical form is XML");
            assert_eq!(again, out, "canonical form is a fixed point");
        } else {
            assert!(out.is_empty(), "output untouched on error");
        }
    }
    if let [a, b, c, d, doc @ ..] = data {
        let len = doc.len().max(1);
        let span = |x: u8, y: u8| {
            let (x, y) = (usize::from(x) * len / 256, usize::from(y) * len / 256);
            x.min(y)..x.max(y) + 1
        };
        let (subtree, exclude) = (span(*a, *b), span(*c, *d));
        out.clear();
        let _ = canonicalize(
            doc,
            Some(subtree.clone()),
            Some(exclude),
            C14nMode::Exclusive,
            &limits,
            &mut out,
        );
        let _ = children(doc, subtree.clone(), &limits);
        let _ = text_content(doc, subtree, &limits);
        // Every element the look-ups find is a span canonicalize accepts.
        if let Ok(top) = root(doc, &limits) {
            for child in children(doc, top.span.clone(), &limits).unwrap_or_default() {
                out.clear();
                canonicalize(
                    doc,
                    Some(child.span.clone()),
                    None,
                    C14nMode::Inclusive,
                    &limits,
                    &mut out,
                )
                .expect("a found element is a valid subtree");
                out.clear();
                canonicalize(
                    doc,
                    None,
                    Some(child.span),
                    C14nMode::Exclusive,
                    &limits,
                    &mut out,
                )
                .expect("a found element is a valid exclusion");
            }
        }
    }
});
