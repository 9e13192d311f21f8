//! The decision, row by row: role × a representative SRV of each family × device status ×
//! registration (registered, not, before and after a change of supplier), with the exact
//! outcome; and the whole catalogue against its eligible-role facts.

mod anchors;
mod named;

use super::*;
use crate::catalogue::Catalogue;
use crate::domain::{DeviceType, Eui64, Mpxn};
use crate::registry::{Change, CspRegion, DeviceRecord, Registration};

const SUP1: &str = "90-B3-D5-1F-30-01-00-00";
const SUP2: &str = "90-B3-D5-1F-30-03-00-00";
const NO1: &str = "90-B3-D5-1F-30-02-00-00";
const OU1: &str = "00-DB-12-34-56-78-00-04";
const RSA1: &str = "90-B3-D5-1F-30-04-00-00";
const SUSPA: &str = "90-B3-D5-1F-30-05-00-00";
const GONE: &str = "90-B3-D5-1F-30-06-00-00";
const STRANGER: &str = "90-B3-D5-1F-30-09-00-00";

const CHF: &str = "00-DB-12-34-56-78-90-A3";
const ESME: &str = "00-DB-12-34-56-78-90-A0";
const GSME: &str = "00-DB-12-34-56-78-90-A1";
const IHD: &str = "00-DB-12-34-56-78-90-A5";
const MISSING: &str = "00-DB-12-34-56-78-90-FF";
/// ESMEs in other statuses, one each, on their own meter points registered like ESME's.
const ESME_STATUS: &[(&str, DeviceStatus)] = &[
    ("00-DB-12-34-56-78-91-01", DeviceStatus::Pending),
    ("00-DB-12-34-56-78-91-02", DeviceStatus::Whitelisted),
    (
        "00-DB-12-34-56-78-91-03",
        DeviceStatus::InstalledNotCommissioned,
    ),
    ("00-DB-12-34-56-78-91-04", DeviceStatus::Decommissioned),
    ("00-DB-12-34-56-78-91-05", DeviceStatus::Withdrawn),
    ("00-DB-12-34-56-78-91-06", DeviceStatus::Suspended),
    ("00-DB-12-34-56-78-91-07", DeviceStatus::Recovery),
    ("00-DB-12-34-56-78-91-08", DeviceStatus::Recovered),
];

const MPAN: u64 = 1_200_023_305_967;
const MPRN: u64 = 3_453_612;
const T0: i64 = 1_700_000_000;
/// The change of supplier on ESME's meter point: SUP1 before, SUP2 from here.
const COS: i64 = 1_750_000_000;
const BEFORE: i64 = COS - 1;
const AFTER: i64 = COS;

fn id(s: &str) -> Eui64 {
    s.parse().unwrap()
}

fn register() -> PartyRegister {
    PartyRegister::parse(&format!(
        "user_id,party_id,party_name,roles,status,response_url\n\
         {SUP1},SUP1,Supplier,IS|GS,active,\n\
         {SUP2},SUP2,Supplier 2,IS|GS,active,\n\
         {NO1},NO1,Network operator,ED|GT,active,\n\
         {OU1},OU1,Other user,OU,active,\n\
         {RSA1},RSA1,Agent,RSA,active,\n\
         {SUSPA},SUSP,Suspended for A,IS|GS,suspended:A,\n\
         {GONE},GONE,Withdrawn,IS,withdrawn,\n"
    ))
    .unwrap()
}

fn device(
    s: &str,
    t: DeviceType,
    status: DeviceStatus,
    mpxn: Option<Mpxn>,
    chf: Option<&str>,
) -> Change {
    Change::UpsertDevice(DeviceRecord {
        id: id(s),
        device_type: t,
        status,
        mpxn,
        chf: chf.map(id),
        region: CspRegion::Central,
    })
}

fn reg(mpxn: Mpxn, role: UserRole, user: &str, from: i64, to: Option<i64>) -> Change {
    Change::AddRegistration {
        mpxn,
        registration: Registration {
            role,
            user: id(user),
            from,
            to,
        },
    }
}

fn registry() -> Snapshot {
    use DeviceStatus::Commissioned;
    use UserRole::*;
    let m = Mpxn::Mpan(MPAN);
    let g = Mpxn::Mprn(MPRN);
    let mut changes = vec![
        device(CHF, DeviceType::Chf, Commissioned, None, None),
        device(ESME, DeviceType::Esme, Commissioned, Some(m), Some(CHF)),
        device(GSME, DeviceType::Gsme, Commissioned, Some(g), Some(CHF)),
        device(IHD, DeviceType::Ihd, Commissioned, None, Some(CHF)),
        reg(m, ImportSupplier, SUP1, T0, Some(COS)),
        reg(m, ImportSupplier, SUP2, COS, None),
        reg(m, ImportSupplier, SUSPA, T0, None),
        reg(m, ImportSupplier, GONE, T0, None),
        reg(m, ElectricityDistributor, NO1, T0, None),
        reg(m, RegisteredSupplierAgent, RSA1, T0, None),
        reg(g, GasSupplier, SUP1, T0, None),
        reg(g, GasTransporter, NO1, T0, None),
    ];
    for (k, (dev, status)) in ESME_STATUS.iter().enumerate() {
        let mpan = Mpxn::Mpan(MPAN + 1 + k as u64);
        changes.push(device(
            dev,
            DeviceType::Esme,
            *status,
            Some(mpan),
            Some(CHF),
        ));
        changes.push(reg(mpan, ImportSupplier, SUP1, T0, None));
    }
    Snapshot::empty().apply_all(&changes).unwrap()
}

/// Expected outcome: `Ok(role)` or the denial's DUIS code.
#[derive(Debug, PartialEq)]
enum Want {
    Ok(UserRole),
    Code(&'static str),
}

fn code(d: &Denial) -> &'static str {
    match d {
        Denial::UnknownUser(_) => "E1",
        Denial::RoleNotEligible(_) => "E2",
        Denial::UserStatus => "E3",
        Denial::UnknownDevice(_) => "E19",
        Denial::NotRegistered => "E4",
        Denial::DeviceStatus(_) => "E5",
        Denial::DeviceType { .. } => "E11",
    }
}

#[test]
fn the_decision_table() {
    use UserRole::*;
    use Want::{Code, Ok as Yes};
    let register = register();
    let registry = registry();
    let catalogue = Catalogue::builtin();
    #[rustfmt::skip]
    let table: Vec<(&str, &str, &str, i64, Want)> = vec![
        // Type A: the registered supplier, before and after a change of supplier.
        ("1.1.1", SUP1, ESME, BEFORE, Yes(ImportSupplier)),
        ("1.1.1", SUP1, ESME, AFTER, Code("E4")),
        ("1.1.1", SUP2, ESME, BEFORE, Code("E4")),
        ("1.1.1", SUP2, ESME, AFTER, Yes(ImportSupplier)),
        ("4.1.1", SUP1, ESME, BEFORE, Yes(ImportSupplier)),
        ("4.1.1", SUP2, ESME, AFTER, Yes(ImportSupplier)),
        ("7.1", SUP2, ESME, AFTER, Yes(ImportSupplier)),
        // A User ID with IS and GS: the gas role is picked for the gas meter.
        ("4.1.1", SUP1, GSME, AFTER, Yes(GasSupplier)),
        ("1.1.1", SUP1, GSME, AFTER, Yes(GasSupplier)),
        ("4.1.1", SUP2, GSME, AFTER, Code("E4")),
        ("4.1.4", SUP1, GSME, AFTER, Yes(GasSupplier)),
        // Device type (E11): an electricity-only service to a gas meter, a gas-only one to an
        // electricity meter, a comms-hub service to a meter, anything to an IHD.
        ("7.1", SUP1, GSME, AFTER, Code("E11")),
        ("4.1.4", SUP1, ESME, BEFORE, Code("E11")),
        ("6.30", SUP1, ESME, BEFORE, Code("E11")),
        ("6.30", SUP1, CHF, BEFORE, Yes(ImportSupplier)),
        ("4.8.1", SUP1, IHD, BEFORE, Code("E11")),
        // Devices without an MPxN: decided by the meters behind the same hub.
        ("8.11", SUP2, CHF, AFTER, Yes(ImportSupplier)),
        ("8.11", NO1, CHF, AFTER, Code("E2")),
        // (SUP1 still supplies the other ESMEs behind this hub, so its import role comes first.)
        ("8.11", SUP1, CHF, AFTER, Yes(ImportSupplier)),
        // Type B: the network operator, in the role the meter point admits.
        ("4.1.1", NO1, ESME, AFTER, Yes(ElectricityDistributor)),
        ("4.1.1", NO1, GSME, AFTER, Yes(GasTransporter)),
        ("6.2.1", NO1, ESME, AFTER, Yes(ElectricityDistributor)),
        ("1.1.1", NO1, ESME, AFTER, Code("E2")),
        ("7.1", NO1, ESME, AFTER, Code("E2")),
        // The supplier's agent: only where the SRV admits RSA, and only where registered.
        ("6.2.1", RSA1, ESME, AFTER, Yes(RegisteredSupplierAgent)),
        ("4.1.1", RSA1, ESME, AFTER, Code("E2")),
        ("6.2.7", RSA1, GSME, AFTER, Code("E4")),
        // Type C: any User, no registration needed, only for SRVs that admit OU.
        ("4.8.1", OU1, ESME, AFTER, Yes(OtherUser)),
        ("11.2", OU1, GSME, AFTER, Yes(OtherUser)),
        ("9.1", OU1, ESME, AFTER, Yes(OtherUser)),
        ("4.1.1", OU1, ESME, AFTER, Code("E2")),
        ("1.1.1", OU1, ESME, AFTER, Code("E2")),
        // Non-device services skip the device checks.
        ("8.2", OU1, "90-B3-D5-1F-30-00-00-02", AFTER, Yes(OtherUser)),
        ("8.2", SUP2, "90-B3-D5-1F-30-00-00-02", AFTER, Yes(ImportSupplier)),
        // Unknown Users and devices, user status.
        ("4.1.1", STRANGER, ESME, AFTER, Code("E1")),
        ("4.1.1", SUP1, MISSING, AFTER, Code("E19")),
        ("4.1.1", SUSPA, ESME, AFTER, Code("E3")),
        ("4.1.1", GONE, ESME, AFTER, Code("E3")),
        ("8.2", GONE, "90-B3-D5-1F-30-00-00-02", AFTER, Code("E3")),
        // E1 before E2 before E3 before E19 before E4.
        ("4.1.1", STRANGER, MISSING, AFTER, Code("E1")),
        ("1.1.1", GONE, MISSING, AFTER, Code("E3")),
        ("7.1", NO1, MISSING, AFTER, Code("E2")),
        ("4.1.1", SUP2, MISSING, AFTER, Code("E19")),
        // E19 before E11 before E4 and E5.
        ("6.30", SUP1, MISSING, AFTER, Code("E19")),
        ("6.30", SUP2, ESME, BEFORE, Code("E11")),
        ("6.30", SUP1, ESME_STATUS[3].0, AFTER, Code("E11")),
    ];
    // Device status (E5), for a registered supplier: reads, and installation services.
    let mut rows = table;
    for (dev, status) in ESME_STATUS {
        use DeviceStatus::*;
        let read = match status {
            InstalledNotCommissioned | Recovered => Yes(ImportSupplier),
            _ => Code("E5"),
        };
        let install = match status {
            Pending | Whitelisted | InstalledNotCommissioned | Recovered => Yes(ImportSupplier),
            _ => Code("E5"),
        };
        rows.push(("4.1.1", SUP1, dev, AFTER, read));
        rows.push(("8.1.1", SUP1, dev, AFTER, install));
        // Registration is checked before status: the wrong supplier gets E4 whatever the status.
        rows.push(("4.1.1", SUP2, dev, AFTER, Code("E4")));
    }
    for (srv, user, target, at, want) in rows {
        let service = catalogue.get(&srv.parse().unwrap()).unwrap();
        let req = AccessRequest {
            originator: id(user),
            target: id(target),
            service,
            at,
        };
        let got = match authorize(&req, &register, &registry) {
            Result::Ok(p) => {
                assert_eq!(
                    (p.user(), p.srv(), p.class()),
                    (id(user), service.srv, class_of(p.role()))
                );
                assert_eq!(p.device(), (!service.non_device).then(|| id(target)));
                Want::Ok(p.role())
            }
            Err(d) => Want::Code(code(&d)),
        };
        assert_eq!(got, want, "{srv} by {user} on {target} at {at}");
    }
}

/// Every SRV of the catalogue admits exactly its eligible roles: a User holding one role gets
/// past E2 exactly when the catalogue lists that role (non-device SRVs, to skip device checks;
/// device SRVs are tried on a device of a type they target that the User is not registered
/// for, so E4 means "past E2").
#[test]
fn the_catalogue_decides_eligibility() {
    let registry = registry();
    for role in UserRole::ALL {
        let register = PartyRegister::parse(&format!(
            "user_id,party_id,party_name,roles,status,response_url\n{STRANGER},P,P,{role},active,\n"
        ))
        .unwrap();
        for entry in Catalogue::builtin().iter() {
            let target = if entry.non_device {
                "90-B3-D5-1F-30-00-00-02"
            } else if entry.targets(DeviceType::Esme) {
                ESME
            } else if entry.targets(DeviceType::Gsme) {
                GSME
            } else {
                CHF
            };
            let req = AccessRequest {
                originator: id(STRANGER),
                target: id(target),
                service: entry,
                at: AFTER,
            };
            let got = authorize(&req, &register, &registry);
            let eligible = entry.roles.contains(&role);
            let passed_e2 = !matches!(got, Err(Denial::RoleNotEligible(_)));
            assert_eq!(passed_e2, eligible, "{role} on {}", entry.srv);
            if eligible && role != UserRole::OtherUser && !entry.non_device {
                assert_eq!(got, Err(Denial::NotRegistered), "{role} on {}", entry.srv);
            }
        }
    }
}
