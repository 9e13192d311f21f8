//! Layer 0: the pure domain. Identifiers, roles, service references and response codes, each
//! parsed once at the edge into a type that cannot hold an invalid value. Nothing here does I/O,
//! reads a clock or draws a random number.

mod dcc_alert_code;
mod device;
mod eui64;
mod request_id;
mod response_code;
mod role;
mod service;
mod srv;

pub use dcc_alert_code::{DccAlertCode, DccAlertCodeError, DccAlertFamily};
pub use device::{DeviceError, DeviceFailure, DeviceStatus, DeviceType, Mpxn};
pub use eui64::{Eui64, Eui64Error};
pub use request_id::{RequestId, RequestIdError};
pub use response_code::{ResponseCode, ResponseCodeError};
pub use role::{RoleError, SmkiRole, UserRole};
pub use service::DuisService;
pub use srv::{CommandVariant, ServiceReference, Srv, SrvError, SrvText};

/// The DCC's own identity: the target of non-device requests and the signer of responses.
pub const DCC_ID: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x00, 0x00, 0x02]);

/// A DCC User ID: one (party, role) pair's EUI-64 (the RequestID's originator).
pub type UserId = Eui64;

/// A device's EUI-64 (ESME, GSME, GPF, CHF, PPMID, …): the RequestID's target.
pub type DeviceId = Eui64;
