//! The synchronous answer: the signed `sr:Response`, and the data an answer from the cache
//! carries.

use time::OffsetDateTime;

use crate::domain::{RequestId, ResponseCode, Srv};
use crate::duis::inventory::{self, InventoryDevice, InventoryQuery};
use crate::duis::{self, ResponseHeaderOut, ResponsePayload};
use crate::error::Error;
use crate::registry::Snapshot;
use crate::xmldsig;

use super::Gateway;

/// The synchronous answer: an HTTP status and a DUIS `sr:Response` document.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub code: ResponseCode,
    pub body: String,
    /// `false` for an answer withheld because its audit record could not be written: the HTTP
    /// layer sends a bare 503 instead.
    pub recorded: bool,
}

impl Answer {
    /// The stand-in for an answer whose audit record could not be written.
    pub fn withheld() -> Self {
        Self {
            status: 503,
            code: ResponseCode::E100,
            body: String::new(),
            recorded: false,
        }
    }
}

/// Writes and signs the answer. Should signing ever fail, the sender gets an unsigned `E100`
/// and the operator an ERROR: the gateway never sends an unsigned answer as if it were one.
impl Gateway {
    pub(super) fn write(
        &self,
        request_id: Option<RequestId>,
        srv: Option<Srv>,
        code: ResponseCode,
        status: u16,
        now: OffsetDateTime,
        payload: &ResponsePayload,
    ) -> Answer {
        let unsigned = write_unsigned(request_id, srv, code, now, payload);
        match xmldsig::sign_document(&unsigned, &self.signer, &self.c14n_limits) {
            Ok(body) => Answer {
                status,
                code,
                body,
                recorded: true,
            },
            Err(e) => {
                tracing::error!(error = %e, "Signing an answer failed; check the DCC signing key.");
                let (code, status, _) = Error::SignAnswer.classify();
                let body = write_unsigned(request_id, srv, code, now, &ResponsePayload::None);
                Answer {
                    status,
                    code,
                    body,
                    recorded: true,
                }
            }
        }
    }
}

/// Writes the `sr:Response`. The schema requires a ServiceReference and variant in every
/// `ResponseMessage`; when the request gave no SRV the catalogue knows, the answer is the header
/// alone, which the sender can still read the code from (documented in `docs/response-codes.md`).
fn write_unsigned(
    request_id: Option<RequestId>,
    srv: Option<Srv>,
    code: ResponseCode,
    now: OffsetDateTime,
    payload: &ResponsePayload,
) -> String {
    let header = ResponseHeaderOut {
        request_id,
        response_id: None,
        code,
        date_time: now,
    };
    match srv {
        Some(srv) => duis::write_response(&header, srv.service_reference(), srv, payload),
        None => duis::write_header_only_response(&header),
    }
}

/// 8.2 Read Inventory from the cache: the premises (comms hub and every device behind it) of the
/// device searched for, or of the devices on the meter point searched for. `None` when nothing
/// matches (the cache holds no addresses, so a UPRN or address search never matches).
pub(super) fn inventory_payload(registry: &Snapshot, query: InventoryQuery) -> Option<String> {
    let anchor = match query {
        InventoryQuery::Device(id) => id,
        InventoryQuery::Mpxn(m) => registry.devices_at(m).map(|d| d.id).min()?,
        InventoryQuery::Address => return None,
    };
    let premises = registry.premises(anchor);
    let devices: Vec<InventoryDevice<'_>> = premises
        .iter()
        .map(|d| {
            let model = registry.model(d.id);
            InventoryDevice {
                id: d.id,
                device_type: d.device_type,
                status: d.status,
                manufacturer: model.map_or("", |m| m.manufacturer.as_str()),
                model: model.map_or("", |m| m.model.as_str()),
                mpxn: d.mpxn,
                csp_region: Some(d.region.duis_name()),
            }
        })
        .collect();
    (!devices.is_empty()).then(|| inventory::write_dsp_inventory(&devices))
}
