//! The PII scrubber on arbitrary text: idempotent, JSON stays JSON, planted secrets masked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_ingest::decode::fuzz_checks::scrub(data));
