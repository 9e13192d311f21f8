//! What became of one request: the DUIS code of the answer, or how the transport failed. Labels
//! are the report's "errors by code" keys.

use std::fmt;

/// A DUIS `ResponseCode` as read from an answer: 1 to 8 ASCII letters and digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    bytes: [u8; 8],
    len: u8,
}

impl Code {
    pub fn new(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.is_empty() || b.len() > 8 || !b.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut bytes = [0; 8];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            bytes,
            len: b.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics were ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }

    /// I0 (success with data) and I99 (acknowledged) are the answers of an accepted request.
    pub fn accepted(&self) -> bool {
        matches!(self.as_str(), "I0" | "I99")
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// An answer with a DUIS code.
    Duis(Code),
    /// An HTTP answer without a readable DUIS code.
    Http(u16),
    /// No answer within the scenario's timeout.
    Timeout,
    /// TCP connect failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The HTTP exchange failed (connection closed, malformed answer).
    Protocol,
    /// A Transform answered `I0` without a pre-command the User could sign (so the critical
    /// pair's second request was never sent).
    BadPreCommand,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        matches!(self, Outcome::Duis(c) if c.accepted())
    }

    pub fn label(&self) -> String {
        match self {
            Outcome::Duis(c) => c.as_str().to_owned(),
            Outcome::Http(s) => format!("http-{s}"),
            Outcome::Timeout => "timeout".into(),
            Outcome::Connect => "connect".into(),
            Outcome::Tls => "tls".into(),
            Outcome::Protocol => "protocol".into(),
            Outcome::BadPreCommand => "bad-precommand".into(),
        }
    }
}

/// The text of the first element named `local` (any prefix), e.g. `ResponseCode` or
/// `RequestID`: a scan, not a parse, bounded by the body it is given. `None` when absent or
/// when the text holds markup.
pub fn element_text<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = xml[from..].find(local) {
        let start = from + at;
        let end = start + local.len();
        from = end;
        let before = xml[..start].chars().next_back();
        if !matches!(before, Some('<' | ':')) || !xml[end..].starts_with('>') {
            continue;
        }
        // An end tag (`</x:Name>`) is not an opening.
        let tag_start = xml[..start].rfind('<')?;
        if xml[tag_start..].starts_with("</") {
            continue;
        }
        let text_start = end + 1;
        let text_end = text_start + xml[text_start..].find('<')?;
        return Some(xml[text_start..text_end].trim());
    }
    None
}

/// The outcome an HTTP answer stands for.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let code = std::str::from_utf8(body)
        .ok()
        .and_then(|t| element_text(t, "ResponseCode"))
        .and_then(Code::new);
    match code {
        Some(code) => Outcome::Duis(code),
        None => Outcome::Http(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_codes_from_answers() {
        let answer = "<sr:Response><sr:Header><sr:RequestID>a:b:1</sr:RequestID>\
                      <sr:ResponseCode>E19</sr:ResponseCode></sr:Header></sr:Response>";
        assert_eq!(classify(403, answer.as_bytes()).label(), "E19");
        assert!(!classify(403, answer.as_bytes()).accepted());
        let ok = "<Response><ResponseCode> I99 </ResponseCode></Response>";
        assert!(classify(200, ok.as_bytes()).accepted());
        assert_eq!(classify(502, b"bad gateway"), Outcome::Http(502));
        assert_eq!(
            classify(200, "<x:ResponseCode>I0x9zzzzz</x:ResponseCode>".as_bytes()).label(),
            "http-200"
        );
        assert_eq!(
            element_text("<a:XResponseCode>1</a:XResponseCode>", "ResponseCode"),
            None
        );
        assert_eq!(
            element_text(
                "</ResponseCode><ResponseCode>I0</ResponseCode>",
                "ResponseCode"
            ),
            Some("I0")
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_answer(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = classify(200, &body);
        }

        #[test]
        fn never_panics_on_any_text(text in ".{0,200}") {
            let _ = element_text(&text, "RequestID");
            let _ = element_text(&format!("<RequestID>{text}"), "RequestID");
        }
    }
}
