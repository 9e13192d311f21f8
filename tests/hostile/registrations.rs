//! Registrations a careless operator sends: a gas role on an electricity meter point, or a
//! User the party register does not hold. The admin API refuses both, access control never sees
//! them, and the CSV loader refuses them at start.

use dccgw::demo::DEMO_MPAN;

use crate::support::{self};
use crate::{admin_post, read_with, start};

const SUPPLIER2: &str = "90-B3-D5-1F-30-03-00-00";

#[tokio::test]
async fn a_gas_role_on_an_mpan_and_an_unknown_user_are_refused() {
    let gw = start("", |_| {}).await;
    let add = |role: &str, user: &str| {
        format!(
            r#"[{{"change":"add_registration","mpxn":"{DEMO_MPAN}","registration":{{"role":"{role}","user":"{user}","from":0,"to":null}}}}]"#
        )
    };
    // supplier2 holds IS and GS; as GS it must not get the electricity meter.
    let (status, text) = admin_post(&gw, "/admin/v1/registry/changes", add("GS", SUPPLIER2)).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("fuel"), "{text}");
    let (status, text) = admin_post(
        &gw,
        "/admin/v1/registry/changes",
        add("IS", "90-B3-D5-1F-30-77-00-00"),
    )
    .await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("not in the party register"), "{text}");
    // Nothing changed: supplier2 still may not read the supplier's meter.
    let client = gw.client("supplier2");
    let xml = dccgw::demo::example_request_xml(SUPPLIER2, dccgw::demo::DEMO_ESME, crate::counter());
    let body = gw.signed("supplier2", xml.as_bytes());
    let (_, answer) = support::post(&client, &format!("{}/api/v1/serviceS", gw.base()), body).await;
    assert_eq!(support::element(&answer, "ResponseCode"), Some("E4"));
    // The supplier itself is untouched.
    assert_eq!(
        read_with(&gw, &gw.client("supplier"), "supplier", crate::counter())
            .await
            .1,
        "I99"
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn the_csv_loader_refuses_them_at_start() {
    for (row, expect) in [
        (
            format!("{DEMO_MPAN},GS,{SUPPLIER2},2020-01-01T00:00:00Z,"),
            "fuel",
        ),
        (
            format!("{DEMO_MPAN},IS,90-B3-D5-1F-30-77-00-00,2020-01-01T00:00:00Z,"),
            "not in the party register",
        ),
    ] {
        let (dir, path) = support::prepare_dir("", |_| {});
        let regs = dir.path().join("registrations.csv");
        let mut text = std::fs::read_to_string(&regs).unwrap();
        text.push_str(&row);
        text.push('\n');
        std::fs::write(&regs, text).unwrap();
        let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
        let err = match dccgw::server::start(&config).await {
            Ok(_) => panic!("{row}: started"),
            Err(e) => e,
        };
        let chain = format!("{:?}", anyhow_chain(&err));
        assert!(chain.contains(expect), "{row}: {chain}");
    }
}

/// The error and its causes, as one text.
fn anyhow_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
