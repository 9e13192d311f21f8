//! The routing table and `route`: families to audiences, audiences to registered Users at the
//! alert's time, overrides from configuration.

use proptest::prelude::*;

use super::*;
use crate::alerts::{
    route, AlertsConfig, AlertsError, Audience, CodeRange, DeviceAlert, Recipient, RouteRule,
    RoutingTable,
};

fn alert(device: &str, code: u16, at: i64) -> DeviceAlert {
    DeviceAlert {
        id: 1,
        device: device_id(device),
        code,
        payload: vec![0xDD],
        at,
    }
}

fn to(who: &str, role: UserRole) -> Recipient {
    Recipient {
        user: user(who),
        role: Some(role),
    }
}

#[test]
fn builtin_families() {
    use Audience::*;
    let table = RoutingTable::builtin();
    let cases = [
        (0x8002, NetworkOperator), // voltage: SRV 6.22 network-operator list
        (0x8014, NetworkOperator),
        (0x809C, NetworkOperator),
        (0x810D, Supplier), // SRV 6.22 supplier lists
        (0x81C6, Supplier),
        (0x8F35, NetworkOperator), // supply outage restored
        (0x8F3C, NetworkOperator),
        (0x8F34, Supplier), // non-configurable, critical: supplier
        (0x8F3D, Supplier),
        (0x8F66, Supplier),
        (0x0000, Supplier), // unknown: the supplier, never dropped
        (0xFFFF, Supplier),
    ];
    for (code, want) in cases {
        assert_eq!(table.audience(code), want, "{code:04X}");
    }
}

#[test]
fn code_ranges_parse_and_print() {
    let ok = [
        ("8F35", (0x8F35, 0x8F35), "8F35"),
        ("8f35", (0x8F35, 0x8F35), "8F35"),
        ("0-FFFF", (0, 0xFFFF), "0000-FFFF"),
        ("8000-80ff", (0x8000, 0x80FF), "8000-80FF"),
        ("1-1", (1, 1), "0001"),
    ];
    for (text, (first, last), shown) in ok {
        let r: CodeRange = text.parse().unwrap();
        assert_eq!((r.first(), r.last()), (first, last), "{text}");
        assert_eq!(r.to_string(), shown);
    }
    for bad in [
        "",
        "-",
        "8F35-",
        "12345",
        "0x8F",
        "8G00",
        "80FF-8000",
        " 8F35",
        "8F35-8F36-8F37",
    ] {
        assert!(bad.parse::<CodeRange>().is_err(), "{bad}");
    }
    assert_eq!(
        "80FF-8000".parse::<CodeRange>(),
        Err(AlertsError::EmptyCodeRange {
            first: 0x80FF,
            last: 0x8000
        })
    );
}

#[test]
fn configured_rules_override_the_narrowest_match() {
    let config: AlertsConfig = toml::from_str(
        r#"
        [throttle]
        burst = 5
        [[routes]]
        codes = "8F35"
        to = "both"
        [[routes]]
        codes = "8000-80FF"
        to = "supplier"
        "#,
    )
    .unwrap();
    assert_eq!(config.throttle.burst, 5);
    assert_eq!(config.throttle.window_secs, 60);
    let table = RoutingTable::with_rules(&config.routes);
    assert_eq!(table.audience(0x8F35), Audience::Both); // narrower than the built-in 8F35-8F3C
    assert_eq!(table.audience(0x8F36), Audience::NetworkOperator);
    assert_eq!(table.audience(0x8002), Audience::Supplier); // same width: configured wins
    assert_eq!(table.rules().len(), 6);
    // A misspelt key or an unknown audience fails start-up.
    for bad in [
        "[[routes]]\ncodes = \"8F35\"\nto = \"everyone\"",
        "[[routes]]\ncode = \"8F35\"\nto = \"both\"",
        "[throttle]\nwindow = 5",
        "[[routes]]\ncodes = \"8F35-8F\"\nto = \"both\"",
    ] {
        assert!(toml::from_str::<AlertsConfig>(bad).is_err(), "{bad}");
    }
}

#[test]
fn supplier_family_reaches_only_the_supplier_and_network_family_only_the_network_operator() {
    let reg = registry();
    let table = RoutingTable::builtin();
    let at = T0 + 10;
    use UserRole::*;
    let cases: [(&str, u16, Vec<Recipient>); 7] = [
        (ESME, 0x8119, vec![to(SUPPLIER, ImportSupplier)]),
        (
            ESME,
            0x8002,
            vec![to(NETWORK_OPERATOR, ElectricityDistributor)],
        ),
        (
            ESME,
            0x8F35,
            vec![to(NETWORK_OPERATOR, ElectricityDistributor)],
        ),
        (GSME, 0x8119, vec![to(SUPPLIER, GasSupplier)]),
        (GPF, 0x8002, vec![to(NETWORK_OPERATOR, GasTransporter)]),
        // No MPxN of its own: the meter points behind its hub, MPAN then MPRN; one copy each.
        (CHF, 0x8F3E, vec![to(SUPPLIER, ImportSupplier)]),
        (
            PPMID,
            0x8002,
            vec![to(NETWORK_OPERATOR, ElectricityDistributor)],
        ),
    ];
    for (device, code, want) in cases {
        let got = route(&table, &alert(device, code, at), &reg).unwrap();
        assert_eq!(got, want, "{device} {code:04X}");
    }
    // Both: each User once, supplier first.
    let both = RoutingTable::with_rules(&[RouteRule {
        codes: CodeRange::single(0x8F40),
        to: Audience::Both,
    }]);
    let got = route(&both, &alert(IHD, 0x8F40, at), &reg).unwrap();
    assert_eq!(
        got,
        vec![
            to(SUPPLIER, ImportSupplier),
            to(NETWORK_OPERATOR, ElectricityDistributor)
        ]
    );
}

#[test]
fn alerts_follow_the_registration_in_force_at_the_alert() {
    let cos = T0 + 1000;
    let reg = after_change_of_supplier(cos);
    let table = RoutingTable::builtin();
    let cases = [
        (cos - 1, SUPPLIER),
        (cos, SUPPLIER2),
        (cos + 86_400, SUPPLIER2),
    ];
    for (at, who) in cases {
        let got = route(&table, &alert(ESME, 0x8119, at), &reg).unwrap();
        assert_eq!(got, vec![to(who, UserRole::ImportSupplier)], "at {at}");
    }
    // The gas side did not change.
    let gas = route(&table, &alert(GSME, 0x8119, cos + 5), &reg).unwrap();
    assert_eq!(gas, vec![to(SUPPLIER, UserRole::GasSupplier)]);
}

#[test]
fn unroutable_alerts_say_why() {
    let reg = registry();
    let table = RoutingTable::builtin();
    let unknown = alert("00-00-00-00-00-00-00-01", 0x8119, T0);
    assert_eq!(
        route(&table, &unknown, &reg),
        Err(AlertsError::UnknownDevice(unknown.device))
    );
    // Before any registration starts, and behind a hub with no meters.
    for (device, at) in [(ESME, T0 - 1), (LONELY_CHF, T0 + 1)] {
        let a = alert(device, 0x8119, at);
        assert_eq!(
            route(&table, &a, &reg),
            Err(AlertsError::NoRecipient {
                device: a.device,
                code: 0x8119
            })
        );
    }
}

proptest! {
    /// Every code has exactly one audience, the same as a brute-force reading of the rules.
    #[test]
    fn narrowest_rule_decides(code in any::<u16>(), rules in proptest::collection::vec((any::<u16>(), any::<u16>(), 0..3u8), 0..6)) {
        let configured: Vec<RouteRule> = rules.iter().map(|(a, b, t)| RouteRule {
            codes: CodeRange::new(*a.min(b), *a.max(b)).unwrap(),
            to: [Audience::Supplier, Audience::NetworkOperator, Audience::Both][*t as usize],
        }).collect();
        let table = RoutingTable::with_rules(&configured);
        let all = table.rules();
        let width = all.iter().filter(|r| r.codes.contains(code)).map(|r| r.codes.width()).min().unwrap();
        let want = all.iter().rev().find(|r| r.codes.contains(code) && r.codes.width() == width).unwrap().to;
        prop_assert_eq!(table.audience(code), want);
    }

    #[test]
    fn code_ranges_never_panic(s in "[0-9a-fA-F\\-x ]{0,12}") {
        if let Ok(r) = s.parse::<CodeRange>() {
            prop_assert_eq!(r.to_string().parse::<CodeRange>(), Ok(r));
        }
    }
}
