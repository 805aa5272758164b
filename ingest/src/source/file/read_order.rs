//! The order a folder run reads its files in: files of calls before files of feedback.
//!
//! Feedback is attributed to the call it rates (its app, model and prompt version, and the
//! call's minute) through the feedback join, which remembers the calls already read. A verdict
//! read before its call is tallied without that context when its file's buffer is flushed,
//! which for a file run is at the file's end. A Collector's file exporter writes spans and the
//! logs that rate them to separate files, whose names may sort either way (`logs.json` before
//! `traces.json`), so name order alone would put every verdict under the evaluator's own app.
//!
//! Each file is classified by its first messages, decoded as the run will decode them: a file
//! whose first messages hold calls is read first, one whose first messages hold only feedback
//! last, any other (empty, unreadable, skipped spans only) in between; name order within each.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use super::{HEAD_FINGERPRINT_BYTES, file_framing, is_message, now_nanos, record_format};
use crate::decode::{DecodeConfig, Decoded, Decoder, PayloadFormat};
use crate::source::framing::RecordReader;

/// Most messages decoded to classify a file: enough to find a call among an event dump's first
/// feedback events.
const PEEK_MESSAGES: usize = 64;

/// Most bytes read to classify a file (beyond one record of `decode.max_payload_bytes`).
const PEEK_BYTES: u64 = 16 << 20;

/// Where a file goes in a folder run's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ReadRank {
    /// Its first messages hold inference calls.
    Calls,
    /// Neither: empty, unreadable, or non-inference spans only.
    Undecided,
    /// Its first messages hold feedback and no call.
    FeedbackOnly,
}

/// `paths` (in name order) reordered so that files of calls come before files of feedback,
/// name order kept within each kind; see the module docs.
pub async fn order_for_feedback_join(
    paths: Vec<PathBuf>,
    format: PayloadFormat,
    decode: &DecodeConfig,
) -> Vec<PathBuf> {
    if paths.len() < 2 {
        return paths;
    }
    let decoder = Decoder::new(decode.clone());
    let mut ranked = Vec::with_capacity(paths.len());
    for path in paths {
        let rank = rank_of(&path, format, &decoder).await;
        ranked.push((rank, path));
    }
    // Stable: name order within each rank.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, path)| path).collect()
}

/// A file's rank from its first messages. A file that cannot be read here is left undecided:
/// the run itself says what is wrong with it.
async fn rank_of(path: &Path, format: PayloadFormat, decoder: &Decoder) -> ReadRank {
    let Ok(mut file) = tokio::fs::File::open(path).await else { return ReadRank::Undecided };
    let Ok(length) = file.metadata().await.map(|metadata| metadata.len()) else { return ReadRank::Undecided };
    let mut head = Vec::new();
    if (&mut file).take(HEAD_FINGERPRINT_BYTES as u64).read_to_end(&mut head).await.is_err() {
        return ReadRank::Undecided;
    }
    let framing = file_framing(format, &head, length);
    let max_record = decoder.config().max_payload_bytes;
    let mut reader = RecordReader::new(framing, 0, max_record, 0);
    // The head is where the reader starts.
    let mut pending = head.as_slice();
    let mut read_total = 0u64;
    let mut decoded = Decoded::default();
    let (mut messages, mut calls, mut feedback) = (0usize, 0usize, 0usize);
    let now = now_nanos();
    loop {
        let read = if pending.is_empty() {
            match file.read(reader.spare()).await {
                Ok(read) => read,
                Err(_) => return ReadRank::Undecided,
            }
        } else {
            let spare = reader.spare();
            let take = spare.len().min(pending.len());
            spare[..take].copy_from_slice(&pending[..take]);
            pending = &pending[take..];
            take
        };
        read_total += read as u64;
        let at_end = read == 0;
        for record in reader.advance(read, at_end) {
            if record.unreadable.is_some() || !is_message(framing, record.bytes) {
                continue;
            }
            decoded.clear();
            decoder.decode(record.bytes, record_format(framing, format, record.bytes), now, &mut decoded);
            calls += decoded.events.len();
            feedback += decoded.feedback.len();
            messages += 1;
            if calls > 0 || messages >= PEEK_MESSAGES {
                break;
            }
        }
        reader.compact();
        if calls > 0 || messages >= PEEK_MESSAGES || at_end || read_total > PEEK_BYTES + max_record as u64 {
            break;
        }
    }
    match (calls, feedback) {
        (0, 0) => ReadRank::Undecided,
        (0, _) => ReadRank::FeedbackOnly,
        _ => ReadRank::Calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    const CALL: &str = r#"{"type":"inference","id":"c1","app":"support-bot","time":"2026-11-03T10:00:00Z","request_model":"gpt-4o","input_tokens":10,"output_tokens":5,"latency_ms":800}"#;
    const VERDICT: &str = r#"{"type":"feedback","id":"f1","app":"judge","time":"2026-11-03T10:00:01Z","inference_id":"c1","name":"hallucination","score":1}"#;

    /// A Collector-style folder whose logs sort before its spans is read spans first; files
    /// that hold neither (empty, or not decodable) keep their place between; an event dump
    /// whose first lines are feedback but which holds calls after them counts as calls.
    #[tokio::test]
    async fn files_of_calls_are_read_before_files_of_feedback() -> TestResult {
        let dir = tempfile::tempdir()?;
        let write = |name: &str, text: String| -> std::io::Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let feedback_only = write("a-logs.ndjson", format!("{VERDICT}\n{VERDICT}\n"))?;
        let empty = write("b-empty.ndjson", String::new())?;
        let mixed = write("c-mixed.ndjson", format!("{VERDICT}\n{CALL}\n"))?;
        let calls = write("d-calls.ndjson", format!("{CALL}\n"))?;
        let garbage = write("e-garbage.ndjson", "not json\n".to_owned())?;
        let paths = vec![feedback_only.clone(), empty.clone(), mixed.clone(), calls.clone(), garbage.clone()];
        let ordered = order_for_feedback_join(paths, PayloadFormat::Auto, &DecodeConfig::default()).await;
        assert_eq!(ordered, [mixed, calls, empty, garbage, feedback_only]);
        Ok(())
    }
}
