//! Hostile and broken input: DOCTYPEs, entities, processing instructions, bounds, and XML that is
//! not well-formed.

use super::*;

/// A valid request with `extra` inserted as the body element's content.
fn with_body_content(extra: &str) -> String {
    request(
        &std_header(),
        &format!("<sr:ReadInventory>{extra}</sr:ReadInventory>"),
        "",
    )
}

#[test]
fn any_doctype_is_refused() {
    let valid = request(&std_header(), STD_BODY, "");
    let after_decl = |dtd: &str| valid.replacen("?>", &format!("?>{dtd}"), 1);
    let cases = [
        after_decl("<!DOCTYPE sr:Request>"),
        after_decl(r#"<!DOCTYPE r SYSTEM "http://example.com/r.dtd">"#),
        after_decl(r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>"#),
        after_decl(r#"<!DOCTYPE r [<!ENTITY % p SYSTEM "http://example.com/p.dtd"> %p;]>"#),
        // Billion laughs: refused at the DOCTYPE, nothing expanded.
        after_decl(concat!(
            r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">"#,
            r#"<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>"#
        )),
        after_decl("<!DOCTYPE"),
        after_decl("<!DOCTYPE>"),
        format!(
            "<!DOCTYPE r>{}",
            valid.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        ),
        with_body_content("<!DOCTYPE r>"),
        format!("{valid}<!DOCTYPE r>"),
    ];
    for doc in cases {
        assert_eq!(error_of(&doc), ParseError::Doctype, "{doc}");
    }
}

#[test]
fn entity_references_other_than_the_predefined_are_refused() {
    let cases = [
        with_body_content("&xxe;"),
        with_body_content("<sr:DeviceID a=\"&xxe;\"/>"),
        request(&std_header().replace("4.1.1<", "&srv;<"), STD_BODY, ""),
        request(
            &std_header(),
            STD_BODY,
            "<ds:Signature>&sig;</ds:Signature>",
        ),
        with_body_content("&AMP;"),
    ];
    for doc in cases {
        assert_eq!(error_of(&doc), ParseError::EntityReference, "{doc}");
    }
    for bad in ["&#0;", "&#xFFFE;", "a & b", "&amp", "&#;", "&;"] {
        assert_eq!(
            malformed_kind(&with_body_content(bad)),
            MalformedKind::BadReference,
            "{bad}"
        );
    }
    let fine = with_body_content("&lt;&gt;&amp;&apos;&quot;&#13;&#x41;<sr:A b=\"&quot;&#10;\"/>");
    assert!(parse(&fine).is_ok());
}

#[test]
fn processing_instructions_are_refused() {
    let valid = request(&std_header(), STD_BODY, "");
    let body = valid.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let cases = [
        format!(r#"<?xml-stylesheet href="x.xsl"?>{body}"#),
        valid.replacen("?>", r#"?><?xml-stylesheet href="x.xsl"?>"#, 1),
        with_body_content("<?php echo 1; ?>"),
        format!("{valid}<?pi?>"),
        format!("<?xml version=\"1.0\"?><?xml version=\"1.0\"?>{body}"),
        format!(" <?xml version=\"1.0\"?>{body}"),
        with_body_content("<?xml version=\"1.0\"?>"),
    ];
    for doc in cases {
        assert_eq!(error_of(&doc), ParseError::ProcessingInstruction, "{doc}");
    }
    assert!(parse(body).is_ok(), "the XML declaration is optional");
    assert!(parse(&format!(
        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>{body}"
    ))
    .is_ok());
}

#[test]
fn encodings_and_characters() {
    let valid = request(&std_header(), STD_BODY, "");
    let latin = valid.replace("UTF-8", "ISO-8859-1");
    assert_eq!(error_of(&latin), ParseError::NotUtf8);
    let mut bytes = valid.clone().into_bytes();
    bytes.push(0xFF);
    assert_eq!(
        parse_request(&bytes, &Limits::default()).unwrap_err().error,
        ParseError::NotUtf8
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(valid.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(
        parse_request(&utf16, &Limits::default()).unwrap_err().error,
        ParseError::NotUtf8
    );
    assert_eq!(
        malformed_kind(&valid.replace("1.0", "1.1")),
        MalformedKind::UnsupportedXmlVersion
    );
    for c in ['\u{0}', '\u{1}', '\u{B}', '\u{FFFE}'] {
        let doc = with_body_content(&c.to_string());
        assert_eq!(
            malformed_kind(&doc),
            MalformedKind::IllegalCharacter,
            "{c:?}"
        );
    }
    assert!(parse(&with_body_content("tab\there, é, 😀, \r\n")).is_ok());
}

#[test]
fn too_large_is_refused_before_parsing() {
    // Not even XML: refused on its length alone.
    let huge = vec![b'<'; 10 * 1024 * 1024];
    assert_eq!(
        parse_request(&huge, &Limits::default()).unwrap_err().error,
        ParseError::TooLarge { limit: 1024 * 1024 }
    );
    let doc = request(&std_header(), STD_BODY, "");
    let limits = Limits {
        max_bytes: doc.len() - 1,
        ..Limits::default()
    };
    assert_eq!(
        parse_request(doc.as_bytes(), &limits).unwrap_err().error,
        ParseError::TooLarge {
            limit: doc.len() - 1
        }
    );
    let limits = Limits {
        max_bytes: doc.len(),
        ..Limits::default()
    };
    assert!(parse_request(doc.as_bytes(), &limits).is_ok());
}

#[test]
fn ten_thousand_deep_is_too_deep() {
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    assert_eq!(
        error_of(&with_body_content(&deep)),
        ParseError::TooDeep { limit: 64 }
    );
    // Unclosed, and not even in a request: the depth bound still comes first.
    assert_eq!(
        error_of(&"<a>".repeat(10_000)),
        ParseError::TooDeep { limit: 64 }
    );
}

#[test]
fn bounds_on_depth_elements_attributes_and_text() {
    let doc = request(&std_header(), "<sr:A><sr:B/></sr:A>", "");
    // Request(1) > Body(2) > A(3) > B(4).
    let at = |limits: Limits| parse_request(doc.as_bytes(), &limits).map_err(|f| f.error);
    assert!(at(Limits {
        max_depth: 4,
        ..Limits::default()
    })
    .is_ok());
    assert_eq!(
        at(Limits {
            max_depth: 3,
            ..Limits::default()
        })
        .unwrap_err(),
        ParseError::TooDeep { limit: 3 }
    );
    // Request, Header, 4 fields, Body, A, B.
    assert!(at(Limits {
        max_elements: 9,
        ..Limits::default()
    })
    .is_ok());
    assert_eq!(
        at(Limits {
            max_elements: 8,
            ..Limits::default()
        })
        .unwrap_err(),
        ParseError::TooManyElements { limit: 8 }
    );

    let many = (0..33)
        .map(|i| format!(" a{i}=\"{i}\""))
        .collect::<String>();
    assert_eq!(
        error_of(&with_body_content(&format!("<sr:X{many}/>"))),
        ParseError::TooManyAttributes { limit: 32 }
    );
    let many = (0..32)
        .map(|i| format!(" a{i}=\"{i}\""))
        .collect::<String>();
    assert!(parse(&with_body_content(&format!("<sr:X{many}/>"))).is_ok());

    // Namespace declarations are bounded for the whole document, however they are spread.
    let spread = (0..13)
        .map(|i| {
            let decls: String = (0..5)
                .map(|j| format!(" xmlns:n{i}x{j}=\"urn:{j}\""))
                .collect();
            format!("<sr:X{decls}>")
        })
        .collect::<String>()
        + &"</sr:X>".repeat(13);
    assert_eq!(
        error_of(&with_body_content(&spread)),
        ParseError::TooManyNamespaces { limit: 64 }
    );
    let few = (0..60)
        .map(|i| format!("<sr:X xmlns:n{i}=\"urn:{i}\"/>"))
        .collect::<String>();
    assert!(parse(&with_body_content(&few)).is_ok());

    let long = "A".repeat(512 * 1024 + 1);
    assert_eq!(
        error_of(&with_body_content(&long)),
        ParseError::TextTooLong { limit: 512 * 1024 }
    );
    assert_eq!(
        error_of(&with_body_content(&format!("<![CDATA[{long}]]>"))),
        ParseError::TextTooLong { limit: 512 * 1024 }
    );
    assert!(parse(&with_body_content(&long[1..])).is_ok());
    // A header field's text is bounded as a whole, however it is split.
    let limits = Limits {
        max_text_bytes: 8,
        ..Limits::default()
    };
    let split = request(
        &std_header().replace(">4.1.1<", ">4.1.1<!---->4.1.1<"),
        STD_BODY,
        "",
    );
    assert_eq!(
        parse_request(split.as_bytes(), &limits).unwrap_err().error,
        ParseError::TextTooLong { limit: 8 }
    );
}

/// Which malformations a case accepts.
type KindCheck = fn(&MalformedKind) -> bool;

#[test]
fn not_well_formed() {
    let valid = request(&std_header(), STD_BODY, "");
    let cut = valid.trim_end_matches("</sr:Request>");
    assert_eq!(malformed_kind(cut), MalformedKind::UnexpectedEof);
    let mid_tag = &valid[..valid.len() - 5];
    assert_eq!(
        malformed_kind(mid_tag),
        MalformedKind::Syntax(quick_xml::errors::SyntaxError::UnclosedTag)
    );
    let cases: [(String, KindCheck); 11] = [
        (with_body_content("<sr:A></sr:B>"), |k| {
            matches!(k, MalformedKind::IllFormed(_))
        }),
        (with_body_content("</sr:A>"), |k| {
            matches!(k, MalformedKind::IllFormed(_))
        }),
        (with_body_content("<sr:A b=\"1\" b=\"2\"/>"), |k| {
            matches!(k, MalformedKind::Attribute(_))
        }),
        (with_body_content("<sr:A b=1/>"), |k| {
            matches!(k, MalformedKind::Attribute(_))
        }),
        (with_body_content("<sr:A b=\"<\"/>"), |k| {
            *k == MalformedKind::LessThanInAttribute
        }),
        (with_body_content("<1a/>"), |k| *k == MalformedKind::BadName),
        (with_body_content("<sr:A 1b=\"x\"/>"), |k| {
            *k == MalformedKind::BadName
        }),
        (with_body_content("<!-- a -- b -->"), |k| {
            matches!(k, MalformedKind::Syntax(_) | MalformedKind::IllFormed(_))
        }),
        (with_body_content("<zz:A/>"), |k| {
            *k == MalformedKind::UnboundPrefix
        }),
        (with_body_content("<sr:A zz:b=\"1\"/>"), |k| {
            *k == MalformedKind::UnboundPrefix
        }),
        (with_body_content("<sr:A xmlns:xml=\"urn:x\"/>"), |k| {
            matches!(k, MalformedKind::Namespace(_))
        }),
    ];
    for (doc, ok) in cases {
        let kind = malformed_kind(&doc);
        assert!(ok(&kind), "{kind:?}\n{doc}");
    }
    let escaped_ns = valid.replacen(r#"xmlns:sr="http"#, r#"xmlns:sr="&#104;ttp"#, 1);
    assert_eq!(
        malformed_kind(&escaped_ns),
        MalformedKind::EscapedNamespaceName
    );
    match error_of(cut) {
        ParseError::Malformed { position, .. } => assert!(position <= cut.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reserved_prefixes_and_foreign_attributes_are_fine() {
    let doc = with_body_content(
        r#"<sr:A xml:lang="en" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>"#,
    );
    assert!(parse(&doc).is_ok());
}

#[test]
fn a_document_at_every_bound_still_parses() {
    let limits = Limits::default();
    // 19,990 small elements, about half a MiB: under every bound, so it must parse.
    let filler: String = (0..19_990)
        .map(|i| format!("<sr:E n=\"{i}\">x</sr:E>"))
        .collect();
    let doc = with_body_content(&filler);
    assert!(doc.len() <= limits.max_bytes, "{}", doc.len());
    let parsed = parse_request(doc.as_bytes(), &limits).unwrap();
    assert_eq!(parsed.body_element, "ReadInventory");
}
