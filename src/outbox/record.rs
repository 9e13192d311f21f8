//! The outbox's journal records, in a compact length-checked binary form (bodies are signed
//! XML; JSON would base64 them). Decoding is bounded by the record's own length and never
//! panics (proptest in `tests`). All integers are little-endian.
//!
//! ```text
//! record   = 1 count message*                    new messages, pending
//!          | 2 count (message dead)*             carried forward by compaction, with state
//!          | 3 count event*                      outcomes and operator actions, in order
//! message  = id:u64 user:[8] kind raised_at:i64 held_since:i64 len:u32 body
//! kind     = 4 request_id code_len:u8 code | 2 code:u16 device:[8] (0 | 1 request_id)
//!          | 3 family:u8 number:u16
//!          | 1 request_id                      a response written before its code was recorded
//! dead     = 0 | 1 at:i64
//! event    = 1 id | 2 id at:i64 | 3 id at:i64 | 4 id     delivered, dead, revived, discarded
//! ```

use bytes::Bytes;

use super::message::{Message, MessageId, OutboundKind};
use crate::domain::{DccAlertCode, DccAlertFamily, Eui64, RequestId, ResponseCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Record {
    Enqueued(Vec<Message>),
    Carried(Vec<(Message, Option<i64>)>),
    Events(Vec<Event>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    Delivered(MessageId),
    Dead { id: MessageId, at: i64 },
    Revived { id: MessageId, at: i64 },
    Discarded(MessageId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record ends inside a field")]
    Truncated,
    #[error("unknown {field} tag {tag}")]
    Tag { field: &'static str, tag: u8 },
    #[error("the record has {0} bytes after its end")]
    Trailing(usize),
    #[error("a DCC Alert code number is out of range")]
    DccAlertCode,
    #[error("a response code is not one the gateway emits")]
    ResponseCode,
}

/// Fixed bytes of a message before its body: the smallest a message can be.
const MESSAGE_HEAD: usize = 8 + 8 + 1 + 8 + 8 + 4;

/// Bytes [`encode_message`] writes for `m`.
pub(super) fn message_len(m: &Message) -> usize {
    let kind = match m.kind {
        OutboundKind::Response { code, .. } => 25 + code.as_str().len(),
        OutboundKind::DeviceAlert { request_id, .. } => 11 + request_id.map_or(0, |_| 24),
        OutboundKind::DccAlert { .. } => 3,
    };
    MESSAGE_HEAD + kind + m.body.len()
}

pub(super) fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    match record {
        Record::Enqueued(messages) => {
            out.push(1);
            put_count(&mut out, messages.len());
            for m in messages {
                encode_message(m, &mut out);
            }
        }
        Record::Carried(messages) => {
            out.push(2);
            put_count(&mut out, messages.len());
            for (m, dead) in messages {
                encode_message(m, &mut out);
                match dead {
                    None => out.push(0),
                    Some(at) => {
                        out.push(1);
                        out.extend_from_slice(&at.to_le_bytes());
                    }
                }
            }
        }
        Record::Events(events) => {
            out.push(3);
            put_count(&mut out, events.len());
            for e in events {
                let (tag, id, at) = match *e {
                    Event::Delivered(id) => (1, id, None),
                    Event::Dead { id, at } => (2, id, Some(at)),
                    Event::Revived { id, at } => (3, id, Some(at)),
                    Event::Discarded(id) => (4, id, None),
                };
                out.push(tag);
                out.extend_from_slice(&id.get().to_le_bytes());
                if let Some(at) = at {
                    out.extend_from_slice(&at.to_le_bytes());
                }
            }
        }
    }
    out
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    // Records are bounded by the journal's MAX_RECORD_BYTES, far below u32::MAX items.
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn encode_message(m: &Message, out: &mut Vec<u8>) {
    out.extend_from_slice(&m.id.get().to_le_bytes());
    out.extend_from_slice(m.user.as_bytes());
    match m.kind {
        OutboundKind::Response { request_id, code } => {
            out.push(4);
            put_request_id(out, &request_id);
            let code = code.as_str().as_bytes();
            // Codes are a few ASCII characters.
            out.push(code.len() as u8);
            out.extend_from_slice(code);
        }
        OutboundKind::DeviceAlert {
            code,
            device,
            request_id,
        } => {
            out.push(2);
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(device.as_bytes());
            match request_id {
                None => out.push(0),
                Some(r) => {
                    out.push(1);
                    put_request_id(out, &r);
                }
            }
        }
        OutboundKind::DccAlert { code } => {
            out.push(3);
            out.push(match code.family() {
                DccAlertFamily::Ad => 1,
                DccAlertFamily::N => 2,
            });
            out.extend_from_slice(&code.number().to_le_bytes());
        }
    }
    out.extend_from_slice(&m.raised_at.to_le_bytes());
    out.extend_from_slice(&m.held_since.to_le_bytes());
    // Bodies are bounded by MAX_RECORD_BYTES (checked before encoding), so they fit a u32.
    out.extend_from_slice(&(m.body.len() as u32).to_le_bytes());
    out.extend_from_slice(&m.body);
}

fn put_request_id(out: &mut Vec<u8>, r: &RequestId) {
    out.extend_from_slice(r.originator.as_bytes());
    out.extend_from_slice(r.target.as_bytes());
    out.extend_from_slice(&r.counter.to_le_bytes());
}

pub(super) fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    let mut r = Reader { rest: bytes };
    let tag = r.u8()?;
    let count = r.u32()? as usize;
    // Each item takes at least 9 bytes, so a count beyond what is left is a lie: refuse it
    // before it sizes an allocation.
    if count > r.rest.len() / 9 {
        return Err(RecordError::Truncated);
    }
    let record = match tag {
        1 => Record::Enqueued(
            (0..count)
                .map(|_| decode_message(&mut r))
                .collect::<Result<_, _>>()?,
        ),
        2 => Record::Carried(
            (0..count)
                .map(|_| {
                    let m = decode_message(&mut r)?;
                    let dead = match r.u8()? {
                        0 => None,
                        1 => Some(r.i64()?),
                        tag => return Err(RecordError::Tag { field: "dead", tag }),
                    };
                    Ok((m, dead))
                })
                .collect::<Result<_, _>>()?,
        ),
        3 => Record::Events(
            (0..count)
                .map(|_| decode_event(&mut r))
                .collect::<Result<_, _>>()?,
        ),
        tag => {
            return Err(RecordError::Tag {
                field: "record",
                tag,
            })
        }
    };
    if !r.rest.is_empty() {
        return Err(RecordError::Trailing(r.rest.len()));
    }
    Ok(record)
}

fn decode_event(r: &mut Reader<'_>) -> Result<Event, RecordError> {
    let tag = r.u8()?;
    let id = MessageId::new(r.u64()?);
    Ok(match tag {
        1 => Event::Delivered(id),
        2 => Event::Dead { id, at: r.i64()? },
        3 => Event::Revived { id, at: r.i64()? },
        4 => Event::Discarded(id),
        tag => {
            return Err(RecordError::Tag {
                field: "event",
                tag,
            })
        }
    })
}

fn decode_message(r: &mut Reader<'_>) -> Result<Message, RecordError> {
    let id = MessageId::new(r.u64()?);
    let user = r.eui()?;
    let tag = r.u8()?;
    let kind = match tag {
        4 => {
            let request_id = r.request_id()?;
            let len = usize::from(r.u8()?);
            let code = std::str::from_utf8(r.take(len)?)
                .ok()
                .and_then(|c| c.parse().ok())
                .ok_or(RecordError::ResponseCode)?;
            OutboundKind::Response { request_id, code }
        }
        // The code is read from the body below.
        1 => OutboundKind::Response {
            request_id: r.request_id()?,
            code: ResponseCode::I0,
        },
        2 => OutboundKind::DeviceAlert {
            code: r.u16()?,
            device: r.eui()?,
            request_id: match r.u8()? {
                0 => None,
                1 => Some(r.request_id()?),
                tag => {
                    return Err(RecordError::Tag {
                        field: "request",
                        tag,
                    })
                }
            },
        },
        3 => {
            let family = match r.u8()? {
                1 => DccAlertFamily::Ad,
                2 => DccAlertFamily::N,
                tag => {
                    return Err(RecordError::Tag {
                        field: "family",
                        tag,
                    })
                }
            };
            let code = DccAlertCode::from_parts(family, r.u16()?)
                .map_err(|_| RecordError::DccAlertCode)?;
            OutboundKind::DccAlert { code }
        }
        tag => return Err(RecordError::Tag { field: "kind", tag }),
    };
    let raised_at = r.i64()?;
    let held_since = r.i64()?;
    let len = r.u32()? as usize;
    let body = Bytes::copy_from_slice(r.take(len)?);
    let kind = match kind {
        OutboundKind::Response { request_id, .. } if tag == 1 => OutboundKind::Response {
            request_id,
            code: code_in_signed_response(&body).ok_or(RecordError::ResponseCode)?,
        },
        kind => kind,
    };
    Ok(Message {
        id,
        user,
        kind,
        body,
        raised_at,
        held_since,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.rest.len() {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        self.array().map(i64::from_le_bytes)
    }

    fn eui(&mut self) -> Result<Eui64, RecordError> {
        self.array().map(Eui64::from_bytes)
    }

    fn request_id(&mut self) -> Result<RequestId, RecordError> {
        Ok(RequestId {
            originator: self.eui()?,
            target: self.eui()?,
            counter: self.u64()?,
        })
    }
}

/// The code in the header of a Service Response the gateway wrote and signed (the text of its
/// first `ResponseCode` element): how a response recorded before its code was kept beside it
/// gets its code back.
fn code_in_signed_response(body: &[u8]) -> Option<ResponseCode> {
    const TAG: &[u8] = b"ResponseCode>";
    let start = body.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let rest = body.get(start..)?;
    let len = rest.iter().position(|&b| b == b'<')?;
    std::str::from_utf8(rest.get(..len)?).ok()?.parse().ok()
}
