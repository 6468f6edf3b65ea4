//! The stored key blob parser: any bytes parse or are refused without panicking, and whatever
//! parses encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealroom_broker::blob::fuzz_parse(data);
});
