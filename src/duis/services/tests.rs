//! The non-device bodies: the public templates read as what they ask for, each schema rule
//! refuses what breaks it, and no input makes a reader panic.

use super::*;
use crate::domain::{DeviceStatus, DeviceType, Mpxn, ResponseCode};
use crate::duis::{parse_request, Limits};

const A0: &str = "00-DB-12-34-56-78-90-A0";
const A2: &str = "00-DB-12-34-56-78-90-A2";

fn id(s: &str) -> crate::domain::DeviceId {
    s.parse().unwrap()
}

/// The body element of a public template, as the request parser locates it.
fn template_body(name: &str) -> Option<(String, Vec<u8>)> {
    let dir = crate::testing::anchors()?;
    let xml = std::fs::read(dir.join("duis-samples/templates").join(name)).unwrap();
    let parsed = parse_request(&xml, &Limits::default()).unwrap();
    Some((parsed.body_element, xml[parsed.body].to_vec()))
}

#[test]
fn the_public_templates_read() {
    if let Some((_, b)) = template_body("8.3_DECOMMISSION_DEVICE_REQUEST_DUIS.XML") {
        assert_eq!(read_decommission(&b), Ok(id(A0)));
    }
    let name = "8.14.2_COMMUNICATIONS_HUB_STATUS_UPDATE_INSTALL_NO_SM_WAN_REQUEST_DUIS.XML";
    if let Some((element, b)) = template_body(name) {
        let want = HubStatusUpdate {
            hub: id(A2),
            kind: HubUpdateKind::Installed {
                wan: false,
                mpxn: Mpxn::Mprn(1_000_999_888),
            },
        };
        assert_eq!(read_hub_status_update(&b, &element), Ok(want));
    }
    let name = "8.14.4_COMMUNICATIONS_HUB_STATUS_UPDATE_NO_FAULT_RETURN_REQUEST_DUIS.XML";
    if let Some((element, b)) = template_body(name) {
        let got = read_hub_status_update(&b, &element).unwrap();
        assert_eq!(got.hub, id(A2));
        assert_eq!(
            got.kind,
            HubUpdateKind::Returned {
                fault: false,
                other: None
            }
        );
    }
    if let Some((element, b)) = template_body("11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML") {
        let got = read_update_firmware(&b, &element).unwrap();
        assert_eq!(got.version, "00000000");
        assert_eq!(got.devices, vec![id(A0)]);
        assert!(got.image_len > 100);
    }
    if let Some((_, b)) = template_body("12.1_REQUEST_WAN_MATRIX_ADDRESS_REQUEST_DUIS.XML") {
        assert_eq!(
            read_wan_matrix_request(&b),
            Ok(WanQuery::Address {
                post_code: "M22 0RR".into(),
                address: "Threapwood Road".into()
            })
        );
    }
}

fn inventory(inner: &str) -> Result<(crate::domain::DeviceId, InventoryUpdate), BodyError> {
    read_update_inventory(
        format!("<sr:UpdateInventory><sr:DeviceID>{A0}</sr:DeviceID>{inner}</sr:UpdateInventory>")
            .as_bytes(),
    )
}

#[test]
fn update_inventory_reads_each_choice_and_refuses_the_rest() {
    use InventoryUpdate::*;
    let table: &[(&str, Result<InventoryUpdate, BodyError>)] = &[
        (
            "<sr:UpdateDeviceStatusExceptCH>Pending</sr:UpdateDeviceStatusExceptCH>",
            Ok(Status(DeviceStatus::Pending)),
        ),
        (
            "<sr:UpdateDeviceStatusExceptCH>Commissioned</sr:UpdateDeviceStatusExceptCH>",
            Err(BodyError::Invalid("UpdateDeviceStatusExceptCH")),
        ),
        (
            "<sr:UpdateDeviceStatusCH>Withdrawn</sr:UpdateDeviceStatusCH>",
            Ok(HubStatus(DeviceStatus::Withdrawn)),
        ),
        (
            "<sr:UpdateDeviceStatusCH>Pending</sr:UpdateDeviceStatusCH>",
            Err(BodyError::Invalid("UpdateDeviceStatusCH")),
        ),
        (
            "<sr:UpdateDeviceDetails><sr:DeviceManufacturer>Acme &amp; Co</sr:DeviceManufacturer>\
             <sr:FirmwareVersion>0102</sr:FirmwareVersion><sr:ESMEVariant>ADE</sr:ESMEVariant>\
             </sr:UpdateDeviceDetails>",
            Ok(Details {
                manufacturer: Some("Acme & Co".into()),
                model: None,
            }),
        ),
        (
            "<sr:UpdateDeviceDetails/>",
            Ok(Details {
                manufacturer: None,
                model: None,
            }),
        ),
        (
            "<sr:UpdateDeviceDetails><sr:DeviceModel>0123456789012345678901234567890</sr:DeviceModel></sr:UpdateDeviceDetails>",
            Err(BodyError::Invalid("UpdateDeviceDetails/DeviceModel")),
        ),
        (
            "<sr:UpdateDeviceDetails><sr:ESMEVariant>Z</sr:ESMEVariant></sr:UpdateDeviceDetails>",
            Err(BodyError::Invalid("UpdateDeviceDetails/ESMEVariant")),
        ),
        (
            "<sr:UpdateDeviceDetails><sr:FirmwareVersion>123456789</sr:FirmwareVersion></sr:UpdateDeviceDetails>",
            Err(BodyError::Invalid("UpdateDeviceDetails/FirmwareVersion")),
        ),
        ("<sr:DeleteDevice/>", Ok(Delete)),
        (
            "<sr:UpdateMPxN><sr:ImportMPxN>1200023305967</sr:ImportMPxN></sr:UpdateMPxN>",
            Ok(Mpxn(MpxnUpdate::Import(crate::domain::Mpxn::Mpan(
                1_200_023_305_967,
            )))),
        ),
        (
            "<sr:UpdateMPxN><sr:ExportMPAN>3453612</sr:ExportMPAN></sr:UpdateMPxN>",
            Err(BodyError::Invalid("UpdateMPxN/ExportMPAN")),
        ),
        ("<sr:UpdateMPxN/>", Err(BodyError::Missing("UpdateMPxN/ImportMPxN"))),
        ("", Err(BodyError::Missing("an update (UpdateDeviceStatusExceptCH, UpdateDeviceStatusCH, UpdateDeviceDetails, DeleteDevice or UpdateMPxN)"))),
        (
            "<sr:DeleteDevice/><sr:UpdateDeviceStatusExceptCH>Pending</sr:UpdateDeviceStatusExceptCH>",
            Err(BodyError::Unexpected),
        ),
        (
            "<sr:DeleteDevice/><sr:Other>1</sr:Other>",
            Err(BodyError::Unexpected),
        ),
        ("<sr:DeleteDevice>x</sr:DeleteDevice>", Err(BodyError::Invalid("DeleteDevice"))),
    ];
    for (inner, want) in table {
        assert_eq!(inventory(inner).map(|(_, u)| u), *want, "{inner}");
    }
}

#[test]
fn bodies_are_bounded_and_strict() {
    let decommission = |inner: &str| {
        read_decommission(
            format!("<sr:DecommissionDevice>{inner}</sr:DecommissionDevice>").as_bytes(),
        )
    };
    assert_eq!(decommission(""), Err(BodyError::Missing("DeviceID")));
    assert_eq!(
        decommission("<sr:DeviceID>00-DB</sr:DeviceID>"),
        Err(BodyError::Invalid("DeviceID"))
    );
    assert_eq!(
        decommission(&format!(
            "<sr:DeviceID>{A0}</sr:DeviceID><sr:DeviceID>{A0}</sr:DeviceID>"
        )),
        Err(BodyError::Unexpected)
    );
    assert_eq!(
        decommission(&format!("<sr:DeviceID>{A0}<sr:x/></sr:DeviceID>")),
        Err(BodyError::Structure)
    );
    // The body element must be the one named.
    assert_eq!(
        read_decommission(
            format!("<sr:Other><sr:DeviceID>{A0}</sr:DeviceID></sr:Other>").as_bytes()
        ),
        Err(BodyError::Structure)
    );
    // Depth and leaf count are bounded.
    let deep = "<a><b><c><d>1</d></c></b></a>";
    assert_eq!(decommission(deep), Err(BodyError::Structure));
    let many = "<sr:x>1</sr:x>".repeat(MAX_FIELDS + 1);
    assert_eq!(decommission(&many), Err(BodyError::Structure));
}

#[test]
fn prenotification_reads_and_checks() {
    let body = |inner: &str| {
        format!(
            "<sr:DevicePrenotification><sr:DeviceID>{A0}</sr:DeviceID>\
             <sr:DeviceManufacturer>Acme</sr:DeviceManufacturer><sr:DeviceModel>M1</sr:DeviceModel>\
             {inner}</sr:DevicePrenotification>"
        )
    };
    let got = read_prenotification(
        body(&format!(
            "<sr:DeviceType>CHF</sr:DeviceType><sr:SMETSCHTSVersion>2</sr:SMETSCHTSVersion>\
             <sr:AssociatedGPFDeviceID>{A2}</sr:AssociatedGPFDeviceID>"
        ))
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(got.device_type, DeviceType::Chf);
    assert_eq!(
        (got.manufacturer.as_str(), got.model.as_str()),
        ("Acme", "M1")
    );
    assert_eq!(got.associated_gpf, Some(id(A2)));
    assert_eq!(
        read_prenotification(body("<sr:DeviceType>METER</sr:DeviceType>").as_bytes()),
        Err(BodyError::Invalid("DeviceType"))
    );
    assert_eq!(
        read_prenotification(body("").as_bytes()),
        Err(BodyError::Missing("DeviceType"))
    );
}

#[test]
fn hub_updates_check_every_field() {
    let fault = |reason: &str| {
        format!(
            "<sr:CHFFaultReturn><sr:DeviceID>{A2}</sr:DeviceID>\
             <sr:CHFFaultReturnType>Fault identified post installation</sr:CHFFaultReturnType>\
             <sr:UserRefDateTime>2024-01-02T03:04:05</sr:UserRefDateTime>\
             <sr:OtherDeviceID>{A0}</sr:OtherDeviceID><sr:CHFConnectionMethod>Cradle</sr:CHFConnectionMethod>\
             <sr:CHFFaultReason>{reason}</sr:CHFFaultReason></sr:CHFFaultReturn>"
        )
    };
    let got = read_hub_status_update(fault("LED Fault").as_bytes(), "CHFFaultReturn").unwrap();
    assert_eq!(
        got.kind,
        HubUpdateKind::Returned {
            fault: true,
            other: Some(id(A0))
        }
    );
    assert_eq!(
        read_hub_status_update(fault("Gremlins").as_bytes(), "CHFFaultReturn"),
        Err(BodyError::Invalid("CHFFaultReason"))
    );
    let install = format!(
        "<sr:CHFInstallSuccessSMWAN><sr:DeviceID>{A2}</sr:DeviceID>\
         <sr:CHFInstallType>New CHF Install</sr:CHFInstallType><sr:MPxN>1200023305967</sr:MPxN>\
         <sr:AerialInstall>maybe</sr:AerialInstall><sr:CHFLocation>Deep indoors</sr:CHFLocation>\
         </sr:CHFInstallSuccessSMWAN>"
    );
    assert_eq!(
        read_hub_status_update(install.as_bytes(), "CHFInstallSuccessSMWAN"),
        Err(BodyError::Invalid("AerialInstall"))
    );
    let ok = install.replace("maybe", "1");
    assert_eq!(
        read_hub_status_update(ok.as_bytes(), "CHFInstallSuccessSMWAN").map(|u| u.kind),
        Ok(HubUpdateKind::Installed {
            wan: true,
            mpxn: Mpxn::Mpan(1_200_023_305_967)
        })
    );
    // An 8.14.1 body with the fields only 8.14.2 has is refused.
    let extra = ok.replace(
        "</sr:CHFInstallSuccessSMWAN>",
        "<sr:PremiseType>Terraced</sr:PremiseType></sr:CHFInstallSuccessSMWAN>",
    );
    assert_eq!(
        read_hub_status_update(extra.as_bytes(), "CHFInstallSuccessSMWAN"),
        Err(BodyError::Unexpected)
    );
}

#[test]
fn firmware_lists_are_read_once_and_bounded() {
    let body = |list: &str| {
        format!(
            "<sr:UpdatePPMIDFirmware><sr:FirmwareImage>AAEC\nAw==</sr:FirmwareImage>\
             <sr:FirmwareVersion>0001</sr:FirmwareVersion><sr:DeviceIDList>{list}</sr:DeviceIDList>\
             </sr:UpdatePPMIDFirmware>"
        )
    };
    let got = read_update_firmware(
        body(&format!("{A0},{A2},{A0}")).as_bytes(),
        "UpdatePPMIDFirmware",
    )
    .unwrap();
    assert_eq!(got.devices, vec![id(A0), id(A2)]);
    assert_eq!(got.image_len, 4);
    assert_eq!(
        read_update_firmware(
            body(&format!("{A0};{A2}")).as_bytes(),
            "UpdatePPMIDFirmware"
        ),
        Err(BodyError::Invalid("DeviceIDList"))
    );
    let bad_image = body(A0).replace("AAEC", "A*EC");
    assert_eq!(
        read_update_firmware(bad_image.as_bytes(), "UpdatePPMIDFirmware"),
        Err(BodyError::Invalid("FirmwareImage"))
    );
    let warning = FirmwareWarning {
        invalid: vec![id(A0), id(A2)],
        in_progress: vec![id(A2)],
        ..FirmwareWarning::default()
    };
    assert_eq!(
        write_firmware_warning(&warning, false),
        format!(
            "<sr:DSPUpdateFirmwareWarning><sr:InvalidDeviceIDList>{A0},{A2}</sr:InvalidDeviceIDList>\
             <sr:OtherRequestInProgressList>{A2}</sr:OtherRequestInProgressList></sr:DSPUpdateFirmwareWarning>"
        )
    );
    assert_eq!(warning.len(), 3);
}

#[test]
fn wan_matrix_reads_and_writes() {
    let read = |inner: &str| {
        read_wan_matrix_request(
            format!("<sr:RequestWANMatrix>{inner}</sr:RequestWANMatrix>").as_bytes(),
        )
    };
    assert_eq!(
        read("<sr:UPRN>100023336956</sr:UPRN>"),
        Ok(WanQuery::Uprn(100_023_336_956))
    );
    assert_eq!(
        read("<sr:UPRN>0</sr:UPRN>"),
        Err(BodyError::Invalid("UPRN"))
    );
    assert_eq!(
        read("<sr:UPRN>1000233369561</sr:UPRN>"),
        Err(BodyError::Invalid("UPRN"))
    );
    assert_eq!(
        read("<sr:PartialAddress><sr:PostCode>M1</sr:PostCode><sr:AddressIdentifier>1</sr:AddressIdentifier></sr:PartialAddress>"),
        Err(BodyError::Invalid("PartialAddress/PostCode"))
    );
    let answer = WanAnswer {
        region: "North",
        code: ResponseCode::I0,
        coverage: Some(WanCoverage {
            available: true,
            technology: "Long Range Radio",
            likelihood: "High",
        }),
    };
    let query = WanQuery::Address {
        post_code: "M22 0RR".into(),
        address: "A & B".into(),
    };
    assert_eq!(
        write_wan_matrix(&query, &[answer]),
        "<sr:DSPWANMatrix><sr:Request><sr:PartialAddress><sr:PostCode>M22 0RR</sr:PostCode>\
         <sr:AddressIdentifier>A &amp; B</sr:AddressIdentifier></sr:PartialAddress></sr:Request>\
         <sr:DSPWANMatrixResponse><sr:CSPRegion>North</sr:CSPRegion>\
         <sr:CSPRegionResponseCode>I0</sr:CSPRegionResponseCode>\
         <sr:CoverageAvailability>true</sr:CoverageAvailability>\
         <sr:WANTechnology>Long Range Radio</sr:WANTechnology>\
         <sr:ConnectivityLikelihood>High</sr:ConnectivityLikelihood></sr:DSPWANMatrixResponse>\
         </sr:DSPWANMatrix>"
    );
}

proptest::proptest! {
    #[test]
    fn never_panics(inner in ".{0,300}") {
        for root in ["DecommissionDevice", "UpdateInventory", "DevicePrenotification",
                     "CHFFaultReturn", "UpdateFirmware", "RequestWANMatrix"] {
            let body = format!("<sr:{root}>{inner}</sr:{root}>");
            let _ = read_decommission(body.as_bytes());
            let _ = read_update_inventory(body.as_bytes());
            let _ = read_prenotification(body.as_bytes());
            let _ = read_hub_status_update(body.as_bytes(), root);
            let _ = read_update_firmware(body.as_bytes(), root);
            let _ = read_wan_matrix_request(body.as_bytes());
        }
        let _ = read_update_inventory(inner.as_bytes());
    }
}

/// The answers as `ResponseMessage`s, against the DUIS 5.4 XSD: the matrix placed and not, the
/// warnings with every list.
#[test]
fn written_answers_are_valid_duis() {
    use crate::duis::testing::DuisXsd;
    use crate::duis::{write_response, ResponseHeaderOut, ResponsePayload};
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let header = ResponseHeaderOut {
        request_id: Some(
            "90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1"
                .parse()
                .unwrap(),
        ),
        response_id: None,
        code: ResponseCode::I0,
        date_time: time::macros::datetime!(2024-03-01 12:00:00 UTC),
    };
    let unplaced: Vec<WanAnswer> = ["North", "Central", "South"]
        .into_iter()
        .map(|region| WanAnswer {
            region,
            code: ResponseCode::E120101,
            coverage: None,
        })
        .collect();
    let placed = [WanAnswer {
        region: "South",
        code: ResponseCode::I0,
        coverage: Some(WanCoverage {
            available: false,
            technology: "Cellular",
            likelihood: "Low",
        }),
    }];
    let warning = FirmwareWarning {
        invalid: vec![id(A0)],
        not_commissioned: vec![id(A2), id(A0)],
        not_applicable: vec![id(A2)],
        in_progress: vec![id(A0)],
    };
    let docs = [
        ("12.1", write_wan_matrix(&WanQuery::Uprn(1), &unplaced)),
        (
            "12.1",
            write_wan_matrix(
                &WanQuery::Address {
                    post_code: "SW1A 1AA".into(),
                    address: "<1>".into(),
                },
                &placed,
            ),
        ),
        ("11.1", write_firmware_warning(&warning, false)),
        ("11.4", write_firmware_warning(&warning, true)),
    ];
    let written: Vec<String> = docs
        .iter()
        .map(|(srv, raw)| {
            let srv: crate::domain::Srv = srv.parse().unwrap();
            write_response(
                &header,
                srv.service_reference(),
                srv,
                &ResponsePayload::Raw(raw.clone()),
            )
        })
        .collect();
    let refs: Vec<&str> = written.iter().map(String::as_str).collect();
    if let Err(report) = xsd.validate_all(&refs) {
        panic!("xmllint refused an answer:\n{report}");
    }
}
