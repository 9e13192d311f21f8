//! The DUIS-body encoding for use cases without a real one: deterministic whatever namespace
//! declarations, quoting, whitespace in tags and attribute order the User wrote; read back
//! exactly; anything else refused.

use proptest::prelude::*;

use crate::domain::Srv;
use crate::gbcs::usecase::body::*;
use crate::gbcs::FrameError;
use crate::xmldsig::c14n::C14nLimits;

const ONE: &str = r#"<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"><sr:Body><sr:ReadMPxN  a="1"  b="2"><sr:X>7</sr:X></sr:ReadMPxN></sr:Body></sr:Request>"#;
const TWO: &str = r#"<sr:Request xmlns:x="urn:unused" xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"><sr:Body><sr:ReadMPxN b='2'
 a='1'>
    <sr:X>7</sr:X>
  </sr:ReadMPxN ></sr:Body></sr:Request>"#;

fn body_span(doc: &str) -> std::ops::Range<usize> {
    let start = doc.find("<sr:ReadMPxN").unwrap();
    let end_tag = doc.rfind("ReadMPxN").unwrap();
    let end_tag = end_tag + doc[end_tag..].find('>').unwrap() + 1;
    start..end_tag
}

#[test]
fn the_same_body_written_two_ways_gives_the_same_content() {
    let limits = C14nLimits::default();
    let one = canonical_body(ONE.as_bytes(), body_span(ONE), &limits).unwrap();
    let two = canonical_body(TWO.as_bytes(), body_span(TWO), &limits).unwrap();
    assert_eq!(String::from_utf8_lossy(&one), String::from_utf8_lossy(&two));
    let srv: Srv = "6.2.7".parse().unwrap();
    let content = command_content(srv, &one).unwrap();
    assert_eq!(&content[..2], &[COMMAND_TAG, FORMAT]);
    assert_eq!(
        read_command(&content).unwrap(),
        BodyCommand { srv, body: one }
    );
}

#[test]
fn other_content_is_refused() {
    assert!(read_command(&[0xD9, 1, 2]).is_err());
    let srv: Srv = "4.2".parse().unwrap();
    let mut content = command_content(srv, b"<x/>").unwrap();
    content.push(0);
    assert!(matches!(
        read_command(&content),
        Err(FrameError::Trailing { .. })
    ));
    let response = response_content(srv, 0, b"data").unwrap();
    assert!(read_command(&response).is_err());
    assert_eq!(read_response(&response).unwrap().data, b"data");
}

proptest! {
    #[test]
    fn responses_round_trip(result in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let srv: Srv = "11.2".parse().unwrap();
        let content = response_content(srv, result, &data).unwrap();
        prop_assert_eq!(read_response(&content).unwrap(), BodyResponse { srv, result, data });
    }

    #[test]
    fn any_bytes_read_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_command(&bytes);
        let _ = read_response(&bytes);
    }
}

#[test]
fn a_body_command_goes_under_the_use_cases_message_code() {
    use crate::gbcs::usecase::Parties;
    use crate::gbcs::{MessageCode, SignatureField, Target};
    let parties = Parties {
        user: super::SUPPLIER,
        device: super::METER,
        counter: 5,
    };
    let srv: Srv = "6.2.7".parse().unwrap();
    let gas = body_command(&parties, srv, Target::Gas, b"<x/>", false).unwrap();
    assert_eq!(gas.other.message_code, MessageCode(0x0089)); // GCS46
    assert_eq!(gas.signature, SignatureField::Empty);
    let critical: Srv = "1.6".parse().unwrap();
    let elec = body_command(&parties, critical, Target::Electricity, b"<x/>", true).unwrap();
    assert_eq!(elec.other.message_code, MessageCode(0x001A)); // ECS02
    assert_eq!(elec.signature, SignatureField::Absent);
    assert_eq!(read_command(&elec.content).unwrap().srv, critical);
    // No use case with a public message code.
    let unknown: Srv = "7.13".parse().unwrap();
    assert!(body_command(&parties, unknown, Target::Electricity, b"<x/>", true).is_err());
    let non_device: Srv = "8.2".parse().unwrap();
    assert!(body_command(&parties, non_device, Target::Any, b"<x/>", false).is_err());
}
