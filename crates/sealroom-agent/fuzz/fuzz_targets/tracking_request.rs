#![no_main]
//! The Enclave API's MLflow tracking subset (`/api/2.0/mlflow/...` bodies) on arbitrary bytes:
//! never a panic, limits hold.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealroom_agent::enclave_api::fuzzing::tracking_request(data);
});
