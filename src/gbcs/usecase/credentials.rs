//! CS02b, Update Security Credentials (SRV 6.15.1 for a supplier's or network operator's own
//! credentials; 6.23 and 8.5 use the same content): the ASN.1 DER command that replaces trust
//! anchors on a device, the device's response, and the 8F66/8F67 alert that reports a
//! future-dated replacement. The structure is GBCS's `UpdateSecurityCredentials` as the public
//! samples carry it; the message code is `0x0100` plus the credentials replacement mode.

use time::OffsetDateTime;

use super::{check_count, ContentError, Execution};
use crate::domain::Eui64;
use crate::gbcs::der::{self, constructed, integer, integer_with_tag, sequence};
use crate::gbcs::frame::MessageCode;

/// GBCS's remote party roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemotePartyRole {
    Root = 0,
    Recovery = 1,
    Supplier = 2,
    NetworkOperator = 3,
    AccessControlBroker = 4,
    TransitionalChangeOfSupplier = 5,
    WanProvider = 6,
    IssuingAuthority = 7,
    Other = 127,
}

/// Which party replaces which credentials; it picks the message code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplacementMode {
    RootBySupplier = 0,
    RootByWanProvider = 1,
    SupplierBySupplier = 2,
    NetworkOperatorByNetworkOperator = 3,
    AccessControlBrokerByAccessControlBroker = 4,
    WanProviderByWanProvider = 5,
    TransCoSByTransCoS = 6,
    SupplierByTransCoS = 7,
    AnyExceptAbnormalRootByRecovery = 8,
    AnyByContingency = 9,
}

impl ReplacementMode {
    pub fn message_code(self) -> MessageCode {
        MessageCode(0x0100 + self as u16)
    }
}

/// The key a trust anchor cell holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsage {
    DigitalSignature,
    KeyAgreement,
}

/// A cell on the device: whose key, for what, and for management or prepayment top-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustAnchorCell {
    pub role: RemotePartyRole,
    pub key_usage: KeyUsage,
    /// `false` for the management cell (the default, not written), `true` for top-up.
    pub prepayment_top_up: bool,
}

impl TrustAnchorCell {
    fn fields(&self) -> Vec<Vec<u8>> {
        let bits = match self.key_usage {
            KeyUsage::DigitalSignature => 0x80, // digitalSignature (0)
            KeyUsage::KeyAgreement => 0x08,     // keyAgreement (4)
        };
        let mut fields = vec![integer(self.role as u64), der::named_bits(bits)];
        if self.prepayment_top_up {
            fields.push(integer(1));
        }
        fields
    }

    pub fn encode(&self) -> Vec<u8> {
        sequence(&self.fields())
    }
}

/// A certificate (DER) and the cell it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    pub certificate: Vec<u8>,
    pub target: TrustAnchorCell,
}

/// The body of an Update Security Credentials request, as GBCS needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateSecurityCredentials {
    pub execution: Execution,
    pub mode: ReplacementMode,
    /// DUIS `ApplyTimeBasedCPVChecks`; `false` is written as "disapply", `true` is the default.
    pub apply_time_based_cpv_checks: bool,
    /// The cell whose key authorises the change: the User's own Digital Signing cell.
    pub authorising: TrustAnchorCell,
    /// DUIS `RemotePartyFloorSeqNumber`.
    pub new_floor_seq: Option<u64>,
    /// DUIS `RemotePartyPrepaymentTopUpFloorSeqNumber`.
    pub new_prepayment_top_up_floor_seq: Option<u64>,
    /// DUIS `ReplacementCertificates`, each with the cell it goes in.
    pub replacements: Vec<Replacement>,
    /// DUIS `CertificationPathCertificates`.
    pub certification_path: Vec<Vec<u8>>,
}

/// GBCS's GeneralizedTime for a cancelled execution: the end of 9999.
const NEVER: &[u8] = b"99991231235959Z";

impl UpdateSecurityCredentials {
    /// The command's content; the authorising sequence number is the request's originator
    /// counter.
    pub fn content(&self, counter: u64) -> Result<Vec<u8>, ContentError> {
        check_count("ReplacementCertificates", self.replacements.len(), 16)?;
        check_count(
            "CertificationPathCertificates",
            self.certification_path.len(),
            8,
        )?;
        let mut control = vec![integer(self.mode as u64)];
        if !self.apply_time_based_cpv_checks {
            control.push(integer_with_tag(0x81, 1));
        }
        control.push(constructed(0xA2, &self.authorising.fields()));
        control.push(integer_with_tag(0x83, counter));
        if let Some(floor) = self.new_floor_seq {
            control.push(integer_with_tag(0x84, floor));
        }
        if let Some(floor) = self.new_prepayment_top_up_floor_seq {
            control.push(constructed(0xA5, &[specialist_seq(floor)]));
        }
        let replacements: Vec<Vec<u8>> = self
            .replacements
            .iter()
            .map(|r| {
                let mut cert_and_cell = r.certificate.clone();
                cert_and_cell.extend_from_slice(&r.target.encode());
                der::tlv(der::SEQUENCE, &cert_and_cell)
            })
            .collect();
        let path: Vec<u8> = self.certification_path.concat();
        let mut parts = vec![
            sequence(&control),
            sequence(&replacements),
            der::tlv(der::SEQUENCE, &path),
        ];
        match self.execution {
            Execution::Now => {}
            Execution::At(at) => parts.push(der::generalized_time(at)),
            Execution::Cancel => parts.push(der::tlv(der::GENERALIZED_TIME, NEVER)),
        }
        Ok(sequence(&parts))
    }
}

/// A prepayment top-up sequence number (`SpecialistSeqNumber` with usage 0).
fn specialist_seq(seq: u64) -> Vec<u8> {
    sequence(&[integer(0), integer(seq)])
}

/// A remote party's new floor sequence numbers, as the outcome reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqNumberChange {
    pub role: RemotePartyRole,
    pub floor: u64,
    pub prepayment_top_up_floor: Option<u64>,
}

/// What happened to one cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplacementOutcome {
    pub cell: TrustAnchorCell,
    /// GBCS status code: 0 success, 5 bad certificate, 10 no trust anchor, 17 insufficient
    /// memory, 25 trust anchor not found, 30 resources busy, 127 other.
    pub status: u8,
    pub existing_subject: Eui64,
    pub existing_key_id: Vec<u8>,
    pub replacing_subject: Eui64,
    pub replacing_key_id: Vec<u8>,
}

impl ReplacementOutcome {
    /// A replacement that took `certificate`'s subject and key into `cell`, where the device
    /// held `existing` (subject, key identifier). `None` if the certificate has no SMKI subject
    /// or no subject key identifier.
    pub fn replaced(
        cell: TrustAnchorCell,
        existing: (Eui64, Vec<u8>),
        certificate: &[u8],
    ) -> Option<Self> {
        let (replacing_subject, replacing_key_id) = certificate_ids(certificate)?;
        Some(Self {
            cell,
            status: 0,
            existing_subject: existing.0,
            existing_key_id: existing.1,
            replacing_subject,
            replacing_key_id,
        })
    }
}

/// A certificate's subject unique identifier (its EUI-64) and subject key identifier, the two
/// values a replacement outcome names it by.
pub fn certificate_ids(der: &[u8]) -> Option<(Eui64, Vec<u8>)> {
    let subject = crate::identity::identity_from_der(der).ok()?.user_id;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let key_id = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })?;
    Some((subject, key_id))
}

/// The execution outcome a device reports, in its response or in its future-dated alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionOutcome {
    /// The authorising sequence number: the command's originator counter.
    pub authorising_seq: u64,
    pub mode: ReplacementMode,
    pub seq_changes: Vec<SeqNumberChange>,
    pub outcomes: Vec<ReplacementOutcome>,
}

impl ExecutionOutcome {
    pub fn encode(&self) -> Vec<u8> {
        let changes: Vec<Vec<u8>> = self
            .seq_changes
            .iter()
            .map(|c| {
                let mut fields = vec![integer(c.role as u64), integer(c.floor)];
                if let Some(top_up) = c.prepayment_top_up_floor {
                    fields.push(sequence(&[specialist_seq(top_up)]));
                }
                sequence(&fields)
            })
            .collect();
        let outcomes: Vec<Vec<u8>> = self
            .outcomes
            .iter()
            .map(|o| {
                sequence(&[
                    o.cell.encode(),
                    der::enumerated(o.status.into()),
                    der::octet_string(o.existing_subject.as_bytes()),
                    der::octet_string(&o.existing_key_id),
                    der::octet_string(o.replacing_subject.as_bytes()),
                    der::octet_string(&o.replacing_key_id),
                ])
            })
            .collect();
        sequence(&[
            integer(self.authorising_seq),
            integer(self.mode as u64),
            sequence(&changes),
            sequence(&outcomes),
        ])
    }
}

/// The device's response: the command accepted, and for an immediate command its outcome.
pub fn response_content(outcome: Option<&ExecutionOutcome>) -> Vec<u8> {
    let mut parts = vec![der::null()];
    parts.extend(outcome.map(ExecutionOutcome::encode));
    sequence(&parts)
}

/// The future-dated outcome alert's content: the alert code (8F66 success, 8F67 failure), when
/// it executed, and the outcome. Its message code is [`ALERT_MESSAGE_CODE`].
pub fn alert_content(
    alert_code: u16,
    executed: OffsetDateTime,
    outcome: &ExecutionOutcome,
) -> Vec<u8> {
    sequence(&[
        integer(alert_code.into()),
        der::generalized_time(executed),
        outcome.encode(),
    ])
}

/// The message code of the future-dated Update Security Credentials alert.
pub const ALERT_MESSAGE_CODE: MessageCode = MessageCode(0x00CB);
