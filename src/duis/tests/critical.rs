//! The critical flow's and local delivery's DUIS parts: what is written reads back, the readers
//! take the public 8.13 template, and no input makes a reader panic.

use proptest::prelude::*;

use crate::domain::{CommandVariant, RequestId};
use crate::duis::body::{BodyError, Node};
use crate::duis::critical::*;
use crate::duis::{parse_request, write_response, Limits, ResponseHeaderOut, ResponsePayload};

const ID: &str = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000";

#[test]
fn a_transform_answer_reads_back_and_its_signed_form_is_a_request_the_parser_takes() {
    let id: RequestId = ID.parse().unwrap();
    let srv: crate::domain::Srv = "7.1".parse().unwrap();
    let header = ResponseHeaderOut {
        request_id: Some(id),
        response_id: None,
        code: crate::domain::ResponseCode::I0,
        date_time: time::OffsetDateTime::UNIX_EPOCH,
    };
    let pre = vec![0xDF, 0x09, 1, 2, 3];
    let payload = ResponsePayload::Raw(write_precommand("4.0", &pre));
    let answer = write_response(&header, srv.service_reference(), srv, &payload);
    let read = read_transform_response(answer.as_bytes()).unwrap();
    assert_eq!(
        read,
        TransformResponse {
            request_id: id,
            srv,
            gbcs_version: "4.0".into(),
            precommand: pre.clone(),
        }
    );
    let cv = CommandVariant::try_from(6).unwrap();
    let request = write_signed_precommand_request(&id, cv, srv, &[9, 8, 7]);
    let parsed = parse_request(request.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(parsed.header.request_id, id);
    assert_eq!(parsed.header.command_variant, cv);
    assert_eq!(parsed.body_element, "SignedPreCommand");
    let body = &request.as_bytes()[parsed.body];
    assert_eq!(read_signed_precommand(body).unwrap(), vec![9, 8, 7]);
    // An answer with another code is no Transform answer.
    let refused = answer.replace(">I0<", ">E1<");
    assert_eq!(
        read_transform_response(refused.as_bytes()),
        Err(BodyError::Invalid("ResponseCode"))
    );
}

#[test]
fn the_public_8_13_template_reads() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let path = anchors
        .join("duis-samples/templates/8.13_RETURN_LOCAL_COMMAND_RESPONSE_CS06_REQUEST_DUIS.XML");
    let xml = std::fs::read(path).unwrap();
    let parsed = parse_request(&xml, &Limits::default()).unwrap();
    let read = read_local_command_response(&xml[parsed.body]).unwrap();
    assert_eq!(read.original, Some(ID.parse().unwrap()));
    // The device's answer: a GBCS response (DF 09 02 …).
    assert_eq!(&read.response[..3], &[0xDF, 0x09, 0x02]);
}

#[test]
fn a_payload_over_the_bound_is_refused_before_it_is_decoded() {
    let big = "A".repeat(MAX_GBCS_PAYLOAD / 3 * 4 + 8);
    let body = format!(
        "<sr:SignedPreCommand><sr:GBCSPayload>{big}</sr:GBCSPayload></sr:SignedPreCommand>"
    );
    assert_eq!(
        read_signed_precommand(body.as_bytes()),
        Err(BodyError::Invalid("GBCSPayload"))
    );
}

proptest! {
    #[test]
    fn the_body_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Node::parse(&bytes);
        let _ = read_signed_precommand(&bytes);
        let _ = read_local_command_response(&bytes);
        let _ = read_transform_response(&bytes);
    }

    #[test]
    fn nested_elements_read_back(depth in 1usize..40, text in "[a-z0-9 ]{0,20}") {
        let open: String = (0..depth).map(|i| format!("<sr:E{i} index=\"{i}\">")).collect();
        let close: String = (0..depth).rev().map(|i| format!("</sr:E{i}>")).collect();
        let node = Node::parse(format!("{open}{text}{close}").as_bytes()).unwrap();
        let mut at = &node;
        for i in 0..depth {
            prop_assert_eq!(&at.name, &format!("E{i}"));
            prop_assert_eq!(at.index, Some(i as u32));
            if i + 1 < depth {
                at = &at.children[0];
            }
        }
        prop_assert_eq!(&at.text, text.trim());
    }
}
