//! The whole fan-out: alerts in, one message per User out, storms summarised, every message a
//! valid DUIS document.

use time::macros::datetime;
use time::OffsetDateTime;

use crate::alerts::{
    AlertKind, AlertMessage, AlertsConfig, AlertsError, DccAlert, DccEvent, DeviceAlert, Fanout,
    FutureDatedAlert, ThrottleConfig,
};
use crate::domain::{RequestId, DCC_ID};
use crate::duis::outbound::{Throttled, WriteError};
use crate::duis::testing::DuisXsd;

use super::*;

fn fanout(burst: u32) -> Fanout {
    let config = AlertsConfig {
        throttle: ThrottleConfig {
            window_secs: 60,
            burst,
            ..ThrottleConfig::default()
        },
        routes: Vec::new(),
    };
    Fanout::new(&config, 100).unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn alert(id: u64, device: &str, code: u16, when: i64) -> DeviceAlert {
    DeviceAlert {
        id,
        device: device_id(device),
        code,
        payload: vec![0xDD, 0, id as u8],
        at: when,
    }
}

fn users(messages: &[AlertMessage]) -> Vec<UserId> {
    messages.iter().map(|m| m.user).collect()
}

#[test]
fn one_message_per_user_named_by_its_response_id() {
    let reg = registry();
    let mut f = fanout(20);
    let now = at(T0 + 60);
    let fanned = f
        .device_alert(&alert(11, ESME, 0x8119, T0 + 59), &reg, now)
        .unwrap();
    assert!(fanned.held.is_empty());
    let [m] = fanned.messages.as_slice() else {
        panic!("{:?}", fanned.messages);
    };
    assert_eq!(
        (
            m.user,
            m.role,
            m.kind,
            m.alert_id,
            m.covers.as_slice(),
            m.throttled,
            m.raised_at
        ),
        (
            user(SUPPLIER),
            Some(UserRole::ImportSupplier),
            AlertKind::Device {
                code: 0x8119,
                device: device_id(ESME)
            },
            11,
            &[11][..],
            None,
            T0 + 59
        )
    );
    assert_eq!(m.response_id, format!("{ESME}:{SUPPLIER}:11"));
    assert!(m
        .xml
        .contains(&format!("<sr:ResponseID>{}</sr:ResponseID>", m.response_id)));
    assert!(m.xml.contains("<sr:AlertCode>8119</sr:AlertCode>"));
    assert_eq!(m.kind.code_label(), "8119");

    // A network-operator code from the same meter: only the network operator.
    let no = f
        .device_alert(&alert(12, ESME, 0x8002, T0 + 59), &reg, now)
        .unwrap();
    assert_eq!(users(&no.messages), vec![user(NETWORK_OPERATOR)]);
}

#[test]
fn a_dated_routing_table_decides_in_place_of_the_configured_one() {
    let reg = registry();
    let mut f = fanout(20);
    let now = at(T0 + 60);
    let dated = crate::alerts::RoutingTable::with_rules(&[crate::alerts::RouteRule {
        codes: "8002".parse().unwrap(),
        to: crate::alerts::Audience::Both,
    }]);
    let by_dated = f
        .device_alert_by(&dated, &alert(12, ESME, 0x8002, T0 + 59), &reg, now)
        .unwrap();
    assert_eq!(
        users(&by_dated.messages),
        vec![user(SUPPLIER), user(NETWORK_OPERATOR)]
    );
    let configured = f
        .device_alert(&alert(13, ESME, 0x8002, T0 + 59), &reg, now)
        .unwrap();
    assert_eq!(users(&configured.messages), vec![user(NETWORK_OPERATOR)]);
}

#[test]
fn after_a_change_of_supplier_alerts_follow_the_new_supplier() {
    let cos = T0 + 1000;
    let reg = after_change_of_supplier(cos);
    let mut f = fanout(20);
    let before = f
        .device_alert(&alert(1, ESME, 0x8119, cos - 10), &reg, at(cos))
        .unwrap();
    let after = f
        .device_alert(&alert(2, ESME, 0x8119, cos + 10), &reg, at(cos + 10))
        .unwrap();
    assert_eq!(users(&before.messages), vec![user(SUPPLIER)]);
    assert_eq!(users(&after.messages), vec![user(SUPPLIER2)]);
}

#[test]
fn a_storm_becomes_a_burst_and_a_summary() {
    let reg = registry();
    let mut f = fanout(2);
    let now = at(T0 + 100);
    let mut sent = Vec::new();
    let mut held = Vec::new();
    for id in 1..=5 {
        let fanned = f
            .device_alert(&alert(id, ESME, 0x8F35, T0 + 100), &reg, now)
            .unwrap();
        sent.extend(fanned.messages);
        held.extend(fanned.held);
    }
    // Another code for the same User is not throttled with it.
    let other = f
        .device_alert(&alert(6, ESME, 0x8002, T0 + 100), &reg, now)
        .unwrap();
    assert_eq!(other.messages.len(), 1);

    assert_eq!(
        sent.iter().map(|m| m.alert_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(held, vec![(user(NETWORK_OPERATOR), 100); 3]);
    assert_eq!(f.held(), 3);
    assert_eq!(f.next_deadline(), Some(T0 + 160));
    assert!(f.tick(at(T0 + 159)).is_empty());
    let summary = f.tick(at(T0 + 160));
    let [s] = summary.as_slice() else {
        panic!("{summary:?}");
    };
    assert_eq!(s.user, user(NETWORK_OPERATOR));
    assert_eq!((s.alert_id, s.covers.as_slice()), (5, &[3, 4, 5][..]));
    assert_eq!(
        s.throttled,
        Some(Throttled {
            sequence_id: 100,
            count: 3
        })
    );
    assert!(s.xml.contains("<sr:ThrottledAlertSequenceId>100</sr:ThrottledAlertSequenceId><sr:ThrottledAlertCount>3</sr:ThrottledAlertCount>"));
    // The summary carries the last alert's own payload.
    assert!(
        s.xml.contains("<sr:GBCSPayload>3QAF</sr:GBCSPayload>"),
        "{}",
        s.xml
    );
    assert_eq!(f.held(), 0);
    assert!(f.flush(at(T0 + 200)).is_empty());
}

fn rid() -> RequestId {
    format!("{SUPPLIER}:{ESME}:77").parse().unwrap()
}

#[test]
fn dcc_alerts_and_future_dated_alerts() {
    let reg = registry();
    let mut f = fanout(20);
    let now = at(T0 + 5);
    let failure = DccAlert {
        id: 9,
        event: DccEvent::CommandFailure {
            request_id: rid(),
            device: device_id(ESME),
            dsp_schedule_id: None,
        },
        at: T0 + 5,
    };
    let fanned = f.dcc_alert(&failure, &reg, now).unwrap();
    let [m] = fanned.messages.as_slice() else {
        panic!("{:?}", fanned.messages);
    };
    assert_eq!((m.user, m.role), (user(SUPPLIER), None));
    assert_eq!(m.kind.code_label(), "N4");
    assert_eq!(m.response_id, format!("{DCC_ID}:{SUPPLIER}:9"));
    assert!(m
        .xml
        .contains(&format!("<sr:RequestID>{}</sr:RequestID>", rid())));

    let fd = FutureDatedAlert {
        id: 10,
        request_id: rid(),
        srv: "1.1.1".parse().unwrap(),
        code: 0x8F66,
        payload: vec![1],
        instruction: 1,
        total_instructions: 1,
        at: T0 + 5,
    };
    let m = Fanout::future_dated(&fd, now).unwrap();
    assert_eq!(
        (m.user, m.kind.code_label()),
        (user(SUPPLIER), "8F66".to_owned())
    );
    assert_eq!(m.response_id, format!("{ESME}:{SUPPLIER}:10"));
    let bad = FutureDatedAlert { code: 0x8F65, ..fd };
    assert_eq!(
        Fanout::future_dated(&bad, now),
        Err(AlertsError::Write(WriteError::NotFutureDated(0x8F65)))
    );
}

#[test]
fn every_message_is_valid_duis() {
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let reg = registry();
    let mut f = fanout(1);
    let now = datetime!(2023-11-14 22:14:00 UTC);
    let mut messages = Vec::new();
    for (id, device, code) in [
        (1, ESME, 0x8119),
        (2, CHF, 0x8F3E),
        (3, GPF, 0x8002),
        (4, ESME, 0x8119),
    ] {
        messages.extend(
            f.device_alert(&alert(id, device, code, T0 + 1), &reg, now)
                .unwrap()
                .messages,
        );
    }
    let events = crate::alerts::power_outage_events(device_id(CHF), &reg, T0 + 1);
    for (i, event) in events.into_iter().enumerate() {
        let alert = DccAlert {
            id: 20 + i as u64,
            event,
            at: T0 + 1,
        };
        messages.extend(f.dcc_alert(&alert, &reg, now).unwrap().messages);
    }
    let change = registration(mpan(), UserRole::ImportSupplier, SUPPLIER2, T0 + 1);
    for (i, event) in crate::alerts::events_for_change(&reg, &change)
        .into_iter()
        .enumerate()
    {
        let alert = DccAlert {
            id: 30 + i as u64,
            event,
            at: T0 + 1,
        };
        messages.extend(f.dcc_alert(&alert, &reg, now).unwrap().messages);
    }
    messages.extend(f.flush(now));
    assert!(messages.iter().any(|m| m.throttled.is_some()));
    assert!(messages.len() >= 7, "{}", messages.len());
    let docs: Vec<&str> = messages.iter().map(|m| m.xml.as_str()).collect();
    if let Err(report) = xsd.validate_all(&docs) {
        panic!("xmllint refused a fanned-out message:\n{report}");
    }
}
