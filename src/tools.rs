//! `dccgw sign`, `dccgw verify` and `dccgw sign-precommand`: the DCC signing tools' jobs, for
//! Users building clients. They read a file or standard input and write standard output;
//! `verify` says what it found in its exit code.

mod precommand;

pub use precommand::{sign_precommand, PreCommandKeys};

pub mod cluster_init;
pub mod rules_check;
pub mod sign_serve;

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::signer::{Signer, SignerError};
use crate::state::load::{self, CertStoreError};
use crate::xmldsig::c14n::{C14nError, C14nLimits};
use crate::xmldsig::{self, VerifyError};

/// `dccgw verify` exit codes (2 is the command line's own usage error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyExit {
    Valid = 0,
    InvalidSignature = 1,
    UnknownCertificate = 3,
    Malformed = 4,
    CertificateNotAcceptable = 5,
    /// The input, the certificate directory or a trust anchor could not be read: nothing was
    /// verified (distinct from every verdict above).
    CannotRead = 6,
}

/// `dccgw audit verify`'s exit code when the directory cannot be read: nothing was verified
/// (distinct from 0 intact and 1 broken).
pub const AUDIT_CANNOT_READ: i32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("the input is not UTF-8 text")]
    NotText,
    #[error(transparent)]
    Key(#[from] SignerError),
    #[error(transparent)]
    Certificates(#[from] CertStoreError),
    #[error("the input is not XML that can be signed")]
    NotXml(#[source] C14nError),
    #[error("the input has no RequestID whose counter could be stamped")]
    NoRequestId,
    #[error("signing failed")]
    Sign(#[source] xmldsig::SignError),
    #[error("the input is not a Transform's answer (I0 with a PreCommand)")]
    NotATransform(#[source] crate::duis::body::BodyError),
    #[error("the pre-command cannot be signed")]
    PreCommand(#[source] crate::gbcs::SignatureError),
    #[error("a signed pre-command goes back as Command Variant 5, 6 or 7, not {0}")]
    CommandVariant(crate::domain::CommandVariant),
}

/// Reads `path`, or standard input for `-` or none.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>, ToolError> {
    use std::io::Read;
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => std::fs::read(p).map_err(|e| ToolError::Read(p.to_owned(), e)),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| ToolError::Read("-".into(), e))?;
            Ok(buf)
        }
    }
}

/// Signs `input` with `key`/`cert`, replacing any signature it carries (templates carry a
/// placeholder). With `stamp`, the RequestID's counter becomes `counter` first.
pub fn sign(
    input: &[u8],
    key: &Path,
    cert: &Path,
    stamp: Option<u64>,
) -> Result<String, ToolError> {
    let signer = Signer::load(key, cert, None)?;
    let text = std::str::from_utf8(input).map_err(|_| ToolError::NotText)?;
    let limits = C14nLimits::default();
    let mut doc = xmldsig::strip_signature(text, &limits).map_err(ToolError::NotXml)?;
    if let Some(counter) = stamp {
        doc = stamp_counter(&doc, counter).ok_or(ToolError::NoRequestId)?;
    }
    xmldsig::sign_document(&doc, &signer, &limits).map_err(ToolError::Sign)
}

/// Replaces the counter (third part) of the first `RequestID` element's text.
pub fn stamp_counter(doc: &str, counter: u64) -> Option<String> {
    let open = doc.find("RequestID>")? + "RequestID>".len();
    let close = open + doc[open..].find('<')?;
    let text = &doc[open..close];
    let colon = text.rfind(':')?;
    if text[..colon].matches(':').count() != 1 {
        return None;
    }
    Some(format!(
        "{}{}{counter}{}",
        &doc[..open],
        &text[..=colon],
        &doc[close..]
    ))
}

/// Verifies `input`'s signature against the certificates under `certs`. With trust anchors, the
/// certificate must also chain to one; without, the chain is not checked (said on stderr by
/// the caller). Returns the exit code and a sentence for the user.
pub fn verify(
    input: &[u8],
    certs: &Path,
    trust: &[PathBuf],
    now: OffsetDateTime,
) -> Result<(VerifyExit, String), ToolError> {
    let store = load::certs(certs, std::sync::Arc::new(load::trust(trust, &[])?))?;
    // The gateway's way to read a signature: everything but the ECDSA operation, which waits
    // until the certificate is found and checked.
    let prepared = match xmldsig::prepare(input, &C14nLimits::default()) {
        Ok(prepared) => prepared,
        Err(e) => return Ok((VerifyExit::Malformed, format!("malformed: {e}"))),
    };
    let sig = &prepared.signature;
    let Some(cert) = store.find(&sig.issuer, &sig.serial) else {
        return Ok((
            VerifyExit::UnknownCertificate,
            format!(
                "unknown certificate: issuer {} serial {}",
                sig.issuer,
                hex(&sig.serial)
            ),
        ));
    };
    if !cert.identity.is_valid_at(now) {
        return Ok((
            VerifyExit::CertificateNotAcceptable,
            format!("certificate {} is not valid now", cert.path.display()),
        ));
    }
    if !trust.is_empty() && !cert.chained {
        return Ok((
            VerifyExit::CertificateNotAcceptable,
            format!(
                "certificate {} does not chain to a trust anchor",
                cert.path.display()
            ),
        ));
    }
    match prepared.verify(&cert.identity.public_key) {
        Ok(()) => Ok((
            VerifyExit::Valid,
            format!(
                "valid: signed by User {} (role {}) with {}",
                cert.identity.user_id,
                cert.identity.role,
                cert.path.display()
            ),
        )),
        Err(VerifyError::Digest) => Ok((
            VerifyExit::InvalidSignature,
            "invalid: the digest does not match the document".into(),
        )),
        Err(VerifyError::SignatureValue) => Ok((
            VerifyExit::InvalidSignature,
            "invalid: the signature value does not verify".into(),
        )),
        Err(e) => Ok((VerifyExit::Malformed, format!("malformed: {e}"))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
