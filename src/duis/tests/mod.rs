//! Tests of the DUIS wire format: the public samples, hand-made structure and hostile cases,
//! property tests, and the written responses against the DUIS XSD through xmllint.

mod anchors;
mod critical;
mod hostile;
mod props;
mod response;
mod structure;

use std::path::PathBuf;

use super::testing::{anchors_dir, in_ci};
use super::*;

/// The root start tag every hand-made request uses.
const ROOT_OPEN: &str = concat!(
    r#"<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" "#,
    r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" schemaVersion="5.4">"#
);

const RID: &str = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000";

/// A header of the four required fields, for 4.1.1 with Command Variant 1.
fn std_header() -> String {
    format!(
        "<sr:RequestID>{RID}</sr:RequestID><sr:CommandVariant>1</sr:CommandVariant>\
         <sr:ServiceReference>4.1</sr:ServiceReference>\
         <sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant>"
    )
}

const STD_BODY: &str = "<sr:ReadInstantaneousImportRegisters/>";

const SIGNATURE: &str = "<ds:Signature><ds:SignedInfo/>\
    <ds:SignatureValue>ZGVmYXVsdA==</ds:SignatureValue></ds:Signature>";

/// A request from its header fields, body content and what follows `sr:Body`.
fn request(header_fields: &str, body: &str, after_body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>{ROOT_OPEN}<sr:Header>{header_fields}</sr:Header><sr:Body>{body}</sr:Body>{after_body}</sr:Request>"#
    )
}

fn parse(doc: &str) -> Result<ParsedRequest, ParseFailure> {
    parse_request(doc.as_bytes(), &Limits::default())
}

/// The error a document must fail with.
fn error_of(doc: &str) -> ParseError {
    match parse(doc) {
        Ok(parsed) => panic!("parsed but should not have: {parsed:?}\n{doc}"),
        Err(failure) => failure.error,
    }
}

fn malformed_kind(doc: &str) -> MalformedKind {
    match error_of(doc) {
        ParseError::Malformed { kind, .. } => kind,
        other => panic!("not Malformed but {other:?}\n{doc}"),
    }
}

/// The files in these anchor directories, or `None` (after saying so) when the anchors are
/// absent outside CI.
fn anchor_files(dirs: &[&str]) -> Option<Vec<PathBuf>> {
    let root = anchors_dir();
    let mut files = Vec::new();
    for dir in dirs {
        match std::fs::read_dir(root.join(dir)) {
            Ok(entries) => files.extend(entries.map(|e| e.unwrap().path())),
            Err(e) if in_ci() => panic!(
                "anchors missing under CI: {}: {e}",
                root.join(dir).display()
            ),
            Err(e) => {
                eprintln!(
                    "skipping: anchors not found at {}: {e}",
                    root.join(dir).display()
                );
                return None;
            }
        }
    }
    files.sort();
    Some(files)
}

fn anchor_file(path: &str) -> Option<Vec<u8>> {
    let path = anchors_dir().join(path);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if in_ci() => panic!("anchor missing under CI: {}: {e}", path.display()),
        Err(e) => {
            eprintln!("skipping: {}: {e}", path.display());
            None
        }
    }
}
