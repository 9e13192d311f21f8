//! The SRV → use case table: it parses, covers exactly the catalogue's device SRVs, agrees with
//! the DCC's public GBCS mapping table, and gives the message codes the public samples carry.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::frames::samples;
use crate::catalogue::Catalogue;
use crate::domain::Srv;
use crate::gbcs::table::{Table, Target};
use crate::gbcs::{lookup, Apdu, MessageCode};
use crate::testing::anchors;

#[test]
fn builtin_parses() {
    assert!(Table::builtin().srvs().count() > 100);
}

#[test]
fn exactly_the_catalogues_device_srvs_have_use_cases() {
    let catalogue = Catalogue::builtin();
    let listed: BTreeSet<Srv> = Table::builtin().srvs().map(|(srv, _)| srv).collect();
    for entry in catalogue.iter() {
        assert_eq!(
            listed.contains(&entry.srv),
            !entry.non_device,
            "{}: device SRV iff listed",
            entry.srv
        );
    }
    for (srv, cases) in Table::builtin().srvs() {
        assert!(
            catalogue.get(&srv).is_some(),
            "{srv} is not in the catalogue"
        );
        assert!(!cases.is_empty(), "{srv} lists no use case");
    }
}

#[test]
fn a_device_picks_its_use_case() {
    let srv: Srv = "4.1.1".parse().unwrap();
    let table = Table::builtin();
    assert_eq!(
        table.use_case_for(srv, Target::Electricity).unwrap().code,
        "ECS17b"
    );
    assert_eq!(table.use_case_for(srv, Target::Gas).unwrap().code, "GCS13a");
    let join: Srv = "8.7.1".parse().unwrap();
    assert_eq!(
        table.use_case_for(join, Target::Gas).unwrap().code,
        "CS03A1"
    );
    assert!(lookup("8.2".parse().unwrap()).is_empty());
}

/// One row of the DCC's `metadata/gbcs-mapping-table.json`, raw.
#[derive(Deserialize)]
struct MappingRow {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Service Reference")]
    service_reference: Option<String>,
}

/// Use cases in our table that the mapping table does not list: GBCS message-code list entries
/// and the DCC's request templates name them (earlier or narrower forms of listed use cases).
const NOT_IN_MAPPING_TABLE: &[&str] = &[
    "ECS08", "ECS26d", "ECS26e", "ECS30", "ECS35f", "ECS46c", "ECS47", "ECS61a", "GCS21d",
    "GCS21e", "GCS24",
];

/// Mapping-table rows for a DUIS service reference that our table does not use, and why.
const NOT_USED: &[(&str, &str)] = &[];

/// The mapping table names a family where GBCS numbers its members (`ECS25a` for `ECS25a1`…).
fn family_of<'a>(code: &'a str, mapping: &BTreeMap<String, Vec<String>>) -> Option<&'a str> {
    if mapping.contains_key(code) {
        return Some(code);
    }
    let trimmed = code.trim_end_matches(|c: char| c.is_ascii_digit());
    (trimmed != code && mapping.contains_key(trimmed)).then_some(trimmed)
}

#[test]
fn agrees_with_the_dccs_gbcs_mapping_table() {
    let Some(anchors) = anchors() else { return };
    let text = std::fs::read_to_string(anchors.join("metadata/gbcs-mapping-table.json")).unwrap();
    let rows: Vec<MappingRow> = serde_json::from_str(&text).unwrap();
    // Code → the service references the mapping table gives it ("7.9, 7.10" is two).
    let mut mapping: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let refs = row.service_reference.as_deref().unwrap_or("");
        mapping
            .entry(row.code.clone())
            .or_default()
            .extend(refs.split(',').map(|r| r.trim().to_string()));
    }
    let table = Table::builtin();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for (srv, cases) in table.srvs() {
        let reference = srv.service_reference().to_string();
        for case in cases {
            let Some(family) = family_of(&case.code, &mapping) else {
                assert!(
                    NOT_IN_MAPPING_TABLE.contains(&case.code.as_str()),
                    "{srv}: {} is not in the mapping table",
                    case.code
                );
                continue;
            };
            assert!(
                !NOT_IN_MAPPING_TABLE.contains(&case.code.as_str()),
                "{} is in the mapping table",
                case.code
            );
            let refs = &mapping[family];
            // The SRV's service reference ("6.20" is written "6.2" for 6.20.x there, as in the
            // request matrix) or the SRV itself, or the mapping table defers to GBCS.
            let agrees = refs.iter().any(|r| {
                *r == reference
                    || *r == srv.to_string()
                    || r == "See GBCS"
                    || (reference == "6.20" && r == "6.2")
            });
            assert!(agrees, "{srv}: {} is mapped to {refs:?}", case.code);
            used.insert(family);
        }
    }
    // Every use case the mapping table gives a DUIS service reference is used by one of its SRVs.
    let catalogue = Catalogue::builtin();
    let references: BTreeSet<String> = catalogue
        .iter()
        .flat_map(|e| [e.srv.service_reference().to_string(), e.srv.to_string()])
        .collect();
    for (code, refs) in &mapping {
        if refs.iter().any(|r| references.contains(r)) && !used.contains(code.as_str()) {
            assert!(
                NOT_USED.iter().any(|(c, _)| c == code),
                "{code} ({refs:?}) is used by no SRV"
            );
        }
    }
}

#[test]
fn the_message_codes_are_those_of_the_samples() {
    let Some(anchors) = anchors() else { return };
    let mut checked = 0;
    for (path, bytes) in samples(&anchors) {
        let dir = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (srv, use_case) = dir.split_once('_').unwrap();
        let Ok(srv) = srv.parse::<Srv>() else {
            continue; // alerts, which no SRV sends
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("_ALERT_") {
            continue;
        }
        let code = Apdu::decode(&bytes)
            .unwrap()
            .general_signing()
            .other
            .message_code;
        let case = lookup(srv)
            .iter()
            .find(|c| use_case.starts_with(&c.code))
            .unwrap_or_else(|| panic!("{srv}: no {use_case}"));
        assert!(
            case.message_codes.contains(&code),
            "{name}: {code:?} for {}",
            case.code
        );
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
    let cs02b = lookup("6.15.1".parse().unwrap());
    assert!(cs02b[0].message_codes.contains(&MessageCode(0x0102)));
}
