//! The public DUIS samples: every request template parses and agrees with a naive reading of its
//! own header; the negative samples fail where this parser is the one to catch them.

use super::*;
use crate::domain::RequestIdError;

/// The text of the first `<sr:{name}>` element, found by plain string search.
fn naive_text<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<sr:{name}>");
    let start = doc.find(&open)? + open.len();
    let len = doc[start..].find('<')?;
    Some(doc[start..start + len].trim())
}

/// The local name of the first `sr:` element after `<sr:Body>`, by plain string search.
fn naive_body_element(doc: &str) -> &str {
    let body = doc.find("<sr:Body>").expect("a body") + "<sr:Body>".len();
    let start = body + doc[body..].find("<sr:").expect("a body element") + "<sr:".len();
    let len = doc[start..]
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap();
    &doc[start..start + len]
}

#[test]
fn every_public_request_parses_and_agrees_with_its_own_header() {
    let Some(files) = anchor_files(&["duis-samples/templates", "duis-samples/requests"]) else {
        return;
    };
    assert!(files.len() >= 150, "only {} sample requests", files.len());
    let (mut signed, mut future_dated) = (0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let doc = std::str::from_utf8(&bytes).unwrap();
        let name = path.display();
        let parsed = parse_request(&bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {:?}", e.error));
        let h = &parsed.header;
        assert_eq!(
            Some(h.srv.to_string().as_str()),
            naive_text(doc, "ServiceReferenceVariant"),
            "{name}"
        );
        assert_eq!(
            Some(h.service_reference.to_string().as_str()),
            naive_text(doc, "ServiceReference"),
            "{name}"
        );
        assert_eq!(
            Some(h.command_variant.to_string().as_str()),
            naive_text(doc, "CommandVariant"),
            "{name}"
        );
        let rid = naive_text(doc, "RequestID").unwrap();
        assert!(h.request_id.to_string().eq_ignore_ascii_case(rid), "{name}");
        assert_eq!(h.first_in_sequence, None, "{name}");
        assert_eq!(parsed.body_element, naive_body_element(doc), "{name}");
        assert!(
            doc.contains(&format!(r#"schemaVersion="{}""#, parsed.schema_version)),
            "{name}"
        );

        let body = &doc[parsed.body.clone()];
        assert!(
            body.starts_with(&format!("<sr:{}", parsed.body_element)),
            "{name}: {body}"
        );
        assert!(body.ends_with('>'), "{name}");

        assert_eq!(
            parsed.execution_date_time.as_deref(),
            naive_text(body, "ExecutionDateTime"),
            "{name}"
        );
        future_dated += usize::from(parsed.execution_date_time.is_some());

        match &parsed.signature {
            Some(span) => {
                let sig = &doc[span.clone()];
                assert!(
                    sig.starts_with("<ds:Signature") && sig.ends_with("</ds:Signature>"),
                    "{name}"
                );
                assert!(doc[span.end..].trim() == "</sr:Request>", "{name}");
                signed += 1;
            }
            None => assert!(!doc.contains("<ds:Signature"), "{name}"),
        }
    }
    assert!(signed > 100, "{signed} signed samples");
    assert!(future_dated > 10, "{future_dated} future-dated samples");
}

#[test]
fn the_signed_request_sample_has_its_signature_last() {
    let path =
        "duis-samples/requests/signing-tool__ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-signed.XML";
    let Some(bytes) = anchor_file(path) else {
        return;
    };
    let parsed = parse_request(&bytes, &Limits::default()).unwrap();
    let span = parsed.signature.expect("a signature");
    assert!(span.start > parsed.body.end);
    assert_eq!(parsed.header.srv.to_string(), "4.1.1");
}

#[test]
fn negative_samples() {
    let neg = "duis-samples/negative/";
    let cases: [(&str, Option<ParseError>); 8] = [
        // The RequestID element is misspelt `ReqxuestID`.
        (
            "duis-sign-wrap__8.2_READ_INVENTORY_REQUEST_DUIS-invalid.XML",
            Some(ParseError::UnexpectedElement {
                parent: "Header",
                expected: "a header field",
                found: Some("ReqxuestID".into()),
            }),
        ),
        // The RequestID has `::` before the counter.
        (
            "signing-tool__ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-invalid.XML",
            Some(ParseError::BadRequestId(RequestIdError::Shape)),
        ),
        // Well-formed requests from an originator no party holds: identity and authorization
        // refuse these, not the parser.
        (
            "duis-sign-wrap__8.2_READ_INVENTORY_REQUEST_DUIS-unknown-originator.XML",
            None,
        ),
        (
            "signing-tool__ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-nonexist-businessid.XML",
            None,
        ),
        // Responses (bad signature, bad ServiceReference `11.2.11.2`, no signature, unknown
        // serial) are not requests at all; their own faults are the verifier's to find.
        (
            "signing-tool__readfw-response-badsignature.xml",
            Some(ParseError::WrongRoot),
        ),
        (
            "signing-tool__readfw-response-invalid.xml",
            Some(ParseError::WrongRoot),
        ),
        (
            "signing-tool__readfw-response-no-signature.xml",
            Some(ParseError::WrongRoot),
        ),
        (
            "signing-tool__readfw-response-nonexist-serial.xml",
            Some(ParseError::WrongRoot),
        ),
    ];
    for (file, want) in cases {
        let Some(bytes) = anchor_file(&format!("{neg}{file}")) else {
            return;
        };
        let got = parse_request(&bytes, &Limits::default());
        match want {
            None => assert!(got.is_ok(), "{file}: {got:?}"),
            Some(want) => assert_eq!(got.map_err(|f| f.error).err(), Some(want), "{file}"),
        }
    }
    let unknown =
        format!("{neg}duis-sign-wrap__8.2_READ_INVENTORY_REQUEST_DUIS-unknown-originator.XML");
    if let Some(bytes) = anchor_file(&unknown) {
        let parsed = parse_request(&bytes, &Limits::default()).unwrap();
        assert_eq!(
            parsed.header.request_id.originator.to_string(),
            "F0-B3-D5-1F-30-01-00-00"
        );
    }
}

#[test]
fn responses_are_not_requests() {
    let Some(files) = anchor_files(&["duis-samples/responses"]) else {
        return;
    };
    assert!(!files.is_empty());
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let got = parse_request(&bytes, &Limits::default()).map_err(|f| f.error);
        assert_eq!(got.err(), Some(ParseError::WrongRoot), "{}", path.display());
    }
}
