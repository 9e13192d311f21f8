//! The DCC's own services' decisions, table by table: which device types and statuses each
//! inventory service takes and what it makes of them, and where the WAN matrix places premises.
//! The whole flows, over mTLS to their last message, are in `tests/gateway/dcc_services.rs`.

use time::OffsetDateTime;

use super::inventory::{decommission, update_inventory};
use super::wan::{answers, region_of};
use super::*;
use crate::catalogue::Catalogue;
use crate::domain::{DeviceStatus, DeviceType, ResponseCode, DCC_ID};
use crate::duis::services::{InventoryUpdate, MpxnUpdate, WanQuery};
use crate::duis::{parse_request, Limits};
use crate::registry::CspRegion;
use crate::testing::fixture::{Fleet, SUPPLIER};

/// A request for `srv` (its body does not matter to the decisions below).
fn request(srv: &str) -> Vec<u8> {
    let reference = srv.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        r#"<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>{SUPPLIER}:{DCC_ID}:1</sr:RequestID><sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>{reference}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:X/></sr:Body></sr:Request>"#
    )
    .into_bytes()
}

/// Runs `f` with a planning for `srv` by the fixture's supplier.
fn with_planning<T>(fleet: &Fleet, srv: &str, f: impl FnOnce(&Planning<'_>) -> T) -> T {
    let body = request(srv);
    let parsed = parse_request(&body, &Limits::default()).unwrap();
    let entry = Catalogue::builtin().get(&srv.parse().unwrap()).unwrap();
    let permit = fleet.permit(SUPPLIER, DCC_ID, srv);
    f(&Planning {
        entry,
        permit: &permit,
        request: &parsed,
        body: &body,
        at: OffsetDateTime::now_utc(),
        now: OffsetDateTime::now_utc(),
    })
}

fn code(r: Result<Vec<Change>, Error>) -> Result<Vec<Change>, ResponseCode> {
    r.map_err(|e| e.classify().0)
}

fn record(fleet: &Fleet, device_type: DeviceType, status: DeviceStatus) -> DeviceRecord {
    let id = match device_type {
        DeviceType::Chf => fleet.hubs[0],
        DeviceType::Gsme => fleet.gsmes[0],
        _ => fleet.esmes[0],
    };
    DeviceRecord {
        status,
        ..fleet.snapshot.device(id).unwrap()
    }
}

#[test]
fn decommission_takes_installed_devices_other_than_hubs() {
    use DeviceStatus::*;
    let fleet = Fleet::new(1);
    for status in DeviceStatus::ALL.iter().copied() {
        let esme = record(&fleet, DeviceType::Esme, status);
        let got = with_planning(&fleet, "8.3", |p| code(decommission(&esme, p)));
        let want = match status {
            Whitelisted | InstalledNotCommissioned | Commissioned | Suspended | Recovered => {
                Ok(vec![Change::SetDeviceStatus {
                    device: esme.id,
                    status: Decommissioned,
                }])
            }
            Pending | Decommissioned | Withdrawn | Recovery => Err(ResponseCode::E5),
        };
        assert_eq!(got, want, "{status:?}");
        let hub = record(&fleet, DeviceType::Chf, status);
        let got = with_planning(&fleet, "8.3", |p| code(decommission(&hub, p)));
        assert_eq!(got, Err(ResponseCode::E11), "a hub, {status:?}");
    }
}

#[test]
fn update_inventory_moves_only_devices_not_yet_commissioned() {
    use DeviceStatus::*;
    let fleet = Fleet::new(1);
    let registry = &fleet.snapshot;
    let run = |d: &DeviceRecord, u: InventoryUpdate| {
        with_planning(&fleet, "8.4", |p| code(update_inventory(d, u, p, registry)))
    };
    for status in DeviceStatus::ALL.iter().copied() {
        let esme = record(&fleet, DeviceType::Esme, status);
        let hub = record(&fleet, DeviceType::Chf, status);
        let early = matches!(status, Pending | Whitelisted | InstalledNotCommissioned);
        let moved = |d: &DeviceRecord, to| match (early, d.status == to) {
            (false, _) => Err(ResponseCode::E5),
            (true, true) => Ok(Vec::new()),
            (true, false) => Ok(vec![Change::SetDeviceStatus {
                device: d.id,
                status: to,
            }]),
        };
        assert_eq!(
            run(&esme, InventoryUpdate::Status(Pending)),
            moved(&esme, Pending)
        );
        assert_eq!(
            run(&hub, InventoryUpdate::HubStatus(Commissioned)),
            moved(&hub, Commissioned)
        );
        // The status choices are each for one kind of device.
        assert_eq!(
            run(&hub, InventoryUpdate::Status(Pending)),
            Err(ResponseCode::E11)
        );
        assert_eq!(
            run(&esme, InventoryUpdate::HubStatus(Withdrawn)),
            Err(ResponseCode::E11)
        );
        // Delete: a Pending device only (recorded as Withdrawn); this hub has devices behind it.
        let deleted = match status {
            Pending => Ok(vec![Change::SetDeviceStatus {
                device: esme.id,
                status: Withdrawn,
            }]),
            _ => Err(ResponseCode::E5),
        };
        assert_eq!(run(&esme, InventoryUpdate::Delete), deleted, "{status:?}");
        assert_eq!(run(&hub, InventoryUpdate::Delete), Err(ResponseCode::E5));
    }
}

#[test]
fn update_inventory_details_and_meter_points() {
    let fleet = Fleet::new(2);
    let registry = &fleet.snapshot;
    let run = |d: &DeviceRecord, u: InventoryUpdate| {
        with_planning(&fleet, "8.4", |p| code(update_inventory(d, u, p, registry)))
    };
    let esme = record(&fleet, DeviceType::Esme, DeviceStatus::Commissioned);
    let gsme = record(&fleet, DeviceType::Gsme, DeviceStatus::Commissioned);
    let details = InventoryUpdate::Details {
        manufacturer: Some("Acme".into()),
        model: None,
    };
    assert_eq!(
        run(&esme, details.clone()),
        Ok(vec![Change::SetDeviceModel {
            device: esme.id,
            manufacturer: "Acme".into(),
            model: String::new(),
        }])
    );
    let gone = record(&fleet, DeviceType::Esme, DeviceStatus::Decommissioned);
    assert_eq!(run(&gone, details), Err(ResponseCode::E5));
    let nothing = InventoryUpdate::Details {
        manufacturer: None,
        model: None,
    };
    assert_eq!(run(&esme, nothing), Ok(Vec::new()));
    // A meter point of the meter's fuel; the cache holds no secondary or export MPAN.
    let mpan = crate::domain::Mpxn::Mpan(1_300_000_000_000);
    let mprn = crate::domain::Mpxn::Mprn(4_000_000);
    assert_eq!(
        run(&esme, InventoryUpdate::Mpxn(MpxnUpdate::Import(mpan))),
        Ok(vec![Change::UpsertDevice(DeviceRecord {
            mpxn: Some(mpan),
            ..esme
        })])
    );
    assert_eq!(
        run(&esme, InventoryUpdate::Mpxn(MpxnUpdate::Import(mprn))),
        Err(ResponseCode::E11)
    );
    assert_eq!(
        run(&gsme, InventoryUpdate::Mpxn(MpxnUpdate::Import(mprn))),
        Ok(vec![Change::UpsertDevice(DeviceRecord {
            mpxn: Some(mprn),
            ..gsme
        })])
    );
    assert_eq!(
        run(&esme, InventoryUpdate::Mpxn(MpxnUpdate::Export(mpan))),
        Err(ResponseCode::E080405)
    );
    assert_eq!(
        run(&gsme, InventoryUpdate::Mpxn(MpxnUpdate::Export(mpan))),
        Err(ResponseCode::E11)
    );
    assert_eq!(
        run(
            &esme,
            InventoryUpdate::Mpxn(MpxnUpdate::Import(esme.mpxn.unwrap()))
        ),
        Ok(Vec::new())
    );
}

#[test]
fn post_codes_are_placed_by_area() {
    let table: &[(&str, Option<CspRegion>)] = &[
        ("M22 0RR", Some(CspRegion::North)),
        ("EH1 1YZ", Some(CspRegion::North)),
        ("ls1 4ap", Some(CspRegion::North)),
        ("B1 1BB", Some(CspRegion::Central)),
        ("CF10 1EP", Some(CspRegion::Central)),
        ("SW1A 1AA", Some(CspRegion::South)),
        ("EC1A 1BB", Some(CspRegion::South)),
        ("BT1 5GS", None),
        ("JE2 4WE", None),
        ("123456", None),
        ("ABC 123", None),
    ];
    for (post_code, want) in table {
        assert_eq!(region_of(post_code), *want, "{post_code}");
    }
}

#[test]
fn every_area_is_in_one_region() {
    use super::wan::{CENTRAL, NORTH, SOUTH};
    let mut seen = std::collections::HashSet::new();
    for area in NORTH.iter().chain(CENTRAL).chain(SOUTH) {
        assert!(seen.insert(area), "{area} twice");
        assert!((1..=2).contains(&area.len()) && area.bytes().all(|b| b.is_ascii_uppercase()));
    }
}

#[test]
fn premises_not_placed_get_every_region_unable() {
    let unplaced = answers(&WanQuery::Uprn(100_023_336_956));
    assert_eq!(unplaced.len(), 3);
    assert!(unplaced
        .iter()
        .all(|a| a.code == ResponseCode::E120101 && a.coverage.is_none()));
    let placed = answers(&WanQuery::Address {
        post_code: "M22 0RR".into(),
        address: "Threapwood Road".into(),
    });
    assert_eq!(placed.len(), 1);
    assert_eq!(
        (placed[0].region, placed[0].code),
        ("North", ResponseCode::I0)
    );
    assert!(placed[0].coverage.is_some_and(|c| c.available));
}

#[test]
fn a_hub_reads_its_firmware_command_as_gbcs() {
    use crate::gbcs::command::{mac_holds, NO_PUBLIC_CODE};
    use crate::gbcs::usecase::body::read_command;
    use crate::gbcs::{Apdu, Cra, SignatureField};
    let fleet = Fleet::new(1);
    let hub: crate::domain::Eui64 = "00-DB-12-34-56-78-90-A2".parse().unwrap();
    let line = b"dccgw-firmware/1 srv=11.1 version=2.0 devices=00-DB-12-34-56-78-90-A1";
    let sealed = with_planning(&fleet, "11.1", |p| {
        let id = crate::firmware::hub_request_id(&p.request.header.request_id, hub);
        super::firmware::distribution_command(p, id, line).unwrap()
    });
    let Ok(Apdu::Mac(sealed)) = Apdu::decode(&sealed) else {
        panic!("not a command behind the DCC's MAC header");
    };
    assert!(mac_holds(&sealed));
    let frame = &sealed.inner;
    assert_eq!(frame.transaction.cra, Cra::Command);
    assert_eq!(frame.transaction.counter, 1);
    assert_eq!(frame.originator, SUPPLIER);
    assert_eq!(frame.recipient, hub);
    assert_eq!(frame.other.message_code, NO_PUBLIC_CODE);
    assert_eq!(frame.signature, SignatureField::Empty);
    let command = read_command(&frame.content).unwrap();
    assert_eq!(command.srv.to_string(), "11.1");
    assert_eq!(command.body, line);
}
