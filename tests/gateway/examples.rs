//! `examples/requests/`: each example, signed by the User its RequestID names, validates against
//! the DUIS 5.4 XSD and is accepted by a gateway with the demo register at the URL the index
//! gives it (its synchronous answer is `I99` or `I0`).

use std::path::Path;

use dccgw::duis::testing::DuisXsd;

use crate::support;

/// The demo User directory for an originator.
fn user_dir(originator: &str) -> &'static str {
    dccgw::demo::DEMO_USERS
        .iter()
        .find(|(_, id, ..)| *id == originator)
        .map(|(dir, ..)| *dir)
        .unwrap_or_else(|| panic!("{originator} is not a demo User"))
}

#[tokio::test]
async fn every_example_validates_and_is_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests");
    let index = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let xsd = DuisXsd::prepare();
    let gw = support::start("").await;
    let mut seen = 0;
    for row in index.lines().filter(|l| l.starts_with("| [")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let file = cells[1].split("](").nth(1).unwrap().trim_end_matches(')');
        let url = cells[4].trim_matches('`');
        let xml = std::fs::read_to_string(dir.join(file)).unwrap();
        let originator = support::element(&xml, "RequestID")
            .and_then(|id| id.split(':').next())
            .unwrap();
        let user = user_dir(originator);
        // A counter of its own for each, rising (the anti-replay rule).
        let xml = xml.replace(
            ":1000000000000<",
            &format!(":{}<", 2_000_000_000_000u64 + seen),
        );
        let signed = gw.signed(user, xml.as_bytes());
        if let Some(xsd) = &xsd {
            xsd.validate(std::str::from_utf8(&signed).unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let (status, answer) =
            support::post(&gw.client(user), &format!("{}{url}", gw.base()), signed).await;
        let code = support::element(&answer, "ResponseCode").unwrap_or("none");
        assert!(
            status == 200 && (code == "I99" || code == "I0"),
            "{file} at {url}: HTTP {status}, {code}\n{answer}"
        );
        seen += 1;
    }
    assert!(seen >= 40, "only {seen} examples in the index");
    gw.running.shutdown().await;
}

/// The URL map in `docs/integrators.md` is the gateway's: each row's Command Variants are the
/// ones its service accepts.
#[test]
fn the_url_map_in_the_integrators_guide_is_the_gateways() {
    use dccgw::domain::{CommandVariant, DuisService};
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/integrators.md"))
            .unwrap();
    let mut rows = 0;
    for service in DuisService::ALL {
        let row = guide
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", service.path())))
            .unwrap_or_else(|| panic!("{} is not in the URL map", service.path()));
        let listed: Vec<u8> = row
            .rsplit('|')
            .nth(1)
            .unwrap()
            .split(',')
            .map(|v| v.trim().parse().unwrap())
            .collect();
        let accepted: Vec<u8> = (1..=8u8)
            .filter(|v| service.accepts(CommandVariant::try_from(*v).unwrap()))
            .collect();
        assert_eq!(listed, accepted, "{}", service.path());
        rows += 1;
    }
    assert_eq!(rows, 3);
}
