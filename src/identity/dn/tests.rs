use proptest::prelude::*;

use super::*;

fn text(oid: &str, value: &str) -> DnAttribute {
    DnAttribute {
        oid: oid.to_owned(),
        value: DnValue::Text(value.to_owned()),
    }
}

fn dn(rdns: Vec<Vec<DnAttribute>>) -> DistinguishedName {
    DistinguishedName { rdns }
}

const CN: &str = "2.5.4.3";
const OU: &str = "2.5.4.11";

#[test]
fn parses_the_forms_duis_messages_carry() {
    // DER order OU, CN: the string form lists the last RDN first.
    let z1 = dn(vec![vec![text(OU, "07")], vec![text(CN, "Z1")]]);
    let u1 = dn(vec![vec![text(OU, "07")], vec![text(CN, "U1")]]);
    let cases = [
        ("CN=Z1,OU=07", &z1),
        ("CN=Z1, OU=07", &z1),
        (" cn = Z1 ;ou=07 ", &z1),
        ("2.5.4.3=Z1,OID.2.5.4.11=07", &z1),
        ("CN=U1, OU=07", &u1),
    ];
    for (s, want) in cases {
        assert_eq!(s.parse::<DistinguishedName>().as_ref(), Ok(want), "{s}");
    }
    assert_eq!(
        "".parse::<DistinguishedName>(),
        Ok(DistinguishedName::default())
    );
}

#[test]
fn escapes_and_hex_values() {
    let cases = [
        (r"CN=a\,b", "a,b"),
        (r"CN=\ lead", " lead"),
        (r"CN=trail\ ", "trail "),
        (r"CN=\#x", "#x"),
        (r"CN=caf\C3\A9", "café"),
        ("CN=a=b", "a=b"),
        ("CN=  spaced  ", "spaced"),
    ];
    for (s, want) in cases {
        let got: DistinguishedName = s.parse().unwrap();
        assert_eq!(got, dn(vec![vec![text(CN, want)]]), "{s}");
    }
    let uid: DistinguishedName = "x500UniqueIdentifier=#03090090B3D51F30010000"
        .parse()
        .unwrap();
    let bits = vec![
        0x03, 0x09, 0x00, 0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00,
    ];
    let want = DnAttribute {
        oid: "2.5.4.45".to_owned(),
        value: DnValue::Der(bits),
    };
    assert_eq!(uid, dn(vec![vec![want]]));
    assert_eq!(
        uid.to_string(),
        "x500UniqueIdentifier=#03090090B3D51F30010000"
    );
}

#[test]
fn multi_valued_rdns() {
    let got: DistinguishedName = "CN=a+OU=02,CN=b".parse().unwrap();
    let want = dn(vec![
        vec![text(CN, "b")],
        vec![text(CN, "a"), text(OU, "02")],
    ]);
    assert_eq!(got, want);
    assert_eq!(got.to_string(), "CN=a+OU=02,CN=b");
    let swapped: DistinguishedName = "OU=02+CN=a,CN=b".parse().unwrap();
    assert!(got.matches(&swapped), "attributes of one RDN in any order");
}

#[test]
fn refuses_malformed_names() {
    let cases = [
        ("CN", DnError::Syntax { at: 0 }),
        ("=x", DnError::Syntax { at: 0 }),
        ("CN=Z1,", DnError::Syntax { at: 6 }),
        (r"CN=a\", DnError::Syntax { at: 4 }),
        (r"CN=a\zz", DnError::Syntax { at: 4 }),
        ("CN=#0", DnError::Syntax { at: 4 }),
        ("CN=#zz", DnError::Syntax { at: 4 }),
        ("CN=\"q\"", DnError::Syntax { at: 3 }),
        (r"CN=\FF", DnError::Syntax { at: 6 }),
        ("XX=1", DnError::UnknownAttributeType("XX".to_owned())),
        ("1=1", DnError::UnknownAttributeType("1".to_owned())),
        ("2..5=1", DnError::UnknownAttributeType("2..5".to_owned())),
    ];
    for (s, want) in cases {
        assert_eq!(s.parse::<DistinguishedName>(), Err(want), "{s}");
    }
}

#[test]
fn matching_is_structural() {
    let z1: DistinguishedName = "CN=Z1,OU=07".parse().unwrap();
    let cases = [
        ("cn=z1, ou=07", true),
        ("CN=  Z1 ,OU=07", true),
        ("CN=#0C025A31,OU=07", true),
        ("CN=#13025A31,OU=07", true),
        ("OU=07,CN=Z1", false),
        ("CN=Z1", false),
        ("CN=Z1,OU=07,O=x", false),
        ("CN=Z2,OU=07", false),
        ("CN=Z1,OU=7", false),
    ];
    for (s, want) in cases {
        let other: DistinguishedName = s.parse().unwrap();
        assert_eq!(z1.matches(&other), want, "{s}");
        assert_eq!(other.matches(&z1), want, "{s} (symmetric)");
    }
}

#[test]
fn long_der_values_round_trip() {
    let mut out = Vec::new();
    push_length(&mut out, 0x7F);
    push_length(&mut out, 0x80);
    push_length(&mut out, 0x1234);
    assert_eq!(out, [0x7F, 0x81, 0x80, 0x82, 0x12, 0x34]);
}

proptest! {
    #[test]
    fn display_round_trips(values in proptest::collection::vec("[ -~é\\x00]{1,12}", 1..4)) {
        // Leading and trailing spaces are escaped; spaces inside are kept.
        let rdns = values.iter().map(|v| vec![text(CN, v)]).collect();
        let name = dn(rdns);
        prop_assert_eq!(name.to_string().parse::<DistinguishedName>(), Ok(name));
    }

    #[test]
    fn never_panics(s in ".{0,60}") {
        if let Ok(name) = s.parse::<DistinguishedName>() {
            let _ = name.to_string();
        }
    }
}
