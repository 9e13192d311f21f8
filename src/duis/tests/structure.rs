//! Hand-made requests: the header table, the document structure, spans and the partial header.

use super::*;
use crate::domain::{RequestId, RequestIdError};

const CV: &str = "<sr:CommandVariant>1</sr:CommandVariant>";
const SR: &str = "<sr:ServiceReference>4.1</sr:ServiceReference>";
const SRV: &str = "<sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant>";

fn rid(text: &str) -> String {
    format!("<sr:RequestID>{text}</sr:RequestID>")
}

#[test]
fn malformed_headers() {
    let id = rid(RID);
    let unexpected = |parent, expected, found: &str| ParseError::UnexpectedElement {
        parent,
        expected,
        found: Some(found.into()),
    };
    let cases: Vec<(String, ParseError)> = vec![
        (
            format!("{CV}{SR}{SRV}"),
            ParseError::MissingHeaderField("RequestID"),
        ),
        (
            format!("{id}{SR}{SRV}"),
            ParseError::MissingHeaderField("CommandVariant"),
        ),
        (
            format!("{id}{CV}{SRV}"),
            ParseError::MissingHeaderField("ServiceReference"),
        ),
        (
            format!("{id}{CV}{SR}"),
            ParseError::MissingHeaderField("ServiceReferenceVariant"),
        ),
        (String::new(), ParseError::MissingHeaderField("RequestID")),
        (
            format!("{id}{id}{CV}{SR}{SRV}"),
            ParseError::DuplicateHeaderField("RequestID"),
        ),
        (
            format!("{id}{CV}{SR}{SRV}{SRV}"),
            ParseError::DuplicateHeaderField("ServiceReferenceVariant"),
        ),
        (
            format!("{CV}{id}{SR}{SRV}"),
            ParseError::HeaderFieldOutOfOrder("RequestID"),
        ),
        (
            format!("{id}{CV}{SRV}{SR}"),
            ParseError::HeaderFieldOutOfOrder("ServiceReference"),
        ),
        (
            format!("{id}{CV}<sr:FirstInSequence>true</sr:FirstInSequence>{SR}{SRV}"),
            ParseError::HeaderFieldOutOfOrder("FirstInSequence"),
        ),
        (
            format!("{id}<sr:Foo/>{CV}{SR}{SRV}"),
            unexpected("Header", "a header field", "Foo"),
        ),
        (
            format!(r#"<RequestID xmlns="urn:other">{RID}</RequestID>{CV}{SR}{SRV}"#),
            unexpected("Header", "a header field", "RequestID"),
        ),
        (
            format!("<RequestID>{RID}</RequestID>{CV}{SR}{SRV}"),
            unexpected("Header", "a header field", "RequestID"),
        ),
        (
            format!("{id}<sr:CommandVariant><sr:x/>1</sr:CommandVariant>{SR}{SRV}"),
            unexpected("CommandVariant", "text", "x"),
        ),
        (
            format!("{id}junk{CV}{SR}{SRV}"),
            ParseError::UnexpectedText { parent: "Header" },
        ),
        (
            format!("{}{CV}{SR}{SRV}", rid("x")),
            ParseError::BadRequestId(RequestIdError::Shape),
        ),
        (
            format!(
                "{}{CV}{SR}{SRV}",
                rid("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:01")
            ),
            ParseError::BadRequestId(RequestIdError::Counter),
        ),
        (
            format!(
                "{}{CV}{SR}{SRV}",
                rid("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90:1")
            ),
            ParseError::BadRequestId(RequestIdError::Eui64),
        ),
        (
            format!(
                "{id}<sr:PrecedingServiceRequestID>1</sr:PrecedingServiceRequestID>{CV}{SR}{SRV}"
            ),
            ParseError::BadPrecedingRequestId(RequestIdError::Shape),
        ),
        (
            format!("{id}<sr:FirstInSequence>yes</sr:FirstInSequence>{CV}{SR}{SRV}"),
            ParseError::BadFirstInSequence,
        ),
        (
            format!("{id}<sr:FirstInSequence/>{CV}{SR}{SRV}"),
            ParseError::BadFirstInSequence,
        ),
        (
            format!("{id}<sr:CommandVariant>9</sr:CommandVariant>{SR}{SRV}"),
            ParseError::BadCommandVariant,
        ),
        (
            format!("{id}<sr:CommandVariant>0</sr:CommandVariant>{SR}{SRV}"),
            ParseError::BadCommandVariant,
        ),
        (
            format!("{id}<sr:CommandVariant></sr:CommandVariant>{SR}{SRV}"),
            ParseError::BadCommandVariant,
        ),
        (
            format!("{id}{CV}<sr:ServiceReference>4.1.1</sr:ServiceReference>{SRV}"),
            ParseError::BadServiceReference,
        ),
        (
            format!("{id}{CV}{SR}<sr:ServiceReferenceVariant>4</sr:ServiceReferenceVariant>"),
            ParseError::BadSrv,
        ),
        (
            format!("{id}{CV}{SR}<sr:ServiceReferenceVariant>4 .1.1</sr:ServiceReferenceVariant>"),
            ParseError::BadSrv,
        ),
    ];
    for (fields, want) in cases {
        assert_eq!(error_of(&request(&fields, STD_BODY, "")), want, "{fields}");
    }
}

#[test]
fn a_full_header_with_text_in_pieces() {
    let preceding = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:999";
    for (text, want) in [
        ("true", true),
        (" 1 ", true),
        ("false", false),
        ("0", false),
    ] {
        let fields = format!(
            "<sr:RequestID>\n  {}  \n</sr:RequestID>\
             <sr:FirstInSequence>{text}</sr:FirstInSequence>\
             <sr:PrecedingServiceRequestID>{preceding}</sr:PrecedingServiceRequestID>\
             <sr:CommandVariant><!-- a comment -->5<![CDATA[]]></sr:CommandVariant>\
             <sr:ServiceReference>6&#46;15</sr:ServiceReference>\
             <sr:ServiceReferenceVariant>6.<![CDATA[15]]>.1</sr:ServiceReferenceVariant>",
            RID.to_lowercase()
        );
        let h = parse(&request(&fields, "<sr:UpdateSecurityCredentialsKRP/>", ""))
            .unwrap()
            .header;
        assert_eq!(h.request_id, RID.parse::<RequestId>().unwrap());
        assert_eq!(h.first_in_sequence, Some(want), "{text}");
        assert_eq!(h.preceding_request_id, Some(preceding.parse().unwrap()));
        assert_eq!(h.command_variant.get(), 5);
        assert_eq!(h.service_reference.to_string(), "6.15");
        assert_eq!(h.srv.to_string(), "6.15.1");
    }
}

#[test]
fn document_structure() {
    let h = std_header();
    let sr_ns = SR_NAMESPACE;
    let wrap = |inner: &str| format!("{ROOT_OPEN}{inner}</sr:Request>");
    let header = format!("<sr:Header>{h}</sr:Header>");
    let body = format!("<sr:Body>{STD_BODY}</sr:Body>");
    let unexpected = |parent, expected, found: Option<&str>| ParseError::UnexpectedElement {
        parent,
        expected,
        found: found.map(Into::into),
    };
    let cases: Vec<(String, ParseError)> = vec![
        (
            format!(r#"<sr:Response xmlns:sr="{sr_ns}"/>"#),
            ParseError::WrongRoot,
        ),
        (
            format!(
                r#"<Request xmlns="urn:other" xmlns:sr="{sr_ns}" schemaVersion="5.4">{header}{body}</Request>"#
            ),
            ParseError::WrongNamespace,
        ),
        (
            format!(r#"<Request xmlns:sr="{sr_ns}" schemaVersion="5.4">{header}{body}</Request>"#),
            ParseError::WrongNamespace,
        ),
        (
            format!(r#"<sr:Request xmlns:sr="{sr_ns}">{header}{body}</sr:Request>"#),
            ParseError::MissingSchemaVersion,
        ),
        (
            format!(
                r#"<sr:Request xmlns:sr="{sr_ns}" sr:schemaVersion="5.4">{header}{body}</sr:Request>"#
            ),
            ParseError::MissingSchemaVersion,
        ),
        (wrap(&body), unexpected("Request", "Header", Some("Body"))),
        (wrap(""), unexpected("Request", "Header", None)),
        (
            format!(r#"<sr:Request xmlns:sr="{sr_ns}" schemaVersion="5.4"/>"#),
            unexpected("Request", "Header", None),
        ),
        (wrap(&header), unexpected("Request", "Body", None)),
        (
            wrap(&format!("{header}<sr:Body></sr:Body>")),
            ParseError::EmptyBody,
        ),
        (wrap(&format!("{header}<sr:Body/>")), ParseError::EmptyBody),
        (
            wrap(&format!("{header}<sr:Body> <!-- nothing --> </sr:Body>")),
            ParseError::EmptyBody,
        ),
        (
            wrap(&format!("{header}<sr:Body>{STD_BODY}{STD_BODY}</sr:Body>")),
            ParseError::MultipleBodyElements,
        ),
        (
            wrap(&format!(
                "{header}<sr:Body><x:Read xmlns:x=\"urn:x\"/></sr:Body>"
            )),
            unexpected("Body", "a DUIS request body", Some("Read")),
        ),
        (
            wrap(&format!("{header}<sr:Body>text{STD_BODY}</sr:Body>")),
            ParseError::UnexpectedText { parent: "Body" },
        ),
        (
            wrap(&format!("{header}{body}{body}")),
            unexpected("Request", "Signature or the end of Request", Some("Body")),
        ),
        (
            wrap(&format!("{header}{body}<sr:Signature/>")),
            unexpected(
                "Request",
                "Signature or the end of Request",
                Some("Signature"),
            ),
        ),
        (
            wrap(&format!("{SIGNATURE}{header}{body}")),
            ParseError::SignatureNotLast,
        ),
        (
            wrap(&format!("{header}{SIGNATURE}{body}")),
            ParseError::SignatureNotLast,
        ),
        (
            wrap(&format!("{header}<sr:Body>{SIGNATURE}</sr:Body>")),
            ParseError::SignatureNotLast,
        ),
        (
            wrap(&format!(
                "{header}<sr:Body><sr:Read>{SIGNATURE}</sr:Read></sr:Body>"
            )),
            ParseError::SignatureNotLast,
        ),
        (
            wrap(&format!("{header}{body}{SIGNATURE}<sr:Extra/>")),
            ParseError::SignatureNotLast,
        ),
        (
            wrap(&format!("{header}{body}{SIGNATURE}{SIGNATURE}")),
            ParseError::MultipleSignatures,
        ),
        (
            wrap(&format!("{header}{body}junk")),
            ParseError::UnexpectedText { parent: "Request" },
        ),
        (
            format!("{}<Request/>", wrap(&format!("{header}{body}"))),
            ParseError::TrailingContent,
        ),
        (
            format!("{}junk", wrap(&format!("{header}{body}"))),
            ParseError::TrailingContent,
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(error_of(&doc), want, "{doc}");
    }
    assert_eq!(malformed_kind(""), MalformedKind::NoRootElement);
    assert_eq!(
        malformed_kind("  <!-- only a comment -->  "),
        MalformedKind::NoRootElement
    );
    assert_eq!(
        malformed_kind(&format!("junk{}", wrap(&format!("{header}{body}")))),
        MalformedKind::TextOutsideRoot
    );
    assert_eq!(
        malformed_kind(&format!("<zz:Request xmlns:sr=\"{sr_ns}\"/>")),
        MalformedKind::UnboundPrefix
    );
}

#[test]
fn any_prefix_or_the_default_namespace() {
    let h = std_header().replace("sr:", "d:");
    let doc = format!(
        r#"<d:Request xmlns:d="{SR_NAMESPACE}" schemaVersion=" 5.4 "><d:Header>{h}</d:Header><d:Body><d:ReadInstantaneousImportRegisters/></d:Body><Signature xmlns="{DS_NAMESPACE}"/></d:Request>"#
    );
    let parsed = parse(&doc).unwrap();
    assert_eq!(parsed.schema_version, "5.4");
    assert!(parsed.signature.is_some());
    let h = std_header().replace("sr:", "");
    let doc = format!(
        r#"<Request xmlns="{SR_NAMESPACE}" schemaVersion="5.4"><Header>{h}</Header><Body><ReadInventory/></Body></Request>"#
    );
    assert_eq!(parse(&doc).unwrap().body_element, "ReadInventory");
}

#[test]
fn spans_point_at_the_body_and_the_signature() {
    let body = r#"<sr:ReadInstantaneousImportRegisters a="&lt;"> <sr:X/> </sr:ReadInstantaneousImportRegisters >"#;
    let with_decl = request(&std_header(), body, SIGNATURE);
    let without_decl = with_decl.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let docs = [
        with_decl.clone(),
        format!("\u{FEFF}{with_decl}"),
        format!("\u{FEFF}<!-- lead -->\n{without_decl}\n<!-- trailing -->\n"),
    ];
    for doc in docs {
        let parsed = parse(&doc).unwrap();
        assert_eq!(&doc[parsed.body.clone()], body);
        assert_eq!(&doc[parsed.signature.clone().unwrap()], SIGNATURE);
        assert_eq!(parsed.body_element, "ReadInstantaneousImportRegisters");
    }
    let parsed = parse(&request(&std_header(), "<sr:Read  />", "")).unwrap();
    assert_eq!(parsed.signature, None);
    let doc = request(&std_header(), "<sr:Read  />", "");
    assert_eq!(&doc[parse(&doc).unwrap().body], "<sr:Read  />");
}

#[test]
fn execution_date_time_is_the_first_in_the_body() {
    let body = "<sr:X><y:ExecutionDateTime xmlns:y=\"urn:y\">not this</y:ExecutionDateTime>\
         <sr:A><sr:ExecutionDateTime>\n 2030-01-15T09:00:00.00Z </sr:ExecutionDateTime></sr:A>\
         <sr:ExecutionDateTime>nor this</sr:ExecutionDateTime></sr:X>";
    let parsed = parse(&request(&std_header(), body, SIGNATURE)).unwrap();
    assert_eq!(
        parsed.execution_date_time.as_deref(),
        Some("2030-01-15T09:00:00.00Z")
    );
    assert_eq!(parsed.body_element, "X");
    let parsed = parse(&request(&std_header(), STD_BODY, "")).unwrap();
    assert_eq!(parsed.execution_date_time, None);
}

#[test]
fn the_partial_header_holds_what_was_read_before_the_failure() {
    let id: RequestId = RID.parse().unwrap();
    let fail = |doc: String| parse(&doc).unwrap_err();

    let f = fail(request(
        &format!(
            "{}{CV}{SR}<sr:ServiceReferenceVariant>x</sr:ServiceReferenceVariant>",
            rid(RID)
        ),
        STD_BODY,
        "",
    ));
    assert_eq!(f.error, ParseError::BadSrv);
    assert_eq!(
        f.partial,
        PartialHeader {
            request_id: Some(id),
            service_reference: Some("4.1".parse().unwrap()),
            srv: None
        }
    );

    let f = fail(request(&std_header(), "", ""));
    assert_eq!(f.error, ParseError::EmptyBody);
    assert_eq!(f.partial.request_id, Some(id));
    assert_eq!(f.partial.srv, Some("4.1.1".parse().unwrap()));

    let f = fail(request(
        &format!("{}{CV}{SR}{SRV}", rid("bad")),
        STD_BODY,
        "",
    ));
    assert_eq!(f.partial, PartialHeader::default());

    // A forbidden construct anywhere stops the document before its header is read.
    let f = fail(request(&std_header(), STD_BODY, "<?pi?>"));
    assert_eq!(f.error, ParseError::ProcessingInstruction);
    assert_eq!(f.partial, PartialHeader::default());
}
