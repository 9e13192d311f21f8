//! The bodies of the DCC's own (non-device) services and the answers the DCC writes for them:
//! 8.3 Decommission Device, 8.4 Update Inventory, 8.14.1–8.14.4 Communications Hub Status
//! Updates, 11.1 Update Firmware, 11.4 Update PPMID Firmware, 12.1 Request WAN Matrix and 12.2
//! Device Pre-notification (XSD types of the same names). Layer 0: each reader takes the body
//! element's bytes as the request parser located them and returns a typed request, or the
//! [`BodyError`] that says what is wrong; the writers return one child of
//! `sr:ResponseMessage`, for `ResponsePayload::Raw`.

mod fields;
mod firmware;
mod hub;
mod inventory;
mod wan;

#[cfg(test)]
mod tests;

pub use fields::{Fields, MAX_DEPTH, MAX_FIELDS};
pub use firmware::{
    push_ids, read_update_firmware, write_firmware_warning, FirmwareUpdate, FirmwareWarning,
    MAX_FIRMWARE_DEVICES,
};
pub use hub::{read_hub_status_update, HubStatusUpdate, HubUpdateKind};
pub use inventory::{
    read_decommission, read_prenotification, read_update_inventory, InventoryUpdate, MpxnUpdate,
    Prenotification,
};
pub use wan::{read_wan_matrix_request, write_wan_matrix, WanAnswer, WanCoverage, WanQuery};

/// Why a non-device body does not read as its service's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not one element of the service's name with leaf elements below it")]
    Structure,
    #[error("the body lacks {0}")]
    Missing(&'static str),
    #[error("the body's {0} is not a value the schema allows")]
    Invalid(&'static str),
    #[error("the body holds an element its service does not have there, or one twice")]
    Unexpected,
}

/// An `xs:boolean`.
fn xs_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}
