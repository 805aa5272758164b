//! Message-text extraction and the fingerprints' fast paths against their definitions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_ingest::decode::fuzz_checks::text(data));
