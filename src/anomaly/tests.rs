use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::catalogue::Catalogue;

const USER: &str = "90-B3-D5-1F-30-01-00-00";

fn parse(json: &str) -> Result<Thresholds, ThresholdError> {
    let entries: Vec<Entry> = serde_json::from_str(json).unwrap();
    Thresholds::parse(entries, 7, Catalogue::builtin(), |u| u.to_string() == USER)
}

#[test]
fn the_issue_example_reads() {
    let t = parse(&format!(
        r#"[{{"user": "{USER}", "role": "IS", "srv": "4.1.1", "window_s": 3600, "warning": 80, "quarantine": 100}}]"#
    ))
    .unwrap();
    assert_eq!(t.version, 7);
    assert_eq!(
        t.counts,
        [CountThreshold {
            user: Some(USER.parse().unwrap()),
            role: Some(UserRole::ImportSupplier),
            scope: Scope::Srv("4.1.1".parse().unwrap()),
            window: Window::Hour,
            warning: Some(80),
            quarantine: Some(100),
        }]
    );
    assert_eq!(t.entries.len(), 1);
}

/// Each bad entry, and the refusal it gets (its position is the entry's).
#[test]
fn bad_entries_are_refused_with_their_reason() {
    let u = format!(r#""user": "{USER}""#);
    let cases: Vec<(String, ThresholdError)> = vec![
        (
            r#"{"user": "90-B3-D5-1F-30-09-00-00", "srv": "4.1.1", "window_s": 3600, "quarantine": 1}"#.into(),
            ThresholdError::UnknownUser(0, "90-B3-D5-1F-30-09-00-00".parse().unwrap()),
        ),
        (
            format!(r#"{{{u}, "srv": "4.99.9", "window_s": 3600, "quarantine": 1}}"#),
            ThresholdError::UnknownSrv(0, "4.99.9".into()),
        ),
        (
            format!(r#"{{{u}, "srv": "four", "window_s": 3600, "quarantine": 1}}"#),
            ThresholdError::UnknownSrv(0, "four".into()),
        ),
        (
            format!(r#"{{{u}, "group": 99, "window_s": 3600, "quarantine": 1}}"#),
            ThresholdError::UnknownGroup(0, 99),
        ),
        (
            format!(r#"{{{u}, "srv": "4.1.1", "group": 4, "window_s": 3600, "quarantine": 1}}"#),
            ThresholdError::Scope(0),
        ),
        (
            format!(r#"{{{u}, "srv": "4.1.1", "window_s": 60, "quarantine": 1}}"#),
            ThresholdError::Window(0),
        ),
        (
            format!(r#"{{{u}, "srv": "4.1.1", "window_s": 3600, "warning": 5, "quarantine": 5}}"#),
            ThresholdError::Tiers(0),
        ),
        (
            format!(r#"{{{u}, "srv": "4.1.1", "window_s": 3600}}"#),
            ThresholdError::Tiers(0),
        ),
        (
            r#"{"srv": "4.1.1", "window_s": 3600, "quarantine": 1}"#.into(),
            ThresholdError::NoUser(0),
        ),
        (
            format!(r#"{{"kind": "dcc", {u}, "srv": "4.1.1", "window_s": 3600, "quarantine": 1}}"#),
            ThresholdError::Field(0, "user"),
        ),
        (
            r#"{"kind": "attribute", "attribute": "Colour", "max": 1}"#.into(),
            ThresholdError::UnknownAttribute(0, "Colour".into()),
        ),
        (
            r#"{"kind": "attribute", "attribute": "TOUPrice", "min": 2, "max": 1}"#.into(),
            ThresholdError::Range(0),
        ),
        (
            r#"{"kind": "attribute", "attribute": "TOUPrice"}"#.into(),
            ThresholdError::Range(0),
        ),
        (
            r#"{"kind": "attribute", "attribute": "TOUPrice", "max": 1, "window_s": 3600}"#.into(),
            ThresholdError::Field(0, "window_s"),
        ),
    ];
    for (entry, expected) in cases {
        // After one good entry, so the position is checked too.
        let json =
            format!(r#"[{{{u}, "srv": "4.1.1", "window_s": 86400, "quarantine": 9}}, {entry}]"#);
        let got = parse(&json).unwrap_err();
        let expected = match expected {
            ThresholdError::UnknownUser(_, x) => ThresholdError::UnknownUser(1, x),
            ThresholdError::UnknownSrv(_, x) => ThresholdError::UnknownSrv(1, x),
            ThresholdError::UnknownGroup(_, x) => ThresholdError::UnknownGroup(1, x),
            ThresholdError::Scope(_) => ThresholdError::Scope(1),
            ThresholdError::Window(_) => ThresholdError::Window(1),
            ThresholdError::Tiers(_) => ThresholdError::Tiers(1),
            ThresholdError::NoUser(_) => ThresholdError::NoUser(1),
            ThresholdError::Field(_, f) => ThresholdError::Field(1, f),
            ThresholdError::UnknownAttribute(_, x) => ThresholdError::UnknownAttribute(1, x),
            ThresholdError::Range(_) => ThresholdError::Range(1),
            ThresholdError::TooMany => ThresholdError::TooMany,
        };
        assert_eq!(got, expected, "{entry}");
    }
    // Fields no threshold has are refused by the JSON reader itself.
    assert!(serde_json::from_str::<Vec<Entry>>(r#"[{"users": "x"}]"#).is_err());
}

#[test]
fn attribute_values_are_read_from_every_occurrence() {
    // The public data is outside the repository; without it there is nothing to read.
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let dir = anchors.join("duis-samples/templates");
    let tariff =
        std::fs::read(dir.join("ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_REQUEST_DUIS.XML")).unwrap();
    let body = body_of(&tariff);
    let values = attribute_values(body, &[Attribute::TOUPrice, Attribute::StandingCharge]);
    let mut got: Vec<_> = values.iter().map(|(a, v)| (a.name(), v.unwrap())).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("StandingCharge", 20000),
            ("TOUPrice", 2121),
            ("TOUPrice", 3127),
            ("TOUPrice", 4744)
        ]
    );
    let prepay = std::fs::read(dir.join("ECS08a_2.1_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML")).unwrap();
    let values = attribute_values(body_of(&prepay), &[Attribute::EmergencyCreditLimit]);
    assert_eq!(values, [(Attribute::EmergencyCreditLimit, Some(300_000))]);
    // Names round-trip.
    for a in Attribute::ALL {
        assert_eq!(a.name().parse::<Attribute>(), Ok(*a));
    }
}

/// The body element of a request, as the parser locates it.
fn body_of(xml: &[u8]) -> &[u8] {
    let text = std::str::from_utf8(xml).unwrap();
    let start = text.find("<sr:Body>").unwrap() + "<sr:Body>".len();
    let end = text.find("</sr:Body>").unwrap();
    text[start..end].trim().as_bytes()
}

/// Counts from a table, for the decision.
struct Table(HashMap<(Option<UserId>, Scope, Window), u64>);

impl Counted for Table {
    fn count(
        &self,
        user: Option<UserId>,
        _: Option<UserRole>,
        scope: Scope,
        window: Window,
    ) -> u64 {
        self.0.get(&(user, scope, window)).copied().unwrap_or(0)
    }
}

#[test]
fn an_attribute_limit_quarantines_one_value_and_not_another() {
    let t = parse(
        r#"[{"kind": "attribute", "attribute": "EmergencyCreditLimit", "srv": "2.1", "min": 0, "max": 100000}]"#,
    )
    .unwrap();
    let counts = Table(HashMap::new());
    let decide_on = |values: &[(Attribute, Option<i64>)], srv: &str| {
        let facts = Facts {
            user: USER.parse().unwrap(),
            role: UserRole::ImportSupplier,
            srv: srv.parse().unwrap(),
            values,
        };
        decide(&t, &facts, &counts).quarantine.map(|b| b.kind)
    };
    let limit = Attribute::EmergencyCreditLimit;
    assert_eq!(decide_on(&[(limit, Some(100_000))], "2.1"), None);
    assert_eq!(
        decide_on(&[(limit, Some(100_001))], "2.1"),
        Some(BreachKind::AttributeLimits)
    );
    assert_eq!(
        decide_on(&[(limit, None)], "2.1"),
        Some(BreachKind::AttributeLimits)
    );
    // Another variant is not bounded by this limit.
    assert_eq!(decide_on(&[(limit, Some(100_001))], "2.3"), None);
}

fn counted(user: u64, dcc: u64) -> Table {
    let scope = Scope::Srv("4.1.1".parse().unwrap());
    Table(HashMap::from([
        ((Some(USER.parse().unwrap()), scope, Window::Hour), user),
        ((None, scope, Window::Hour), dcc),
    ]))
}

proptest! {
    /// The decision against a User threshold (warning w, quarantine q) and a DCC threshold
    /// (quarantine d) on any counts: quarantined exactly when a count has reached its tier, the
    /// User's breach named first; a warning exactly at the crossing.
    #[test]
    fn the_decision_follows_the_tiers(w in 0u64..50, gap in 1u64..50, d in 0u64..200, user in 0u64..200, dcc in 0u64..200) {
        let q = w + gap;
        let t = parse(&format!(
            r#"[{{"user": "{USER}", "srv": "4.1.1", "window_s": 3600, "warning": {w}, "quarantine": {q}}},
                {{"kind": "dcc", "srv": "4.1.1", "window_s": 3600, "quarantine": {d}}}]"#
        )).unwrap();
        let facts = Facts { user: USER.parse().unwrap(), role: UserRole::GasSupplier, srv: "4.1.1".parse().unwrap(), values: &[] };
        let v = decide(&t, &facts, &counted(user, dcc));
        let expected = if user >= q {
            Some(BreachKind::UserThreshold)
        } else if dcc >= d {
            Some(BreachKind::DccThreshold)
        } else {
            None
        };
        prop_assert_eq!(v.quarantine.as_ref().map(|b| b.kind), expected);
        let warned = v.warnings.iter().any(|x| x.kind == BreachKind::UserThreshold);
        prop_assert_eq!(warned, expected.is_none() && user == w);
    }

    /// Any JSON array of entries is read or refused, never a panic.
    #[test]
    fn any_entries_are_checked_without_panicking(
        srv in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}",
        group in proptest::option::of(0u8..20),
        window in proptest::option::of(prop_oneof![Just(3600u32), Just(86400), 0u32..100000]),
        warning in proptest::option::of(0u64..10),
        quarantine in proptest::option::of(0u64..10),
    ) {
        let e = Entry { user: Some(USER.parse().unwrap()), srv: Some(srv), group, window_s: window, warning, quarantine, ..Entry::default() };
        let _ = Thresholds::parse(vec![e], 1, Catalogue::builtin(), |_| true);
    }
}
