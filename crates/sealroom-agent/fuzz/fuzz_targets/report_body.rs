#![no_main]
//! The Enclave API's report parser (`POST /api/v1/report` and `/api/v1/validate`: JSON with
//! base64 `json_data`) on arbitrary bytes: never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealroom_agent::enclave_api::fuzzing::report_body(data);
});
