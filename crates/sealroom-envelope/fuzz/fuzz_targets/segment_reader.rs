#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealroom_envelope::fuzzing::segment_reader(data);
});
