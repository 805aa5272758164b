//! The file source: OTLP/JSON lines (as the OTel Collector's file exporter writes them),
//! length-prefixed OTLP protobuf (its `format: proto`) or NDJSON events, for backfill and the
//! demo.
//!
//! A file is one partition whose offsets are byte positions: the checkpoint stream is derived
//! from the file's canonical path, so re-running over the same file resumes where the last run's
//! checkpoint says and never writes a message twice. Records are read in large blocks and processed
//! synchronously; the loop is one `select!` over flush completions, shutdown, the age timer and
//! the next block.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::decode::PayloadFormat;
use crate::error::{Error, Result};
use crate::pipeline::{FlushOutcome, FlushReason, Flusher, PartitionBuffer, Processor};
use crate::runtime::Components;
use crate::source::framing::{Framing, RecordReader, framed_length};

/// A length prefix above this cannot be a real OTLP message: the framing is corrupt.
const MAX_FRAMED_RECORD_BYTES: usize = 256 << 20;

/// Bytes read from the start of a file to guess its framing: a byte order mark and a length prefix.
const SNIFF_BYTES: usize = 8;

/// How often the age limit is checked.
const AGE_TICK: Duration = Duration::from_millis(250);

/// What a file run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRunReport {
    /// Checkpoint stream of the file.
    pub stream: String,
    /// Byte offset the run started from (0, or the recovered checkpoint).
    pub resumed_from: i64,
    /// Byte offset committed at the end of the run.
    pub committed_to: i64,
    /// Messages processed by this run: lines, or length-prefixed protobuf messages.
    pub messages: u64,
    /// Flushes committed.
    pub flushes: u64,
    /// Bytes that could not be split into messages (lines above `decode.max_payload_bytes`, the
    /// rest of a file after a corrupt length prefix); each such stretch is one dead letter.
    pub unreadable_bytes: u64,
    /// True when the run stopped early because of shutdown.
    pub interrupted: bool,
}

/// The checkpoint stream of a file: readable name plus a hash of the canonical path, so two
/// files with the same name in different folders never share a checkpoint.
pub fn file_stream_id(path: &Path) -> Result<String> {
    let canonical =
        std::fs::canonicalize(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let stem: String = canonical
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(48)
        .collect();
    let hash = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    Ok(format!("file.{stem}.{}", &hash[..12]))
}

/// Ingest one file into the lake, resuming from its checkpoint.
pub async fn run_file(
    components: &Components,
    path: &Path,
    format: PayloadFormat,
    shutdown: CancellationToken,
) -> Result<FileRunReport> {
    run_file_with(components, &mut components.processor(), path, format, shutdown).await
}

/// [`run_file`] with a processor the caller keeps across files, so that feedback in one file is
/// joined to the inferences of files ingested before it in the same run (spans, then the logs
/// that rate them).
pub async fn run_file_with(
    components: &Components,
    processor: &mut Processor,
    path: &Path,
    format: PayloadFormat,
    shutdown: CancellationToken,
) -> Result<FileRunReport> {
    let stream = file_stream_id(path)?;
    let io_error = |source| Error::Io { path: path.display().to_string(), source };
    let checkpoint = components
        .writer
        .recover(&stream, 0)
        .await
        .map_err(|source| Error::Lake { context: format!("recovering {stream}"), source })?;
    let resumed_from = checkpoint.map_or(0, |c| c.next_offset);
    let mut file = tokio::fs::File::open(path).await.map_err(io_error)?;
    let length = file.metadata().await.map_err(io_error)?.len();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut file).take(SNIFF_BYTES as u64).read_to_end(&mut head).await.map_err(io_error)?;
    let framing = match format {
        // Events are only ever JSON lines: a first line that is not JSON is a bad line, not a
        // reason to read the file as protobuf.
        PayloadFormat::JsonEvents => Framing::Lines,
        _ => Framing::sniff(&head, length, MAX_FRAMED_RECORD_BYTES),
    };
    // Read as UTF-8 lines, UTF-16 text has no line ends and would be taken for one unfinished
    // line, left for a next run that never comes.
    if framing == Framing::Lines && (head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF])) {
        return Err(Error::FileRefused(format!(
            "{} is UTF-16 text (it starts with a UTF-16 byte order mark); driftwatch reads UTF-8. Convert it, \
             e.g. `iconv -f UTF-16 -t UTF-8`, and ingest the converted file.",
            path.display()
        )));
    }
    if u64::try_from(resumed_from).unwrap_or(0) > length {
        return Err(Error::FileRefused(format!(
            "{} is shorter ({length} bytes) than its checkpoint ({resumed_from}); the file was replaced or \
             truncated. Remove the checkpoint under _checkpoints/{stream}/ to ingest it from the start.",
            path.display()
        )));
    }
    if !continues_at(&mut file, framing, resumed_from, length).await.map_err(io_error)? {
        return Err(Error::FileRefused(format!(
            "{} does not continue at its checkpoint (byte {resumed_from} is not where a record starts): the \
             file was replaced or rotated since it was ingested. Ingest the new file under another name, or \
             remove the checkpoint under _checkpoints/{stream}/ to ingest this one from the start.",
            path.display()
        )));
    }
    file.seek(std::io::SeekFrom::Start(u64::try_from(resumed_from).unwrap_or(0))).await.map_err(io_error)?;
    tracing::info!(path = %path.display(), stream = %stream, resumed_from, "File source started.");

    let topic: Arc<str> = Arc::from(path.display().to_string());
    components.metrics.track_topic(&topic);
    let mut buffer = PartitionBuffer::new(
        Arc::from(stream.as_str()),
        topic,
        0,
        resumed_from,
        &components.config.aggregate,
        components.limits.dedup_window,
    );
    let tracker = TaskTracker::new();
    let abandon = CancellationToken::new();
    let mut flusher =
        Flusher::spawn(Arc::clone(&components.writer), components.metrics.clone(), 2, &tracker, abandon.clone());
    let mut report = FileRunReport { stream, resumed_from, committed_to: resumed_from, ..Default::default() };
    let decode = components.config.decode.to_decode_config();
    // A message above `max_payload_bytes` may still be a real one, discarded as it is read; only
    // a prefix beyond any OTLP message means the framing is lost.
    let mut reader =
        RecordReader::new(framing, resumed_from, decode.max_payload_bytes, decode.max_dead_letter_payload_bytes)
            .with_max_framed_bytes(MAX_FRAMED_RECORD_BYTES);
    let mut age_tick = tokio::time::interval(AGE_TICK);
    age_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let finish_reason = loop {
        tokio::select! {
            biased;
            done = flusher.next_done() => record_done(&mut report, &done?)?,
            () = shutdown.cancelled() => {
                report.interrupted = true;
                break FlushReason::Shutdown;
            }
            _ = age_tick.tick() => {
                if let Some(reason) = buffer.due(&components.limits, Instant::now()) {
                    submit(&mut flusher, &mut buffer, reason).await?;
                }
            }
            read = file.read(reader.spare()) => {
                let read = read.map_err(io_error)?;
                let now = now_nanos();
                let at_end = read == 0;
                for record in reader.advance(read, at_end) {
                    let (payload, offset, next_offset) = (record.bytes, record.offset, record.next_offset);
                    if let Some(unreadable) = record.unreadable {
                        let why = (unreadable.reason(), unreadable.to_string());
                        processor.reject(&mut buffer, why, payload, (offset, next_offset), now);
                        report.messages += 1;
                        if let Some(reason) = buffer.due(&components.limits, Instant::now()) {
                            submit(&mut flusher, &mut buffer, reason).await?;
                        }
                        continue;
                    }
                    let format = match (framing, format) {
                        // Binary framing only carries OTLP protobuf; Auto would guess traces.
                        (Framing::LengthPrefixed, PayloadFormat::JsonEvents) => PayloadFormat::Auto,
                        // A line is JSON: one that does not start as an object is malformed JSON,
                        // which the decoder would otherwise try (and report) as protobuf.
                        (Framing::Lines, _) if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => {
                            PayloadFormat::JsonEvents
                        }
                        _ => format,
                    };
                    // A blank line is no message; an empty length-prefixed record is one (and is rejected).
                    if framing == Framing::LengthPrefixed || !payload.iter().all(u8::is_ascii_whitespace) {
                        processor.process(&mut buffer, payload, format, (offset, next_offset), now);
                        report.messages += 1;
                    } else {
                        // A blank line still moves the position so a resumed run skips it.
                        buffer.consumed(offset, next_offset);
                    }
                    if let Some(reason) = buffer.due(&components.limits, Instant::now()) {
                        submit(&mut flusher, &mut buffer, reason).await?;
                    }
                }
                reader.compact();
                if at_end {
                    report.unreadable_bytes = reader.skipped_bytes;
                    if reader.skipped_bytes > 0 {
                        tracing::warn!(
                            path = %path.display(),
                            unreadable_bytes = reader.skipped_bytes,
                            "Part of the file could not be split into messages (a line above decode.max_payload_bytes \
                             or a corrupt length prefix); it is in dead_letter with its first bytes."
                        );
                    }
                    let (incomplete_at, incomplete_bytes) = reader.unconsumed();
                    if incomplete_bytes > 0 {
                        let what = match framing {
                            Framing::Lines => "The last line is incomplete (no newline, not a whole JSON value)",
                            Framing::LengthPrefixed => {
                                "The last message is incomplete (shorter than its length prefix declares)"
                            }
                        };
                        tracing::warn!(
                            path = %path.display(),
                            offset = incomplete_at,
                            bytes = incomplete_bytes,
                            "{what}; it is left for the next run, which reads it once the writer has finished it."
                        );
                    }
                    break FlushReason::EndOfInput;
                }
            }
        }
    };

    submit(&mut flusher, &mut buffer, finish_reason).await?;
    while flusher.in_flight() > 0 {
        record_done(&mut report, &flusher.next_done().await?)?;
    }
    drop(flusher);
    tracker.close();
    tracker.wait().await;
    tracing::info!(
        stream = %report.stream,
        messages = report.messages,
        committed_to = report.committed_to,
        flushes = report.flushes,
        "File source finished."
    );
    Ok(report)
}

/// Whether a file resumed at checkpoint `at` (of `length` bytes now) still looks like the file
/// that was checkpointed: a checkpoint is always at a record boundary, so a line file must have a
/// line end just before it (or right at it: a last line taken whole without its newline, which
/// the writer has since finished), and a protobuf file a plausible length prefix at it. A file
/// replaced by a longer one, as a rotating writer does, fails this unless the bytes there happen
/// to fit; resuming it would lose its first `at` bytes and dead-letter a fragment.
async fn continues_at(file: &mut tokio::fs::File, framing: Framing, at: i64, length: u64) -> std::io::Result<bool> {
    let Ok(at) = u64::try_from(at) else { return Ok(false) };
    if at == 0 || at >= length {
        return Ok(true);
    }
    let mut around = [0u8; 5];
    file.seek(std::io::SeekFrom::Start(at - 1)).await?;
    let read = file.read(&mut around).await?;
    let around = &around[..read];
    Ok(match framing {
        Framing::Lines => matches!(around, [b'\n', ..] | [_, b'\n' | b'\r', ..]),
        Framing::LengthPrefixed => match around {
            [_, a, b, c, d] => framed_length([*a, *b, *c, *d], MAX_FRAMED_RECORD_BYTES).is_ok(),
            // Fewer than four bytes after the checkpoint: a record being written.
            _ => true,
        },
    })
}

fn record_done(report: &mut FileRunReport, outcome: &FlushOutcome) -> Result<()> {
    match outcome {
        FlushOutcome::Committed(done) => {
            report.flushes += 1;
            report.committed_to = report.committed_to.max(done.next_offset);
            Ok(())
        }
        // The file source never fences its own partition.
        FlushOutcome::Fenced { .. } => Ok(()),
        FlushOutcome::ClaimLost { stream, .. } => Err(Error::Other(format!(
            "another `driftwatch ingest` has claimed {stream} in this lake (the same file ingested twice at \
             once?); it continues from the last checkpoint and this run stops without writing more"
        ))),
    }
}

async fn submit(flusher: &mut Flusher, buffer: &mut PartitionBuffer, reason: FlushReason) -> Result<()> {
    let bytes = buffer.bytes();
    if let Some(batch) = buffer.take_batch()? {
        flusher.submit(batch, reason, bytes).await?;
    }
    Ok(())
}

/// Current wall-clock time in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Expand a `--source file:` argument: a file, or every regular file in a directory (sorted).
pub fn expand_paths(path: &Path) -> Result<Vec<PathBuf>> {
    let io_error = |source| Error::Io { path: path.display().to_string(), source };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if metadata.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // `metadata` follows symbolic links: a link to a file is read like the file.
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => files.push(path),
            Ok(_) => tracing::warn!(path = %path.display(), "Not a file; skipped (subfolders are not read)."),
            Err(error) => tracing::warn!(path = %path.display(), %error, "Cannot be read; skipped."),
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn event(id: usize) -> String {
        format!(
            r#"{{"id":"evt-{id}","time":"2025-06-01T12:00:00Z","app":"chat","request_model":"gpt-4o","input_tokens":10,"output_tokens":5}}"#
        )
    }

    /// Components over a local lake in `dir`, with `decode.max_payload_bytes` = `max_payload`.
    async fn components(dir: &Path, max_payload: u64) -> Result<Components> {
        let mut config = Config::default();
        config.lake.location = dir.join("lake").display().to_string();
        config.decode.max_payload_bytes = bytesize::ByteSize::b(max_payload);
        Components::build(config).await
    }

    /// Ingest `path` to its end with fresh components (as a new `driftwatch ingest` would).
    async fn ingest(dir: &Path, path: &Path, format: PayloadFormat) -> Result<(FileRunReport, String)> {
        let components = components(dir, 1024).await?;
        let report = run_file(&components, path, format, CancellationToken::new()).await?;
        let metrics = components.metrics.encode().map_err(|e| Error::Other(e.to_string()))?;
        Ok((report, metrics))
    }

    fn rows(metrics: &str) -> u64 {
        crate::telemetry::counter_sum(metrics, "driftwatch_lake_rows_written_total{kind=\"events\"}")
    }

    fn dead_letters(metrics: &str, reason: &str) -> u64 {
        crate::telemetry::counter_sum(metrics, &format!("driftwatch_dead_letters_total{{reason=\"{reason}\"}}"))
    }

    #[tokio::test]
    async fn a_byte_order_mark_or_a_bad_first_line_does_not_lose_the_good_lines() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bom = dir.path().join("bom.jsonl");
        std::fs::write(&bom, format!("\u{feff}{}\r\n{}\r\n", event(1), event(2)))?;
        let garbage = dir.path().join("garbage.jsonl");
        std::fs::write(&garbage, format!("garbage header line\n{}\n{}\n", event(3), event(4)))?;
        for format in [PayloadFormat::Auto, PayloadFormat::JsonEvents] {
            let run = tempfile::tempdir()?;
            let (report, metrics) = ingest(run.path(), &bom, format).await?;
            assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&bom)?.len())?, "{format:?}");
            assert_eq!((rows(&metrics), report.unreadable_bytes), (2, 0), "{format:?}: {metrics}");

            let (report, metrics) = ingest(run.path(), &garbage, format).await?;
            assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&garbage)?.len())?, "{format:?}");
            assert_eq!(rows(&metrics), 2, "{format:?}: {metrics}");
            assert_eq!(dead_letters(&metrics, "malformed_json"), 1, "{format:?}: {metrics}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_rest_of_a_file_after_a_corrupt_length_prefix_is_dead_lettered() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("spans.binpb");
        // An empty ExportTraceServiceRequest, then a prefix no message can have.
        let mut bytes = vec![0, 0, 0, 0];
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        bytes.extend_from_slice(&[7; 100]);
        std::fs::write(&path, &bytes)?;
        let (report, metrics) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;
        assert_eq!(report.committed_to, 108);
        assert_eq!(report.unreadable_bytes, 104);
        assert_eq!(dead_letters(&metrics, "corrupt_framing"), 1, "{metrics}");
        Ok(())
    }

    #[tokio::test]
    async fn a_line_above_the_payload_limit_is_one_dead_letter_beside_its_good_neighbours() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("events.jsonl");
        let long = format!(r#"{{"id":"evt-x","pad":"{}"}}"#, "x".repeat(5000));
        std::fs::write(&path, format!("{}\n{long}\n{}\n", event(1), event(2)))?;
        let (report, metrics) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;
        assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&path)?.len())?);
        assert_eq!(rows(&metrics), 2, "{metrics}");
        assert_eq!(dead_letters(&metrics, "payload_too_large"), 1, "{metrics}");
        assert_eq!(report.unreadable_bytes, long.len() as u64);
        Ok(())
    }

    #[tokio::test]
    async fn an_unfinished_last_line_is_read_once_the_writer_has_finished_it() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("events.jsonl");
        let (first, second) = (event(1), event(2));
        let (begun, rest) = second.split_at(30);
        std::fs::write(&path, format!("{first}\n{begun}"))?;
        let (report, metrics) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;
        assert_eq!(report.committed_to, i64::try_from(first.len() + 1)?);
        assert_eq!((rows(&metrics), dead_letters(&metrics, "malformed_json")), (1, 0), "{metrics}");

        // The writer finishes the line (and, as a finished file may, writes a last one without
        // newline): the next run reads both whole.
        let third = event(3);
        std::fs::write(&path, format!("{first}\n{second}\n{third}"))?;
        let (report, metrics) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;
        assert_eq!(report.resumed_from, i64::try_from(first.len() + 1)?);
        assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&path)?.len())?);
        assert_eq!((rows(&metrics), dead_letters(&metrics, "malformed_json")), (2, 0), "{metrics}");
        assert!(rest.len() > 1);
        Ok(())
    }

    /// One length-prefixed `ExportTraceServiceRequest` holding inference span `n`, as the
    /// Collector's file exporter writes it with `format: proto`.
    fn framed_span_request(n: u8) -> Vec<u8> {
        use driftwatch_lake::model::InferenceEvent;
        let event = InferenceEvent {
            app: "chat".to_owned(),
            operation: "chat".to_owned(),
            request_model: Some("gpt-4o".to_owned()),
            trace_id: Some(format!("{n:032x}")),
            span_id: Some(format!("{n:016x}")),
            start_time: 1_748_779_200_000_000_000,
            time: 1_748_779_201_000_000_000 + i64::from(n),
            input_tokens: Some(10),
            output_tokens: Some(5),
            ..InferenceEvent::default()
        };
        let request =
            crate::fleet::encode_otlp::trace_request("chat", None, vec![crate::fleet::encode_otlp::span(&event)]);
        crate::source::framing::tests::framed(&[&crate::fleet::encode_otlp::encode(&request, false)])
    }

    /// The protobuf twin of the unfinished last line: a message cut short by the end of the
    /// file is the writer still writing it, not a bad message.
    #[tokio::test]
    async fn an_unfinished_last_protobuf_message_is_read_once_the_writer_has_finished_it() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("spans.binpb");
        let (first, second, third) = (framed_span_request(1), framed_span_request(2), framed_span_request(3));
        for cut in [2, second.len() / 2] {
            let run = tempfile::tempdir()?;
            std::fs::write(&path, [&first[..], &second[..cut]].concat())?;
            let (report, metrics) = ingest(run.path(), &path, PayloadFormat::Auto).await?;
            assert_eq!(report.committed_to, i64::try_from(first.len())?, "cut at {cut}");
            assert_eq!((rows(&metrics), dead_letters(&metrics, "malformed_protobuf")), (1, 0), "{metrics}");

            std::fs::write(&path, [&first[..], &second[..], &third[..]].concat())?;
            let (report, metrics) = ingest(run.path(), &path, PayloadFormat::Auto).await?;
            assert_eq!(report.resumed_from, i64::try_from(first.len())?);
            assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&path)?.len())?);
            assert_eq!((rows(&metrics), dead_letters(&metrics, "malformed_protobuf")), (2, 0), "{metrics}");
        }
        Ok(())
    }

    /// Dead letters of every reason.
    fn all_dead_letters(metrics: &str) -> u64 {
        crate::telemetry::counter_sum(metrics, "driftwatch_dead_letters_total{")
    }

    /// A line or message above `decode.max_payload_bytes` that the end of the file cuts short
    /// is one being written: the checkpoint stays at its start, and the next run dead-letters it
    /// whole and reads on, rather than finding the file resumed inside it.
    #[tokio::test]
    async fn an_unfinished_record_above_the_payload_limit_is_dead_lettered_whole_once_finished() -> TestResult {
        let dir = tempfile::tempdir()?;
        let long = format!(r#"{{"id":"evt-x","pad":"{}"}}"#, "x".repeat(5000));
        let lines = dir.path().join("events.jsonl");
        let (before, after) = (format!("{}\n", event(1)), format!("{}\n", event(2)));
        let big = [&[0x0A][..], &[7; 4999][..]].concat();
        let framed_big = crate::source::framing::tests::framed(&[&big]);
        let spans = dir.path().join("spans.binpb");
        let (first, third) = (framed_span_request(1), framed_span_request(3));
        let cases = [
            (&lines, before.clone().into_bytes(), long.into_bytes(), after.into_bytes(), b"\n".to_vec()),
            (&spans, first, framed_big, third, Vec::new()),
        ];
        for (path, head, unfinished, tail, terminator) in cases {
            let run = tempfile::tempdir()?;
            std::fs::write(path, [&head[..], &unfinished[..2000]].concat())?;
            let (report, metrics) = ingest(run.path(), path, PayloadFormat::Auto).await?;
            assert_eq!(report.committed_to, i64::try_from(head.len())?, "{}", path.display());
            assert_eq!((rows(&metrics), all_dead_letters(&metrics)), (1, 0), "{metrics}");

            std::fs::write(path, [&head[..], &unfinished[..], &terminator[..], &tail[..]].concat())?;
            let (report, metrics) = ingest(run.path(), path, PayloadFormat::Auto).await?;
            assert_eq!(report.resumed_from, i64::try_from(head.len())?, "{}", path.display());
            assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(path)?.len())?);
            assert_eq!((rows(&metrics), all_dead_letters(&metrics)), (1, 1), "{metrics}");
            assert_eq!(dead_letters(&metrics, "payload_too_large"), 1, "{metrics}");
        }
        Ok(())
    }

    /// A protobuf file caught while its first message is being written is not read as lines
    /// (its 0x0A bytes would split it into malformed ones and move the checkpoint into it).
    #[tokio::test]
    async fn a_protobuf_file_whose_first_message_is_being_written_is_read_once_finished() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("spans.binpb");
        let (first, second) = (framed_span_request(1), framed_span_request(2));
        for cut in [1, 3, 4, 5, first.len() / 2, first.len() - 1] {
            let run = tempfile::tempdir()?;
            std::fs::write(&path, &first[..cut])?;
            let (report, metrics) = ingest(run.path(), &path, PayloadFormat::Auto).await?;
            assert_eq!(report.committed_to, 0, "cut at {cut}");
            assert_eq!((rows(&metrics), all_dead_letters(&metrics)), (0, 0), "cut at {cut}: {metrics}");

            std::fs::write(&path, [&first[..], &second[..]].concat())?;
            let (report, metrics) = ingest(run.path(), &path, PayloadFormat::Auto).await?;
            assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&path)?.len())?, "cut at {cut}");
            assert_eq!((rows(&metrics), all_dead_letters(&metrics)), (2, 0), "cut at {cut}: {metrics}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_file_replaced_by_a_longer_one_is_refused_and_an_appended_one_resumed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, format!("{}\n{}\n", event(1), event(2)))?;
        let (first, _) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;

        // Appended: resumed at the checkpoint, only the new line read.
        std::fs::write(&path, format!("{}\n{}\n{}\n", event(1), event(2), event(3)))?;
        let (report, metrics) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;
        assert_eq!(report.resumed_from, first.committed_to);
        assert_eq!(rows(&metrics), 1, "{metrics}");

        // Rotated: a new file under the same name, longer than the checkpoint, whose bytes at
        // the checkpoint are mid-line. Resuming would lose its first lines.
        let rotated: String = (10..20).map(|id| format!("{}\n", event(id))).collect();
        std::fs::write(&path, &rotated)?;
        let refused = ingest(dir.path(), &path, PayloadFormat::Auto).await.err().map(|e| e.to_string());
        assert!(refused.as_deref().is_some_and(|e| e.contains("replaced or rotated")), "{refused:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_utf16_file_is_refused_with_what_to_do() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("events.jsonl");
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(format!("{}\n", event(1)).encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(&path, bytes)?;
        let refused = ingest(dir.path(), &path, PayloadFormat::Auto).await.err().map(|e| e.to_string());
        assert!(refused.as_deref().is_some_and(|e| e.contains("UTF-16") && e.contains("iconv")), "{refused:?}");
        Ok(())
    }

    #[tokio::test]
    async fn feedback_in_a_later_file_is_joined_to_its_inference_with_one_processor() -> TestResult {
        let dir = tempfile::tempdir()?;
        let inferences = dir.path().join("1-inferences.jsonl");
        std::fs::write(&inferences, format!("{}\n", event(1)))?;
        let feedback = dir.path().join("2-feedback.jsonl");
        std::fs::write(
            &feedback,
            r#"{"type":"feedback","id":"f1","time":"2025-06-01T12:00:01Z","app":"chat","name":"user_thumbs","score":0,"inference_id":"evt-1"}"#,
        )?;
        let components = components(dir.path(), 1024).await?;
        let mut processor = components.processor();
        for path in [&inferences, &feedback] {
            run_file_with(&components, &mut processor, path, PayloadFormat::Auto, CancellationToken::new()).await?;
        }
        let store = components.writer.store().clone();
        let feedback_files: Vec<String> = store.list("feedback").await?.into_iter().map(|f| f.path).collect();
        assert_eq!(feedback_files.len(), 1, "{feedback_files:?}");
        let file = store.get(&feedback_files[0]).await?.ok_or("feedback file vanished")?;
        let batches = driftwatch_lake::parquet::read_parquet(file)?;
        let column = batches.first().and_then(|b| b.column_by_name("response_model")).ok_or("no response_model")?;
        let models = column
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or("response_model is not a string column")?;
        assert_eq!(models.iter().collect::<Vec<_>>(), [Some("gpt-4o")], "the join filled the model");
        Ok(())
    }
}
