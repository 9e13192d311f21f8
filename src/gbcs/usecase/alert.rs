//! Device alerts in GBCS: the future-dated outcome alerts (8F66 success, 8F67 failure) of a DLMS
//! command, and every other alert code in GBCS's generic alert form. (The outcome alert of a
//! future-dated CS02b is ASN.1: [`super::credentials::alert_content`].)
//!
//! ```text
//! 0F invoke 00                    DLMS data notification, no date-time
//!   02 03 12 code 09 0C when      structure: alert code, when it happened (DLMS date-time),
//!   09 13 msg(2) counter(8) attr(9)   and for an outcome alert: the command's message code,
//!                                   its originator counter and the attribute activated
//! ```
//! The generic form has the alert code and the date-time only, under message code 0x1000 for a
//! critical alert (codes 0x8Fxx, signed by the device) or 0x1001 for any other (behind the MAC
//! header), as the public GCA and GNCA samples have it.

use time::OffsetDateTime;

use crate::gbcs::dlms::{invoke_id, CosemRef, Data, DataNotification};
use crate::gbcs::frame::{DlmsDateTime, MessageCode};

/// Future-dated execution of instruction alert (DLMS COSEM).
pub const FUTURE_DATED_DLMS: MessageCode = MessageCode(0x00CC);
pub const GENERIC_CRITICAL: MessageCode = MessageCode(0x1000);
pub const GENERIC_NON_CRITICAL: MessageCode = MessageCode(0x1001);

pub const FUTURE_DATED_SUCCESS: u16 = 0x8F66;
pub const FUTURE_DATED_FAILURE: u16 = 0x8F67;

/// Whether GBCS treats `alert_code` as critical: the `8Fxx` family. A critical alert is signed
/// by the device; any other travels behind the MAC header.
pub fn is_critical(alert_code: u16) -> bool {
    alert_code & 0xFF00 == 0x8F00
}

/// A future-dated DLMS command's outcome: `alert_code` for the attribute `activated` of the
/// command (`command_code`, `command_counter`), executed at `executed`.
pub fn future_dated_dlms(
    alert_counter: u64,
    alert_code: u16,
    executed: OffsetDateTime,
    command_code: MessageCode,
    command_counter: u64,
    activated: CosemRef,
) -> Vec<u8> {
    let mut about = command_code.0.to_be_bytes().to_vec();
    about.extend_from_slice(&command_counter.to_be_bytes());
    about.extend_from_slice(&activated.descriptor());
    notification(
        alert_counter,
        vec![
            Data::LongUnsigned(alert_code),
            Data::OctetString(DlmsDateTime::from_utc(executed).0.to_vec()),
            Data::OctetString(about),
        ],
    )
}

/// Any other alert in the generic form: its message code and content.
pub fn generic(alert_counter: u64, alert_code: u16, at: OffsetDateTime) -> (MessageCode, Vec<u8>) {
    let code = if is_critical(alert_code) {
        GENERIC_CRITICAL
    } else {
        GENERIC_NON_CRITICAL
    };
    let content = notification(
        alert_counter,
        vec![
            Data::LongUnsigned(alert_code),
            Data::OctetString(DlmsDateTime::from_utc(at).0.to_vec()),
        ],
    );
    (code, content)
}

fn notification(alert_counter: u64, items: Vec<Data>) -> Vec<u8> {
    DataNotification {
        invoke_id: invoke_id(alert_counter),
        body: Data::Structure(items),
    }
    .encode()
}
