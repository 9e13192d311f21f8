use dccgw::catalogue::Catalogue;
use dccgw::checks;
use dccgw::domain::SmkiRole;
use dccgw::duis;
use dccgw::identity::identity_from_pem;

use super::*;
use crate::plan;
use crate::scenario::{Load, Scenario};
use crate::setup::{self, Workdir};

#[test]
fn signed_requests_parse_pass_the_catalogue_and_verify() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady-state.toml");
    let s = Scenario::load(&path).unwrap();
    let pop = Population::new(1_000, 2);
    let dir = tempfile::tempdir().unwrap();
    let wd = Workdir::new(dir.path());
    setup::prepare(&wd, &pop, time::OffsetDateTime::now_utc()).unwrap();
    let signers: Vec<Signer> = pop
        .users
        .iter()
        .map(|u| {
            Signer::load(
                &wd.user(u, "xml-sign.key.pem"),
                &wd.user(u, "xml-sign.pem"),
                Some(SmkiRole::XmlSigning),
            )
            .unwrap()
        })
        .collect();
    let plan = plan::build(&Load::constant(60.0, 1.0), &s.mix, &pop, 5, 42).unwrap();
    let bodies = presign(&plan, &s.mix, &pop, &signers, 3).unwrap();
    assert_eq!(bodies.len(), plan.items.len());
    for (i, body) in bodies.iter().enumerate() {
        let item = &plan.items[i];
        let entry = &s.mix[item.class as usize];
        let parsed = duis::parse_request(body, &duis::Limits::default()).unwrap();
        assert_eq!(parsed.header.request_id, request_id(&plan, &pop, i));
        assert_eq!(parsed.header.request_id.counter, 42 + i as u64);
        checks::check_service(Catalogue::builtin(), entry.service(), &parsed).unwrap();
        let user = &pop.users[item.user as usize];
        let cert =
            identity_from_pem(&std::fs::read(wd.user(user, "xml-sign.pem")).unwrap()).unwrap();
        assert_eq!(cert.user_id, user.id);
        let sig = xmldsig::verify_document(body, &cert.public_key, &C14nLimits::default()).unwrap();
        assert_eq!(
            sig.serial,
            xmldsig::decimal_to_bytes(&cert.serial_decimal).unwrap()
        );
    }
}
