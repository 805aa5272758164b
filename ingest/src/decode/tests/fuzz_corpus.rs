//! The committed fuzz corpus (`ingest/fuzz/corpus/<target>`), replayed through the checks its
//! fuzz target runs ([`fuzz_checks`]), so that `cargo test` catches a regression on any input
//! that once crashed, hung or broke a property, without libFuzzer.

use std::path::PathBuf;

use crate::decode::fuzz_checks;

/// The check a fuzz target runs on each input.
type Check = fn(&[u8]);

/// Every fuzz target, by its directory under `corpus/`, with the check it runs.
const TARGETS: [(&str, Check); 6] = [
    ("decode", fuzz_checks::decode),
    ("wire", fuzz_checks::wire),
    ("framing", fuzz_checks::framing),
    ("scrub", fuzz_checks::scrub),
    ("text", fuzz_checks::text),
    ("process", fuzz_checks::process),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// The corpus files of one target, by name, with their bytes.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir().join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (path.file_name().unwrap_or_default().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let check = TARGETS.iter().find(|(name, _)| *name == target).map(|(_, check)| check).unwrap();
    let files = corpus(target);
    assert!(!files.is_empty(), "no corpus for the {target} target");
    for (name, bytes) in files {
        // Named in the panic message, so that a failure says which input to minimise.
        let result = std::panic::catch_unwind(|| check(&bytes));
        assert!(result.is_ok(), "corpus/{target}/{name} fails its fuzz target's checks");
    }
}

/// A target added without a corpus, or a corpus left behind by a removed target, is a mistake.
#[test]
fn every_fuzz_target_has_a_corpus_and_every_corpus_a_target() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut targets: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    targets.sort_unstable();
    assert_eq!(dirs, targets);
}

#[test]
fn decode_corpus_passes_the_decode_checks() {
    replay("decode");
}

#[test]
fn wire_corpus_passes_the_wire_reader_against_prost() {
    replay("wire");
}

#[test]
fn framing_corpus_reads_the_same_whole_and_in_chunks() {
    replay("framing");
}

#[test]
fn scrub_corpus_passes_the_scrubber_checks() {
    replay("scrub");
}

#[test]
fn text_corpus_fingerprints_equal_their_definitions() {
    replay("text");
}

#[test]
fn process_corpus_runs_through_the_whole_message_path() {
    replay("process");
}
