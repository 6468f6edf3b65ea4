//! Criteria and document parsing and validation on arbitrary bytes: the criteria, a NUL byte,
//! then the document (see `sealroom_criteria::fuzz_one`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealroom_criteria::fuzz_one(data);
});
