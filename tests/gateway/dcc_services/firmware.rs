//! 11.1, 11.4 and 12.1: a firmware image goes to the listed devices' hubs through the simulated
//! network and the originator gets the outcome (a `FirmwareDistributionFailure` for devices not
//! reached, then the Service Response with the devices not sent to); the distribution survives
//! SIGKILL; the WAN matrix is answered at once.

use std::time::Instant;

use super::*;
use crate::crash::{spawn_with, wait_ready};

/// Every 11.4 transfer fails: the hubs are unreachable for it.
const HUB: &str = "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n\
                   [srv.\"11.4\"]\nunreachable = 1.0\n";

fn update_firmware(originator: &str, srv: &str, counter: u64, devices: &[&str]) -> String {
    let element = match srv {
        "11.4" => "UpdatePPMIDFirmware",
        _ => "UpdateFirmware",
    };
    let list = devices.join(",");
    request(
        originator,
        srv,
        counter,
        &format!(
            "<sr:{element}><sr:FirmwareImage>SGVsbG8sIG1ldGVyIQ==</sr:FirmwareImage>\
             <sr:FirmwareVersion>01020304</sr:FirmwareVersion><sr:DeviceIDList>{list}</sr:DeviceIDList></sr:{element}>"
        ),
    )
}

/// The final messages of the distribution `request_id`: `n` of them, for its originator.
async fn outcome(env: &mut Env, n: usize) -> (BTreeSet<(String, String)>, Vec<String>) {
    messages(&mut env.rx, n).await
}

#[tokio::test(flavor = "multi_thread")]
async fn firmware_reaches_the_hubs_and_the_originator_hears_how_it_went() {
    let Some(published) = template("11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML", 1) else {
        return;
    };
    let mut env = start(HUB).await;
    let mut a = Answers::default();
    let mut delivered = Vec::new();

    // The public template: one meter, its hub takes the image; the Service Response (I0, no
    // warning) is the final message.
    a.send(&env.gw, "supplier", &published, "I99").await;
    let (got, bodies) = outcome(&mut env, 1).await;
    assert_eq!(got, set(&[(SUPPLIER, "I0")]));
    assert!(
        bodies[0].contains(&format!("{SUPPLIER}:{DCC_ID}:1")),
        "{}",
        bodies[0]
    );
    assert!(!bodies[0].contains("Warning"), "{}", bodies[0]);
    delivered.extend(bodies);

    // Devices of every kind: the image goes to the meters' and switch's hub; the final answer
    // names the devices it was not sent to, and why.
    let devices = [DEMO_ESME, GSME, HCALCS, GPF, PPMID, UNKNOWN];
    a.send(
        &env.gw,
        "supplier",
        &update_firmware(SUPPLIER, "11.1", 2, &devices),
        "I99",
    )
    .await;
    let (got, bodies) = outcome(&mut env, 1).await;
    assert_eq!(got, set(&[(SUPPLIER, "I0")]));
    let warning = &bodies[0];
    assert_eq!(
        element(warning, "InvalidDeviceIDList"),
        Some(UNKNOWN),
        "{warning}"
    );
    assert_eq!(
        element(warning, "NotApplicableFirmwareDeviceIDList"),
        Some(&format!("{GPF},{PPMID}")[..]),
        "{warning}"
    );
    delivered.extend(bodies);

    // 11.4 to the PPMID, whose hub cannot be reached: the failure alert names it, then the
    // Service Response.
    a.send(
        &env.gw,
        "supplier",
        &update_firmware(SUPPLIER, "11.4", 3, &[PPMID]),
        "I99",
    )
    .await;
    let (got, bodies) = outcome(&mut env, 2).await;
    assert_eq!(got, set(&[(SUPPLIER, "N11"), (SUPPLIER, "I0")]));
    let alert = bodies
        .iter()
        .find(|b| b.contains("FirmwareDistributionFailure"))
        .unwrap();
    assert_eq!(element(alert, "MeterIDs"), Some(PPMID), "{alert}");
    assert_eq!(
        element(alert, "UpdateFirmwareRequestID"),
        Some(&format!("{SUPPLIER}:{DCC_ID}:3")[..])
    );
    delivered.extend(bodies);

    // Refusals: no listed device can take the image; a role that may not; a body that does
    // not read.
    a.send(
        &env.gw,
        "supplier",
        &update_firmware(SUPPLIER, "11.1", 4, &[PPMID, UNKNOWN]),
        "E110101",
    )
    .await;
    a.send(
        &env.gw,
        "supplier",
        &update_firmware(SUPPLIER, "11.4", 5, &[GSME]),
        "E110401",
    )
    .await;
    a.send(
        &env.gw,
        "network-operator",
        &update_firmware(NETWORK_OPERATOR, "11.1", 1, &[GSME]),
        "E2",
    )
    .await;
    a.send(
        &env.gw,
        "supplier",
        &update_firmware(SUPPLIER, "11.1", 6, &["A0"]),
        "E40",
    )
    .await;
    // Another supplier's meters are not its to update.
    a.send(
        &env.gw,
        "supplier2",
        &update_firmware(SUPPLIER2, "11.1", 1, &[GSME]),
        "E110101",
    )
    .await;

    // 12.1: the public template's premises are in the North; a UPRN cannot be placed.
    let wan = template("12.1_REQUEST_WAN_MATRIX_ADDRESS_REQUEST_DUIS.XML", 7).unwrap();
    let answer = a.send(&env.gw, "supplier", &wan, "I0").await;
    assert_eq!(element(&answer, "CSPRegion"), Some("North"), "{answer}");
    assert_eq!(element(&answer, "CSPRegionResponseCode"), Some("I0"));
    assert_eq!(element(&answer, "CoverageAvailability"), Some("true"));
    let uprn = request(
        "00-DB-12-34-56-78-00-04",
        "12.1",
        1,
        "<sr:RequestWANMatrix><sr:UPRN>100023336956</sr:UPRN></sr:RequestWANMatrix>",
    );
    let answer = a.send(&env.gw, "other-user", &uprn, "I0").await;
    assert_eq!(
        answer.matches("<sr:CSPRegionResponseCode>E120101<").count(),
        3,
        "{answer}"
    );

    nothing_more(&mut env.rx).await;
    a.check(&env.gw, &delivered);
    // The audit trail: 11.1 and 11.4 owed a final message (and got it), 12.1 none.
    for srv in ["11.1", "11.4"] {
        let records = audited(&env.gw, srv).await;
        assert!(
            !records.is_empty() && records.iter().all(|(c, f)| c == "I99" && *f),
            "{srv}: {records:?}"
        );
    }
    assert!(audited(&env.gw, "12.1")
        .await
        .iter()
        .all(|(c, f)| c == "I0" && !f));
    env.stop().await;
}

/// A distribution acknowledged, then the gateway killed before any hub answered: after the
/// restart the hubs are asked again and the originator gets the final Service Response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_survives_sigkill() {
    let Some(published) = template("11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML", 77) else {
        return;
    };
    let (pki, rx_server, mut rx) = pki_and_receiver().await;
    // First run: the hubs take an hour to answer.
    let (dir, config) = routed_dir(
        pki.path(),
        rx_server.local_addr().port(),
        "[default]\nlatency = { kind = \"fixed\", ms = 3600000 }\n",
        "timeout_ms = 3600000",
    );
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let gw_certs = dir.path().join("certs");
    let body = dccgw::tools::sign(
        published.as_bytes(),
        &gw_certs.join("users/supplier/xml-sign.key.pem"),
        &gw_certs.join("users/supplier/xml-sign.pem"),
        None,
    )
    .unwrap();
    let pem = std::fs::read(gw_certs.join("users/supplier/client.pem")).unwrap();
    let client = support::client_with(&gw_certs, Some(reqwest::Identity::from_pem(&pem).unwrap()));
    let url = format!("https://localhost:{port}/api/v1/serviceD");
    let (_, answer) = support::post(&client, &url, body).await;
    assert_eq!(element(&answer, "ResponseCode"), Some("I99"), "{answer}");
    child.kill().unwrap(); // SIGKILL, the hub's command in flight
    child.wait().unwrap();

    // Second run: the hubs answer at once.
    std::fs::write(
        dir.path().join("hub.toml"),
        "[default]\nlatency = { kind = \"fixed\", ms = 10 }\n",
    )
    .unwrap();
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = spawn_with(&config, port, admin, &[]);
    wait_ready(admin).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = format!("{SUPPLIER}:{DCC_ID}:77");
    let got = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, rx.recv())
            .await
            .expect("the final response within 60 s")
            .unwrap();
        if m.description.request_id.as_deref() == Some(&want[..]) {
            break m;
        }
    };
    assert_eq!(got.description.response_code.as_deref(), Some("I0"));
    child.kill().unwrap();
    child.wait().unwrap();
    rx_server.stop().await;
}
