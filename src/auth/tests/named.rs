//! A device named in a non-device request's body: the same E1 → E2 → E3 → E19 → E4 order, the
//! meter points a service names deciding instead of the device's own, and a device no meter
//! point decides for yet admitted by role alone.

use super::*;

const LONE_HUB: &str = "00-DB-12-34-56-78-92-01";

fn at(srv: &str, user: &str, device: &str, deciding: &[Mpxn], when: i64) -> Want {
    let register = register();
    let registry = registry().apply(&device_change(LONE_HUB)).unwrap();
    let service = Catalogue::builtin().get(&srv.parse().unwrap()).unwrap();
    let req = AccessRequest {
        originator: id(user),
        target: crate::domain::DCC_ID,
        service,
        at: when,
    };
    match authorize_named(&req, id(device), deciding, &register, &registry) {
        Ok(p) => {
            assert_eq!(p.device(), Some(id(device)));
            assert_eq!(p.srv(), service.srv);
            Want::Ok(p.role())
        }
        Err(d) => Want::Code(code(&d)),
    }
}

/// SRV, User, device, the meter points the service names, when, and the outcome.
type Row<'a> = (&'a str, &'a str, &'a str, &'a [Mpxn], i64, Want);

fn device_change(hub: &str) -> Change {
    device(hub, DeviceType::Chf, DeviceStatus::Pending, None, None)
}

#[test]
fn a_named_device_is_checked_like_a_target() {
    use UserRole::*;
    use Want::{Code, Ok as Yes};
    let mprn = [Mpxn::Mprn(MPRN)];
    let stranger_mpan = [Mpxn::Mpan(MPAN + 100)];
    #[rustfmt::skip]
    let table: Vec<Row<'_>> = vec![
        // The device's own meter point decides, at the request's time.
        ("8.3", SUP1, ESME, &[], BEFORE, Yes(ImportSupplier)),
        ("8.3", SUP1, ESME, &[], AFTER, Code("E4")),
        ("8.3", SUP2, ESME, &[], AFTER, Yes(ImportSupplier)),
        ("8.3", SUP1, GSME, &[], AFTER, Yes(GasSupplier)),
        // A hub: the meters behind it.
        ("8.14.4", SUP2, CHF, &[], AFTER, Yes(ImportSupplier)),
        // The order: E1, E2, E3 before the device is looked at.
        ("8.3", STRANGER, MISSING, &[], AFTER, Code("E1")),
        ("8.3", NO1, MISSING, &[], AFTER, Code("E2")),
        ("8.3", GONE, MISSING, &[], AFTER, Code("E3")),
        ("8.3", SUP1, MISSING, &[], AFTER, Code("E19")),
        // The meter point a service names decides instead.
        ("8.14.1", SUP1, LONE_HUB, &mprn, AFTER, Yes(GasSupplier)),
        ("8.14.1", SUP2, LONE_HUB, &mprn, AFTER, Code("E4")),
        ("8.14.1", SUP1, LONE_HUB, &stranger_mpan, AFTER, Code("E4")),
        // No meter point decides for a hub not installed: the role alone.
        ("8.14.4", SUP2, LONE_HUB, &[], AFTER, Yes(ImportSupplier)),
        // Type C is admitted wherever it is eligible; Type B must be registered.
        ("8.4", OU1, ESME, &[], AFTER, Yes(OtherUser)),
        ("8.4", NO1, ESME, &[], AFTER, Yes(ElectricityDistributor)),
        ("8.4", NO1, LONE_HUB, &stranger_mpan, AFTER, Code("E4")),
    ];
    for (srv, user, device, deciding, when, want) in table {
        assert_eq!(
            at(srv, user, device, deciding, when),
            want,
            "{srv} {user} {device} {deciding:?} {when}"
        );
    }
}
