//! The pre-access-control checks, table-driven: (service, header, body) → accepted or the exact
//! failure; and the originator's party against the TLS client's.

use super::*;
use crate::duis::{parse_request, Limits};
use crate::error::Error;

fn request(cv: u8, sr: &str, srv: &str, body: &str, version: &str) -> ParsedRequest {
    let xml = format!(
        r#"<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="{version}"><sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant><sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:{body}/></sr:Body></sr:Request>"#
    );
    parse_request(xml.as_bytes(), &Limits::default()).unwrap()
}

/// (what, service, CV, ServiceReference, SRV, body element, schemaVersion, refusal reason).
type Row<'a> = (
    &'a str,
    DuisService,
    u8,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
);

#[test]
fn requests_against_catalogue_and_url() {
    use DuisService::*;
    let read = "ReadInstantaneousImportRegisters";
    let table: &[Row] = &[
        ("CV1 read at S", Send, 1, "4.1", "4.1.1", read, "5.4", None),
        ("CV2 read at D", Dcc, 2, "4.1", "4.1.1", read, "5.4", None),
        ("CV3 read at S", Send, 3, "4.1", "4.1.1", read, "5.4", None),
        (
            "CV4 critical at T",
            Transform,
            4,
            "1.1",
            "1.1.1",
            "UpdateImportTariffPrimaryElement",
            "5.4",
            None,
        ),
        (
            "CV5 signed pre-command at S",
            Send,
            5,
            "1.1",
            "1.1.1",
            "SignedPreCommand",
            "5.4",
            None,
        ),
        (
            "CV6 signed pre-command at D",
            Dcc,
            6,
            "1.1",
            "1.1.1",
            "SignedPreCommand",
            "5.4",
            None,
        ),
        (
            "CV7 signed pre-command at S",
            Send,
            7,
            "1.1",
            "1.1.1",
            "SignedPreCommand",
            "5.4",
            None,
        ),
        (
            "CV6 with the service's own body",
            Dcc,
            6,
            "1.1",
            "1.1.1",
            "UpdateImportTariffPrimaryElement",
            "5.4",
            Some("body_mismatch"),
        ),
        (
            "CV8 non-device at D",
            Dcc,
            8,
            "8.2",
            "8.2",
            "ReadInventory",
            "5.4",
            None,
        ),
        (
            "old schema",
            Send,
            1,
            "4.1",
            "4.1.1",
            read,
            "5.1",
            Some("schema_version"),
        ),
        (
            "unknown SRV",
            Send,
            1,
            "99.1",
            "99.1",
            read,
            "5.4",
            Some("unknown_srv"),
        ),
        (
            "not requestable",
            Send,
            1,
            "8.5",
            "8.5",
            "ServiceOptOut",
            "5.4",
            Some("srv_not_requestable"),
        ),
        (
            "reference mismatch",
            Send,
            1,
            "4.2",
            "4.1.1",
            read,
            "5.4",
            Some("service_reference_mismatch"),
        ),
        (
            "CV4 for non-critical",
            Transform,
            4,
            "4.1",
            "4.1.1",
            read,
            "5.4",
            Some("command_variant"),
        ),
        (
            "CV1 for critical",
            Send,
            1,
            "1.1",
            "1.1.1",
            "UpdateImportTariffPrimaryElement",
            "5.4",
            Some("command_variant"),
        ),
        (
            "CV1 at D",
            Dcc,
            1,
            "4.1",
            "4.1.1",
            read,
            "5.4",
            Some("wrong_service"),
        ),
        (
            "CV8 at S",
            Send,
            8,
            "8.2",
            "8.2",
            "ReadInventory",
            "5.4",
            Some("wrong_service"),
        ),
        (
            "CV4 at S",
            Send,
            4,
            "1.1",
            "1.1.1",
            "UpdateImportTariffPrimaryElement",
            "5.4",
            Some("wrong_service"),
        ),
        (
            "body of another SRV",
            Send,
            1,
            "4.1",
            "4.1.1",
            "ReadInventory",
            "5.4",
            Some("body_mismatch"),
        ),
        (
            "CV5 without SignedPreCommand",
            Send,
            5,
            "1.1",
            "1.1.1",
            "UpdateImportTariffPrimaryElement",
            "5.4",
            Some("body_mismatch"),
        ),
    ];
    for (what, service, cv, sr, srv, body, version, want) in table {
        let parsed = request(*cv, sr, srv, body, version);
        let got = check_service(Catalogue::builtin(), *service, &parsed);
        match (got, want) {
            (Ok(entry), None) => assert_eq!(entry.srv.to_string(), *srv, "{what}"),
            (Err(e), Some(reason)) => assert_eq!(e.classify().2, *reason, "{what}"),
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn originator_must_be_of_the_client_party() {
    let register = PartyRegister::parse(
        "user_id,party_id,party_name,roles,status,response_url\n\
         90-B3-D5-1F-30-01-00-00,SUP1,S,IS|GS,active,\n\
         90-B3-D5-1F-30-01-00-01,SUP1,S,ES,active,\n\
         90-B3-D5-1F-30-02-00-00,NO1,N,ED,active,\n",
    )
    .unwrap();
    let id = |s: &str| -> UserId { s.parse().unwrap() };
    let supplier = id("90-B3-D5-1F-30-01-00-00");
    assert!(check_originator(&register, supplier, supplier).is_ok());
    assert!(check_originator(&register, supplier, id("90-B3-D5-1F-30-01-00-01")).is_ok());
    assert!(matches!(
        check_originator(&register, supplier, id("90-B3-D5-1F-30-02-00-00")),
        Err(Error::PartyMismatch { .. })
    ));
    assert!(matches!(
        check_originator(&register, supplier, id("90-B3-D5-1F-30-09-00-00")),
        Err(Error::UnknownUser(u)) if u == id("90-B3-D5-1F-30-09-00-00")
    ));
    assert!(matches!(
        check_originator(&register, id("90-B3-D5-1F-30-09-00-00"), supplier),
        Err(Error::UnknownUser(_))
    ));
}
