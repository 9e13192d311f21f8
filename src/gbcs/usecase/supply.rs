//! ECS42, Remotely Close the Load Switch on the ESME (SRV 7.1 Enable Supply): a DLMS action that
//! runs the disconnect-control script that closes the switch. The DUIS body has no fields.

use crate::gbcs::dlms::{invoke_id, AccessRequest, AccessResponse, CosemRef, Data};
use crate::gbcs::dlms::{RequestSpec, ResponseSpec};
use crate::gbcs::frame::MessageCode;

pub const MESSAGE_CODE: MessageCode = MessageCode(0x004F);

/// Script table 0-0:10.0.106.255 (disconnect control scripts), method 1 (execute).
const DISCONNECT_SCRIPTS: CosemRef = CosemRef::new(9, [0, 0, 10, 0, 106, 255], 1);
/// The script that enables the supply.
const ENABLE_SUPPLY_SCRIPT: u16 = 0x0033;

pub fn content(counter: u64) -> Vec<u8> {
    AccessRequest {
        invoke_id: invoke_id(counter),
        specs: vec![RequestSpec::Action(DISCONNECT_SCRIPTS)],
        data: vec![Data::LongUnsigned(ENABLE_SUPPLY_SCRIPT)],
    }
    .encode()
}

/// The device's response: the action's result (0 success, 1 hardware fault, …).
pub fn response_content(counter: u64, action_result: u8) -> Vec<u8> {
    AccessResponse {
        invoke_id: invoke_id(counter),
        data: vec![Data::Null],
        results: vec![ResponseSpec::Action(action_result)],
    }
    .encode()
}
