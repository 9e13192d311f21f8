//! A User XML-signing certificate made by `openssl` alone — not by our PKI code — in the SMKI
//! Organisation profile (`OU=87`, the User ID as an `x500UniqueIdentifier` BIT STRING, P-256,
//! critical key usage and policy), issued by the dev CA's key. A request that `xmlsec1` signs with
//! it is accepted by the running gateway.

use std::path::Path;
use std::process::Command;

use crate::support::{self, element};

const SUPPLIER: &str = "90-B3-D5-1F-30-01-00-00";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The sections `openssl asn1parse -genconf` turns into the TBSCertificate, for `user_id` (hex)
/// with public point `point` (hex, uncompressed).
fn tbs_sections(user_id: &str, point: &str) -> String {
    format!(
        "[tbs]\n\
         version=EXPLICIT:0,INTEGER:2\n\
         serial=INTEGER:0x4F0E5A1C2B3D4E5F60718293A4B5C6D7\n\
         sigalg=SEQUENCE:sigalg\n\
         issuer=SEQUENCE:issuer\n\
         validity=SEQUENCE:validity\n\
         subject=SEQUENCE:subject\n\
         spki=SEQUENCE:spki\n\
         ext=EXPLICIT:3,SEQUENCE:exts\n\
         [sigalg]\nalg=OID:ecdsa-with-SHA256\n\
         [issuer]\nou=SET:issuer_ou\ncn=SET:issuer_cn\n\
         [issuer_ou]\na=SEQUENCE:issuer_ou_atv\n\
         [issuer_ou_atv]\nt=OID:2.5.4.11\nv=UTF8String:07\n\
         [issuer_cn]\na=SEQUENCE:issuer_cn_atv\n\
         [issuer_cn_atv]\nt=OID:2.5.4.3\nv=UTF8String:dccgw dev IA\n\
         [validity]\nnb=UTCTIME:250101000000Z\nna=GENTIME:20991231235959Z\n\
         [subject]\nou=SET:subject_ou\nuid=SET:subject_uid\n\
         [subject_ou]\na=SEQUENCE:subject_ou_atv\n\
         [subject_ou_atv]\nt=OID:2.5.4.11\nv=UTF8String:87\n\
         [subject_uid]\na=SEQUENCE:subject_uid_atv\n\
         [subject_uid_atv]\nt=OID:2.5.4.45\nv=FORMAT:HEX,BITSTRING:{user_id}\n\
         [spki]\nalg=SEQUENCE:spki_alg\nkey=FORMAT:HEX,BITSTRING:{point}\n\
         [spki_alg]\na=OID:id-ecPublicKey\nc=OID:prime256v1\n\
         [exts]\nku=SEQUENCE:ku\npol=SEQUENCE:pol\n\
         [ku]\nid=OID:keyUsage\ncrit=BOOLEAN:TRUE\nv=OCTWRAP,FORMAT:BITLIST,BITSTRING:0\n\
         [pol]\nid=OID:certificatePolicies\ncrit=BOOLEAN:TRUE\nv=OCTWRAP,SEQUENCE:policies\n\
         [policies]\np=SEQUENCE:policy\n\
         [policy]\nid=OID:1.2.826.0.1.8641679.1.2.1.4\n"
    )
}

#[tokio::test]
async fn a_request_signed_with_an_openssl_made_certificate_is_accepted() {
    if !dccgw::testing::have_tool("openssl", "version") || !support::have_tool("xmlsec1") {
        return;
    }
    let gw = support::start_with("", |dir| {
        let certs = dir.join("certs");
        let work = dir.join("openssl");
        std::fs::create_dir_all(&work).unwrap();
        openssl(&work, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem"]);
        openssl(&work, &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"]);
        let spki = std::fs::read(work.join("pub.der")).unwrap();
        // A P-256 SubjectPublicKeyInfo ends with the 65-byte uncompressed point.
        let point = hex(&spki[spki.len() - 65..]);
        let sections = tbs_sections("90B3D51F30010000", &point);
        std::fs::write(work.join("tbs.cnf"), format!("asn1=SEQUENCE:tbs\n{sections}")).unwrap();
        openssl(&work, &["asn1parse", "-genconf", "tbs.cnf", "-noout", "-out", "tbs.der"]);
        let ca_key = certs.join("ca.key.pem");
        openssl(&work, &["dgst", "-sha256", "-sign", ca_key.to_str().unwrap(), "-out", "sig.der", "tbs.der"]);
        let sig = hex(&std::fs::read(work.join("sig.der")).unwrap());
        let cert = format!(
            "asn1=SEQUENCE:cert\n[cert]\ntbs=SEQUENCE:tbs\nalg=SEQUENCE:sigalg\nsig=FORMAT:HEX,BITSTRING:{sig}\n{sections}"
        );
        std::fs::write(work.join("cert.cnf"), cert).unwrap();
        openssl(&work, &["asn1parse", "-genconf", "cert.cnf", "-noout", "-out", "cert.der"]);
        openssl(&work, &["x509", "-inform", "DER", "-in", "cert.der", "-out", "cert.pem"]);
        let ca = certs.join("ca.pem");
        openssl(&work, &["verify", "-CAfile", ca.to_str().unwrap(), "cert.pem"]);
        std::fs::copy(work.join("cert.pem"), dir.join("user-certs/openssl-made.pem")).unwrap();
    })
    .await;
    let work = gw.dir.path().join("openssl");
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(work.join("cert.pem"))
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(
        subject.contains("x500UniqueIdentifier = #03090090B3D51F30010000"),
        "{subject}"
    );
    let identity =
        dccgw::identity::identity_from_pem(&std::fs::read(work.join("cert.pem")).unwrap()).unwrap();
    assert_eq!(identity.role, dccgw::domain::SmkiRole::XmlSigning);

    let xml = dccgw::demo::example_request_xml(SUPPLIER, dccgw::demo::DEMO_ESME, 77);
    let signed = support::xmlsec1_sign(&work, &work.join("key.pem"), &work.join("cert.pem"), &xml);
    let answer = gw
        .client("supplier")
        .post(format!("{}/api/v1/serviceS", gw.base()))
        .header("content-type", "application/xml")
        .body(signed)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(element(&answer, "ResponseCode"), Some("I99"), "{answer}");
    gw.running.shutdown().await;
}
