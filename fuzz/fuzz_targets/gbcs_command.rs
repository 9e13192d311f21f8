//! The GBCS command builder and the critical flow's body readers on arbitrary requests: any
//! request the DUIS parser takes gets its command or a refusal, for any device type, never a
//! panic; a command that is built encodes (sealing it may still find it too long).
#![no_main]

use dccgw::domain::DeviceType;
use dccgw::duis::{self, critical};
use dccgw::gbcs::command::{build, seal, CommandRequest};
use dccgw::gbcs::usecase::Parties;
use dccgw::xmldsig::c14n::C14nLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = duis::parse_request(data, &duis::Limits::default()) else {
        return;
    };
    let body = &data[parsed.body.clone()];
    let _ = critical::read_signed_precommand(body);
    let _ = critical::read_local_command_response(body);
    let id = parsed.header.request_id;
    for (device_type, critical) in [
        (DeviceType::Esme, true),
        (DeviceType::Gsme, false),
        (DeviceType::Chf, true),
    ] {
        let request = CommandRequest {
            srv: parsed.header.srv,
            device_type,
            parties: Parties {
                user: id.originator,
                device: id.target,
                counter: id.counter,
            },
            document: data,
            body: parsed.body.clone(),
            execution: None,
            critical,
        };
        if let Ok(frame) = build(&request, &C14nLimits::default()) {
            assert!(frame.encode().is_ok());
            let _ = seal(frame);
        }
    }
});
