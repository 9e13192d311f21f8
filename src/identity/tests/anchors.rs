//! Every public certificate in the anchors (`certs/zaz1-public/`), read by path, never copied.

use std::path::PathBuf;

use time::macros::datetime;

use super::eui;
use crate::domain::SmkiRole;
use crate::identity::{identity_from_pem, DistinguishedName};

fn anchor_certs() -> Option<PathBuf> {
    crate::testing::anchors().map(|root| root.join("certs/zaz1-public"))
}

/// Every public certificate in the anchors, as `openssl x509 -subject -serial` shows it:
/// file, User ID, role code, CN, serial (hex).
#[rustfmt::skip]
const ANCHORS: [(&str, &str, u8, Option<&str>, &str); 19] = [
    ("Z1-accessControlBroker-dSPXmlSign.pem", "90B3D51F30000002", 0x89, None, "0F4889EF197D41E9016966F9D5AB0402"),
    ("Z1-accessControlBroker-ds.pem", "90B3D51F30000002", 0x04, None, "587FE59553E2675B0C0E2A5C402A9F61"),
    ("Z1-networkOperator-ds.pem", "90B3D51F30020000", 0x03, None, "4FC0252E553ECD05D4F72DCFAD55C8E7"),
    ("Z1-recovery-ds.pem", "90B3D51F30000001", 0x01, None, "469AFEC2E7C0CAAEC8A400769B702BC8"),
    ("Z1-supplier-ds.pem", "90B3D51F30010000", 0x02, Some("GITTESTSUPPLIER"), "4FBC525201A1D7586C1BC1C4734DEB9F"),
    ("Z1-supplier2-ds.pem", "90B3D51F30030000", 0x02, Some("GITTESTSUPPLIER2"), "39EAFF0055CE4DAF085AC874C7C84BD3"),
    ("Z1-transitionalCoS-ds.pem", "90B3D51F30000004", 0x05, None, "3CE369AB08F102975C5490D6B88FC066"),
    ("Z1-wanProvider-ds.pem", "90B3D51F30000007", 0x06, None, "7C758B23CC7FE6923B01921F557D8B0A"),
    ("Z1b-accessControlBroker-ds.pem", "90B3D51F30000002", 0x04, None, "3A96BD63616C4F886DA7F89969772424"),
    ("Z1b-networkOperator-ds.pem", "90B3D51F30020000", 0x03, None, "68AAC8A913BCB4D9634CAE09D909A533"),
    ("Z1b-recovery-ds.pem", "90B3D51F30000001", 0x01, None, "5E0F37F0C8BC37A4BB1259F928C273CB"),
    ("Z1b-supplier-ds.pem", "90B3D51F30010000", 0x02, Some("GITTESTSUPPLIER"), "4A07BC01D9253B51FAF01F7EC7DA5B2F"),
    ("Z1b-transitionalCoS-ds.pem", "90B3D51F30000004", 0x05, None, "52881F0CB3926FDFAC03FC8827AA11BD"),
    ("Z1b-wanProvider-ds.pem", "90B3D51F30000007", 0x06, None, "491F49C6665E62B929E1CF95FF9A71E7"),
    // OU=137: the decimal form of 0x89 the pre-1.4.1 tooling wrote.
    ("dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem", "90B3D51F30000002", 0x89, None, "261E9CCC40A78FD13D83BCE07DACFE08"),
    ("dsp-xml-sign-90B3D51F30000002-ds.pem", "90B3D51F30000002", 0x89, None, "7DAC7283AAD29BDD23C9EFBFDDB52A41"),
    ("xml-sign-00DB123456780004-ds.pem", "00DB123456780004", 0x87, None, "1C063B7B4F241AADA23FFFF28E88B927"),
    ("xml-sign-90B3D51F30010000-ds.pem", "90B3D51F30010000", 0x87, None, "14BE4AD2EA1D0E4EC7F7156BD24624A7"),
    ("xml-sign-90B3D51F30020000-ds.pem", "90B3D51F30020000", 0x87, None, "1ECC6ED40F92A82835DB58174B4A666D"),
];

#[test]
fn every_anchor_certificate_yields_its_identity() {
    let Some(dir) = anchor_certs() else { return };
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ANCHORS.iter().map(|a| a.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "the table covers every anchor certificate");

    let z1: DistinguishedName = "CN=Z1,OU=07".parse().unwrap();
    for (file, id, role, cn, serial_hex) in ANCHORS {
        let pem = std::fs::read(dir.join(file)).unwrap();
        let got = identity_from_pem(&pem).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(got.user_id, eui(id), "{file}");
        assert_eq!(got.role, SmkiRole::from_code(role), "{file}");
        assert_eq!(got.common_name.as_deref(), cn, "{file}");
        let hex: String = got.serial.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, serial_hex, "{file}");
        assert!(got.key_is_p256, "{file}");
        assert_eq!(got.public_key.len(), 65, "{file}: uncompressed P-256 point");
        assert!(got.issuer.matches(&z1), "{file}: issuer {}", got.issuer);
        assert_eq!(got.issuer.to_string(), "CN=Z1,OU=07", "{file}");
        // Where the file name carries the User ID, it is the one in the certificate.
        if let Some(named) = file.split(['-', '.']).find(|p| p.len() == 16) {
            assert_eq!(got.user_id, eui(named), "{file}");
        }
    }
}

#[test]
fn anchor_serial_and_validity_as_published() {
    let Some(dir) = anchor_certs() else { return };
    let pem = std::fs::read(dir.join("dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem")).unwrap();
    let got = identity_from_pem(&pem).unwrap();
    // The serial the anchors' README gives for the known-answer signature.
    assert_eq!(got.serial_decimal, "50669612984035780968362471400449834504");
    assert_eq!(got.not_before, datetime!(2018-01-01 00:00:00 UTC));
    assert_eq!(got.not_after, datetime!(2118-01-01 00:00:00 UTC));
    assert!(got.is_valid_at(datetime!(2030-06-01 00:00:00 UTC)));
    assert!(!got.is_valid_at(datetime!(2017-12-31 23:59:59 UTC)));

    let pem = std::fs::read(dir.join("Z1-supplier-ds.pem")).unwrap();
    let got = identity_from_pem(&pem).unwrap();
    assert_eq!(
        got.subject.to_string(),
        "x500UniqueIdentifier=#03090090B3D51F30010000,OU=02,CN=GITTESTSUPPLIER"
    );
    assert_eq!(got.not_after, datetime!(2025-10-29 23:59:59 UTC));
}
