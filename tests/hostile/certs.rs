//! Certificates: a certificate from the trusted CA whose role is not a User's does not get in;
//! a revoked certificate is refused at the next handshake (and its signatures at the next
//! request) after a reload — by the admin endpoint or the file watch — without a restart and
//! without dropping the connections already open.

use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use dccgw::domain::SmkiRole;
use dccgw::pki::{Ca, LeafSpec, Usage, Validity};

use crate::support::{client_with, TestGateway};
use crate::{admin_post, counter, read_with, start, start_with_crls, SUPPLIER};

fn ca(dir: &Path) -> Ca {
    Ca::load(&dir.join("certs/ca.pem"), &dir.join("certs/ca.key.pem")).unwrap()
}

fn der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    let first = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    first.as_ref().to_vec()
}

/// Writes `dir/crl.pem`: the CA's CRL revoking `revoked` (certificate files under `dir`).
fn write_crl(dir: &Path, revoked: &[&str]) {
    let ders: Vec<Vec<u8>> = revoked.iter().map(|p| der(&dir.join(p))).collect();
    let refs: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
    let now = OffsetDateTime::now_utc();
    let crl = ca(dir).crl(&refs, Validity::days_from(now, 7)).unwrap();
    // Written beside and renamed over, as an operator's tooling would.
    let tmp = dir.join("crl.pem.tmp");
    std::fs::write(&tmp, crl).unwrap();
    std::fs::rename(tmp, dir.join("crl.pem")).unwrap();
}

/// Whether the gateway's metrics show `line` within a second: a handshake is counted on the
/// DUIS port's own runtime, which may finish after the client has seen it fail.
async fn metric(gw: &TestGateway, line: &str) -> bool {
    for _ in 0..20 {
        if gw.metrics().await.lines().any(|l| l == line) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_certificate_whose_role_is_not_a_users_does_not_get_in() {
    let gw = start("", |_| {}).await;
    let ca = ca(gw.dir.path());
    let now = OffsetDateTime::now_utc();
    for role in [
        SmkiRole::XmlSigning,
        SmkiRole::AccessControlBroker,
        SmkiRole::from_code(0x99),
        SmkiRole::IssuingAuthority,
        SmkiRole::DccXmlSigning,
    ] {
        let spec = LeafSpec::new(
            role,
            SUPPLIER.parse().unwrap(),
            Usage::TlsClient,
            Validity::days_from(now, 30),
        );
        let issued = ca.issue(&spec).unwrap();
        let pem = format!("{}{}", issued.cert_pem, issued.key_pkcs8_pem);
        let client = client_with(
            &gw.certs(),
            Some(reqwest::Identity::from_pem(pem.as_bytes()).unwrap()),
        );
        let got = client
            .post(format!("{}/api/v1/serviceS", gw.base()))
            .header("content-type", "application/xml")
            .body("<x/>")
            .send()
            .await;
        assert!(
            got.is_err(),
            "role {role} got in: {:?}",
            got.map(|r| r.status())
        );
    }
    assert!(
        metric(
            &gw,
            r#"dccgw_tls_handshake_failures_total{reason="role_not_allowed"} 5"#
        )
        .await,
        "{}",
        gw.metrics().await
    );
    // The User's own organisation certificate still does.
    let (_, code) = read_with(&gw, &gw.client("supplier"), "supplier", counter()).await;
    assert_eq!(code, "I99");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_after_an_admin_reload_without_a_restart() {
    let gw = start_with_crls("[reload]\nwatch_interval_ms = 0\n", true, |dir| {
        write_crl(dir, &[]);
    })
    .await;
    let dir = gw.dir.path().to_owned();
    let open = gw.client("supplier");
    assert_eq!(read_with(&gw, &open, "supplier", counter()).await.1, "I99");

    // Revoke the supplier's TLS certificate: nothing changes until the reload.
    write_crl(&dir, &["certs/users/supplier/tls.pem"]);
    assert_eq!(
        read_with(&gw, &gw.client("supplier"), "supplier", counter())
            .await
            .1,
        "I99"
    );
    let (status, text) = admin_post(&gw, "/admin/v1/reload", String::new()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""tls_revoked":1"#), "{text}");
    // A new connection is refused at its handshake, and counted as revoked …
    let fresh = gw.client("supplier");
    let url = format!("{}/api/v1/serviceS", gw.base());
    assert!(fresh.post(&url).body("<x/>").send().await.is_err());
    assert!(
        metric(
            &gw,
            r#"dccgw_tls_handshake_failures_total{reason="revoked_certificate"} 1"#
        )
        .await
    );
    // … while the connection already open carries on.
    assert_eq!(read_with(&gw, &open, "supplier", counter()).await.1, "I99");
    // Another User is not affected.
    let operator = gw.client("network-operator");
    let r = operator.post(&url).body("<x/>").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415);

    // Revoke the XML-signing certificate too: its signatures are refused at the next request,
    // over the connection still open.
    write_crl(
        &dir,
        &[
            "certs/users/supplier/tls.pem",
            "certs/users/supplier/xml-sign.pem",
        ],
    );
    let (status, _) = admin_post(&gw, "/admin/v1/reload", String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(read_with(&gw, &open, "supplier", counter()).await.1, "E58");

    // A CRL that does not load changes nothing.
    std::fs::write(dir.join("crl.pem"), "garbage").unwrap();
    let (status, text) = admin_post(&gw, "/admin/v1/reload", String::new()).await;
    assert_eq!(status, 500, "{text}");
    assert_eq!(read_with(&gw, &open, "supplier", counter()).await.1, "E58");
    for line in [
        r#"dccgw_certificate_reloads_total{outcome="ok",trigger="admin"} 2"#,
        r#"dccgw_certificate_reloads_total{outcome="failed",trigger="admin"} 1"#,
    ] {
        assert!(metric(&gw, line).await, "{line}");
    }
    gw.running.shutdown().await;
}

#[tokio::test]
async fn the_file_watch_reloads_a_new_crl() {
    let gw = start_with_crls("[reload]\nwatch_interval_ms = 100\n", true, |dir| {
        write_crl(dir, &[]);
    })
    .await;
    let dir = gw.dir.path().to_owned();
    assert_eq!(
        read_with(&gw, &gw.client("supplier"), "supplier", counter())
            .await
            .1,
        "I99"
    );
    write_crl(&dir, &["certs/users/supplier/tls.pem"]);
    let ok = r#"dccgw_certificate_reloads_total{outcome="ok",trigger="watch"} 1"#;
    let mut reloaded = false;
    for _ in 0..100 {
        if metric(&gw, ok).await {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "{}", gw.metrics().await);
    let url = format!("{}/api/v1/serviceS", gw.base());
    assert!(gw
        .client("supplier")
        .post(&url)
        .body("<x/>")
        .send()
        .await
        .is_err());
    // The CRL's next update is on the dashboard.
    let due = gw.metrics().await;
    assert!(
        due.lines().any(|l| l
            .starts_with(r#"dccgw_crl_next_update_timestamp_seconds{trust="tls"}"#)
            && !l.ends_with(" 0")),
        "{due}"
    );
    gw.running.shutdown().await;
}
