//! CS02b's input from the DUIS body `UpdateSecurityCredentialsKRP` (XSD of that name,
//! `SupplierOrNetworkOperatorCertificatesKRP`): a supplier replacing its own credentials
//! (supplier by supplier) or a network operator its own (network operator by network operator).
//! The authorising cell is the User's own Digital Signing cell; the replacement certificates go
//! to the Digital Signing, Key Agreement and Key Agreement top-up cells of the same role.
//! Any other remote party role (a load controller, …) is not CS02b: `None`, and the caller uses
//! the body encoding.

use base64::Engine as _;

use crate::duis::body::{BodyError, Node};
use crate::gbcs::usecase::credentials::{
    KeyUsage, RemotePartyRole, Replacement, ReplacementMode, TrustAnchorCell,
    UpdateSecurityCredentials,
};
use crate::gbcs::usecase::Execution;

/// The update a body asks for, `None` when it is not one CS02b carries.
pub fn from_duis(
    body: &Node,
    execution: Execution,
) -> Result<Option<UpdateSecurityCredentials>, BodyError> {
    let (role, mode) = match body.need("RemotePartyRole")?.text.as_str() {
        "Supplier" => (
            RemotePartyRole::Supplier,
            ReplacementMode::SupplierBySupplier,
        ),
        "NetworkOperator" => (
            RemotePartyRole::NetworkOperator,
            ReplacementMode::NetworkOperatorByNetworkOperator,
        ),
        _ => return Ok(None),
    };
    let Some(certificates) = body
        .need("ReplacementCertificates")?
        .child("SupplierOrNetworkOperatorCertificates")
    else {
        return Ok(None);
    };
    let cell = |key_usage, prepayment_top_up| TrustAnchorCell {
        role,
        key_usage,
        prepayment_top_up,
    };
    let mut replacements = Vec::new();
    for (name, target) in [
        (
            "DigitalSigningCertificate",
            cell(KeyUsage::DigitalSignature, false),
        ),
        (
            "KeyAgreementCertificate",
            cell(KeyUsage::KeyAgreement, false),
        ),
        (
            "KeyAgreementTopUpCertificate",
            cell(KeyUsage::KeyAgreement, true),
        ),
    ] {
        if let Some(c) = certificates.child(name) {
            replacements.push(Replacement {
                certificate: der(c, "ReplacementCertificates")?,
                target,
            });
        }
    }
    let certification_path = body
        .need("CertificationPathCertificates")?
        .all("Certificate")
        .map(|c| der(c, "CertificationPathCertificates"))
        .collect::<Result<_, _>>()?;
    let cpv = match body.need("ApplyTimeBasedCPVChecks")?.text.as_str() {
        "true" | "1" => true,
        "false" | "0" => false,
        _ => return Err(BodyError::Invalid("ApplyTimeBasedCPVChecks")),
    };
    Ok(Some(UpdateSecurityCredentials {
        execution,
        mode,
        apply_time_based_cpv_checks: cpv,
        authorising: cell(KeyUsage::DigitalSignature, false),
        new_floor_seq: body.optional("RemotePartyFloorSeqNumber")?,
        new_prepayment_top_up_floor_seq: body
            .optional("RemotePartyPrepaymentTopUpFloorSeqNumber")?,
        replacements,
        certification_path,
    }))
}

/// A base64 certificate's DER (XML whitespace inside the text is allowed).
fn der(node: &Node, what: &'static str) -> Result<Vec<u8>, BodyError> {
    let text: String = node.text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| BodyError::Invalid(what))
}
