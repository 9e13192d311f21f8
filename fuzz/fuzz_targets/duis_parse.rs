//! The DUIS request parser on arbitrary bytes: it may refuse anything, never panic.
#![no_main]

use dccgw::duis::{parse_request, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_request(data, &Limits::default());
});
