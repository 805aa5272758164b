//! One message through the whole per-message path (decode, enrich, rollups, the batch a flush
//! writes), with dead-letter caps and content retention chosen by the first byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_ingest::decode::fuzz_checks::process(data));
