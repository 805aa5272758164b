//! The file source: OTLP/JSON lines (as the OTel Collector's file exporter writes them),
//! length-prefixed OTLP protobuf (its `format: proto`) or NDJSON events, for backfill and the
//! demo.
//!
//! A file is one partition whose offsets are byte positions: the checkpoint stream is derived
//! from the file's canonical path, so re-running over the same file resumes where the last run's
//! checkpoint says and never writes a message twice. Each checkpoint also fingerprints the
//! file's first bytes ([`FileHead`]), so that a run refuses a different file put at the same
//! path (log rotation) rather than resume it mid-way. Records are read in large blocks and
//! processed synchronously; the loop is one `select!` over flush completions, shutdown, the age
//! timer and the next block. Rows buffered plus batches being written are held to
//! `flush.max_buffered_bytes`: at the budget, or with a flush due and the flusher full, the
//! records left in the block are given back to the reader and nothing more is read until a
//! flush completes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_lake::checkpoint::FileHead;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::decode::PayloadFormat;
use crate::error::{Error, Result};
use crate::pipeline::{FlushOutcome, FlushReason, Flusher, PartitionBuffer, Processor, Shutdown};
use crate::runtime::Components;
use crate::source::framing::{Framing, Record, RecordReader, framed_length};
use crate::telemetry::MessageResult;

/// A length prefix above this cannot be a real OTLP message: the framing is corrupt.
const MAX_FRAMED_RECORD_BYTES: usize = 256 << 20;

/// Bytes read from the start of a file to guess its framing: a byte order mark and a length prefix.
const SNIFF_BYTES: usize = 8;

/// Bytes from the start of a file that its checkpoints fingerprint: enough that two different
/// files practically never share them, few enough to hash at every flush.
const HEAD_FINGERPRINT_BYTES: usize = 64 << 10;

/// How far past the dead-letter size the head of an unreadable record is kept for scrubbing:
/// more than the longest address, card, IBAN or key the scrubber masks, short of the odd JWT.
const SCRUB_MARGIN_BYTES: usize = 1 << 10;

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
    /// Of those, messages dead-lettered whole: nothing in them could be kept.
    pub rejected_messages: u64,
    /// Of those, messages of which only some items (spans, log records) were dead-lettered.
    pub partly_rejected_messages: u64,
    /// Flushes committed.
    pub flushes: u64,
    /// Bytes that could not be split into messages (lines above `decode.max_payload_bytes`, the
    /// rest of a file after a corrupt length prefix); each such stretch is one dead letter.
    pub unreadable_bytes: u64,
    /// The most approximate heap bytes of rows held at once, buffered and being written: what
    /// `flush.max_buffered_bytes` bounds (exceeded by at most the rows of the message that
    /// reached it).
    pub peak_held_bytes: usize,
    /// True when the run stopped early because of shutdown.
    pub interrupted: bool,
}

/// The checkpoint stream of a file: readable name plus a hash of the canonical path, so two
/// files with the same name in different folders never share a checkpoint.
pub fn file_stream_id(path: &Path) -> Result<String> {
    let canonical =
        std::fs::canonicalize(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    Ok(stream_id_of_canonical(&canonical))
}

/// [`file_stream_id`] of a path already canonical.
fn stream_id_of_canonical(canonical: &Path) -> String {
    let stem: String = canonical
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(48)
        .collect();
    let hash = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    format!("file.{stem}.{}", &hash[..12])
}

/// Ingest one file into the lake, resuming from its checkpoint.
pub async fn run_file(
    components: &Components,
    path: &Path,
    format: PayloadFormat,
    shutdown: &Shutdown,
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
    shutdown: &Shutdown,
) -> Result<FileRunReport> {
    let io_error = |source| Error::Io { path: path.display().to_string(), source };
    // The file's absolute path, links resolved: its checkpoint stream, and its provenance (and
    // metric label), are the same whatever the working directory or the path it was named by.
    let canonical = std::fs::canonicalize(path).map_err(io_error)?;
    let stream = stream_id_of_canonical(&canonical);
    let checkpoint = components
        .writer
        .recover(&stream, 0)
        .await
        .map_err(|source| Error::Lake { context: format!("recovering {stream}"), source })?;
    let resumed_from = checkpoint.as_ref().map_or(0, |c| c.next_offset);
    let mut file = tokio::fs::File::open(path).await.map_err(io_error)?;
    let length = file.metadata().await.map_err(io_error)?.len();
    // Read through this handle, as the records are: the same file even if the path is replaced
    // meanwhile.
    let mut head = Vec::with_capacity(
        usize::try_from(length).map_or(HEAD_FINGERPRINT_BYTES, |length| length.min(HEAD_FINGERPRINT_BYTES)),
    );
    (&mut file).take(HEAD_FINGERPRINT_BYTES as u64).read_to_end(&mut head).await.map_err(io_error)?;
    let framing = file_framing(format, &head, length);
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
    // The fingerprint tells a rotated file; a checkpoint written before it was recorded leaves
    // only the guess that a record starts at the checkpoint. The guess is checked behind a
    // matching fingerprint too: a file regenerated with the same head but other records after
    // it would otherwise be resumed mid-record.
    let head_differs = checkpoint.as_ref().and_then(|c| c.file_head.as_ref()).and_then(|fingerprint| {
        (!same_head(fingerprint, &head)).then(|| {
            format!(
                "its first {} bytes are not those of the file checkpointed at byte {resumed_from}",
                fingerprint.bytes
            )
        })
    });
    let replaced = match head_differs {
        Some(why) => Some(why),
        None => (!continues_at(&mut file, framing, resumed_from, length).await.map_err(io_error)?)
            .then(|| format!("byte {resumed_from} is not where a record starts")),
    };
    if let Some(why) = replaced {
        return Err(Error::FileRefused(format!(
            "{} does not continue at its checkpoint ({why}): the file was replaced or rotated since it was \
             ingested. Ingest the new file under another name, or remove the checkpoint under \
             _checkpoints/{stream}/ to ingest this one from the start.",
            path.display()
        )));
    }
    file.seek(std::io::SeekFrom::Start(u64::try_from(resumed_from).unwrap_or(0))).await.map_err(io_error)?;
    tracing::info!(path = %path.display(), stream = %stream, resumed_from, "File source started.");

    let topic: Arc<str> = Arc::from(canonical.display().to_string());
    components.metrics.track_topic(&topic);
    let buffer = PartitionBuffer::new(
        Arc::from(stream.as_str()),
        topic,
        0,
        resumed_from,
        &components.config.aggregate,
        components.limits.dedup_window,
    );
    let tracker = TaskTracker::new();
    let abandon = CancellationToken::new();
    let flusher = Flusher::spawn(
        Arc::clone(&components.writer),
        components.metrics.clone(),
        crate::config::DEFAULT_MAX_INFLIGHT_FLUSHES,
        &tracker,
        abandon.clone(),
    );
    // A shutdown while the lake refuses commits gives the flushes up at the final flush's budget:
    // the run then ends with the flusher's error, within the deadline, instead of being killed at
    // it. Whatever was not committed is read again by the next run.
    tracker.spawn(shutdown.clone().abandon_flushes_at_budget(abandon.clone()));
    // Ends that watch on every way out of this function.
    let _watch_ends = abandon.clone().drop_guard();
    let report = FileRunReport { stream, resumed_from, committed_to: resumed_from, ..Default::default() };
    let mut ingest = FileIngest { components, processor, framing, format, buffer, flusher, head, report };
    let decode = components.config.decode.to_decode_config();
    // A message above `max_payload_bytes` may still be a real one, discarded as it is read; only
    // a prefix beyond any OTLP message means the framing is lost.
    // The head of a record too large to read is kept a little past the dead-letter size: the
    // pipeline scrubs before it cuts, and personal data across the cut is then masked whole
    // instead of reaching the scrubber already cut into an unrecognisable stub.
    let keep_bytes = decode.max_dead_letter_payload_bytes.saturating_add(SCRUB_MARGIN_BYTES);
    let mut reader = RecordReader::new(framing, resumed_from, decode.max_payload_bytes, keep_bytes)
        .with_max_framed_bytes(MAX_FRAMED_RECORD_BYTES);
    let mut age_tick = tokio::time::interval(AGE_TICK);
    age_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Nothing is read while set: the memory budget is reached, or a due flush waits for the
    // flusher. A flush in flight always ends it: `relieve` only stalls with one in flight.
    let mut stalled = false;
    // The last read found the end of the file.
    let mut at_end = false;

    let finish_reason = loop {
        tokio::select! {
            biased;
            done = ingest.flusher.next_done() => {
                record_done(&mut ingest.report, &done?)?;
                if stalled {
                    stalled = !ingest.resume(&mut reader, at_end).await?;
                }
            }
            () = shutdown.requested().cancelled() => {
                ingest.report.interrupted = true;
                break FlushReason::Shutdown;
            }
            _ = age_tick.tick() => {
                // Only a completion resumes a stalled run: it has records to take first.
                stalled |= !ingest.relieve().await?;
            }
            read = read_block(&mut file, &mut reader), if !stalled => {
                let read = read.map_err(io_error)?;
                at_end = read == 0;
                stalled = !ingest.take_records(&mut reader, read, at_end).await?;
            }
        }
        if at_end && !stalled {
            report_end_of_file(path, framing, &reader, &mut ingest.report);
            break FlushReason::EndOfInput;
        }
    };

    ingest.submit(finish_reason).await?;
    let FileIngest { mut flusher, mut report, .. } = ingest;
    while flusher.in_flight() > 0 {
        record_done(&mut report, &flusher.next_done().await?)?;
    }
    drop(flusher);
    abandon.cancel();
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

/// How a file's records are framed, from its first bytes (`head`) and its length.
fn file_framing(format: PayloadFormat, head: &[u8], length: u64) -> Framing {
    match format {
        // Events are only ever JSON lines: a first line that is not JSON is a bad line, not a
        // reason to read the file as protobuf.
        PayloadFormat::JsonEvents => Framing::Lines,
        _ => Framing::sniff(&head[..head.len().min(SNIFF_BYTES)], length, MAX_FRAMED_RECORD_BYTES),
    }
}

/// The format one record of a file is decoded as.
fn record_format(framing: Framing, format: PayloadFormat, payload: &[u8]) -> PayloadFormat {
    match (framing, format) {
        // Binary framing only carries OTLP protobuf; Auto would guess traces.
        (Framing::LengthPrefixed, PayloadFormat::JsonEvents) => PayloadFormat::Auto,
        // A line is JSON: one that does not start as an object is malformed JSON,
        // which the decoder would otherwise try (and report) as protobuf.
        (Framing::Lines, _) if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => {
            PayloadFormat::JsonEvents
        }
        (_, format) => format,
    }
}

/// Whether a record is a message: a blank line is none; an empty length-prefixed record is one
/// (and is rejected).
fn is_message(framing: Framing, payload: &[u8]) -> bool {
    framing == Framing::LengthPrefixed || !payload.iter().all(u8::is_ascii_whitespace)
}

/// The next block of the file into the reader. A future that borrows the reader only once
/// polled, so that a stalled run's disabled read leaves the block alone.
async fn read_block(file: &mut tokio::fs::File, reader: &mut RecordReader) -> std::io::Result<usize> {
    file.read(reader.spare()).await
}

/// The file's end was read: say what could not be read and what is left for the next run.
fn report_end_of_file(path: &Path, framing: Framing, reader: &RecordReader, report: &mut FileRunReport) {
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
            Framing::LengthPrefixed => "The last message is incomplete (shorter than its length prefix declares)",
        };
        tracing::warn!(
            path = %path.display(),
            offset = incomplete_at,
            bytes = incomplete_bytes,
            "{what}; it is left for the next run, which reads it once the writer has finished it."
        );
    }
}

/// One file run's records on their way to the lake: the processor, the partition buffer and
/// the flusher, with the memory budget between them.
struct FileIngest<'a> {
    components: &'a Components,
    processor: &'a mut Processor,
    framing: Framing,
    format: PayloadFormat,
    buffer: PartitionBuffer,
    flusher: Flusher,
    /// The file's first bytes (up to [`HEAD_FINGERPRINT_BYTES`]), fingerprinted into each
    /// checkpoint.
    head: Vec<u8>,
    report: FileRunReport,
}

impl FileIngest<'_> {
    /// Take the records of the block after `read` more bytes, until the memory budget or a
    /// full flusher says to stop: the records left are given back to the reader, for
    /// [`resume`](Self::resume). Returns whether more may be read now.
    async fn take_records(&mut self, reader: &mut RecordReader, read: usize, at_end: bool) -> Result<bool> {
        let now = now_nanos();
        let records = reader.advance(read, at_end);
        let mut read_on = true;
        let mut given_back = None;
        for (index, record) in records.iter().enumerate() {
            self.take(record, now);
            read_on = self.relieve().await?;
            if !read_on {
                given_back = records.get(index + 1).map(|next| next.offset);
                break;
            }
        }
        drop(records);
        if let Some(offset) = given_back {
            reader.give_back(offset);
        }
        reader.compact();
        Ok(read_on)
    }

    /// After a flush completed on a stalled run: go on with the records given back, if the
    /// budget and the flusher allow. Returns whether more may be read now.
    async fn resume(&mut self, reader: &mut RecordReader, at_end: bool) -> Result<bool> {
        if !self.relieve().await? {
            return Ok(false);
        }
        self.take_records(reader, 0, at_end).await
    }

    /// Turn one record into buffered rows, or a dead letter.
    fn take(&mut self, record: &Record<'_>, now: i64) {
        let (payload, offset, next_offset) = (record.bytes, record.offset, record.next_offset);
        if let Some(unreadable) = &record.unreadable {
            let why = (unreadable.reason(), unreadable.to_string());
            self.processor.reject(&mut self.buffer, why, payload, (offset, next_offset), now);
            self.count(MessageResult::Rejected);
            return;
        }
        let format = record_format(self.framing, self.format, payload);
        if is_message(self.framing, payload) {
            let result = self.processor.process(&mut self.buffer, payload, format, (offset, next_offset), now);
            self.count(result);
        } else {
            // A blank line still moves the position so a resumed run skips it.
            self.buffer.consumed(offset, next_offset);
        }
    }

    fn count(&mut self, result: MessageResult) {
        self.report.messages += 1;
        match result {
            MessageResult::Rejected => self.report.rejected_messages += 1,
            MessageResult::Partial => self.report.partly_rejected_messages += 1,
            MessageResult::Ok | MessageResult::Skipped => {}
        }
    }

    /// Hand the buffer to the flusher when a limit says so, and say whether more may be read:
    /// not while a due flush waits for room in the flusher, nor while the rows buffered and
    /// being written are at `flush.max_buffered_bytes` (the buffer then goes early, if the
    /// flusher can take it, and a completion frees memory). Never waits for the flusher.
    async fn relieve(&mut self) -> Result<bool> {
        self.note_held();
        let limits = &self.components.limits;
        if let Some(reason) = self.buffer.due(limits, Instant::now()) {
            if !self.flusher.has_capacity() {
                return Ok(false);
            }
            self.submit(reason).await?;
        }
        // A submit moves bytes from the buffer to the flusher: the budget is only relieved by
        // a flush completing.
        let over_budget = self.held_bytes() >= limits.max_buffered_bytes;
        if over_budget && self.flusher.has_capacity() {
            self.submit(FlushReason::Memory).await?;
        }
        self.note_held();
        // With nothing in flight there is nothing to wait for; the budget is at least
        // `flush.max_bytes`, so only a drained buffer's fixed part can be left over it then.
        Ok(!over_budget || self.flusher.in_flight() == 0)
    }

    /// Approximate heap bytes of rows buffered and being written.
    fn held_bytes(&self) -> usize {
        self.buffer.bytes() + self.flusher.in_flight_bytes()
    }

    fn note_held(&mut self) {
        self.report.peak_held_bytes = self.report.peak_held_bytes.max(self.held_bytes());
    }

    /// Hand the buffer to the flusher (nothing when it is idle), with the file's fingerprint
    /// for the checkpoint. Waits only when the flusher is full, which `relieve` never lets
    /// happen; the final flush of a run may.
    async fn submit(&mut self, reason: FlushReason) -> Result<()> {
        let bytes = self.buffer.bytes();
        if let Some(mut batch) = self.processor.take_batch(&mut self.buffer, now_nanos())? {
            batch.file_head = Some(head_fingerprint(&self.head, batch.next_offset));
            self.flusher.submit(batch, reason, bytes).await?;
        }
        Ok(())
    }
}

/// The fingerprint stored with the checkpoint at `next_offset` of a file whose first bytes
/// are `head`: over its first [`HEAD_FINGERPRINT_BYTES`], or the bytes before the checkpoint
/// when there are fewer (a record after it may still be being written). A file that grows
/// during the run is fingerprinted over the head it had when the run started.
fn head_fingerprint(head: &[u8], next_offset: i64) -> FileHead {
    let covered = usize::try_from(next_offset).map_or(0, |next_offset| next_offset.min(head.len()));
    FileHead { bytes: covered as u64, blake3: blake3::hash(&head[..covered]).to_hex().to_string() }
}

/// Whether the file whose first bytes are now `head` starts as the one fingerprinted did.
fn same_head(fingerprint: &FileHead, head: &[u8]) -> bool {
    let covered = usize::try_from(fingerprint.bytes).ok().and_then(|bytes| head.get(..bytes));
    covered.is_some_and(|bytes| blake3::hash(bytes).to_hex().as_str() == fingerprint.blake3)
}

/// Whether a file resumed at checkpoint `at` (of `length` bytes now) still looks like the file
/// that was checkpointed, for checkpoints without a [`FileHead`]: a checkpoint is always at a
/// record boundary, so a line file must have a line end just before it (or right at it: a last
/// line taken whole without its newline, which the writer has since finished), and a protobuf
/// file a plausible length prefix at it. A file replaced by a longer one, as a rotating writer
/// does, fails this unless the bytes there happen to fit; resuming it would lose its first `at`
/// bytes and dead-letter a fragment.
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
        FlushOutcome::ClaimLost { stream, .. } => Err(Error::ClaimLost { stream: stream.clone() }),
    }
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

mod read_order;
pub use read_order::order_for_feedback_join;

#[cfg(test)]
mod tests;
