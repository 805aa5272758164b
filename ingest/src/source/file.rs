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
use crate::pipeline::{FlushOutcome, FlushReason, Flusher, PartitionBuffer};
use crate::runtime::Components;
use crate::source::framing::{Framing, RecordReader};

/// A length prefix above this cannot be a real OTLP message: the framing is corrupt.
const MAX_FRAMED_RECORD_BYTES: usize = 256 << 20;

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
    /// Lines processed by this run.
    pub lines: u64,
    /// Flushes committed.
    pub flushes: u64,
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
    let mut first = [0u8; 1];
    let framing = Framing::sniff((file.read(&mut first).await.map_err(io_error)? == 1).then_some(first[0]));
    if u64::try_from(resumed_from).unwrap_or(0) > length {
        return Err(Error::Other(format!(
            "{} is shorter ({length} bytes) than its checkpoint ({resumed_from}); the file was replaced or \
             truncated. Remove the checkpoint under _checkpoints/{stream}/ to ingest it from the start.",
            path.display()
        )));
    }
    file.seek(std::io::SeekFrom::Start(u64::try_from(resumed_from).unwrap_or(0))).await.map_err(io_error)?;
    tracing::info!(path = %path.display(), stream = %stream, resumed_from, "File source started.");

    let topic: Arc<str> = Arc::from(path.display().to_string());
    let mut buffer = PartitionBuffer::new(
        Arc::from(stream.as_str()),
        topic,
        0,
        resumed_from,
        &components.config.aggregate,
        components.limits.dedup_window,
    );
    let mut processor = components.processor();
    let tracker = TaskTracker::new();
    let abandon = CancellationToken::new();
    let mut flusher =
        Flusher::spawn(Arc::clone(&components.writer), components.metrics.clone(), 2, &tracker, abandon.clone());
    let mut report = FileRunReport { stream, resumed_from, committed_to: resumed_from, ..Default::default() };
    let mut reader = RecordReader::new(framing, resumed_from, MAX_FRAMED_RECORD_BYTES);
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
                for (payload, offset, next_offset) in reader.advance(read, at_end) {
                    let format = match (framing, format) {
                        // Binary framing only carries OTLP protobuf; Auto would guess traces.
                        (Framing::LengthPrefixed, PayloadFormat::JsonEvents) => PayloadFormat::Auto,
                        _ => format,
                    };
                    // A blank line is no message; an empty length-prefixed record is one (and is rejected).
                    if framing == Framing::LengthPrefixed || !payload.iter().all(u8::is_ascii_whitespace) {
                        processor.process(&mut buffer, payload, format, (offset, next_offset), now);
                        report.lines += 1;
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
                    if reader.skipped_bytes > 0 {
                        tracing::warn!(
                            path = %path.display(),
                            skipped_bytes = reader.skipped_bytes,
                            "A corrupt length prefix made the rest of the file unreadable; it was skipped."
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
        lines = report.lines,
        committed_to = report.committed_to,
        flushes = report.flushes,
        "File source finished."
    );
    Ok(report)
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
        let name = entry.file_name();
        if entry.file_type().map_err(io_error)?.is_file() && !name.to_string_lossy().starts_with('.') {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}
