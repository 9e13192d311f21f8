//! Every public request template and sample request, decided against the demo's registers (the
//! public test environment's Users, devices and registrations, as `dccgw demo` writes them):
//! none is refused for its device type, so the derived device-type table admits every device the
//! DCC's own test data sends each variant to.

use super::super::*;
use crate::catalogue::Catalogue;
use crate::duis::{parse_request, Limits};
use crate::testing::anchors;

#[test]
fn public_requests_pass_the_device_type_check() {
    let Some(anchors) = anchors() else { return };
    let dir = tempfile::tempdir().unwrap();
    crate::demo::write_registers(dir.path(), None).unwrap();
    let register = crate::state::load::users(&dir.path().join("users.csv")).unwrap();
    let registry = crate::state::load::registry(
        &dir.path().join("devices.csv"),
        &dir.path().join("registrations.csv"),
    )
    .unwrap();
    // Inside every registration, before every future date the templates carry.
    let at = 1_500_000_000;
    let (mut permitted, mut device_checked) = (0, 0);
    for folder in ["duis-samples/templates", "duis-samples/requests"] {
        let mut files: Vec<_> = std::fs::read_dir(anchors.join(folder))
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let request = parse_request(&bytes, &Limits::default()).unwrap();
            let id = request.header.request_id;
            let Some(service) = Catalogue::builtin().get(&request.header.srv) else {
                panic!("{}: not in the catalogue", file.display());
            };
            let req = AccessRequest {
                originator: id.originator,
                target: id.target,
                service,
                at,
            };
            let got = authorize(&req, &register, &registry);
            if let Err(Denial::DeviceType { device_type, .. }) = got {
                panic!("{}: {device_type} refused (E11)", file.display());
            }
            if !service.non_device && registry.device(id.target).is_some() {
                device_checked += 1;
            }
            permitted += usize::from(got.is_ok());
        }
    }
    assert!(
        device_checked >= 130,
        "only {device_checked} device requests"
    );
    assert!(permitted >= 130, "only {permitted} permitted");
}
