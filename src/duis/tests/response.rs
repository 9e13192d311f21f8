//! The response writer: exact output, date-times, escaping, and every code and payload kind
//! validated against the DUIS 5.4 XSD by xmllint.

use time::macros::datetime;

use super::testing::DuisXsd;
use super::*;
use crate::domain::{RequestId, ResponseCode};

const ALL_CODES: [ResponseCode; ResponseCode::ALL.len()] = ResponseCode::ALL;

fn rid() -> RequestId {
    RID.parse().unwrap()
}

fn header(code: ResponseCode) -> ResponseHeaderOut {
    ResponseHeaderOut {
        request_id: Some(rid()),
        response_id: None,
        code,
        date_time: datetime!(2022-07-22 09:37:56.134 UTC),
    }
}

fn write(header: &ResponseHeaderOut, payload: &ResponsePayload) -> String {
    write_response(
        header,
        "11.2".parse().unwrap(),
        "11.2".parse().unwrap(),
        payload,
    )
}

#[test]
fn writes_an_acknowledgement_exactly() {
    let got = write(&header(ResponseCode::E40), &ResponsePayload::None);
    let want = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" "#,
        r#"xmlns:ra="http://www.dccinterface.co.uk/ResponseAndAlert" schemaVersion="5.4">"#,
        "<sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000</sr:RequestID>",
        "<sr:ResponseCode>E40</sr:ResponseCode><sr:ResponseDateTime>2022-07-22T09:37:56.134Z</sr:ResponseDateTime>",
        "</sr:Header><sr:Body><sr:ResponseMessage><sr:ServiceReference>11.2</sr:ServiceReference>",
        "<sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant></sr:ResponseMessage></sr:Body>",
        "</sr:Response>",
    );
    assert_eq!(got, want);
    assert!(got.ends_with(RESPONSE_CLOSE));
}

#[test]
fn payloads_and_optional_header_fields() {
    let mut h = header(ResponseCode::I0);
    h.response_id = Some(rid().response_id());
    let gbcs = write(&h, &ResponsePayload::GbcsPayload(b"default".to_vec()));
    assert!(gbcs.contains(
        "<sr:ResponseID>00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:1000</sr:ResponseID>"
    ));
    assert!(gbcs.contains("<sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant><sr:GBCSPayload>ZGVmYXVsdA==</sr:GBCSPayload></sr:ResponseMessage>"));
    let raw = write(
        &h,
        &ResponsePayload::Raw("<sr:DSPScheduleID>42</sr:DSPScheduleID>".into()),
    );
    assert!(raw.contains(
        "</sr:ServiceReferenceVariant><sr:DSPScheduleID>42</sr:DSPScheduleID></sr:ResponseMessage>"
    ));
    h.request_id = None;
    assert!(!write(&h, &ResponsePayload::None).contains("RequestID"));
    // Header text is escaped, whatever the caller put there.
    h.response_id = Some("a<b&c\"d".into());
    assert!(write(&h, &ResponsePayload::None)
        .contains("<sr:ResponseID>a&lt;b&amp;c&quot;d</sr:ResponseID>"));
}

#[test]
fn date_times_are_utc_with_milliseconds() {
    let cases = [
        (
            datetime!(2022-07-22 09:37:56.134 UTC),
            "2022-07-22T09:37:56.134Z",
        ),
        (
            datetime!(2022-07-22 09:37:56.134_999_999 UTC),
            "2022-07-22T09:37:56.134Z",
        ),
        (
            datetime!(2022-07-22 10:37:56 +01:00),
            "2022-07-22T09:37:56.000Z",
        ),
        (
            datetime!(2022-12-31 23:30:00.5 -01:00),
            "2023-01-01T00:30:00.500Z",
        ),
        (
            datetime!(0001-01-01 00:00:00 UTC),
            "0001-01-01T00:00:00.000Z",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(xs_date_time(t), want);
    }
}

#[test]
fn every_code_and_payload_kind_is_valid_duis() {
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let mut docs: Vec<String> = ALL_CODES
        .iter()
        .map(|code| write(&header(*code), &ResponsePayload::None))
        .collect();
    let mut h = header(ResponseCode::I0);
    h.response_id = Some(rid().response_id());
    let payloads = [
        ResponsePayload::GbcsPayload((0..=255).collect()),
        ResponsePayload::GbcsPayload(Vec::new()),
        ResponsePayload::Raw("<sr:DSPScheduleID>42</sr:DSPScheduleID>".into()),
        ResponsePayload::Raw(
            "<sr:PreCommand><sr:GBCSVersion>4.0</sr:GBCSVersion><sr:GBCSPayload>3QAA</sr:GBCSPayload></sr:PreCommand>"
                .into(),
        ),
    ];
    docs.extend(payloads.iter().map(|p| write(&h, p)));
    h.request_id = None;
    h.response_id = None;
    h.date_time = datetime!(2030-01-15 09:00:00 +05:30);
    docs.push(write_response(
        &h,
        "4.1".parse().unwrap(),
        "4.1.1".parse().unwrap(),
        &ResponsePayload::None,
    ));
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    if let Err(report) = xsd.validate_all(&refs) {
        panic!("xmllint refused a written response:\n{report}");
    }

    // The oracle is live: it refuses a code the schema does not know, and the sample responses
    // pass.
    let bad = docs[0].replace(">I0<", ">E9999<");
    assert!(xsd.validate(&bad).is_err());
    if let Some(sample) =
        anchor_file("duis-samples/responses/duis-parser__acknowledgement-error.xml")
    {
        xsd.validate(std::str::from_utf8(&sample).unwrap()).unwrap();
    }
}

#[test]
fn a_written_response_is_not_taken_for_a_request() {
    let doc = write(&header(ResponseCode::I99), &ResponsePayload::None);
    assert_eq!(error_of(&doc), ParseError::WrongRoot);
}
