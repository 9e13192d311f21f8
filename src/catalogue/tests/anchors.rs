//! Cross-checks of the catalogue against the public DUIS reference files in `shared/anchors`
//! (read by path, never copied): the duis-parser request matrix, the DUIS 5.4 XSD and every public
//! request template and sample request.

use std::collections::BTreeSet;
use std::path::Path;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Deserialize;

use super::super::*;
use crate::domain::{RequestId, DCC_ID};

use crate::testing::anchors;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One row of `metadata/duis-request-matrix.json`, raw.
#[derive(Deserialize)]
struct MatrixRow {
    #[serde(rename = "Service Request Name")]
    name: String,
    #[serde(rename = "Service Reference")]
    service_reference: String,
    #[serde(rename = "Service Reference Variant")]
    srv: String,
    #[serde(rename = "Critical")]
    critical: String,
    #[serde(rename = "On Demand")]
    on_demand: String,
    #[serde(rename = "Future Dated Response Pattern")]
    future_dated: String,
    #[serde(rename = "DCC Scheduled")]
    dcc_scheduled: String,
    #[serde(rename = "Non-Device Request")]
    non_device: String,
    #[serde(rename = "Eligible User Roles")]
    roles: Vec<String>,
}

/// The matrix gives 6.20's variants the service reference "6.2" (a number-formatting slip: the
/// XSD's enumeration and the public templates say 6.20): (SRV, as listed, correct).
const MATRIX_SERVICE_REFERENCE_ERRATA: &[(&str, &str, &str)] =
    &[("6.20.1", "6.2", "6.20"), ("6.20.2", "6.2", "6.20")];

fn yes_no(raw: &str) -> bool {
    match raw {
        "Yes" => true,
        "No" => false,
        other => panic!("unexpected Yes/No value {other:?}"),
    }
}

fn future_dated(raw: &str) -> FutureDated {
    match raw {
        "No" => FutureDated::None,
        "DSP" => FutureDated::Dsp,
        "Device" => FutureDated::Device,
        "DSP & Device" => FutureDated::DspAndDevice,
        other => panic!("unexpected future-dated pattern {other:?}"),
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn agrees_with_the_request_matrix() {
    let Some(anchors) = anchors() else { return };
    let text = read(&anchors.join("metadata/duis-request-matrix.json"));
    let rows: Vec<MatrixRow> = serde_json::from_str(&text).unwrap();
    let catalogue = Catalogue::builtin();
    assert_eq!(rows.len(), catalogue.len());
    for row in &rows {
        let srv: Srv = row.srv.parse().unwrap();
        let entry = catalogue
            .get(&srv)
            .unwrap_or_else(|| panic!("{srv} missing"));
        let listed = match MATRIX_SERVICE_REFERENCE_ERRATA
            .iter()
            .find(|e| e.0 == row.srv)
        {
            Some(&(_, wrong, right)) => {
                assert_eq!(
                    row.service_reference, wrong,
                    "{srv}: erratum fixed upstream?"
                );
                right
            }
            None => row.service_reference.as_str(),
        };
        assert_eq!(entry.service_reference.to_string(), listed, "{srv}");
        assert_eq!(entry.name, squash(&row.name), "{srv}");
        assert_eq!(entry.critical, yes_no(&row.critical), "{srv} critical");
        assert_eq!(entry.on_demand, yes_no(&row.on_demand), "{srv} on demand");
        assert_eq!(
            entry.dcc_scheduled,
            yes_no(&row.dcc_scheduled),
            "{srv} scheduled"
        );
        assert_eq!(
            entry.non_device,
            yes_no(&row.non_device),
            "{srv} non-device"
        );
        assert_eq!(entry.future_dated, future_dated(&row.future_dated), "{srv}");
        let expected: BTreeSet<UserRole> = row.roles.iter().map(|r| r.parse().unwrap()).collect();
        let actual: BTreeSet<UserRole> = entry.roles.iter().copied().collect();
        assert_eq!(actual, expected, "{srv} roles");
        assert_eq!(entry.roles.len(), row.roles.len(), "{srv} repeated role");
    }
}

/// The XSD's `<!-- CV = … -->` comments (as joined into `srv-table-derived.json`) disagree with
/// the brief's rule, which the catalogue follows, on exactly these four variants.
#[test]
fn departs_from_the_xsd_cv_comments_only_on_7_12_to_7_15() {
    #[derive(Deserialize)]
    struct Derived {
        service_requests: Vec<DerivedRow>,
    }
    #[derive(Deserialize)]
    struct DerivedRow {
        srv: Srv,
        allowed_command_variants_xsd_5_4: Vec<CommandVariant>,
    }
    let Some(anchors) = anchors() else { return };
    let text = read(&anchors.join("metadata/srv-table-derived.json"));
    let derived: Derived = serde_json::from_str(&text).unwrap();
    assert_eq!(derived.service_requests.len(), 129);
    let mut differ = Vec::new();
    for row in &derived.service_requests {
        let entry = Catalogue::builtin().get(&row.srv).unwrap();
        if entry.command_variants != row.allowed_command_variants_xsd_5_4 {
            differ.push(row.srv.to_string());
        }
    }
    assert_eq!(differ, ["7.12", "7.13", "7.14", "7.15"]);
}

/// The element names of the `xs:choice` inside `sr:Request`'s `Body`, in document order.
fn request_body_choice(xsd: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xsd);
    // Element/attribute names along the path from the root, e.g. "complexType[Request]".
    let mut path: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let step = |e: &quick_xml::events::BytesStart| {
        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        match e.try_get_attribute("name").unwrap() {
            Some(a) => format!("{local}[{}]", a.unescape_value().unwrap()),
            None => local,
        }
    };
    let inside = |path: &[String]| {
        path.len() == 7
            && path[1] == "complexType[Request]"
            && path[3] == "element[Body]"
            && path[5] == "choice"
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                path.push(step(&e));
                if inside(&path) {
                    names.push(path[6].clone());
                }
            }
            Event::Empty(e) => {
                path.push(step(&e));
                if inside(&path) {
                    names.push(path[6].clone());
                }
                path.pop();
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    names
        .iter()
        .filter_map(|n| n.strip_prefix("element[")?.strip_suffix(']'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn body_elements_are_the_xsd_request_body_choice() {
    let Some(anchors) = anchors() else { return };
    let xsd = read(&anchors.join("schemas/duis-5.4/DUIS Schema V5.4.xsd"));
    let choice: BTreeSet<String> = request_body_choice(&xsd).into_iter().collect();
    assert!(choice.contains("SignedPreCommand"));
    let used: BTreeSet<String> = Catalogue::builtin()
        .iter()
        .map(|e| e.body_element.clone())
        .collect();
    for element in &used {
        assert!(
            choice.contains(element),
            "{element} is not in the Body choice"
        );
    }
    let unused: Vec<_> = choice.difference(&used).collect();
    assert_eq!(unused, ["SignedPreCommand"], "choice elements no SRV uses");
}

/// What a request file says about itself: header facts and the `sr:Body` child's local name.
#[derive(Default, Debug)]
struct Sample {
    request_id: String,
    command_variant: String,
    service_reference: String,
    srv: String,
    body_element: String,
}

fn read_sample(xml: &str) -> Option<Sample> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut sample = Sample::default();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                if path.len() == 1 && path[0] != "Request" {
                    return None;
                }
                if path.len() == 3 && path[1] == "Body" && sample.body_element.is_empty() {
                    sample.body_element = path[2].clone();
                }
            }
            Event::Empty(e) if path.len() == 2 && path[1] == "Body" => {
                sample.body_element = String::from_utf8_lossy(e.local_name().as_ref()).into();
            }
            Event::Text(t) if path.len() == 3 && path[1] == "Header" => {
                let text = t.unescape().unwrap().trim().to_owned();
                match path[2].as_str() {
                    "RequestID" => sample.request_id = text,
                    "CommandVariant" => sample.command_variant = text,
                    "ServiceReference" => sample.service_reference = text,
                    "ServiceReferenceVariant" => sample.srv = text,
                    _ => {}
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => return Some(sample),
            _ => {}
        }
    }
}

#[test]
fn every_public_request_matches_its_entry() {
    let Some(anchors) = anchors() else { return };
    let mut checked = 0;
    for dir in ["duis-samples/templates", "duis-samples/requests"] {
        let mut files: Vec<_> = std::fs::read_dir(anchors.join(dir))
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.display();
            let Some(sample) = read_sample(&read(&file)) else {
                continue;
            };
            let srv: Srv = sample.srv.parse().unwrap();
            let entry = Catalogue::builtin()
                .get(&srv)
                .unwrap_or_else(|| panic!("{name}: {srv} not in the catalogue"));
            let cv: CommandVariant = sample.command_variant.parse().unwrap();
            assert_eq!(
                sample.service_reference,
                entry.service_reference.to_string()
            );
            assert!(entry.allows(cv), "{name}: {srv} does not allow CV{cv}");
            if sample.body_element == "SignedPreCommand" {
                assert_eq!(cv.get(), 5, "{name}");
            } else {
                assert_eq!(sample.body_element, entry.body_element, "{name}");
            }
            let id: RequestId = sample.request_id.parse().unwrap();
            assert_eq!(id.target == DCC_ID, entry.non_device, "{name}: target");
            checked += 1;
        }
    }
    assert!(checked >= 150, "only {checked} request files found");
}

/// Every remote GBCS use case the public mapping table files under a service reference (or SRV)
/// reaches its device through at least one variant there: an ECS use case an ESME, a GCS one a
/// GSME or GPF, a CCS or DBCH (comms hub) one a CHF. CS ("common") use cases name no one device.
#[test]
fn every_mapped_use_case_reaches_its_device() {
    #[derive(Deserialize)]
    struct UseCase {
        #[serde(rename = "Code")]
        code: String,
        #[serde(rename = "Service Reference")]
        keys: Option<String>,
    }
    use crate::domain::DeviceType::*;
    let Some(anchors) = anchors() else { return };
    let text = read(&anchors.join("metadata/gbcs-mapping-table.json"));
    let rows: Vec<UseCase> = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for row in &rows {
        let devices: &[crate::domain::DeviceType] = match &row.code {
            c if c.starts_with("ECS") => &[Esme],
            c if c.starts_with("GCS") => &[Gsme, Gpf],
            c if c.starts_with("CCS") || c.starts_with("DBCH") => &[Chf],
            _ => continue,
        };
        for key in row.keys.as_deref().unwrap_or("").split(',').map(str::trim) {
            if !key.starts_with(|c: char| c.is_ascii_digit()) {
                continue; // "See GBCS", "N/A": no service reference
            }
            let reached = Catalogue::builtin().iter().any(|e| {
                (e.srv.to_string() == key || e.service_reference.to_string() == key)
                    && devices.iter().any(|d| e.targets(*d))
            });
            assert!(
                reached,
                "{} under {key} reaches none of {devices:?}",
                row.code
            );
            checked += 1;
        }
    }
    assert!(checked >= 150, "only {checked} use cases checked");
}
