use std::collections::BTreeMap;

use super::*;
use crate::audit::{
    Audit, DeliveryOutcome, DeliveryRecord, Message, RequestRecord, Rotation, Timings, ACCEPTED,
};
use crate::domain::{RequestId, UserId};

const USERS: [&str; 3] = [
    "90-B3-D5-1F-30-01-00-00",
    "90-B3-D5-1F-30-02-00-00",
    "00-DB-12-34-56-78-00-04",
];
/// (SRV, on-demand) — 4.1.1 and 11.2 are on-demand, 5.1 is not.
const SRVS: [(&str, bool); 3] = [("4.1.1", true), ("11.2", true), ("5.1", false)];

/// A small deterministic generator (xorshift), so the month is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn request(at_ms: i64, user: UserId, counter: u64, srv: &str, on_demand: bool) -> RequestRecord {
    let request_id: RequestId = format!("{user}:00-DB-12-34-56-78-90-A0:{counter}")
        .parse()
        .unwrap();
    RequestRecord {
        at_ms,
        service: "send".into(),
        tls_user: user,
        tls_role: "02".into(),
        request_id: Some(request_id),
        srv: Some(srv.parse().unwrap()),
        role: None,
        class: None,
        device: Some(request_id.target),
        on_demand,
        rules: None,
        decision: ACCEPTED.into(),
        code: "I99".into(),
        response_follows: true,
        timings: Timings {
            total_us: 2_000,
            ..Timings::default()
        },
        bytes_in: 1_000 + counter % 500,
        bytes_out: 1_400,
    }
}

fn delivery(at_ms: i64, r: &RequestRecord, attempt: u32, outcome: DeliveryOutcome) -> AuditEvent {
    AuditEvent::Delivery(DeliveryRecord {
        at_ms,
        message_id: format!("m-{}", r.request_id.unwrap().counter),
        user: r.user(),
        message: Message::Response {
            request_id: r.request_id.unwrap(),
            code: "I0".into(),
        },
        attempt,
        outcome,
        http_status: (outcome == DeliveryOutcome::Delivered).then_some(200),
        raised_at_ms: r.at_ms + 1_000,
        bytes: 2_000,
    })
}

/// What the test expects, counted while it decides each request's fate.
#[derive(Default)]
struct Expected {
    families: BTreeMap<u8, (u64, u64, u64, u64)>,
    refused: u64,
    usage: BTreeMap<UserId, (u64, u64, u64, u64, u64, u64)>,
}

/// A month of traffic (May 2024) with a little of April and June around it, in time order.
fn generate() -> (Vec<AuditEvent>, Expected) {
    let may = Month::new(2024, 5).unwrap();
    let (start, end) = (may.start_ms(), may.end_ms());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut timed: Vec<AuditEvent> = Vec::new();
    let mut exp = Expected::default();
    for counter in 0..3_000u64 {
        let at = start - 3_600_000 + rng.below((end - start + 7_200_000) as u64) as i64;
        let in_month = may.contains(at);
        let user: UserId = USERS[rng.below(3) as usize].parse().unwrap();
        let (srv, on_demand) = SRVS[rng.below(3) as usize];
        let family: u8 = srv.split('.').next().unwrap().parse().unwrap();
        let target_ms = if srv == "11.2" { 60_000 } else { 25_000 };
        let mut r = request(at, user, counter, srv, on_demand);
        let fate = rng.below(10);
        let u = exp.usage.entry(user).or_default();
        if in_month {
            u.0 += 1;
            u.2 += r.bytes_in;
            u.3 += r.bytes_out;
        }
        if fate == 0 {
            r.decision = "not_registered".into();
            r.code = "E4".into();
            r.response_follows = false;
            exp.refused += u64::from(in_month);
            timed.push(AuditEvent::Request(r));
            continue;
        }
        u.1 += u64::from(in_month);
        use DeliveryOutcome::*;
        // Whether the response is within target (`None`: never delivered), and the delivery
        // attempts that say so.
        let (within, attempts) = match fate {
            // A synchronous answer (e.g. a non-device request), well within target.
            1 => {
                r.response_follows = false;
                r.code = "I0".into();
                (Some(true), vec![])
            }
            // Delivered in time, after one failed attempt.
            2..=6 => {
                let delay = rng.below(target_ms) as i64;
                (
                    Some(true),
                    vec![(at + delay / 2, 1, Failed), (at + delay, 2, Delivered)],
                )
            }
            // Delivered late.
            7 | 8 => {
                let delay = target_ms as i64 + 1 + rng.below(600_000) as i64;
                (Some(false), vec![(at + delay, 1, Delivered)])
            }
            // Never delivered: dead-lettered after the hold time.
            _ => (None, vec![(at + 172_800_000, 9, DeadLettered)]),
        };
        if in_month && on_demand {
            let f = exp.families.entry(family).or_default();
            f.0 += 1;
            match within {
                Some(true) => f.1 += 1,
                Some(false) => f.2 += 1,
                None => f.3 += 1,
            }
        }
        // The request goes before its deliveries (the sort below is stable).
        timed.push(AuditEvent::Request(r.clone()));
        for (t, attempt, outcome) in attempts {
            timed.push(delivery(t, &r, attempt, outcome));
            if outcome == Delivered && may.contains(t) {
                let u = exp.usage.entry(user).or_default();
                u.4 += 1;
                u.5 += 2_000;
            }
        }
    }
    timed.sort_by_key(AuditEvent::at_ms);
    exp.usage.retain(|_, u| *u != (0, 0, 0, 0, 0, 0));
    (timed, exp)
}

#[test]
fn reports_on_a_generated_month_match_independent_counts() {
    let (events, exp) = generate();
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::open(dir.path(), Rotation::default()).unwrap();
    let receipts: Vec<_> = events.iter().map(|e| audit.record(e)).collect();
    for r in receipts {
        r.durable_blocking().unwrap();
    }
    let month: Month = "2024-05".parse().unwrap();
    let targets = Targets {
        default_seconds: 25.0,
        by_srv: [("11".to_owned(), 60.0)].into(),
    };

    let perf = performance(dir.path(), month, &targets).unwrap();
    assert_eq!(perf.refused, exp.refused);
    let got: BTreeMap<u8, (u64, u64, u64, u64)> = perf
        .families
        .iter()
        .map(|(k, f)| (*k, (f.responses, f.within_target, f.late, f.undelivered)))
        .collect();
    let want: BTreeMap<_, _> = exp.families.into_iter().filter(|(_, v)| v.0 > 0).collect();
    assert_eq!(got, want);
    assert!(perf.total.responses > 1_000);
    let share = perf.total.within_target as f64 * 100.0 / perf.total.responses as f64;
    assert!((perf.total.percent_within_target - share).abs() < 1e-9);

    let usage = usage(dir.path(), month).unwrap();
    let got: BTreeMap<UserId, _> = usage
        .users
        .iter()
        .map(|(k, u)| {
            let by_srv: u64 = u.by_srv.values().map(|s| s.requests).sum();
            assert_eq!(by_srv, u.requests);
            (
                *k,
                (
                    u.requests,
                    u.accepted,
                    u.bytes_in,
                    u.bytes_out,
                    u.delivered_messages,
                    u.delivered_bytes,
                ),
            )
        })
        .collect();
    assert_eq!(got, exp.usage);

    // Both render, as text and as JSON.
    let text = performance_text(&perf);
    assert!(text.contains("2024-05") && text.contains("all"), "{text}");
    let json: serde_json::Value = serde_json::to_value(&perf).unwrap();
    assert_eq!(json["month"], "2024-05");
    assert_eq!(json["total"]["responses"], perf.total.responses);
    assert!(usage_text(&usage).contains(USERS[0]));
}

#[test]
fn months_parse_and_bound() {
    let m: Month = "2024-12".parse().unwrap();
    assert_eq!(m.to_string(), "2024-12");
    assert_eq!(m.start_ms(), 1_733_011_200_000);
    assert_eq!(m.end_ms(), 1_735_689_600_000);
    assert!(m.contains(m.start_ms()) && !m.contains(m.end_ms()));
    let feb: Month = "2024-02".parse().unwrap();
    assert_eq!((feb.end_ms() - feb.start_ms()) / 86_400_000, 29);
    for bad in [
        "2024-13",
        "2024-00",
        "2024-5",
        "24-05",
        "2024/05",
        "",
        "2024-05-01",
    ] {
        assert!(bad.parse::<Month>().is_err(), "{bad}");
    }
}

#[test]
fn the_longest_srv_prefix_sets_the_target() {
    let t = Targets {
        default_seconds: 25.0,
        by_srv: [
            ("4".to_owned(), 30.0),
            ("4.1".to_owned(), 40.0),
            ("4.1.1".to_owned(), 50.0),
            ("1".to_owned(), 5.0),
        ]
        .into(),
    };
    let cases = [
        ("4.1.1", 50_000),
        ("4.1.2", 40_000),
        ("4.2", 30_000),
        ("11.2", 25_000),
        ("1.1.1", 5_000),
        ("14.1", 25_000),
    ];
    for (srv, want) in cases {
        assert_eq!(t.target_ms(&srv.parse().unwrap()), want, "{srv}");
    }
}

#[test]
fn the_usage_report_lists_each_users_warnings_and_quarantines_in_the_month() {
    use crate::audit::AnomalyRecord;
    let month: Month = "2024-05".parse().unwrap();
    let user: UserId = USERS[0].parse().unwrap();
    let id: RequestId = format!("{}:00-DB-12-34-56-78-90-A0:7", USERS[0])
        .parse()
        .unwrap();
    let record = |at_ms: i64, action: &str, reference: Option<u64>| {
        AuditEvent::Anomaly(AnomalyRecord {
            at_ms,
            action: action.into(),
            user: Some(user),
            request_id: Some(id),
            srv: Some("4.1.1".parse().unwrap()),
            breach: Some("user_threshold".into()),
            reference,
            detail: None,
        })
    };
    let start = month.start_ms();
    let mut usage = Usage::new(month);
    for e in [
        record(start - 1, "warning", None),
        record(start + 1, "warning", None),
        record(start + 2, "quarantined", Some(9)),
        record(start + 3, "released", Some(9)),
        record(month.end_ms(), "quarantined", Some(10)),
    ] {
        usage.add(&e);
    }
    // A threshold change names no User: it is in the trail, not in a User's lines.
    usage.add(&AuditEvent::Anomaly(AnomalyRecord {
        at_ms: start + 4,
        action: "thresholds".into(),
        user: None,
        request_id: None,
        srv: None,
        breach: None,
        reference: None,
        detail: Some("version 2: 1 entries".into()),
    }));
    let report = usage.finish();
    let lines = &report.users[&user].anomalies;
    let actions: Vec<_> = lines
        .iter()
        .map(|a| (a.action.as_str(), a.reference))
        .collect();
    assert_eq!(
        actions,
        [
            ("warning", None),
            ("quarantined", Some(9)),
            ("released", Some(9))
        ]
    );
    let text = usage_text(&report);
    assert!(text.contains("Anomaly detection:"), "{text}");
    assert!(
        text.contains("quarantined") && text.contains("ref 9"),
        "{text}"
    );
}
