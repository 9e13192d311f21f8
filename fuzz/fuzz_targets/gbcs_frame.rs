//! The GBCS frame decoder and the content decoders on arbitrary bytes: they may refuse anything,
//! never panic, and a frame that decodes re-encodes to exactly the bytes it came from.
#![no_main]

use dccgw::gbcs::dlms::{AccessRequest, AccessResponse, DataNotification};
use dccgw::gbcs::usecase::body;
use dccgw::gbcs::Apdu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(apdu) = Apdu::decode(data) {
        assert_eq!(apdu.encode().as_deref(), Ok(data));
        let content = &apdu.general_signing().content;
        let _ = AccessRequest::decode(content);
        let _ = AccessResponse::decode(content);
        let _ = DataNotification::decode(content);
    }
    if let Ok(request) = AccessRequest::decode(data) {
        assert_eq!(request.encode(), data);
    }
    let _ = AccessResponse::decode(data);
    let _ = DataNotification::decode(data);
    let _ = body::read_command(data);
    let _ = body::read_response(data);
});
