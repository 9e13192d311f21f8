//! DCC Alerts from registration changes and events: which event, which code, which Users.

use crate::alerts::{
    dcc_recipients, events_for_change, power_outage_events, AlertsError, DccAlert, DccEvent,
    Recipient,
};
use crate::domain::{DccAlertCode, RequestId};
use crate::duis::outbound::{DccAlertPayload, DeviceStatusChange, MeterMpxns, QuarantineBreach};
use crate::registry::Change;

use super::*;

fn status(device: &str, status: DeviceStatus) -> Change {
    Change::SetDeviceStatus {
        device: device_id(device),
        status,
    }
}

fn status_event(device: &str, change: DeviceStatusChange) -> DccEvent {
    DccEvent::DeviceStatusChange {
        device: device_id(device),
        change,
    }
}

#[test]
fn status_changes_that_users_are_told_of() {
    use DeviceStatus::*;
    let reg = registry();
    let suspended = reg.apply(&status(ESME, Suspended)).unwrap();
    let meter_gone = DeviceStatusChange::MeterDecommissioningOrWithdrawal {
        meter: MeterMpxns::import_only(mpan()),
        associated: vec![(device_id(PPMID), DeviceType::Ppmid)],
    };
    let cases: [(&Snapshot, Change, Vec<DccEvent>); 9] = [
        (
            &reg,
            status(ESME, Suspended),
            vec![status_event(ESME, DeviceStatusChange::DeviceSuspended)],
        ),
        (
            &suspended,
            status(ESME, Commissioned),
            vec![status_event(ESME, DeviceStatusChange::DeviceRestored)],
        ),
        (
            &reg,
            status(ESME, Decommissioned),
            vec![status_event(ESME, meter_gone.clone())],
        ),
        (
            &reg,
            status(ESME, Withdrawn),
            vec![status_event(ESME, meter_gone)],
        ),
        (
            &reg,
            status(CHF, Decommissioned),
            vec![status_event(CHF, DeviceStatusChange::ChfDecommissioning)],
        ),
        (
            &reg,
            status(IHD, Withdrawn),
            vec![status_event(
                IHD,
                DeviceStatusChange::DeviceRemovedFromInventory,
            )],
        ),
        (
            &reg,
            status(ESME, Recovered),
            vec![status_event(ESME, DeviceStatusChange::RecoveryComplete)],
        ),
        // Not reported: no change, commissioning steps, an unknown device.
        (&reg, status(ESME, Commissioned), vec![]),
        (&reg, status("00-00-00-00-00-00-00-09", Suspended), vec![]),
    ];
    for (before, change, want) in cases {
        assert_eq!(events_for_change(before, &change), want, "{change:?}");
    }
    let to_recovery = reg.apply(&status(GSME, Recovery)).unwrap();
    assert!(events_for_change(&reg, &status(GSME, Recovery)).is_empty());
    assert_eq!(
        events_for_change(&to_recovery, &status(GSME, Recovered)),
        vec![status_event(GSME, DeviceStatusChange::RecoveryComplete)]
    );
}

#[test]
fn a_meter_given_another_meter_point_is_an_identity_change() {
    let reg = registry();
    let mut esme = reg.device(device_id(ESME)).unwrap();
    let other: Mpxn = "1200023305999".parse().unwrap();
    esme.mpxn = Some(other);
    assert_eq!(
        events_for_change(&reg, &Change::UpsertDevice(esme)),
        vec![status_event(
            ESME,
            DeviceStatusChange::MeterIdentity(MeterMpxns::import_only(other))
        )]
    );
    // The same record again, or a new device: nothing.
    let same = reg.device(device_id(ESME)).unwrap();
    assert!(events_for_change(&reg, &Change::UpsertDevice(same)).is_empty());
    esme.id = eui("00-00-00-00-00-00-00-0A");
    assert!(events_for_change(&reg, &Change::UpsertDevice(esme)).is_empty());
}

#[test]
fn a_new_supplier_registration_is_a_change_of_supplier_for_each_meter() {
    let reg = registry();
    let at = T0 + 500;
    let gas = registration(mprn(), UserRole::GasSupplier, SUPPLIER2, at);
    let want: Vec<DccEvent> = [GSME, GPF]
        .into_iter()
        .map(|d| DccEvent::ChangeOfSupplier {
            device: device_id(d),
            mpxn: mprn(),
            role: UserRole::GasSupplier,
            outgoing: vec![user(SUPPLIER)],
            incoming: user(SUPPLIER2),
        })
        .collect();
    assert_eq!(events_for_change(&reg, &gas), want);
    // Not a change of supplier: a network operator, the same supplier again, a first supplier.
    let first = Snapshot::empty()
        .apply_all(&[
            Change::UpsertDevice(reg.device(device_id(CHF)).unwrap()),
            Change::UpsertDevice(reg.device(device_id(ESME)).unwrap()),
        ])
        .unwrap();
    for (before, change) in [
        (
            &reg,
            registration(mpan(), UserRole::ElectricityDistributor, SUPPLIER2, at),
        ),
        (
            &reg,
            registration(mpan(), UserRole::ImportSupplier, SUPPLIER, at),
        ),
        (
            &first,
            registration(mpan(), UserRole::ImportSupplier, SUPPLIER2, at),
        ),
    ] {
        assert!(events_for_change(before, &change).is_empty(), "{change:?}");
    }
    let end = Change::EndRegistration {
        mpxn: mpan(),
        role: UserRole::ImportSupplier,
        user: user(SUPPLIER),
        at,
    };
    assert!(events_for_change(&reg, &end).is_empty());
}

fn rid() -> RequestId {
    format!("{SUPPLIER2}:{ESME}:42").parse().unwrap()
}

fn recipients(event: DccEvent, reg: &Snapshot) -> Result<Vec<Recipient>, AlertsError> {
    let alert = DccAlert {
        id: 1,
        event,
        at: T0 + 10,
    };
    dcc_recipients(&alert, reg).map(|(to, _)| to)
}

fn r(who: &str, role: Option<UserRole>) -> Recipient {
    Recipient {
        user: user(who),
        role,
    }
}

#[test]
fn dcc_alerts_reach_the_users_they_concern() {
    use UserRole::*;
    let reg = registry();
    let cases: [(DccEvent, &str, Vec<Recipient>); 6] = [
        (
            power_outage_events(device_id(CHF), &reg, T0)[0].clone(),
            "N1",
            vec![r(NETWORK_OPERATOR, Some(ElectricityDistributor))],
        ),
        (
            status_event(GSME, DeviceStatusChange::DeviceSuspended),
            "N2",
            vec![
                r(SUPPLIER, Some(GasSupplier)),
                r(NETWORK_OPERATOR, Some(GasTransporter)),
            ],
        ),
        (
            DccEvent::ChangeOfSupplier {
                device: device_id(ESME),
                mpxn: mpan(),
                role: ImportSupplier,
                outgoing: vec![user(SUPPLIER)],
                incoming: user(SUPPLIER2),
            },
            "N3",
            vec![
                r(SUPPLIER, Some(ImportSupplier)),
                r(SUPPLIER2, Some(ImportSupplier)),
            ],
        ),
        (
            DccEvent::CommandFailure {
                request_id: rid(),
                device: device_id(ESME),
                dsp_schedule_id: None,
            },
            "N4",
            vec![r(SUPPLIER2, None)],
        ),
        (
            DccEvent::Quarantined {
                request_id: rid(),
                breach: QuarantineBreach::DccThreshold,
                event_ref: 99,
            },
            "AD1",
            vec![r(SUPPLIER2, None)],
        ),
        (
            DccEvent::DspScheduleRemoved {
                device: device_id(ESME),
                schedule: crate::duis::schedule::ScheduleId::LAST,
                owner: user(SUPPLIER),
            },
            "N5",
            vec![r(SUPPLIER, None)],
        ),
    ];
    for (event, code, want) in cases {
        assert_eq!(event.code().to_string(), code);
        assert_eq!(
            event.request_id().is_some(),
            matches!(code, "N4" | "AD1"),
            "{code}"
        );
        assert_eq!(recipients(event, &reg), Ok(want), "{code}");
    }
}

#[test]
fn power_outages_are_one_event_per_meter_point() {
    let reg = registry();
    let events = power_outage_events(device_id(CHF), &reg, T0 + 3);
    let want: Vec<DccEvent> = [mpan(), mprn()]
        .into_iter()
        .map(|mpxn| DccEvent::PowerOutage {
            hub: device_id(CHF),
            mpxn,
            started: T0 + 3,
        })
        .collect();
    assert_eq!(events, want);
    assert!(power_outage_events(device_id(LONELY_CHF), &reg, T0).is_empty());
    // The gas meter point's outage goes to the gas transporter; its payload names the hub.
    let alert = DccAlert {
        id: 5,
        event: events[1].clone(),
        at: T0 + 3,
    };
    let (to, body) = dcc_recipients(&alert, &reg).unwrap();
    assert_eq!(
        to,
        vec![r(NETWORK_OPERATOR, Some(UserRole::GasTransporter))]
    );
    assert!(matches!(
        body.payload(),
        DccAlertPayload::PowerOutageEvent { comms_hub, .. } if *comms_hub == device_id(CHF)
    ));
}

#[test]
fn unroutable_dcc_alerts_say_why() {
    let reg = registry();
    let unknown = eui("00-00-00-00-00-00-00-09");
    assert_eq!(
        recipients(
            status_event(
                "00-00-00-00-00-00-00-09",
                DeviceStatusChange::DeviceSuspended
            ),
            &reg
        ),
        Err(AlertsError::UnknownDevice(unknown))
    );
    let nobody = Snapshot::empty()
        .apply(&Change::UpsertDevice(
            reg.device(device_id(LONELY_CHF)).unwrap(),
        ))
        .unwrap();
    assert_eq!(
        recipients(
            status_event(LONELY_CHF, DeviceStatusChange::ChfDecommissioning),
            &nobody
        ),
        Err(AlertsError::NoDccRecipient(DccAlertCode::n(2).unwrap()))
    );
    let far_future = DccEvent::PowerOutage {
        hub: device_id(CHF),
        mpxn: mpan(),
        started: i64::MAX,
    };
    assert_eq!(
        recipients(far_future, &reg),
        Err(AlertsError::TimeOutOfRange(i64::MAX))
    );
}
