//! The hub process's record of what the simulated network did (`raised_log` in its
//! configuration): every event it raised, one JSON object a line, appended before the event is
//! offered to the gateway. So the record holds everything the gateway could have received, and
//! a run can be checked against it afterwards ("did every raised alert reach its Users?") or
//! just read ("what did the network do?"). A line:
//!
//! ```json
//! {"epoch":1767225600123,"seq":42,"kind":"alert","device":"00-DB-12-34-56-78-90-A0","code":"8F35","frame_counter":17,"at":1767225601}
//! ```
//!
//! - `epoch`, `seq`: the hub process's instance and the event's sequence number on the event
//!   stream (`serve.rs`); a restarted hub appends with a new epoch.
//! - `kind`: `response`, `unreachable`, `alert` or `future_dated`; `device` the device;
//!   `at` when it happened (unix seconds, as the event says).
//! - `code`: the GBCS alert code, four hex digits (alerts and future-dated alerts).
//! - `request_id`: the command answered (responses, unreachable reports, future-dated alerts).
//! - `frame_counter`: the originator counter of the alert's GBCS frame — what the delivered
//!   `DeviceAlertMessage`'s `GBCSPayload` carries, and one sequence for the whole simulated
//!   fleet, so (`device`, `code`, `frame_counter`) names one raised alert within one epoch.
//!
//! Lines are written to the operating system before the event is offered, not fsynced: the
//! events themselves live in the hub's memory only, so a crash of the hub loses both alike.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::dispatch::HubEvent;
use crate::domain::{DeviceId, RequestId};

use crate::gbcs::Apdu;

/// What kind of event a line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaisedKind {
    Response,
    Unreachable,
    Refused,
    Alert,
    FutureDated,
}

/// One line of the raised-events log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raised {
    pub epoch: u64,
    pub seq: u64,
    pub kind: RaisedKind,
    pub device: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_code")]
    pub code: Option<u16>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::registry::text::option"
    )]
    pub request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_counter: Option<u64>,
    pub at: i64,
}

impl Raised {
    /// The record of `event`, offered as `seq` of `epoch`.
    pub fn of(epoch: u64, seq: u64, event: &HubEvent) -> Self {
        let counter = |payload: &[u8]| {
            Apdu::decode(payload)
                .ok()
                .map(|a| a.general_signing().transaction.counter)
        };
        let (kind, code, request_id, frame_counter, at) = match event {
            HubEvent::Response { request_id, at, .. } => {
                (RaisedKind::Response, None, Some(*request_id), None, *at)
            }
            HubEvent::Unreachable { request_id, at, .. } => {
                (RaisedKind::Unreachable, None, Some(*request_id), None, *at)
            }
            HubEvent::Refused { request_id, at, .. } => {
                (RaisedKind::Refused, None, Some(*request_id), None, *at)
            }
            HubEvent::Alert {
                code, payload, at, ..
            } => (RaisedKind::Alert, Some(*code), None, counter(payload), *at),
            HubEvent::FutureDated {
                request_id,
                code,
                payload,
                at,
                ..
            } => (
                RaisedKind::FutureDated,
                Some(*code),
                Some(*request_id),
                counter(payload),
                *at,
            ),
        };
        Self {
            epoch,
            seq,
            kind,
            device: event.device(),
            code,
            request_id,
            frame_counter,
            at,
        }
    }

    /// One line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        // Numbers and strings only: serialising cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Reads one line (without its newline).
    pub fn parse_line(line: &str) -> Result<Self, RaisedError> {
        serde_json::from_str(line).map_err(RaisedError::Line)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RaisedError {
    #[error("cannot open the raised-events log {path}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to the raised-events log")]
    Write(#[source] std::io::Error),
    #[error("a line of the raised-events log is not a record")]
    Line(#[source] serde_json::Error),
}

/// The file the hub appends its records to.
pub struct RaisedLog {
    file: tokio::fs::File,
}

impl RaisedLog {
    /// Opens `path` for appending, creating it if needed (earlier runs' lines stay).
    pub async fn open(path: &Path) -> Result<Self, RaisedError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| RaisedError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self { file })
    }

    /// Appends `records` and hands them to the operating system; returns once they are there.
    pub async fn append(&mut self, records: &[Raised]) -> Result<(), RaisedError> {
        let mut text = Vec::with_capacity(records.len() * 160);
        for r in records {
            text.extend_from_slice(&r.to_line());
        }
        self.file
            .write_all(&text)
            .await
            .map_err(RaisedError::Write)?;
        self.file.flush().await.map_err(RaisedError::Write)
    }
}

/// A GBCS alert code as DUIS writes it: four hex digits.
mod hex_code {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(code) => s.collect_str(&format_args!("{code:04X}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(de::Error::custom("an alert code is four hex digits"));
        }
        u16::from_str_radix(&text, 16)
            .map(Some)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbcs::usecase::alert_frame;
    use crate::gbcs::MessageCode;

    const DEVICE: &str = "00-DB-12-34-56-78-90-A0";
    const REQUEST: &str = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:12";

    fn device() -> DeviceId {
        DEVICE.parse().unwrap()
    }

    #[test]
    fn every_kind_of_event_reads_back_as_it_was_written() {
        let (device, rid): (DeviceId, RequestId) = (device(), REQUEST.parse().unwrap());
        let frame = alert_frame(
            device,
            crate::domain::DCC_ID,
            77,
            MessageCode(0x1000),
            vec![],
        )
        .encode()
        .unwrap();
        let cases = [
            (
                HubEvent::Response {
                    request_id: rid,
                    device,
                    payload: vec![1, 2],
                    at: 5,
                },
                (RaisedKind::Response, None, Some(rid), None),
            ),
            (
                HubEvent::Unreachable {
                    request_id: rid,
                    device,
                    at: 5,
                },
                (RaisedKind::Unreachable, None, Some(rid), None),
            ),
            (
                HubEvent::Refused {
                    request_id: rid,
                    device,
                    at: 5,
                },
                (RaisedKind::Refused, None, Some(rid), None),
            ),
            (
                HubEvent::Alert {
                    device,
                    code: 0x8F35,
                    payload: frame.clone(),
                    at: 5,
                },
                (RaisedKind::Alert, Some(0x8F35), None, Some(77)),
            ),
            (
                HubEvent::FutureDated {
                    request_id: rid,
                    srv: "1.1.1".parse().unwrap(),
                    device,
                    code: 0x8F66,
                    payload: vec![0xFF],
                    at: 5,
                },
                (RaisedKind::FutureDated, Some(0x8F66), Some(rid), None),
            ),
        ];
        for (event, (kind, code, request_id, frame_counter)) in cases {
            let r = Raised::of(3, 9, &event);
            assert_eq!(
                (r.kind, r.code, r.request_id, r.frame_counter),
                (kind, code, request_id, frame_counter),
                "{event:?}"
            );
            assert_eq!((r.epoch, r.seq, r.device, r.at), (3, 9, device, 5));
            let line = r.to_line();
            assert_eq!(line.last(), Some(&b'\n'));
            let text = std::str::from_utf8(&line[..line.len() - 1]).unwrap();
            assert_eq!(Raised::parse_line(text).unwrap(), r, "{text}");
        }
    }

    #[test]
    fn codes_are_four_hex_digits_and_nothing_else_reads() {
        let alert = Raised::of(
            1,
            1,
            &HubEvent::Alert {
                device: device(),
                code: 0x8002,
                payload: Vec::new(),
                at: 0,
            },
        );
        let text = String::from_utf8(alert.to_line()).unwrap();
        assert!(text.contains(r#""code":"8002""#), "{text}");
        assert!(!text.contains("frame_counter"), "{text}");
        let line = |code: &str| {
            format!(
                r#"{{"epoch":1,"seq":1,"kind":"alert","device":"{DEVICE}","code":"{code}","at":0}}"#
            )
        };
        assert_eq!(
            Raised::parse_line(&line("8f1c")).unwrap().code,
            Some(0x8F1C)
        );
        for bad in ["8F1", "8F1C0", "+8F1", "XYZW", ""] {
            assert!(Raised::parse_line(&line(bad)).is_err(), "{bad}");
        }
        assert!(Raised::parse_line(r#"{"epoch":1}"#).is_err());
        assert!(Raised::parse_line(&line("8F1C").replace(r#""at":0"#, r#""at":0,"x":1"#)).is_err());
    }

    #[tokio::test]
    async fn appends_keep_earlier_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raised.ndjson");
        let event = HubEvent::Unreachable {
            request_id: REQUEST.parse().unwrap(),
            device: device(),
            at: 1,
        };
        for seq in 1..=2 {
            let mut log = RaisedLog::open(&path).await.unwrap();
            log.append(&[Raised::of(seq, seq, &event)]).await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| Raised::parse_line(l).unwrap().seq)
            .collect();
        assert_eq!(seqs, [1, 2]);
        assert!(RaisedLog::open(&dir.path().join("no/such/dir/x"))
            .await
            .is_err());
    }
}
