mod anchors;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

fn cvs(list: &[u8]) -> Vec<CommandVariant> {
    list.iter()
        .map(|&v| CommandVariant::try_from(v).unwrap())
        .collect()
}

#[test]
fn builtin_parses() {
    let catalogue = Catalogue::from_json(BUILTIN).unwrap();
    assert_eq!(catalogue.len(), 129);
    assert_eq!(catalogue.duis_schema_version(), "5.4");
    assert_eq!(Catalogue::builtin().len(), 129);
}

#[test]
fn iterates_in_srv_order() {
    let srvs: Vec<String> = Catalogue::builtin()
        .iter()
        .map(|e| e.srv.to_string())
        .collect();
    assert_eq!(srvs.first().map(String::as_str), Some("1.1.1"));
    assert_eq!(srvs.last().map(String::as_str), Some("14.1"));
    let at = |s: &str| srvs.iter().position(|x| x == s).unwrap();
    assert!(at("4.8.3") < at("4.10"));
    assert!(at("6.2.10") < at("6.4.1"));
    assert!(at("8.2") < at("8.14.4"));
    assert!(at("9.1") < at("11.1"));
}

/// The DUIS rule, computed from the flags alone: critical → 4–7, non-critical device → 1–3,
/// non-device → 8, with the two exceptions 8.1.1 → 4, 5 and 8.5 → 1.
fn rule(entry: &SrvEntry) -> Vec<CommandVariant> {
    match entry.srv.to_string().as_str() {
        "8.1.1" => cvs(&[4, 5]),
        "8.5" => cvs(&[1]),
        _ if entry.critical => cvs(&[4, 5, 6, 7]),
        _ if entry.non_device => cvs(&[8]),
        _ => cvs(&[1, 2, 3]),
    }
}

#[test]
fn command_variants_follow_the_rule() {
    for entry in Catalogue::builtin().iter() {
        assert_eq!(entry.command_variants, rule(entry), "{}", entry.srv);
        assert!(!(entry.critical && entry.non_device), "{}", entry.srv);
    }
}

#[test]
fn command_variants_of_known_variants() {
    let table: &[(&str, &[u8])] = &[
        ("1.1.1", &[4, 5, 6, 7]),
        ("4.1.1", &[1, 2, 3]),
        ("5.1", &[8]),
        // The XSD's comments say 1, 2, 3 for 7.12 and 7.13 and 4–7 for 7.14 and 7.15: wrong.
        ("7.12", &[4, 5, 6, 7]),
        ("7.13", &[4, 5, 6, 7]),
        ("7.14", &[1, 2, 3]),
        ("7.15", &[1, 2, 3]),
        ("7.16", &[4, 5, 6, 7]),
        ("8.1.1", &[4, 5]),
        ("8.2", &[8]),
        ("8.5", &[1]),
        ("8.6", &[8]),
        ("11.2", &[1, 2, 3]),
        ("11.3", &[4, 5, 6, 7]),
        ("12.2", &[8]),
    ];
    for &(s, expected) in table {
        let entry = Catalogue::builtin().get(&srv(s)).unwrap();
        assert_eq!(entry.command_variants, cvs(expected), "{s}");
        for v in 1..=8u8 {
            let cv = CommandVariant::try_from(v).unwrap();
            assert_eq!(entry.allows(cv), expected.contains(&v), "{s} CV{v}");
        }
    }
}

#[test]
fn only_three_variants_are_not_user_requestable() {
    let closed: Vec<String> = Catalogue::builtin()
        .iter()
        .filter(|e| !e.user_requestable())
        .map(|e| e.srv.to_string())
        .collect();
    assert_eq!(closed, ["7.16", "8.5", "8.6"]);
}

/// The derived device-type table (`schemas/README.md`) on variants whose devices are plain.
#[test]
fn device_types_of_known_variants() {
    use DeviceType::*;
    let table: &[(&str, &[DeviceType])] = &[
        ("4.2", &[Esme]),
        ("4.1.4", &[Gsme, Gpf]),
        ("4.1.1", &[Esme, Gsme, Gpf]),
        ("6.30", &[Chf]),
        ("8.11", &[Chf]),
        ("8.12.2", &[Gpf, Chf]),
        ("6.11", &[Esme, Gsme, Gpf]),
        ("11.2", &[Esme, Gsme, Gpf, Chf, Ppmid, Hcalcs]),
        ("8.2", &[]),
        ("5.1", &[]),
    ];
    for &(s, want) in table {
        let entry = Catalogue::builtin().get(&srv(s)).unwrap();
        assert_eq!(entry.device_types, want, "{s}");
        for t in DeviceType::ALL {
            assert_eq!(entry.targets(*t), want.contains(t), "{s} {t}");
        }
    }
    // IHDs and CADs take no remote command; every device variant reaches some device.
    for entry in Catalogue::builtin().iter() {
        assert!(!entry.targets(Ihd) && !entry.targets(Cad), "{}", entry.srv);
        assert_eq!(
            entry.device_types.is_empty(),
            entry.non_device,
            "{}",
            entry.srv
        );
    }
}

#[test]
fn entries_answer_eligibility() {
    let entry = Catalogue::builtin().get(&srv("1.1.1")).unwrap();
    assert_eq!(entry.name, "Update Import Tariff (Primary Element)");
    assert_eq!(entry.body_element, "UpdateImportTariffPrimaryElement");
    assert_eq!(entry.future_dated, FutureDated::Device);
    assert!(entry.critical && entry.on_demand && !entry.dcc_scheduled && !entry.non_device);
    for role in UserRole::ALL {
        let expected = matches!(role, UserRole::ImportSupplier | UserRole::GasSupplier);
        assert_eq!(entry.eligible(role), expected, "{role}");
    }
    let inventory = Catalogue::builtin().get(&srv("8.2")).unwrap();
    assert!(UserRole::ALL.into_iter().all(|r| inventory.eligible(r)));
    assert!(Catalogue::builtin().get(&srv("4.5")).is_none());
    assert!(Catalogue::builtin().get(&srv("1.1")).is_none());
}

#[test]
fn future_dated_patterns() {
    use FutureDated::*;
    let table = [
        (Dsp, true, false),
        (Device, false, true),
        (DspAndDevice, true, true),
        (None, false, false),
    ];
    for (pattern, dsp, device) in table {
        assert_eq!(pattern.dsp_holds(), dsp, "{pattern:?}");
        assert_eq!(pattern.device_executes(), device, "{pattern:?}");
    }
    let cos = Catalogue::builtin().get(&srv("6.23")).unwrap();
    assert_eq!(cos.future_dated, DspAndDevice);
}

fn valid_entry() -> Value {
    json!({ "srv": "4.1.1", "service_reference": "4.1",
        "name": "Read Instantaneous Import Registers", "critical": false, "on_demand": true,
        "future_dated": "dsp", "dcc_scheduled": true, "non_device": false,
        "roles": ["IS", "GS", "RSA"], "command_variants": [1, 2, 3],
        "body_element": "ReadInstantaneousImportRegisters",
        "device_types": ["ESME", "GSME", "GPF"] })
}

fn valid_doc() -> Value {
    json!({ "format": FORMAT, "duis_schema_version": "5.4", "services": [valid_entry()] })
}

fn parse(doc: &Value) -> Result<Catalogue, CatalogueError> {
    Catalogue::from_json(&doc.to_string())
}

#[test]
fn a_minimal_file_parses() {
    let catalogue = parse(&valid_doc()).unwrap();
    assert_eq!(catalogue.len(), 1);
    assert!(!catalogue.is_empty());
    let entry = catalogue.get(&srv("4.1.1")).unwrap();
    assert_eq!(entry.roles.len(), 3);
    assert!(entry.dcc_scheduled);
}

#[test]
fn from_json_refuses_bad_files() {
    type Mutation = fn(&mut Value);
    type Expected = fn(&CatalogueError) -> bool;
    let table: &[(&str, Mutation, Expected)] = &[
        (
            "duplicate srv",
            |d| {
                let copy = d["services"][0].clone();
                d["services"].as_array_mut().unwrap().push(copy);
            },
            |e| matches!(e, CatalogueError::DuplicateSrv { srv } if srv.to_string() == "4.1.1"),
        ),
        (
            "service reference of another srv",
            |d| d["services"][0]["service_reference"] = json!("4.2"),
            |e| matches!(e, CatalogueError::ServiceReferenceMismatch { .. }),
        ),
        (
            "unknown role",
            |d| d["services"][0]["roles"] = json!(["IS", "XX"]),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "repeated role",
            |d| d["services"][0]["roles"] = json!(["IS", "GS", "IS"]),
            |e| {
                matches!(
                    e,
                    CatalogueError::DuplicateRole {
                        role: UserRole::ImportSupplier,
                        ..
                    }
                )
            },
        ),
        (
            "command variant 9",
            |d| d["services"][0]["command_variants"] = json!([1, 9]),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "command variant 0",
            |d| d["services"][0]["command_variants"] = json!([0]),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "no command variant",
            |d| d["services"][0]["command_variants"] = json!([]),
            |e| matches!(e, CatalogueError::NoCommandVariants { .. }),
        ),
        (
            "repeated command variant",
            |d| d["services"][0]["command_variants"] = json!([1, 2, 1]),
            |e| matches!(e, CatalogueError::DuplicateCommandVariant { cv, .. } if cv.get() == 1),
        ),
        (
            "unknown field in an entry",
            |d| d["services"][0]["eligible"] = json!(true),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "unknown top-level field",
            |d| d["comment"] = json!("hi"),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "missing field",
            |d| {
                d["services"][0].as_object_mut().unwrap().remove("critical");
            },
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "wrong format tag",
            |d| d["format"] = json!("dccgw-catalogue/2"),
            |e| matches!(e, CatalogueError::Format { found } if found == "dccgw-catalogue/2"),
        ),
        (
            "empty body element",
            |d| d["services"][0]["body_element"] = json!(""),
            |e| matches!(e, CatalogueError::BodyElement { .. }),
        ),
        (
            "prefixed body element",
            |d| d["services"][0]["body_element"] = json!("sr:ReadInventory"),
            |e| matches!(e, CatalogueError::BodyElement { .. }),
        ),
        (
            "blank name",
            |d| d["services"][0]["name"] = json!("  "),
            |e| matches!(e, CatalogueError::EmptyName { .. }),
        ),
        (
            "unknown future-dated pattern",
            |d| d["services"][0]["future_dated"] = json!("Device"),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "malformed srv",
            |d| d["services"][0]["srv"] = json!("4.1.1.1"),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
        (
            "no services",
            |d| d["services"] = json!([]),
            |e| matches!(e, CatalogueError::Empty),
        ),
        (
            "device variant without device types",
            |d| d["services"][0]["device_types"] = json!([]),
            |e| matches!(e, CatalogueError::DeviceTypes { .. }),
        ),
        (
            "non-device variant with device types",
            |d| d["services"][0]["non_device"] = json!(true),
            |e| matches!(e, CatalogueError::DeviceTypes { .. }),
        ),
        (
            "repeated device type",
            |d| d["services"][0]["device_types"] = json!(["ESME", "GPF", "ESME"]),
            |e| {
                matches!(
                    e,
                    CatalogueError::DuplicateDeviceType {
                        device_type: DeviceType::Esme,
                        ..
                    }
                )
            },
        ),
        (
            "unknown device type",
            |d| d["services"][0]["device_types"] = json!(["ESME", "METER"]),
            |e| matches!(e, CatalogueError::Json(_)),
        ),
    ];
    for (what, mutate, expected) in table {
        let mut doc = valid_doc();
        mutate(&mut doc);
        match parse(&doc) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => assert!(expected(&e), "{what}: wrong error {e:?}"),
        }
    }
}

proptest! {
    #[test]
    fn from_json_never_panics(text in ".{0,200}") {
        let _ = Catalogue::from_json(&text);
    }

    #[test]
    fn from_json_never_panics_on_near_misses(
        field in prop::sample::select(vec![
            "srv", "service_reference", "name", "critical", "future_dated", "roles",
            "command_variants", "body_element",
        ]),
        value in prop_oneof![
            Just(json!(null)), any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(|s| json!(s)), Just(json!([])), Just(json!({})),
        ],
    ) {
        let mut doc = valid_doc();
        doc["services"][0][field] = value;
        let _ = parse(&doc);
    }
}
