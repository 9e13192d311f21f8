//! Tests of alert fan-out on a small registry: the public test environment's premises (a comms
//! hub with an electricity meter, a gas meter and its proxy, a PPMID and an IHD), a supplier in
//! IS and GS, a network operator in ED and GT, and a second supplier.

mod changes;
mod fanout;
mod progress;
mod routing;
mod throttle;

use crate::domain::{DeviceId, DeviceStatus, DeviceType, Eui64, Mpxn, UserId, UserRole};
use crate::registry::{Change, CspRegion, DeviceRecord, Registration, Snapshot};

pub(super) const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
pub(super) const NETWORK_OPERATOR: &str = "90-B3-D5-1F-30-02-00-00";
pub(super) const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";
pub(super) const ESME: &str = "00-DB-12-34-56-78-90-A0";
pub(super) const GSME: &str = "00-DB-12-34-56-78-90-A1";
pub(super) const GPF: &str = "00-DB-12-34-56-78-90-A2";
pub(super) const CHF: &str = "00-DB-12-34-56-78-90-A3";
pub(super) const PPMID: &str = "00-DB-12-34-56-78-90-A4";
pub(super) const IHD: &str = "00-DB-12-34-56-78-90-A5";
/// A hub with nothing behind it.
pub(super) const LONELY_CHF: &str = "00-DB-12-34-56-78-90-B0";

pub(super) const MPAN: &str = "1200023305967";
pub(super) const MPRN: &str = "3453612";

/// Registrations start here (unix seconds).
pub(super) const T0: i64 = 1_700_000_000;

pub(super) fn eui(s: &str) -> Eui64 {
    s.parse().unwrap()
}

pub(super) fn user(s: &str) -> UserId {
    eui(s)
}

pub(super) fn mpan() -> Mpxn {
    MPAN.parse().unwrap()
}

pub(super) fn mprn() -> Mpxn {
    MPRN.parse().unwrap()
}

fn device(id: &str, device_type: DeviceType, mpxn: Option<Mpxn>, chf: Option<&str>) -> Change {
    Change::UpsertDevice(DeviceRecord {
        id: eui(id),
        device_type,
        status: DeviceStatus::Commissioned,
        mpxn,
        chf: chf.map(eui),
        region: CspRegion::Central,
    })
}

pub(super) fn registration(mpxn: Mpxn, role: UserRole, who: &str, from: i64) -> Change {
    Change::AddRegistration {
        mpxn,
        registration: Registration {
            role,
            user: user(who),
            from,
            to: None,
        },
    }
}

/// The premises and its registrations.
pub(super) fn registry() -> Snapshot {
    use DeviceType::*;
    use UserRole::*;
    let changes = [
        device(CHF, Chf, None, None),
        device(LONELY_CHF, Chf, None, None),
        device(ESME, Esme, Some(mpan()), Some(CHF)),
        device(GSME, Gsme, Some(mprn()), Some(CHF)),
        device(GPF, Gpf, Some(mprn()), Some(CHF)),
        device(PPMID, Ppmid, None, Some(CHF)),
        device(IHD, Ihd, None, Some(CHF)),
        registration(mpan(), ImportSupplier, SUPPLIER, T0),
        registration(mprn(), GasSupplier, SUPPLIER, T0),
        registration(mpan(), ElectricityDistributor, NETWORK_OPERATOR, T0),
        registration(mprn(), GasTransporter, NETWORK_OPERATOR, T0),
    ];
    Snapshot::empty().apply_all(&changes).unwrap()
}

/// `registry()` after a change of import supplier to SUPPLIER2 at `at`.
pub(super) fn after_change_of_supplier(at: i64) -> Snapshot {
    let changes = [
        Change::EndRegistration {
            mpxn: mpan(),
            role: UserRole::ImportSupplier,
            user: user(SUPPLIER),
            at,
        },
        registration(mpan(), UserRole::ImportSupplier, SUPPLIER2, at),
    ];
    registry().apply_all(&changes).unwrap()
}

pub(super) fn device_id(s: &str) -> DeviceId {
    eui(s)
}
