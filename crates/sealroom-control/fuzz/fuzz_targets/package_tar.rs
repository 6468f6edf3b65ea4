//! Fuzzes the inspection of uploaded algorithm packages (`POST .../versions/upload` of an
//! algorithm): any bytes must be refused or inspected — no panic, no hang, bounded memory — and
//! an inspection must always yield the four upload steps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_control::routes::artifacts::package;
use sealroom_types::{Timestamp, UploadStep};

fuzz_target!(|data: &[u8]| {
    if let Ok(inspection) = package::inspect(data) {
        let outcome = inspection.steps(None, Timestamp::EPOCH);
        assert_eq!(outcome.steps.len(), UploadStep::ALL.len());
        // Without the AO's WCEK the package cannot pass.
        assert!(!outcome.passed);
    }
    let _ = package::normalize_path(data);
    let _ = package::sealed_key_id(data);
});
