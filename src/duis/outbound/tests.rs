//! The outbound writers: exact output, header rules, refusals, every shape against the DUIS 5.4
//! XSD (xmllint), and signed copies verified by our verifier and by `xmlsec1`.

use std::process::Command;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::domain::{DccAlertCode, DeviceType, Eui64, Mpxn, SmkiRole};
use crate::duis::testing::DuisXsd;
use crate::pki::{Ca, LeafSpec, Usage, Validity};
use crate::signer::Signer;
use crate::testing::have_tool;
use crate::xmldsig::c14n::C14nLimits;
use crate::xmldsig::{sign_document, verify_document};

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";
const ESME: &str = "00-DB-12-34-56-78-90-A0";
const NOW: OffsetDateTime = datetime!(2024-03-01 12:00:00.250 UTC);

fn eui(s: &str) -> Eui64 {
    s.parse().unwrap()
}

fn rid(counter: u64) -> RequestId {
    format!("{SUPPLIER}:{ESME}:{counter}").parse().unwrap()
}

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

fn mpan() -> Mpxn {
    "1200023305967".parse().unwrap()
}

fn device_alert(throttled: Option<Throttled>) -> String {
    write_device_alert(
        &DeviceAlertOut {
            device: eui(ESME),
            user: eui(SUPPLIER),
            counter: 77,
            code: 0x8F35,
            throttled,
            payload: b"default",
        },
        NOW,
    )
}

#[test]
fn writes_a_device_alert_exactly() {
    let want = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" "#,
        r#"xmlns:ra="http://www.dccinterface.co.uk/ResponseAndAlert" schemaVersion="5.4">"#,
        "<sr:Header><sr:ResponseID>00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:77</sr:ResponseID>",
        "<sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>2024-03-01T12:00:00.250Z</sr:ResponseDateTime>",
        "</sr:Header><sr:Body><sr:DeviceAlertMessage><sr:AlertCode>8F35</sr:AlertCode>",
        "<sr:GBCSPayload>ZGVmYXVsdA==</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body></sr:Response>",
    );
    assert_eq!(device_alert(None), want);
    let throttled = device_alert(Some(Throttled {
        sequence_id: 4,
        count: 120,
    }));
    assert!(throttled.contains(concat!(
        "<sr:AlertCode>8F35</sr:AlertCode><sr:ThrottledAlertSequenceId>4</sr:ThrottledAlertSequenceId>",
        "<sr:ThrottledAlertCount>120</sr:ThrottledAlertCount><sr:GBCSPayload>"
    )));
}

#[test]
fn service_responses_carry_the_right_header() {
    let answer = write_service_response(&rid(9), srv("4.1.1"), &DeviceOutcome::Answer(b"ab"), NOW);
    assert!(answer.contains(&format!(
        "<sr:RequestID>{SUPPLIER}:{ESME}:9</sr:RequestID><sr:ResponseID>{ESME}:{SUPPLIER}:9</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode>"
    )));
    assert!(answer.contains("<sr:ServiceReference>4.1</sr:ServiceReference><sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant><sr:GBCSPayload>YWI=</sr:GBCSPayload>"));
    for (outcome, code) in [
        (DeviceOutcome::Failed(ResponseCode::E20), "E20"),
        (DeviceOutcome::Failed(ResponseCode::E21), "E21"),
    ] {
        let doc = write_service_response(&rid(9), srv("4.1.1"), &outcome, NOW);
        assert!(doc.contains(&format!(
            "<sr:RequestID>{SUPPLIER}:{ESME}:9</sr:RequestID><sr:ResponseCode>{code}</sr:ResponseCode>"
        )));
        assert!(!doc.contains("ResponseID"), "{doc}");
        assert!(!doc.contains("GBCSPayload"), "{doc}");
        assert_eq!(outcome.code().as_str(), code);
    }
}

#[test]
fn future_dated_alerts_go_back_to_the_requester() {
    let doc = write_future_dated_alert(&future_dated(FutureDatedAlertCode::X8F67), NOW);
    assert!(doc.contains(&format!(
        "<sr:RequestID>{SUPPLIER}:{ESME}:5</sr:RequestID><sr:ResponseID>{ESME}:{SUPPLIER}:31</sr:ResponseID>"
    )));
    assert!(doc.contains(concat!(
        "<sr:ServiceReferenceVariant>1.1.1</sr:ServiceReferenceVariant><sr:FutureDatedDeviceAlertMessage>",
        "<sr:FutureDatedAlertCode>8F67</sr:FutureDatedAlertCode><sr:GBCSPayload>AQI=</sr:GBCSPayload>",
        "<sr:InstructionNumber>2</sr:InstructionNumber><sr:TotalCommandInstructions>6</sr:TotalCommandInstructions>"
    )));
    assert_eq!(
        FutureDatedAlertCode::try_from(0x8F66),
        Ok(FutureDatedAlertCode::X8F66)
    );
    assert_eq!(
        FutureDatedAlertCode::try_from(0x8F65),
        Err(WriteError::NotFutureDated(0x8F65))
    );
}

fn future_dated(code: FutureDatedAlertCode) -> FutureDatedOut<'static> {
    FutureDatedOut {
        request_id: rid(5),
        srv: srv("1.1.1"),
        counter: 31,
        code,
        payload: &[1, 2],
        instruction: 2,
        total_instructions: 6,
    }
}

/// One of each DCC Alert payload (and each status-change choice).
fn dcc_payloads() -> Vec<DccAlertPayload> {
    let meter = MeterMpxns {
        import: mpan(),
        secondary_import: Some("1200023305968".parse().unwrap()),
        export: Some("1200023305969".parse().unwrap()),
    };
    let mut out = vec![
        DccAlertPayload::PowerOutageEvent {
            comms_hub: eui("00-DB-12-34-56-78-90-A3"),
            start: datetime!(2024-03-01 11:58:00 UTC),
            mpxn: mpan(),
        },
        DccAlertPayload::DeviceChangeOfSupplier {
            device: eui(ESME),
            device_type: DeviceType::Esme,
            mpxns: meter,
        },
        DccAlertPayload::DeviceChangeOfSupplier {
            device: eui("00-DB-12-34-56-78-90-A1"),
            device_type: DeviceType::Gsme,
            mpxns: MeterMpxns::import_only("3453612".parse().unwrap()),
        },
        DccAlertPayload::ChangeOfSupplierRequest {
            request_id: rid(3),
            ecos_error_code: Some("E01".into()),
        },
        DccAlertPayload::ChangeOfSupplierRequest {
            request_id: rid(3),
            ecos_error_code: None,
        },
        DccAlertPayload::CommandFailure {
            request_id: rid(4),
            dsp_schedule_id: Some(1_000_000_000_000),
            device: eui(ESME),
        },
        DccAlertPayload::CommandFailure {
            request_id: rid(4),
            dsp_schedule_id: None,
            device: eui(ESME),
        },
        DccAlertPayload::DspScheduleRemoval {
            device: eui(ESME),
            schedule: crate::duis::schedule::ScheduleId::LAST,
        },
        DccAlertPayload::FirmwareDistributionFailure {
            request_id: rid(5),
            devices: vec![eui(ESME), eui("00-DB-12-34-56-78-90-A1")],
        },
    ];
    for breach in [
        QuarantineBreach::UserThreshold,
        QuarantineBreach::DccThreshold,
        QuarantineBreach::AttributeLimits,
    ] {
        out.push(DccAlertPayload::QuarantinedRequest {
            breach,
            request_id: rid(6),
            quarantine_event_ref: u64::MAX,
        });
    }
    let changes = [
        DeviceStatusChange::MeterIdentity(meter),
        DeviceStatusChange::MeterDecommissioningOrWithdrawal {
            meter,
            associated: vec![(eui("00-DB-12-34-56-78-90-A4"), DeviceType::Ppmid); 7],
        },
        DeviceStatusChange::MeterDecommissioningOrWithdrawal {
            meter: MeterMpxns::import_only(mpan()),
            associated: Vec::new(),
        },
        DeviceStatusChange::DeviceRemovedFromInventory,
        DeviceStatusChange::ChfDecommissioning,
        DeviceStatusChange::DeviceSuspended,
        DeviceStatusChange::DeviceRestored,
        DeviceStatusChange::RecoveryComplete,
    ];
    out.extend(
        changes
            .into_iter()
            .map(|change| DccAlertPayload::DeviceStatusChangeEvent {
                device: eui(ESME),
                change,
            }),
    );
    out
}

fn dcc_alert(
    payload: &DccAlertPayload,
    throttled: Option<Throttled>,
) -> Result<String, WriteError> {
    let body = DccAlertBody::new(payload.clone())?;
    Ok(write_dcc_alert(
        &DccAlertOut {
            user: eui(SUPPLIER),
            counter: 12,
            request_id: Some(rid(4)),
            code: "N4".parse().unwrap(),
            throttled,
            body: &body,
        },
        NOW,
    ))
}

#[test]
fn dcc_alerts_carry_code_throttling_and_payload() {
    let doc = dcc_alert(
        &DccAlertPayload::CommandFailure {
            request_id: rid(4),
            dsp_schedule_id: None,
            device: eui(ESME),
        },
        Some(Throttled {
            sequence_id: 1,
            count: 2,
        }),
    )
    .unwrap();
    assert!(doc.contains(&format!(
        "<sr:RequestID>{SUPPLIER}:{ESME}:4</sr:RequestID><sr:ResponseID>90-B3-D5-1F-30-00-00-02:{SUPPLIER}:12</sr:ResponseID>"
    )));
    assert!(doc.contains(&format!(
        "<sr:DCCAlertMessage><sr:DCCAlertCode>N4</sr:DCCAlertCode><sr:ThrottledAlertSequenceId>1</sr:ThrottledAlertSequenceId><sr:ThrottledAlertCount>2</sr:ThrottledAlertCount><sr:DCCAlert><sr:CommandFailure><sr:CommandRequestID>{SUPPLIER}:{ESME}:4</sr:CommandRequestID><sr:DeviceID>{ESME}</sr:DeviceID></sr:CommandFailure></sr:DCCAlert>"
    )));
    assert_eq!(
        dcc_alert_response_id(eui(SUPPLIER), 12),
        format!("90-B3-D5-1F-30-00-00-02:{SUPPLIER}:12")
    );
}

#[test]
fn dcc_payloads_the_schema_would_refuse_are_refused() {
    let gas: Mpxn = "3453612".parse().unwrap();
    let cases = [
        (
            DccAlertPayload::DeviceChangeOfSupplier {
                device: eui(ESME),
                device_type: DeviceType::Esme,
                mpxns: MeterMpxns {
                    import: mpan(),
                    secondary_import: None,
                    export: Some(gas),
                },
            },
            WriteError::NotAnMpan(gas),
        ),
        (
            DccAlertPayload::DeviceStatusChangeEvent {
                device: eui(ESME),
                change: DeviceStatusChange::MeterDecommissioningOrWithdrawal {
                    meter: MeterMpxns::import_only(mpan()),
                    associated: vec![(eui(ESME), DeviceType::Ihd); 8],
                },
            },
            WriteError::TooManyAssociatedDevices(8),
        ),
        (
            DccAlertPayload::ChangeOfSupplierRequest {
                request_id: rid(1),
                ecos_error_code: Some("E1".into()),
            },
            WriteError::EcosErrorCode,
        ),
        (
            DccAlertPayload::FirmwareDistributionFailure {
                request_id: rid(5),
                devices: Vec::new(),
            },
            WriteError::EmptyDeviceList,
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(dcc_alert(&payload, None), Err(want));
    }
}

/// Every document kind the writers make, for the schema and signature checks.
fn every_shape() -> Vec<(String, String)> {
    let mut docs = vec![
        ("device alert".to_owned(), device_alert(None)),
        (
            "throttled device alert".to_owned(),
            device_alert(Some(Throttled {
                sequence_id: u32::MAX,
                count: u32::MAX,
            })),
        ),
    ];
    for (name, outcome) in [
        ("I0", DeviceOutcome::Answer(&[0xDD, 0, 1, 2][..])),
        ("I0 empty", DeviceOutcome::Answer(&[][..])),
        ("E20", DeviceOutcome::Failed(ResponseCode::E20)),
        ("E21", DeviceOutcome::Failed(ResponseCode::E21)),
    ] {
        docs.push((
            name.to_owned(),
            write_service_response(&rid(u64::MAX), srv("11.2"), &outcome, NOW),
        ));
    }
    for code in [FutureDatedAlertCode::X8F66, FutureDatedAlertCode::X8F67] {
        docs.push((
            format!("future-dated {:04X}", code.code()),
            write_future_dated_alert(&future_dated(code), NOW),
        ));
    }
    for (i, payload) in dcc_payloads().iter().enumerate() {
        let throttled = (i % 2 == 0).then_some(Throttled {
            sequence_id: 9,
            count: 10,
        });
        docs.push((
            format!("DCC alert {i}"),
            dcc_alert(payload, throttled).unwrap(),
        ));
    }
    let ad1 = DccAlertBody::new(DccAlertPayload::QuarantinedRequest {
        breach: QuarantineBreach::UserThreshold,
        request_id: rid(8),
        quarantine_event_ref: 0,
    })
    .unwrap();
    for code in [DccAlertCode::AD1, DccAlertCode::N999] {
        let out = DccAlertOut {
            user: eui(SUPPLIER),
            counter: 0,
            request_id: None,
            code,
            throttled: None,
            body: &ad1,
        };
        docs.push((format!("DCC alert {code}"), write_dcc_alert(&out, NOW)));
    }
    docs
}

#[test]
fn every_shape_is_valid_duis() {
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let docs = every_shape();
    let refs: Vec<&str> = docs.iter().map(|(_, d)| d.as_str()).collect();
    if let Err(report) = xsd.validate_all(&refs) {
        panic!("xmllint refused a written message:\n{report}");
    }
    // The oracle is live: an alert code of three hex digits is not hexBinary.
    let bad = device_alert(None).replace(">8F35<", ">8F3<");
    assert!(xsd.validate(&bad).is_err());
}

/// A DCC XML-signing key (`OU=89`) and its certificate, from a throwaway CA.
fn dcc_signer(dir: &std::path::Path) -> (Signer, std::path::PathBuf) {
    let now = OffsetDateTime::now_utc();
    let ca = Ca::generate("alerts test IA", Validity::days_from(now, 2)).unwrap();
    let spec = LeafSpec::new(
        SmkiRole::DccXmlSigning,
        crate::domain::DCC_ID,
        Usage::XmlSigning,
        Validity::days_from(now, 1),
    );
    let issued = ca.issue(&spec).unwrap();
    let (cert, key) = (dir.join("dcc.pem"), dir.join("dcc.key.pem"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pkcs8_pem).unwrap();
    let signer = Signer::load(&key, &cert, Some(SmkiRole::DccXmlSigning)).unwrap();
    (signer, cert)
}

fn xmlsec1_verifies(cert: &std::path::Path, file: &std::path::Path) -> bool {
    let out = Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(cert)
        .arg(file)
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn signed_messages_stay_valid_and_verify_independently() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, cert) = dcc_signer(dir.path());
    let limits = C14nLimits::default();
    let public = signer.identity().public_key.clone();
    let signed: Vec<(String, String)> = every_shape()
        .into_iter()
        .map(|(name, doc)| (name, sign_document(&doc, &signer, &limits).unwrap()))
        .collect();
    for (name, doc) in &signed {
        assert!(
            verify_document(doc.as_bytes(), &public, &limits).is_ok(),
            "{name}"
        );
    }
    if let Some(xsd) = DuisXsd::prepare() {
        let refs: Vec<&str> = signed.iter().map(|(_, d)| d.as_str()).collect();
        if let Err(report) = xsd.validate_all(&refs) {
            panic!("xmllint refused a signed message:\n{report}");
        }
    }
    if !have_tool("xmlsec1", "--version") {
        return;
    }
    for (i, (name, doc)) in signed.iter().enumerate() {
        let file = dir.path().join(format!("signed-{i}.xml"));
        std::fs::write(&file, doc).unwrap();
        assert!(xmlsec1_verifies(&cert, &file), "xmlsec1 refused {name}");
        // And a one-character change is caught.
        let changed = doc.replacen(":00.250Z<", ":00.251Z<", 1);
        assert_ne!(&changed, doc);
        std::fs::write(&file, changed).unwrap();
        assert!(
            !xmlsec1_verifies(&cert, &file),
            "xmlsec1 accepted a changed {name}"
        );
    }
}
