//! 12.2, 8.14.x, 8.3 and 8.4: the registration cache changes as DUIS says, through the durable
//! change path; the DCC Alerts those changes call for reach the suppliers and network operators
//! of the devices, and no one else; refusals carry their codes.

use super::*;

const HUB_HEAD: &str = "<sr:CHFInstallSuccessSMWAN>";

fn prenotify(counter: u64, device_type: &str, gpf: Option<&str>) -> String {
    let gpf = gpf
        .map(|g| format!("<sr:AssociatedGPFDeviceID>{g}</sr:AssociatedGPFDeviceID>"))
        .unwrap_or_default();
    request(
        SUPPLIER,
        "12.2",
        counter,
        &format!(
            "<sr:DevicePrenotification><sr:DeviceID>{NEW_HUB}</sr:DeviceID>\
             <sr:DeviceManufacturer>Acme Hubs</sr:DeviceManufacturer><sr:DeviceModel>H-2</sr:DeviceModel>\
             <sr:DeviceType>{device_type}</sr:DeviceType>{gpf}</sr:DevicePrenotification>"
        ),
    )
}

fn install_with_wan(counter: u64, hub: &str, mpxn: &str) -> String {
    request(
        SUPPLIER,
        "8.14.1",
        counter,
        &format!(
            "{HUB_HEAD}<sr:DeviceID>{hub}</sr:DeviceID><sr:CHFInstallType>New CHF Install</sr:CHFInstallType>\
             <sr:MPxN>{mpxn}</sr:MPxN><sr:AerialInstall>false</sr:AerialInstall>\
             <sr:CHFLocation>Indoors on external wall</sr:CHFLocation></sr:CHFInstallSuccessSMWAN>"
        ),
    )
}

fn decommission(originator: &str, counter: u64, device: &str) -> String {
    request(
        originator,
        "8.3",
        counter,
        &format!(
            "<sr:DecommissionDevice><sr:DeviceID>{device}</sr:DeviceID></sr:DecommissionDevice>"
        ),
    )
}

fn update_inventory(originator: &str, counter: u64, device: &str, update: &str) -> String {
    request(
        originator,
        "8.4",
        counter,
        &format!(
            "<sr:UpdateInventory><sr:DeviceID>{device}</sr:DeviceID>{update}</sr:UpdateInventory>"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_services_change_the_cache_and_tell_the_users() {
    let Some(install_no_wan) = template(
        "8.14.2_COMMUNICATIONS_HUB_STATUS_UPDATE_INSTALL_NO_SM_WAN_REQUEST_DUIS.XML",
        100,
    ) else {
        return;
    };
    let mut env = start("[default]\nlatency = { kind = \"fixed\", ms = 10 }\n").await;
    let gw = &env.gw;
    let mut a = Answers::default();

    // 12.2: a comms hub and its gas proxy become known as Pending, with their model.
    a.send(gw, "supplier", &prenotify(1, "CHF", Some(NEW_GPF)), "I0")
        .await;
    let inv = inventory(gw, &mut a, 2, NEW_HUB).await;
    let pending = (
        "Pending".to_owned(),
        "Acme Hubs".to_owned(),
        "H-2".to_owned(),
    );
    assert_eq!(device_in(&inv, NEW_HUB), pending);
    assert_eq!(device_in(&inv, NEW_GPF), pending);
    assert!(
        inv.contains("<sr:CSPRegion>Unknown</sr:CSPRegion>"),
        "{inv}"
    );
    // Notified again with another type: refused.
    a.send(gw, "supplier", &prenotify(3, "ESME", None), "E11")
        .await;

    // 8.14.2 (the public template, at this hub and a meter point the supplier is registered
    // for): installed without SM WAN. Then again: the hub is no longer Pending.
    let installed = install_no_wan
        .replace(HUB, NEW_HUB)
        .replace("1000999888", DEMO_MPRN);
    a.send(gw, "supplier", &installed, "I0").await;
    let inv = inventory(gw, &mut a, 101, NEW_HUB).await;
    assert_eq!(device_in(&inv, NEW_HUB).0, "InstalledNotCommissioned");
    let again = dccgw::tools::stamp_counter(&installed, 102).unwrap();
    a.send(gw, "supplier", &again, "E5").await;
    // The template as published installs the demo hub at a meter point nobody registered the
    // supplier for.
    let published = dccgw::tools::stamp_counter(&install_no_wan, 103).unwrap();
    a.send(gw, "supplier", &published, "E4").await;
    // 8.14.1: the hub reached the SM WAN.
    a.send(
        gw,
        "supplier",
        &install_with_wan(104, NEW_HUB, DEMO_MPAN),
        "I0",
    )
    .await;
    assert_eq!(
        device_in(&inventory(gw, &mut a, 105, NEW_HUB).await, NEW_HUB).0,
        "Commissioned"
    );
    // Installation steps are not reported: nothing was delivered so far.
    nothing_more(&mut env.rx).await;

    // 8.14.4 (the public template): the demo hub and its gas proxy are withdrawn; the
    // suppliers and network operators of the meter points behind it are told, each once per
    // device, and no one else.
    let returned = template(
        "8.14.4_COMMUNICATIONS_HUB_STATUS_UPDATE_NO_FAULT_RETURN_REQUEST_DUIS.XML",
        200,
    )
    .unwrap();
    a.send(gw, "supplier", &returned, "I0").await;
    let (got, hub_alerts) = messages(&mut env.rx, 4).await;
    assert_eq!(got, set(&[(SUPPLIER, "N2"), (NETWORK_OPERATOR, "N2")]));
    assert_eq!(
        hub_alerts
            .iter()
            .filter(|b| b.contains("<sr:CHFDecommissioning/>"))
            .count(),
        2,
        "{hub_alerts:?}"
    );
    assert_eq!(
        hub_alerts
            .iter()
            .filter(|b| b.contains(GPF) && b.contains("MeterDecommissioningOrWithdrawal"))
            .count(),
        2,
        "{hub_alerts:?}"
    );
    let inv = inventory(gw, &mut a, 201, HUB).await;
    assert_eq!(device_in(&inv, HUB).0, "Withdrawn");
    assert_eq!(device_in(&inv, GPF).0, "Withdrawn");
    a.send(
        gw,
        "supplier",
        &dccgw::tools::stamp_counter(&returned, 202).unwrap(),
        "E5",
    )
    .await;

    // 8.3 (the public template): the demo meter is decommissioned and its Users told; a read
    // of it is then refused.
    let decommissioned = template("8.3_DECOMMISSION_DEVICE_REQUEST_DUIS.XML", 300).unwrap();
    a.send(gw, "supplier", &decommissioned, "I0").await;
    let (got, meter_alerts) = messages(&mut env.rx, 2).await;
    assert_eq!(got, set(&[(SUPPLIER, "N2"), (NETWORK_OPERATOR, "N2")]));
    for body in &meter_alerts {
        assert!(
            body.contains(DEMO_ESME) && body.contains(DEMO_MPAN),
            "{body}"
        );
        assert!(body.contains("MeterDecommissioningOrWithdrawal"), "{body}");
    }
    let read = demo::example_request_xml(SUPPLIER, DEMO_ESME, 301);
    let url = format!("{}/api/v1/serviceS", gw.base());
    let (_, answer) = support::post(
        &gw.client("supplier"),
        &url,
        gw.signed("supplier", read.as_bytes()),
    )
    .await;
    assert_eq!(element(&answer, "ResponseCode"), Some("E5"), "{answer}");

    // 8.4: details (by the supplier, and by an Other User, whom the catalogue admits); a status
    // for a commissioned device; a meter point the cache does not hold.
    let details = "<sr:UpdateDeviceDetails><sr:DeviceManufacturer>Gasco</sr:DeviceManufacturer>\
                   <sr:DeviceModel>G-7</sr:DeviceModel></sr:UpdateDeviceDetails>";
    a.send(
        gw,
        "supplier",
        &update_inventory(SUPPLIER, 400, GSME, details),
        "I0",
    )
    .await;
    let inv = inventory(gw, &mut a, 401, GSME).await;
    assert_eq!(device_in(&inv, GSME).1, "Gasco");
    assert_eq!(device_in(&inv, GSME).2, "G-7");
    let model_only =
        "<sr:UpdateDeviceDetails><sr:DeviceModel>G-8</sr:DeviceModel></sr:UpdateDeviceDetails>";
    let other = "00-DB-12-34-56-78-00-04";
    a.send(
        gw,
        "other-user",
        &update_inventory(other, 1, GSME, model_only),
        "I0",
    )
    .await;
    let inv = inventory(gw, &mut a, 402, GSME).await;
    assert_eq!(device_in(&inv, GSME).1, "Gasco");
    assert_eq!(device_in(&inv, GSME).2, "G-8");
    let status = "<sr:UpdateDeviceStatusExceptCH>Pending</sr:UpdateDeviceStatusExceptCH>";
    a.send(
        gw,
        "supplier",
        &update_inventory(SUPPLIER, 403, GSME, status),
        "E5",
    )
    .await;
    let export = "<sr:UpdateMPxN><sr:ExportMPAN>1200023305968</sr:ExportMPAN></sr:UpdateMPxN>";
    a.send(
        gw,
        "supplier",
        &update_inventory(SUPPLIER, 404, APC, export),
        "E080405",
    )
    .await;

    // Refusals, each with its code.
    a.send(
        gw,
        "network-operator",
        &decommission(NETWORK_OPERATOR, 1, GSME),
        "E2",
    )
    .await;
    a.send(gw, "supplier", &decommission(SUPPLIER, 500, UNKNOWN), "E19")
        .await;
    a.send(gw, "supplier2", &decommission(SUPPLIER2, 1, GSME), "E4")
        .await;
    a.send(
        gw,
        "supplier",
        &decommission(SUPPLIER, 501, DEMO_ESME),
        "E5",
    )
    .await;
    a.send(gw, "supplier", &decommission(SUPPLIER, 502, NEW_HUB), "E11")
        .await;
    a.send(
        gw,
        "supplier",
        &decommission(SUPPLIER, 503, "not-an-eui"),
        "E40",
    )
    .await;
    let opt_in = template("8.6_SERVICE_OPTIN_REQUEST_DUIS.XML", 504).unwrap();
    a.send(gw, "supplier", &opt_in, "E44").await;

    // No other message: nothing for the second supplier or the Other User, and no copy twice.
    nothing_more(&mut env.rx).await;
    let delivered: Vec<String> = hub_alerts.into_iter().chain(meter_alerts).collect();
    a.check(gw, &delivered);
    // Every inventory service answered at once: the audit trail owes no final message.
    for srv in ["12.2", "8.14.1", "8.14.2", "8.14.4", "8.3", "8.4", "8.2"] {
        let records = audited(gw, srv).await;
        assert!(!records.is_empty(), "{srv}");
        assert!(
            records
                .iter()
                .all(|(code, follows)| code == "I0" && !follows),
            "{srv}: {records:?}"
        );
    }
    env.stop().await;
}
