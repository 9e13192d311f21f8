//! What a delivered DUIS message is, read from its header and body just far enough to name its
//! file: the RequestID (responses), the alert code (alerts). A bounded, non-validating read:
//! the receiver stores what the gateway sent; checking signatures is the User's business.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Longest text kept from one field; the DUIS fields named here are far shorter.
const MAX_FIELD: usize = 128;
/// Longest file stem written.
const MAX_STEM: usize = 160;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description {
    pub request_id: Option<String>,
    pub response_id: Option<String>,
    pub response_code: Option<String>,
    /// `AlertCode`, `FutureDatedAlertCode` or `DCCAlertCode`.
    pub alert_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    #[error("the message is not well-formed XML")]
    Xml,
    #[error("the message carries a DOCTYPE")]
    DocType,
    #[error("the root element is {0:?}, not a DUIS Response")]
    NotResponse(String),
}

/// Reads the fields that name the message.
pub fn describe(xml: &[u8]) -> Result<Description, DescribeError> {
    let mut reader = Reader::from_reader(xml);
    let mut d = Description::default();
    let mut open: Option<Vec<u8>> = None;
    let mut root_seen = false;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|_| DescribeError::Xml)?;
        match event {
            Event::DocType(_) => return Err(DescribeError::DocType),
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name().as_ref().to_vec();
                if !root_seen {
                    root_seen = true;
                    if local != b"Response" {
                        return Err(DescribeError::NotResponse(
                            String::from_utf8_lossy(&local).chars().take(64).collect(),
                        ));
                    }
                }
                open = Some(local);
            }
            Event::Text(t) => {
                let Some(name) = open.as_deref() else {
                    continue;
                };
                let slot = match name {
                    b"RequestID" => &mut d.request_id,
                    b"ResponseID" => &mut d.response_id,
                    b"ResponseCode" => &mut d.response_code,
                    b"AlertCode" | b"FutureDatedAlertCode" | b"DCCAlertCode" => &mut d.alert_code,
                    _ => continue,
                };
                if slot.is_none() {
                    let text = t.unescape().map_err(|_| DescribeError::Xml)?;
                    *slot = Some(text.trim().chars().take(MAX_FIELD).collect());
                }
            }
            Event::End(_) => open = None,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !root_seen {
        return Err(DescribeError::Xml);
    }
    Ok(d)
}

/// The file stem for a message: `<RequestID>.<ResponseCode>` for a response,
/// `alert-<code>-<ResponseID or RequestID or message ID>` for an alert, else
/// `message-<message ID>`; without a message ID, a digest of the body stands in, so a
/// duplicate delivery lands on the same name.
pub fn file_stem(d: &Description, message_id: Option<&str>, body: &[u8]) -> String {
    let digest = || {
        let h = ring::digest::digest(&ring::digest::SHA256, body);
        h.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    };
    let fallback = || message_id.map_or_else(digest, str::to_owned);
    let raw = match (&d.alert_code, &d.request_id) {
        (Some(code), _) => {
            let id = d
                .response_id
                .clone()
                .or_else(|| d.request_id.clone())
                .unwrap_or_else(fallback);
            format!("alert-{code}-{id}")
        }
        (None, Some(request_id)) => match &d.response_code {
            Some(code) => format!("{request_id}.{code}"),
            None => request_id.clone(),
        },
        (None, None) => format!("message-{}", fallback()),
    };
    let stem: String = raw
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '_',
        })
        .take(MAX_STEM)
        .collect();
    // No hidden files, no `.` or `..`.
    let stem = stem.trim_start_matches('.');
    if stem.is_empty() {
        format!("message-{}", digest())
    } else {
        stem.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: &str = "xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\"";

    #[test]
    fn names_follow_the_request_or_the_alert() {
        let response = format!(
            "<sr:Response {SR} schemaVersion=\"5.1\"><sr:Header>\
             <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:17</sr:RequestID>\
             <sr:ResponseCode>I0</sr:ResponseCode></sr:Header><sr:Body/></sr:Response>"
        );
        let device_alert = format!(
            "<sr:Response {SR}><sr:Header>\
             <sr:ResponseID>00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:9</sr:ResponseID>\
             <sr:ResponseCode>I0</sr:ResponseCode></sr:Header><sr:Body><sr:DeviceAlertMessage>\
             <sr:AlertCode>8F35</sr:AlertCode></sr:DeviceAlertMessage></sr:Body></sr:Response>"
        );
        let dcc_alert = format!(
            "<sr:Response {SR}><sr:Header><sr:ResponseCode>I0</sr:ResponseCode></sr:Header>\
             <sr:Body><sr:DCCAlertMessage><sr:DCCAlertCode>N12</sr:DCCAlertCode>\
             </sr:DCCAlertMessage></sr:Body></sr:Response>"
        );
        let cases = [
            (
                response.as_str(),
                Some("00000000000000AA"),
                "90-B3-D5-1F-30-01-00-00_00-DB-12-34-56-78-90-A0_17.I0",
            ),
            (
                device_alert.as_str(),
                None,
                "alert-8F35-00-DB-12-34-56-78-90-A0_90-B3-D5-1F-30-01-00-00_9",
            ),
            (
                dcc_alert.as_str(),
                Some("00000000000000AB"),
                "alert-N12-00000000000000AB",
            ),
        ];
        for (xml, id, want) in cases {
            let d = describe(xml.as_bytes()).unwrap();
            assert_eq!(file_stem(&d, id, xml.as_bytes()), want);
        }
    }

    #[test]
    fn a_nameless_message_is_named_by_its_digest_stably() {
        let xml = format!("<sr:Response {SR}><sr:Header/></sr:Response>");
        let d = describe(xml.as_bytes()).unwrap();
        let a = file_stem(&d, None, xml.as_bytes());
        assert!(a.starts_with("message-") && a.len() == "message-".len() + 16);
        assert_eq!(a, file_stem(&d, None, xml.as_bytes()));
        assert_ne!(a, file_stem(&d, None, b"other"));
    }

    #[test]
    fn hostile_or_foreign_documents_are_refused() {
        let cases: [(&str, DescribeError); 4] = [
            (
                "<!DOCTYPE r [<!ENTITY a \"b\">]><Response/>",
                DescribeError::DocType,
            ),
            (
                "<sr:Request/>",
                DescribeError::NotResponse("Request".into()),
            ),
            ("", DescribeError::Xml),
            ("<Response><a></b></Response>", DescribeError::Xml),
        ];
        for (xml, want) in cases {
            assert_eq!(describe(xml.as_bytes()), Err(want), "{xml}");
        }
    }

    #[test]
    fn stems_cannot_escape_the_directory() {
        let d = Description {
            request_id: Some("../../etc/passwd".into()),
            response_code: Some("I0/..".into()),
            ..Description::default()
        };
        let stem = file_stem(&d, None, b"");
        assert!(!stem.contains('/') && !stem.starts_with('.'), "{stem}");
    }

    proptest::proptest! {
        #[test]
        fn describe_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(d) = describe(&bytes) {
                let stem = file_stem(&d, None, &bytes);
                proptest::prop_assert!(!stem.contains('/'));
            }
        }
    }
}
