//! The in-place protobuf reader against prost, on traces and logs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_ingest::decode::fuzz_checks::wire(data));
