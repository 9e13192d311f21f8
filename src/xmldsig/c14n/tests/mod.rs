//! Unit tests: exact outputs, document subsets, refusals, bounds, the element look-ups, and
//! properties (never panics; canonical output is a fixed point).

mod oracle;
mod signature;

use proptest::prelude::*;

use super::*;

const EXC: C14nMode = C14nMode::Exclusive;
const INC: C14nMode = C14nMode::Inclusive;

fn c14n(
    doc: &str,
    subtree: Option<Range<usize>>,
    exclude: Option<Range<usize>>,
    mode: C14nMode,
) -> Result<String, C14nError> {
    let mut out = Vec::new();
    canonicalize(
        doc.as_bytes(),
        subtree,
        exclude,
        mode,
        &C14nLimits::default(),
        &mut out,
    )?;
    Ok(String::from_utf8(out).expect("canonical output is UTF-8"))
}

/// The span of the first element whose start tag begins with `open` (e.g. `"<b:x"`).
fn span(doc: &str, open: &str) -> Range<usize> {
    let start = doc.find(open).expect("element present");
    let limits = C14nLimits::default();
    let mut pending = vec![root(doc.as_bytes(), &limits).expect("root")];
    while let Some(e) = pending.pop() {
        if e.span.start == start {
            return e.span;
        }
        pending.extend(children(doc.as_bytes(), e.span, &limits).expect("children"));
    }
    panic!("no element at {start}")
}

#[test]
fn exact_outputs() {
    // (document, exclusive, inclusive)
    let table: &[(&str, &str, &str)] = &[
        ("<r/>", "<r></r>", "<r></r>"),
        (
            r#"<p:r xmlns:p="http://p" xmlns:u="http://u"><c/></p:r>"#,
            r#"<p:r xmlns:p="http://p"><c></c></p:r>"#,
            r#"<p:r xmlns:p="http://p" xmlns:u="http://u"><c></c></p:r>"#,
        ),
        // namespace URIs are escaped like attribute values (libxml2 does not; c14n §2.3 does)
        (
            r#"<p:r xmlns:p="http://x/?a=1&amp;b=&quot;2&quot;&#9;"/>"#,
            r#"<p:r xmlns:p="http://x/?a=1&amp;b=&quot;2&quot;&#x9;"></p:r>"#,
            r#"<p:r xmlns:p="http://x/?a=1&amp;b=&quot;2&quot;&#x9;"></p:r>"#,
        ),
        (
            "<r a=\"\r\n\t&#13;\">a\r\nb\r&#13;<![CDATA[<&>]]></r>",
            "<r a=\"  &#xD;\">a\nb\n&#xD;&lt;&amp;&gt;</r>",
            "<r a=\"  &#xD;\">a\nb\n&#xD;&lt;&amp;&gt;</r>",
        ),
        (
            r#"<a xmlns="http://d"><b xmlns=""/><p:c xmlns:p="http://p" xmlns=""/></a>"#,
            r#"<a xmlns="http://d"><b xmlns=""></b><p:c xmlns:p="http://p"></p:c></a>"#,
            r#"<a xmlns="http://d"><b xmlns=""></b><p:c xmlns="" xmlns:p="http://p"></p:c></a>"#,
        ),
    ];
    for (doc, exclusive, inclusive) in table {
        assert_eq!(
            c14n(doc, None, None, EXC).as_deref(),
            Ok(*exclusive),
            "{doc}"
        );
        assert_eq!(
            c14n(doc, None, None, INC).as_deref(),
            Ok(*inclusive),
            "{doc}"
        );
    }
}

const NESTED: &str = r#"<?xml version="1.0"?>
<a:r xmlns:a="http://a" xmlns:b="http://b" xml:lang="en" xmlns="http://d"><b:x xml:space="preserve">t<a:y z="1"/><w/></b:x> <s><in/></s>tail</a:r>"#;

#[test]
fn subtree_renders_the_namespaces_in_scope_from_ancestors() {
    let x = span(NESTED, "<b:x");
    assert_eq!(
        c14n(NESTED, Some(x.clone()), None, EXC).unwrap(),
        r#"<b:x xmlns:b="http://b" xml:space="preserve">t<a:y xmlns:a="http://a" z="1"></a:y><w xmlns="http://d"></w></b:x>"#
    );
    // inclusive: every binding in scope at the apex, and the ancestors' xml:* attributes
    assert_eq!(
        c14n(NESTED, Some(x), None, INC).unwrap(),
        r#"<b:x xmlns="http://d" xmlns:a="http://a" xmlns:b="http://b" xml:lang="en" xml:space="preserve">t<a:y z="1"></a:y><w></w></b:x>"#
    );
}

#[test]
fn exclude_leaves_out_the_element_and_keeps_the_text_around_it() {
    let s = span(NESTED, "<s>");
    let x = span(NESTED, "<b:x");
    let whole = c14n(NESTED, None, Some(s.clone()), EXC).unwrap();
    assert!(
        whole.ends_with(r#"<w xmlns="http://d"></w></b:x> tail</a:r>"#),
        "{whole}"
    );
    // excluding inside a subtree, and excluding the subtree itself
    let inner = span(NESTED, "<a:y");
    assert_eq!(
        c14n(NESTED, Some(x.clone()), Some(inner), EXC).unwrap(),
        r#"<b:x xmlns:b="http://b" xml:space="preserve">t<w xmlns="http://d"></w></b:x>"#
    );
    assert_eq!(c14n(NESTED, Some(x.clone()), Some(x), EXC).unwrap(), "");
    // an exclusion outside the subtree changes nothing
    let y = span(NESTED, "<a:y");
    assert_eq!(
        c14n(NESTED, Some(y.clone()), Some(s), INC).unwrap(),
        c14n(NESTED, Some(y), None, INC).unwrap()
    );
}

#[test]
fn spans_that_are_not_elements_are_refused() {
    let x = span(NESTED, "<b:x");
    let bad = [
        x.start + 1..x.end,
        x.start..x.end - 1,
        x.start..x.end + 1,
        0..NESTED.len(),
        NESTED.len() + 5..NESTED.len() + 9,
    ];
    for range in bad {
        let want = Err(C14nError::SpanNotAnElement {
            span: range.clone(),
        });
        assert_eq!(
            c14n(NESTED, Some(range.clone()), None, EXC),
            want,
            "subtree {range:?}"
        );
        assert_eq!(
            c14n(NESTED, None, Some(range.clone()), INC),
            want,
            "exclude {range:?}"
        );
    }
}

#[test]
fn output_is_untouched_on_error() {
    let mut out = b"kept".to_vec();
    let result = canonicalize(
        b"<r>x</q>",
        None,
        None,
        EXC,
        &C14nLimits::default(),
        &mut out,
    );
    assert!(matches!(
        result,
        Err(C14nError::Malformed {
            kind: MalformedKind::MismatchedEndTag,
            ..
        })
    ));
    assert_eq!(out, b"kept");
    canonicalize(b"<r/>", None, None, EXC, &C14nLimits::default(), &mut out).unwrap();
    assert_eq!(out, b"kept<r></r>");
}

#[test]
fn refusals() {
    use MalformedKind as K;
    let m = |position, kind| C14nError::Malformed { position, kind };
    let table: &[(&str, C14nError)] = &[
        (
            "<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>",
            C14nError::Doctype { position: 0 },
        ),
        (
            "<r><?pi x?></r>",
            C14nError::ProcessingInstruction { position: 3 },
        ),
        (
            "<?xml-stylesheet href='x'?><r/>",
            C14nError::ProcessingInstruction { position: 0 },
        ),
        ("<r>&e;</r>", C14nError::EntityReference { position: 3 }),
        ("<r a='&e;'/>", C14nError::EntityReference { position: 6 }),
        (
            "<?xml version=\"1.1\"?><r/>",
            C14nError::UnsupportedDeclaration { position: 6 },
        ),
        (
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r/>",
            C14nError::UnsupportedDeclaration { position: 20 },
        ),
        ("<p:r/>", C14nError::UnboundPrefix { position: 1 }),
        ("<r p:a='1'/>", C14nError::UnboundPrefix { position: 3 }),
        (
            "<r xmlns:p=''/>",
            C14nError::ReservedNamespace { position: 3 },
        ),
        (
            "<r xmlns:xml='http://x'/>",
            C14nError::ReservedNamespace { position: 3 },
        ),
        (
            "<r xmlns:p='http://www.w3.org/2000/xmlns/'/>",
            C14nError::ReservedNamespace { position: 3 },
        ),
        ("<xmlns:r/>", C14nError::ReservedNamespace { position: 1 }),
        (
            "<r xmlns:p='rel'/>",
            C14nError::RelativeNamespaceUri { position: 12 },
        ),
        (
            "<r a='1' a='2'/>",
            C14nError::DuplicateAttribute { position: 12 },
        ),
        (
            "<r xmlns:p='http://x' xmlns:q='http://x' p:a='1' q:a='2'/>",
            C14nError::DuplicateAttribute { position: 54 },
        ),
        (
            "<r xmlns:p='http://x' xmlns:p='http://y'/>",
            C14nError::DuplicateAttribute { position: 22 },
        ),
        ("", m(0, K::NoRoot)),
        ("  <!-- c -->", m(12, K::NoRoot)),
        ("<r>", m(3, K::UnexpectedEnd)),
        ("<r/><r/>", m(4, K::ContentOutsideRoot)),
        ("x<r/>", m(0, K::ContentOutsideRoot)),
        ("<r/>&amp;", m(4, K::ContentOutsideRoot)),
        ("<r></s>", m(3, K::MismatchedEndTag)),
        ("<r>]]></r>", m(3, K::CdataEndInText)),
        ("<r a='<'/>", m(6, K::LtInAttributeValue)),
        ("<r a=1/>", m(5, K::BadAttribute)),
        ("<r a='1'b='2'/>", m(8, K::BadAttribute)),
        ("<1r/>", m(1, K::BadName)),
        ("<a:b:c/>", m(1, K::BadName)),
        ("<r>&#0;</r>", m(3, K::BadReference)),
        ("<r>&#xD800;</r>", m(3, K::BadReference)),
        ("<r>&#X41;</r>", m(3, K::BadReference)),
        ("<r>& </r>", m(3, K::BadReference)),
        ("<r>\u{1}</r>", m(3, K::ForbiddenChar)),
        ("<r>\u{FFFE}</r>", m(3, K::ForbiddenChar)),
        ("<r><!-- a -- b --></r>", m(10, K::DoubleHyphenInComment)),
        ("<r><!ELEMENT r ANY></r>", m(3, K::BadMarkup)),
        (
            "<r/><?xml version='1.0'?>",
            C14nError::ProcessingInstruction { position: 4 },
        ),
        ("<?xml encoding='UTF-8'?><r/>", m(0, K::BadDeclaration)),
    ];
    for (doc, want) in table {
        for mode in [EXC, INC] {
            assert_eq!(
                c14n(doc, None, None, mode).as_ref(),
                Err(want),
                "{mode:?} {doc:?}"
            );
        }
    }
    let mut out = Vec::new();
    let not_utf8 = canonicalize(
        b"<r>\xff</r>",
        None,
        None,
        EXC,
        &C14nLimits::default(),
        &mut out,
    );
    assert_eq!(not_utf8, Err(C14nError::NotUtf8 { position: 3 }));
}

#[test]
fn bounds_hold_exactly_at_the_limit() {
    let limits = C14nLimits {
        max_bytes: 40,
        max_depth: 3,
        max_attributes: 2,
    };
    let run = |doc: &str| canonicalize(doc.as_bytes(), None, None, EXC, &limits, &mut Vec::new());
    assert!(run("<a><b><c/></b></a>").is_ok());
    assert_eq!(
        run("<a><b><c><d/></c></b></a>"),
        Err(C14nError::TooDeep {
            position: 9,
            limit: 3
        })
    );
    assert!(run("<a x='1' y='2'/>").is_ok());
    assert_eq!(
        run("<a x='1' y='2' z='3'/>"),
        Err(C14nError::TooManyAttributes {
            position: 0,
            limit: 2
        })
    );
    assert!(run(&format!("<a>{}</a>", "x".repeat(33))).is_ok());
    assert_eq!(
        run(&format!("<a>{}</a>", "x".repeat(34))),
        Err(C14nError::TooLarge {
            size: 41,
            limit: 40
        })
    );
}

#[test]
fn element_lookups() {
    let limits = C14nLimits::default();
    let doc = NESTED.as_bytes();
    let top = root(doc, &limits).unwrap();
    assert!(top.is("http://a", "r"));
    assert_eq!(&NESTED[top.span.clone()][..4], "<a:r");
    assert!(NESTED[top.span.clone()].ends_with("</a:r>"));
    assert_eq!(
        top.attributes,
        vec![Attribute {
            namespace: "http://www.w3.org/XML/1998/namespace".into(),
            local: "lang".into(),
            value: "en".into(),
        }]
    );
    let kids = children(doc, top.span.clone(), &limits).unwrap();
    let names: Vec<_> = kids
        .iter()
        .map(|e| (e.namespace.as_str(), e.local.as_str()))
        .collect();
    assert_eq!(names, [("http://b", "x"), ("http://d", "s")]);
    assert_eq!(
        text_content(doc, kids[0].span.clone(), &limits).unwrap(),
        "t"
    );
    assert_eq!(
        text_content(doc, top.span.clone(), &limits).unwrap(),
        "t tail"
    );
    let y = children(doc, kids[0].span.clone(), &limits)
        .unwrap()
        .remove(0);
    assert_eq!(y.attribute("z"), Some("1"));
    assert_eq!(children(doc, y.span.clone(), &limits).unwrap(), vec![]);
    assert_eq!(
        children(doc, 1..4, &limits),
        Err(C14nError::SpanNotAnElement { span: 1..4 })
    );
    assert_eq!(
        text_content(b"<r>a&#13;\r\nb<![CDATA[&]]><!--c--></r>", 0..37, &limits).as_deref(),
        Ok("a\r\nb&")
    );
}

#[test]
fn algorithm_uris_round_trip() {
    for mode in [EXC, INC] {
        assert_eq!(C14nMode::from_algorithm(mode.algorithm()), Some(mode));
    }
    assert_eq!(
        C14nMode::from_algorithm("http://www.w3.org/2006/12/xml-c14n11"),
        None
    );
}

/// Small documents built from awkward parts: prefixes, default namespaces, references, CR.
fn document() -> impl Strategy<Value = String> {
    let text = prop::sample::select(vec![
        "",
        "x",
        " ",
        "&amp;",
        "&#13;",
        "\r\n",
        "\r",
        ">",
        "<![CDATA[<]]>",
        "<!--c-->",
        "é",
    ]);
    let decl = prop::sample::select(vec![
        "",
        " xmlns=\"http://d\"",
        " xmlns=\"\"",
        " xmlns:p=\"http://p\"",
        " xmlns:q=\"http://p\"",
        " xmlns:p=\"http://p2\"",
    ]);
    let attr = prop::sample::select(vec![
        "",
        " a=\"1\"",
        " p:a=\"&#9;\r\n\"",
        " q:b='\"'",
        " xml:lang=\"en\"",
    ]);
    let name = prop::sample::select(vec!["e", "p:e", "q:f"]);
    let leaf = (name.clone(), decl.clone(), attr.clone(), text.clone())
        .prop_map(|(n, d, a, t)| format!("<{n}{d}{a}>{t}</{n}>"));
    leaf.prop_recursive(4, 24, 4, move |inner| {
        (
            name.clone(),
            decl.clone(),
            attr.clone(),
            prop::collection::vec((inner, text.clone()), 0..4),
        )
            .prop_map(|(n, d, a, kids)| {
                let body: String = kids.into_iter().map(|(k, t)| k + t).collect();
                format!("<{n}{d}{a}>{body}</{n}>")
            })
    })
    .prop_map(|body| format!("<r xmlns:p=\"http://p\" xmlns:q=\"http://q\">{body}</r>"))
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(doc in prop::collection::vec(any::<u8>(), 0..256), a in 0usize..300, b in 0usize..300) {
        let mut out = Vec::new();
        let limits = C14nLimits::default();
        let _ = canonicalize(&doc, None, None, EXC, &limits, &mut out);
        let _ = canonicalize(&doc, Some(a.min(b)..a.max(b)), Some(a..b), INC, &limits, &mut out);
        let _ = children(&doc, a..b, &limits);
        let _ = text_content(&doc, a..b, &limits);
    }

    /// Canonical output is a canonical document: canonicalising it again changes nothing.
    #[test]
    fn canonical_form_is_a_fixed_point(doc in document()) {
        for mode in [EXC, INC] {
            match c14n(&doc, None, None, mode) {
                Ok(once) => prop_assert_eq!(c14n(&once, None, None, mode), Ok(once.clone())),
                // the generator can declare a prefix twice or reuse an attribute name
                Err(e) => prop_assert!(matches!(e, C14nError::DuplicateAttribute { .. } | C14nError::UnboundPrefix { .. }), "{:?}", e),
            }
        }
    }

    /// Every element canonicalised as a subtree is accepted, and excluding it is accepted.
    #[test]
    fn every_element_is_a_valid_span(doc in document()) {
        let limits = C14nLimits::default();
        let Ok(top) = root(doc.as_bytes(), &limits) else { return Ok(()) };
        let mut pending = vec![top];
        while let Some(e) = pending.pop() {
            prop_assert!(c14n(&doc, Some(e.span.clone()), None, EXC).is_ok());
            prop_assert!(c14n(&doc, None, Some(e.span.clone()), INC).is_ok());
            pending.extend(children(doc.as_bytes(), e.span, &limits).unwrap());
        }
    }
}

proptest! {
    /// The one-pass ASCII name check agrees with the reference QName check on every ASCII run.
    #[test]
    fn ascii_qname_scan_matches_is_qname(name in "[a-zA-Z0-9_.:\\-]{0,8}[ =/>]?") {
        let (len, valid) = super::chars::scan_ascii_qname(name.as_bytes());
        let run = name.trim_end_matches([' ', '=', '/', '>']);
        prop_assert_eq!(len, run.len());
        prop_assert_eq!(valid, super::chars::is_qname(run));
    }

    /// The quick checks of character data that is not output refuse exactly what decoding does.
    #[test]
    fn quick_checks_agree_with_decoding(raw in "[a&;<>\\]#x0-9\r\n ltgmpqu]{0,12}") {
        use super::chars::{check_attr, check_text, decode_attr, decode_text, Discard};
        prop_assert_eq!(check_text(&raw, 0), decode_text(&raw, 0, &mut Discard));
        prop_assert_eq!(check_attr(&raw, 0), decode_attr(&raw, 0, &mut Discard));
    }
}
