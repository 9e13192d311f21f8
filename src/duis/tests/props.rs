//! The parser never panics: arbitrary bytes, XML-ish noise, and mutations of a real template.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

/// A public signed template with a future-dated body when the anchors are there; a hand-made
/// request otherwise.
fn template() -> &'static [u8] {
    static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let path = anchors_dir().join(
            "duis-samples/templates/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML",
        );
        std::fs::read(path)
            .unwrap_or_else(|_| request(&std_header(), STD_BODY, SIGNATURE).into_bytes())
    })
}

/// Whatever parsed must be self-consistent: spans inside the input, on tags.
fn check_consistent(input: &[u8], parsed: &ParsedRequest) {
    let body = &input[parsed.body.clone()];
    assert!(body.starts_with(b"<") && body.ends_with(b">"));
    if let Some(sig) = &parsed.signature {
        let sig = &input[sig.clone()];
        assert!(sig.starts_with(b"<") && sig.ends_with(b">"));
        assert!(parsed.body.end <= parsed.signature.as_ref().unwrap().start);
    }
    let srv = parsed.header.srv;
    assert_eq!(srv.to_string().parse::<crate::domain::Srv>(), Ok(srv));
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let snippet = prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..6),
        prop::sample::select(vec![
            b"<".to_vec(),
            b">".to_vec(),
            b"&".to_vec(),
            b"&xxe;".to_vec(),
            b"<!DOCTYPE r>".to_vec(),
            b"<?pi?>".to_vec(),
            b"</sr:Body>".to_vec(),
            b"<sr:Body>".to_vec(),
            b"<ds:Signature/>".to_vec(),
            b"xmlns:sr=\"urn:x\" ".to_vec(),
            b"<![CDATA[".to_vec(),
            b"<!--".to_vec(),
            b"\"".to_vec(),
        ]),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), snippet).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let n = doc.len().max(1);
    match m {
        Mutation::Flip { at, byte } => {
            if let Some(b) = doc.get_mut(at % n) {
                *b = *byte;
            }
        }
        Mutation::Insert { at, bytes } => {
            let at = at % (doc.len() + 1);
            doc.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let at = at % n;
            let end = (at + len).min(doc.len());
            doc.drain(at.min(end)..end);
        }
        Mutation::Duplicate { at, len } => {
            let at = at % n;
            let end = (at + len).min(doc.len());
            let copy = doc[at.min(end)..end].to_vec();
            doc.splice(end..end, copy);
        }
        Mutation::Truncate { at } => doc.truncate(at % n),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(parsed) = parse_request(&input, &Limits::default()) {
            check_consistent(&input, &parsed);
        }
    }

    #[test]
    fn xml_ish_noise_never_panics(s in "[<>/a-z:= \"'&;#!?\\[\\]x0-9-]{0,300}") {
        let wrapped = with_noise(&s);
        for input in [s.as_bytes(), wrapped.as_bytes()] {
            if let Ok(parsed) = parse_request(input, &Limits::default()) {
                check_consistent(input, &parsed);
            }
        }
    }

    #[test]
    fn mutated_templates_never_panic(mutations in proptest::collection::vec(mutation(), 1..5)) {
        let mut doc = template().to_vec();
        for m in &mutations {
            apply(&mut doc, m);
        }
        let tight = Limits { max_depth: 8, max_elements: 60, max_attributes: 4, max_text_bytes: 64, ..Limits::default() };
        for limits in [Limits::default(), tight] {
            if let Ok(parsed) = parse_request(&doc, &limits) {
                check_consistent(&doc, &parsed);
            }
        }
    }
}

/// Noise placed inside a request's body, so that it gets past the structure checks.
fn with_noise(noise: &str) -> String {
    request(&std_header(), &format!("<sr:X>{noise}</sr:X>"), "")
}

#[test]
fn the_unmutated_template_parses() {
    let parsed = parse_request(template(), &Limits::default()).unwrap();
    check_consistent(template(), &parsed);
}
