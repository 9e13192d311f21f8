//! Journal records: every shape round-trips; any bytes decode or fail cleanly.

use proptest::prelude::*;

use super::{message, response_kind, METER, NETWORK};
use crate::outbox::message::{Message, MessageId, OutboundKind};
use crate::outbox::record::{decode, encode, message_len, Event, Record, RecordError};

fn kinds() -> Vec<OutboundKind> {
    vec![
        response_kind(u64::MAX),
        OutboundKind::Response {
            request_id: crate::domain::RequestId {
                originator: NETWORK,
                target: METER,
                counter: 3,
            },
            code: crate::domain::ResponseCode::E21,
        },
        OutboundKind::DeviceAlert {
            code: 0x8F66,
            device: METER,
            request_id: None,
        },
        OutboundKind::DeviceAlert {
            code: 0x8002,
            device: METER,
            request_id: Some(crate::domain::RequestId {
                originator: NETWORK,
                target: METER,
                counter: 7,
            }),
        },
        OutboundKind::DccAlert {
            code: "AD1".parse().unwrap(),
        },
        OutboundKind::DccAlert {
            code: "N999".parse().unwrap(),
        },
    ]
}

#[test]
fn every_record_shape_round_trips() {
    let messages: Vec<Message> = kinds()
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Message {
            kind,
            raised_at: -5,
            ..(*message(i as u64, 1_700_000_000_000)).clone()
        })
        .collect();
    for m in &messages {
        let mut one = encode(&Record::Enqueued(vec![m.clone()]));
        assert_eq!(one.len(), 5 + message_len(m), "{:?}", m.kind);
        one.push(0);
        assert_eq!(decode(&one), Err(RecordError::Trailing(1)));
    }
    let records = [
        Record::Enqueued(messages.clone()),
        Record::Carried(
            messages
                .iter()
                .cloned()
                .zip([None, Some(9), None, Some(-1), None, Some(2)])
                .collect(),
        ),
        Record::Events(vec![
            Event::Delivered(MessageId::new(1)),
            Event::Dead {
                id: MessageId::new(2),
                at: 3,
            },
            Event::Revived {
                id: MessageId::new(u64::MAX),
                at: i64::MIN,
            },
            Event::Discarded(MessageId::new(0)),
        ]),
        Record::Events(vec![]),
    ];
    for r in records {
        assert_eq!(decode(&encode(&r)).as_ref(), Ok(&r));
    }
}

#[test]
fn damaged_records_fail_with_the_reason() {
    let good = encode(&Record::Enqueued(vec![(*message(1, 0)).clone()]));
    let cases: Vec<(Vec<u8>, RecordError)> = vec![
        (vec![], RecordError::Truncated),
        (good[..good.len() - 1].to_vec(), RecordError::Truncated),
        (
            [&[9u8][..], &good[1..]].concat(),
            RecordError::Tag {
                field: "record",
                tag: 9,
            },
        ),
        // A count far beyond the bytes that follow is refused before allocating.
        (vec![1, 0xFF, 0xFF, 0xFF, 0xFF, 0], RecordError::Truncated),
        (
            vec![3, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0],
            RecordError::Tag {
                field: "event",
                tag: 7,
            },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(decode(&bytes), Err(want), "{bytes:?}");
    }
}

#[test]
fn message_ids_show_as_sixteen_hex_digits_and_parse_back() {
    for id in [0, 1, 0xABCD, u64::MAX] {
        let shown = MessageId::new(id).to_string();
        assert_eq!(shown.len(), 16);
        assert_eq!(shown.parse::<MessageId>(), Ok(MessageId::new(id)));
    }
    for bad in ["", "12345678901234567", "xyz", "-1"] {
        assert!(bad.parse::<MessageId>().is_err(), "{bad}");
    }
}

proptest! {
    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_mutated_records_never_panics(
        flip in 0usize..200,
        value in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut bytes = encode(&Record::Enqueued(vec![(*message(3, 4)).clone()]));
        let i = flip % bytes.len();
        bytes[i] = value;
        bytes.truncate(cut.max(1));
        let _ = decode(&bytes);
    }
}

/// A response recorded before its code was kept beside it (kind tag 1) gets the code its signed
/// body carries; a body without one is refused rather than given a code it does not have.
#[test]
fn a_response_recorded_without_its_code_takes_it_from_its_body() {
    let id = crate::domain::RequestId {
        originator: NETWORK,
        target: METER,
        counter: 9,
    };
    let legacy = |body: &[u8]| {
        let mut out = vec![1, 1, 0, 0, 0];
        out.extend_from_slice(&5u64.to_le_bytes());
        out.extend_from_slice(NETWORK.as_bytes());
        out.push(1);
        out.extend_from_slice(NETWORK.as_bytes());
        out.extend_from_slice(METER.as_bytes());
        out.extend_from_slice(&9u64.to_le_bytes());
        out.extend_from_slice(&0i64.to_le_bytes());
        out.extend_from_slice(&0i64.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        decode(&out)
    };
    let body = b"<sr:Response><sr:Header><sr:ResponseCode>E20</sr:ResponseCode></sr:Header>";
    let Ok(Record::Enqueued(messages)) = legacy(body) else {
        panic!("{:?}", legacy(body));
    };
    assert_eq!(
        messages[0].kind,
        OutboundKind::Response {
            request_id: id,
            code: crate::domain::ResponseCode::E20
        }
    );
    for bad in [
        &b"<sr:ResponseCode>not a code!</sr:ResponseCode>"[..],
        b"",
        b"<sr:ResponseCode>I0",
    ] {
        assert_eq!(legacy(bad), Err(RecordError::ResponseCode), "{bad:?}");
    }
}
