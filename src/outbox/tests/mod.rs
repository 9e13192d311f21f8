mod jetstream;
mod outbox;
mod queue;
mod record;

use std::sync::Arc;

use super::message::{Message, MessageId, OutboundKind};
use crate::domain::{Eui64, RequestId};

pub(super) const SUPPLIER: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]);
pub(super) const NETWORK: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0, 0]);
pub(super) const METER: Eui64 = Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]);

pub(super) fn response_kind(counter: u64) -> OutboundKind {
    OutboundKind::Response {
        request_id: RequestId {
            originator: SUPPLIER,
            target: METER,
            counter,
        },
        code: crate::domain::ResponseCode::I0,
    }
}

pub(super) fn message(id: u64, held_since: i64) -> Arc<Message> {
    Arc::new(Message {
        id: MessageId::new(id),
        user: SUPPLIER,
        kind: response_kind(id),
        body: bytes::Bytes::from(format!("<body {id}/>")),
        raised_at: held_since,
        held_since,
    })
}
