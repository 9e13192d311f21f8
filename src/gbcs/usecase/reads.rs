//! Two reads: ECS52, Read ESME/Comms Hub Firmware Version (SRV 11.2), a DLMS get of the active
//! firmware identifier; and ECS17b, Read ESME Energy Registers (Import Energy) (SRV 4.1.1), a
//! DLMS action on the data-protection object asking for the import registers encrypted for the
//! User. Neither DUIS body has fields.
//!
//! ECS17b's response carries the registers encrypted under a key agreed between the device's and
//! the User's key-agreement keys; this module builds everything around that ciphertext, which the
//! caller (the holder of the device's keys) supplies as [`Protected`].

use crate::domain::Eui64;
use crate::gbcs::dlms::{invoke_id, AccessRequest, AccessResponse, CosemRef, Data};
use crate::gbcs::dlms::{RequestSpec, ResponseSpec};
use crate::gbcs::frame::MessageCode;

pub const FIRMWARE_VERSION_CODE: MessageCode = MessageCode(0x0059);
pub const IMPORT_REGISTERS_CODE: MessageCode = MessageCode(0x0027);

/// Data object 0-0:0.2.1.255 (active firmware identifier), attribute 2 (value).
const FIRMWARE_VERSION: CosemRef = CosemRef::new(1, [0, 0, 0, 2, 1, 255], 2);
/// Data protection object 0-0:43.2.8.255, method 1 (get protected attributes).
const DATA_PROTECTION: CosemRef = CosemRef::new(30, [0, 0, 43, 2, 8, 255], 1);
/// The object whose attribute 2 the import-register read asks for, protected.
const IMPORT_REGISTERS: CosemRef = CosemRef::new(1, [0, 0, 94, 44, 34, 10], 2);
/// Protection type: authentication and encryption.
const AUTHENTICATED_ENCRYPTION: u8 = 2;
/// Key info: an agreed key, key parameters "C(0e, 2s ECC CDH)".
const AGREED_KEY: u8 = 2;
const ECC_CDH_STATIC: u8 = 2;
/// The octet before the counter in the protection's transaction id, as every sample has it.
const PROTECTION_TRANSACTION_PREFIX: u8 = 0x04;
/// Security control of the protected data: authenticated and encrypted, suite 1.
const SECURITY_CONTROL_ENCRYPTED: u8 = 0x31;

/// Read Firmware Version: get the active firmware identifier.
pub fn firmware_version_content(counter: u64) -> Vec<u8> {
    AccessRequest {
        invoke_id: invoke_id(counter),
        specs: vec![RequestSpec::Get(FIRMWARE_VERSION)],
        data: vec![Data::Null],
    }
    .encode()
}

/// The device's answer: the version on success, else the data-access-result (non-zero).
pub fn firmware_version_response(counter: u64, version: Result<&[u8], u8>) -> Vec<u8> {
    let (data, result) = match version {
        Ok(v) => (Data::OctetString(v.to_vec()), 0),
        Err(result) => (Data::Null, result),
    };
    AccessResponse {
        invoke_id: invoke_id(counter),
        data: vec![data],
        results: vec![ResponseSpec::Get(result)],
    }
    .encode()
}

/// The protection parameters: encrypt from `originator` to `recipient` under the key agreed
/// for the request with originator counter `counter`.
fn protection(counter: u64, originator: Eui64, recipient: Eui64) -> Data {
    let mut transaction = vec![PROTECTION_TRANSACTION_PREFIX];
    transaction.extend_from_slice(&counter.to_be_bytes());
    Data::Structure(vec![
        Data::Enum(AUTHENTICATED_ENCRYPTION),
        Data::Structure(vec![
            Data::OctetString(transaction),
            Data::OctetString(originator.as_bytes().to_vec()),
            Data::OctetString(recipient.as_bytes().to_vec()),
            Data::OctetString(Vec::new()),
            Data::Structure(vec![
                Data::Enum(AGREED_KEY),
                Data::Structure(vec![
                    Data::OctetString(vec![ECC_CDH_STATIC]),
                    Data::OctetString(Vec::new()),
                ]),
            ]),
        ]),
    ])
}

/// Read Instantaneous Import Registers from `user` to `device`.
pub fn import_registers_content(counter: u64, user: Eui64, device: Eui64) -> Vec<u8> {
    let c = IMPORT_REGISTERS;
    let attribute = Data::Structure(vec![
        Data::LongUnsigned(c.class_id),
        Data::OctetString(c.obis.to_vec()),
        Data::Integer(c.id as i8),
        Data::LongUnsigned(0),
        Data::Structure(vec![Data::Enum(0), Data::Null]),
    ]);
    AccessRequest {
        invoke_id: invoke_id(counter),
        specs: vec![RequestSpec::Action(DATA_PROTECTION)],
        data: vec![Data::Structure(vec![
            Data::Array(vec![attribute]),
            Data::Array(vec![protection(counter, user, device)]),
        ])],
    }
    .encode()
}

/// The registers as the device's key protected them: the invocation counter and the ciphertext
/// with its 12-octet tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protected {
    pub invocation_counter: u32,
    pub ciphertext_and_tag: Vec<u8>,
}

/// The device's answer to the import-register read: the registers protected for the User, or
/// the action-result (non-zero) of a failed read.
pub fn import_registers_response(
    counter: u64,
    user: Eui64,
    device: Eui64,
    registers: Result<&Protected, u8>,
) -> Vec<u8> {
    let (data, result) = match registers {
        Ok(p) => {
            let mut protected = vec![SECURITY_CONTROL_ENCRYPTED];
            protected.extend_from_slice(&p.invocation_counter.to_be_bytes());
            protected.extend_from_slice(&p.ciphertext_and_tag);
            let data = Data::Structure(vec![
                Data::Array(vec![protection(counter, device, user)]),
                Data::OctetString(protected),
            ]);
            (data, 0)
        }
        Err(result) => (Data::Null, result),
    };
    AccessResponse {
        invoke_id: invoke_id(counter),
        data: vec![data],
        results: vec![ResponseSpec::Action(result)],
    }
    .encode()
}
