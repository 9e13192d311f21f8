use std::time::Duration;

use dccgw::domain::{ResponseCode, DCC_ID};
use dccgw::duis::{self, ResponseHeaderOut, ResponsePayload};
use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;
use crate::plan::{Plan, Planned, PlannedStep};

fn response(id: &RequestId, code: ResponseCode) -> String {
    let header = ResponseHeaderOut {
        request_id: Some(*id),
        response_id: Some(id.response_id()),
        code,
        date_time: OffsetDateTime::now_utc(),
    };
    duis::write_response(
        &header,
        "4.1".parse().unwrap(),
        "4.1.1".parse().unwrap(),
        &ResponsePayload::GbcsPayload(vec![1, 2, 3]),
    )
}

fn plan(originator: UserId, device: UserId) -> (Arc<Plan>, Arc<Vec<UserId>>) {
    let items = (0..3)
        .map(|i| Planned {
            at_ns: i * 1_000_000,
            step: 0,
            class: 0,
            user: 0,
            target: device,
        })
        .collect();
    let plan = Plan {
        items,
        steps: vec![PlannedStep {
            rate: 1000.0,
            start_ns: 0,
            end_ns: 3_000_000,
        }],
        counter_base: 500,
    };
    (Arc::new(plan), Arc::new(vec![originator]))
}

const USER: &str = "90-B3-D5-1F-30-01-00-00";
const ESME: &str = "00-DB-12-34-56-78-90-A0";

#[test]
fn reads_service_responses_and_alerts() {
    let id: RequestId = format!("{USER}:{ESME}:501").parse().unwrap();
    assert_eq!(
        parse_delivery(response(&id, ResponseCode::I0).as_bytes()),
        Delivery::Response {
            request_id: id,
            code: Some("I0".into())
        }
    );
    let alert = "<sr:Response xmlns:sr=\"x\"><sr:Header><sr:ResponseCode>I0</sr:ResponseCode></sr:Header>\
        <sr:Body><sr:DeviceAlertMessage><sr:AlertCode>8F66</sr:AlertCode></sr:DeviceAlertMessage></sr:Body></sr:Response>";
    assert_eq!(
        parse_delivery(alert.as_bytes()),
        Delivery::Alert {
            code: "8F66".into()
        }
    );
    let dcc = "<Response><Header><RequestID>a</RequestID></Header><Body><DCCAlertMessage>\
        <DCCAlertCode>N12</DCCAlertCode></DCCAlertMessage></Body></Response>";
    assert_eq!(
        parse_delivery(dcc.as_bytes()),
        Delivery::Alert { code: "N12".into() }
    );
    let fd = "<x:FutureDatedDeviceAlertMessage><x:FutureDatedAlertCode>8F67</x:FutureDatedAlertCode></x:FutureDatedDeviceAlertMessage>";
    assert_eq!(
        parse_delivery(fd.as_bytes()),
        Delivery::Alert {
            code: "8F67".into()
        }
    );
    assert_eq!(parse_delivery(b"\xff\xfe"), Delivery::Unreadable);
    assert_eq!(parse_delivery(b"<Response/>"), Delivery::Unreadable);
}

#[test]
fn matches_responses_to_requests_once() {
    let user: UserId = USER.parse().unwrap();
    let esme: UserId = ESME.parse().unwrap();
    let (plan, originators) = plan(user, esme);
    let start = Instant::now();
    let table = Deliveries::new(plan, originators, start);
    let id = |c: u64| RequestId {
        originator: user,
        target: esme,
        counter: c,
    };
    let at = start + Duration::from_millis(7);
    assert!(table.record(
        parse_delivery(response(&id(501), ResponseCode::I0).as_bytes()),
        at
    ));
    // A duplicate delivery does not move the first arrival.
    table.record(
        parse_delivery(response(&id(501), ResponseCode::I0).as_bytes()),
        at + Duration::from_secs(1),
    );
    table.record(
        parse_delivery(response(&id(502), ResponseCode::E21).as_bytes()),
        at,
    );
    // Not this run's: counter outside the plan, or another originator or target.
    table.record(
        parse_delivery(response(&id(900), ResponseCode::I0).as_bytes()),
        at,
    );
    let other = RequestId {
        target: DCC_ID,
        ..id(500)
    };
    table.record(
        parse_delivery(response(&other, ResponseCode::I0).as_bytes()),
        at,
    );
    assert!(!table.record(Delivery::Unreadable, at));
    let lat: Vec<(usize, u64)> = table.latencies().collect();
    // Request 1 (counter 501) was due at 1 ms, request 2 at 2 ms.
    assert_eq!(lat, [(1, 6_000_000), (2, 5_000_000)]);
    assert_eq!(table.duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(table.unmatched.load(Ordering::Relaxed), 2);
    assert_eq!(table.unreadable.load(Ordering::Relaxed), 1);
    let codes = table.codes.lock().unwrap().clone();
    assert_eq!(codes.get("I0"), Some(&1));
    assert_eq!(codes.get("E21"), Some(&1));
}

proptest! {
    #[test]
    fn never_panics_on_any_delivery(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_delivery(&body);
    }

    #[test]
    fn never_panics_on_near_misses(code in "[A-Za-z0-9<>:/ ]{0,40}") {
        let text = format!("<sr:Response><sr:Header><sr:RequestID>{code}</sr:RequestID><sr:ResponseCode>{code}</sr:ResponseCode></sr:Header><sr:Body><sr:DeviceAlertMessage><sr:AlertCode>{code}");
        let _ = parse_delivery(text.as_bytes());
    }
}
