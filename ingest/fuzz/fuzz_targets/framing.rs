//! File framing (lines, length-prefixed) on arbitrary bytes, read whole and in arbitrary chunks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_ingest::decode::fuzz_checks::framing(data));
