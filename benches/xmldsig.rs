//! What verifying a DUIS signature costs apart from the ECDSA operation, against one ECDSA
//! P-256 verify. Run with `cargo bench --bench xmldsig`; after criterion's figures it prints the
//! ratio (target: the XML work at most 25% of the verify).

use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use base64::Engine;
use criterion::{criterion_group, Criterion};
use dccgw::xmldsig::c14n::{canonicalize, children, root, C14nLimits, C14nMode};
use dccgw::xmldsig::prepare;
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A 1.1.1 Update Import Tariff request shaped like the public template, `{sig}` marking where
/// the signature goes.
fn unsigned_request() -> String {
    let mut days = String::new();
    for (day, switches) in [
        (1, ["00:00:00.00Z", "07:00:00.00Z"]),
        (2, ["06:00:00.00Z", "23:00:00.00Z"]),
    ] {
        days +=
            &format!("\n            <sr:DayProfile>\n              <sr:DayName>{day}</sr:DayName>");
        for (action, time) in switches.iter().enumerate() {
            days += &format!(
                "\n              <sr:ProfileSchedule>\n                <sr:StartTime>{time}</sr:StartTime>\n                <sr:TOUTariffAction>{}</sr:TOUTariffAction>\n              </sr:ProfileSchedule>",
                action + 2
            );
        }
        days += "\n            </sr:DayProfile>";
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="5.0">
  <sr:Header>
    <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1660751141087</sr:RequestID>
    <sr:CommandVariant>4</sr:CommandVariant>
    <sr:ServiceReference>1.1</sr:ServiceReference>
    <sr:ServiceReferenceVariant>1.1.1</sr:ServiceReferenceVariant>
  </sr:Header>
  <sr:Body>
    <sr:UpdateImportTariffPrimaryElement>
      <sr:ElecTariffElements>
        <sr:CurrencyUnits>GBP</sr:CurrencyUnits>
        <sr:SwitchingTable>
          <sr:DayProfiles>{days}
          </sr:DayProfiles>
        </sr:SwitchingTable>
        <sr:ThresholdMatrix>
          <sr:BlockThreshold>1000</sr:BlockThreshold>
        </sr:ThresholdMatrix>
        <sr:PriceElements>
          <sr:StandingCharge>1500</sr:StandingCharge>
          <sr:StandingChargeScale>-5</sr:StandingChargeScale>
          <sr:PriceScale>-5</sr:PriceScale>
          <sr:TOUPrice index="1">2500</sr:TOUPrice>
          <sr:TOUPrice index="2">1200</sr:TOUPrice>
        </sr:PriceElements>
      </sr:ElecTariffElements>
    </sr:UpdateImportTariffPrimaryElement>
  </sr:Body>
  {{sig}}
</sr:Request>
"#
    )
}

fn signed_info(digest_b64: &str) -> String {
    format!(
        r#"<ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue>{digest_b64}</ds:DigestValue>
      </ds:Reference>
    </ds:SignedInfo>"#
    )
}

/// A really signed request, the spans a verifier finds, and the public key.
struct Fixture {
    doc: Vec<u8>,
    signature: Range<usize>,
    signed_info: Range<usize>,
    signature_value: Vec<u8>,
    public_key: Vec<u8>,
}

fn c14n(
    doc: &[u8],
    subtree: Option<Range<usize>>,
    exclude: Option<Range<usize>>,
    mode: C14nMode,
    out: &mut Vec<u8>,
) {
    out.clear();
    canonicalize(doc, subtree, exclude, mode, &C14nLimits::default(), out).expect("canonicalises");
}

fn fixture() -> Fixture {
    let limits = C14nLimits::default();
    let template = unsigned_request();
    let mut out = Vec::new();
    // The digest is over the document without its signature; an empty placeholder stands in.
    let placeholder = template.replace("{sig}", "<ds:Signature/>");
    let at = placeholder.find("<ds:Signature/>").expect("placeholder");
    c14n(
        placeholder.as_bytes(),
        None,
        Some(at..at + 15),
        C14nMode::Inclusive,
        &mut out,
    );
    let digest_b64 = B64.encode(digest(&SHA256, &out));
    let info = signed_info(&digest_b64);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key");
    // Canonicalise SignedInfo in place so its in-scope namespaces are the real ones.
    let with_info = template.replace(
        "{sig}",
        &format!("<ds:Signature>\n    {info}\n    <ds:SignatureValue>SIG</ds:SignatureValue>\n    <ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=U1, OU=07</ds:X509IssuerName><ds:X509SerialNumber>50669612984035780968362471400449834504</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>\n  </ds:Signature>"),
    );
    let doc = with_info.as_bytes();
    let info_at = with_info.find("<ds:SignedInfo>").expect("SignedInfo");
    c14n(
        doc,
        Some(info_at..info_at + info.len()),
        None,
        C14nMode::Exclusive,
        &mut out,
    );
    let sig = key.sign(&rng, &out).expect("sign");
    let doc = with_info
        .replace("SIG", &B64.encode(sig.as_ref()))
        .into_bytes();

    let top = root(&doc, &limits).expect("root");
    let signature = children(&doc, top.span, &limits)
        .expect("children")
        .pop()
        .expect("signature");
    let signed_info = children(&doc, signature.span.clone(), &limits)
        .expect("children")
        .remove(0);
    Fixture {
        signature: signature.span,
        signed_info: signed_info.span,
        signature_value: sig.as_ref().to_vec(),
        public_key: key.public_key().as_ref().to_vec(),
        doc,
    }
}

/// Both canonical forms and both digests, each canonicalisation over the whole document.
fn xml_work(f: &Fixture, out: &mut Vec<u8>) -> [u8; 64] {
    let mut both = [0; 64];
    c14n(
        &f.doc,
        None,
        Some(f.signature.clone()),
        C14nMode::Inclusive,
        out,
    );
    both[..32].copy_from_slice(digest(&SHA256, out).as_ref());
    c14n(
        &f.doc,
        Some(f.signed_info.clone()),
        None,
        C14nMode::Exclusive,
        out,
    );
    both[32..].copy_from_slice(digest(&SHA256, out).as_ref());
    both
}

/// What the gateway (and `dccgw verify`) does per request apart from the ECDSA operation, in
/// one walk of the document: read the signature, check the digest of the document without it,
/// and canonicalise `SignedInfo`.
#[inline(never)]
fn gateway_work(f: &Fixture) -> usize {
    let prepared = prepare(&f.doc, &C14nLimits::default()).expect("reads");
    prepared.signed_bytes().expect("digest matches").len()
}

#[inline(never)]
fn ecdsa_verify(f: &Fixture, signed_info: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &f.public_key)
        .verify(signed_info, &f.signature_value)
        .is_ok()
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let mut out = Vec::new();
    let mut signed_info = Vec::new();
    c14n(
        &f.doc,
        Some(f.signed_info.clone()),
        None,
        C14nMode::Exclusive,
        &mut signed_info,
    );
    assert!(
        ecdsa_verify(&f, &signed_info),
        "the fixture's signature verifies"
    );
    println!("signed request: {} bytes", f.doc.len());
    c.bench_function("c14n+sha256 (doc minus Signature, SignedInfo)", |b| {
        b.iter(|| black_box(xml_work(black_box(&f), &mut out)))
    });
    c.bench_function(
        "gateway: read signature + digest + SignedInfo (all but ECDSA)",
        |b| b.iter(|| black_box(gateway_work(black_box(&f)))),
    );
    c.bench_function("ecdsa p256 verify", |b| {
        b.iter(|| black_box(ecdsa_verify(black_box(&f), black_box(&signed_info))))
    });
    c.bench_function("find Signature and SignedInfo (3 walks)", |b| {
        b.iter(|| {
            let limits = C14nLimits::default();
            let top = root(black_box(&f.doc), &limits).expect("root");
            let sig = children(&f.doc, top.span, &limits)
                .expect("children")
                .pop()
                .expect("sig");
            black_box(children(&f.doc, sig.span, &limits).expect("children"))
        })
    });
}

/// Mean time per call over about `budget`.
fn mean(budget: Duration, mut work: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        work();
        n += 1;
    }
    start.elapsed() / n
}

/// Per piece of work, the fastest time per call over `rounds` batches of `per_batch` calls,
/// the pieces taking turns batch by batch.
fn fastest<const N: usize>(
    rounds: u32,
    per_batch: u32,
    work: &mut [&mut dyn FnMut(); N],
) -> [Duration; N] {
    let mut best = [Duration::MAX; N];
    for _ in 0..rounds {
        for (w, best) in work.iter_mut().zip(best.iter_mut()) {
            let start = Instant::now();
            for _ in 0..per_batch {
                w();
            }
            *best = (*best).min(start.elapsed() / per_batch);
        }
    }
    best
}

criterion_group!(group, benches);

/// Under `valgrind --tool=callgrind`, criterion's many runs are too slow: with
/// `XMLDSIG_CALLGRIND=N` the bench runs the gateway's work, the two canonicalisations alone and
/// one ECDSA verify N times each and stops, so that `callgrind_annotate --inclusive=yes` gives each
/// one's instruction count (SHA-256 runs ring's AVX code under valgrind, SHA-NI natively where
/// the CPU has it). `XMLDSIG_CALLGRIND=N:gateway` runs only the one pass (for `perf record`).
fn callgrind_loops(spec: &str) {
    let (n, only_gateway) = match spec.split_once(':') {
        Some((n, "gateway")) => (n, true),
        _ => (spec, false),
    };
    let n: u32 = n.parse().expect("XMLDSIG_CALLGRIND=N or N:gateway");
    let f = fixture();
    let mut out = Vec::new();
    let mut info = Vec::new();
    c14n(
        &f.doc,
        Some(f.signed_info.clone()),
        None,
        C14nMode::Exclusive,
        &mut info,
    );
    for _ in 0..n {
        black_box(gateway_work(black_box(&f)));
        if !only_gateway {
            black_box(xml_work(black_box(&f), &mut out));
            black_box(ecdsa_verify(black_box(&f), black_box(&info)));
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var("XMLDSIG_CALLGRIND") {
        callgrind_loops(&spec);
        return;
    }
    group();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (criterion's `--bench`), not the quick run `cargo test` does.
    if std::env::args().any(|a| a == "--bench") {
        let f = fixture();
        let mut out = Vec::new();
        let mut info = Vec::new();
        c14n(
            &f.doc,
            Some(f.signed_info.clone()),
            None,
            C14nMode::Exclusive,
            &mut info,
        );
        let budget = Duration::from_secs(2);
        let xml = mean(budget, || {
            black_box(xml_work(&f, &mut out));
        });
        let gateway = mean(budget, || {
            black_box(gateway_work(&f));
        });
        let ecdsa = mean(budget, || {
            black_box(ecdsa_verify(&f, &info));
        });
        let pct = |d: Duration, of: Duration| 100.0 * d.as_secs_f64() / of.as_secs_f64();
        println!(
            "ratio: c14n+sha256 {xml:?} / ecdsa verify {ecdsa:?} = {:.1}% (target <= 25%)",
            pct(xml, ecdsa)
        );
        println!(
            "ratio: gateway's whole non-ECDSA verify work {gateway:?} / ecdsa verify {ecdsa:?} = {:.1}% (target <= 25%)",
            pct(gateway, ecdsa),
        );
        // On a shared machine a mean carries other processes' interruptions; the fastest of
        // many short interleaved batches is the run nobody interrupted, for each alike.
        let [gateway, xml, ecdsa] = fastest(
            2000,
            8,
            &mut [
                &mut || {
                    black_box(gateway_work(&f));
                },
                &mut || {
                    black_box(xml_work(&f, &mut out));
                },
                &mut || {
                    black_box(ecdsa_verify(&f, &info));
                },
            ],
        );
        println!(
            "ratio (fastest batches): gateway {gateway:?} / ecdsa verify {ecdsa:?} = {:.1}% (target <= 25%; c14n+sha256 alone {xml:?} = {:.1}%)",
            pct(gateway, ecdsa),
            pct(xml, ecdsa)
        );
    }
}
