//! Every PayloadFormat on arbitrary bytes: no panic, known reject reasons, output independent of earlier output.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_ingest::decode::fuzz_checks::decode(data));
