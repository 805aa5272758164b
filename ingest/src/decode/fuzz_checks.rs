//! The properties the fuzz targets (`ingest/fuzz`) check on arbitrary input, kept in the library
//! so that `cargo test` replays the committed corpus (`ingest/fuzz/corpus/<target>`) through
//! exactly the checks libFuzzer ran. Each function takes the raw fuzz input and panics when a
//! property fails; a panic in the code under test is a finding just the same.
//!
//! Not part of the API: hidden from the docs, and free to change with the targets.

use std::borrow::Cow;

use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::otlp_wire::Malformed;
use super::{Ctx, DecodeConfig, Decoded, Decoder, PayloadFormat, otlp_logs, otlp_traces};
use crate::enrich::fingerprint::reference;
use crate::enrich::{Scrubber, content_hash, message_text, simhash64};
use crate::source::framing::{Framing, RecordReader, Unreadable};
use crate::telemetry::names::DECODE_ERROR_REASONS;

/// The ingest clock of every check: 2025-06-01T13:00:00Z, an hour after the fixtures' spans.
pub const NOW: i64 = 1_748_782_800_000_000_000;

/// Every format a topic can be configured with.
const FORMATS: [PayloadFormat; 4] =
    [PayloadFormat::Auto, PayloadFormat::OtlpTraces, PayloadFormat::OtlpLogs, PayloadFormat::JsonEvents];

/// A message that decodes to one event, decoded into the output before the fuzz input so that
/// a decode path that undoes its work must leave earlier output alone.
const EARLIER_MESSAGE: &[u8] =
    br#"{"id":"earlier","time_unix_nano":1748779200000000000,"app":"a","input_tokens":1,"latency_ms":5}"#;

/// Target `decode`: the bytes as one message of every format. Nothing panics; every reject
/// carries a known reason, a detail and a capped payload; a whole-message reject is the only
/// output of its message; and decoding after earlier output appends exactly what decoding alone
/// gives (so a path that falls back to another leaves nothing of its first try behind).
pub fn decode(data: &[u8]) {
    let decoder = Decoder::default();
    for format in FORMATS {
        let mut alone = Decoded::default();
        decoder.decode(data, format, NOW, &mut alone);
        check_decoded(&alone, decoder.config(), format);

        let mut earlier = Decoded::default();
        decoder.decode(EARLIER_MESSAGE, PayloadFormat::JsonEvents, NOW, &mut earlier);
        assert_eq!((earlier.events.len(), earlier.rejects.len()), (1, 0), "the earlier message decodes");
        let mut after = Decoded::default();
        decoder.decode(EARLIER_MESSAGE, PayloadFormat::JsonEvents, NOW, &mut after);
        decoder.decode(data, format, NOW, &mut after);
        assert_eq!(after.events[..1], earlier.events[..], "{format:?}: earlier output changed");
        assert_eq!(after.events[1..], alone.events[..], "{format:?}: events differ after earlier output");
        assert_eq!(after.feedback, alone.feedback, "{format:?}: feedback differs after earlier output");
        assert_eq!(after.rejects, alone.rejects, "{format:?}: rejects differ after earlier output");
        assert_eq!(after.skipped_spans, alone.skipped_spans, "{format:?}: skipped spans differ");
    }
}

fn check_decoded(out: &Decoded, config: &DecodeConfig, format: PayloadFormat) {
    for reject in &out.rejects {
        assert!(DECODE_ERROR_REASONS.contains(&reject.reason), "{format:?}: unknown reason {:?}", reject.reason);
        assert!(!reject.detail.is_empty(), "{format:?}: a {} reject without detail", reject.reason);
        let kept = reject.payload.as_ref().map_or(0, Vec::len);
        assert!(kept <= config.max_dead_letter_payload_bytes, "{format:?}: {kept} payload bytes kept");
    }
    let whole = out.rejects.iter().filter(|reject| reject.payload.is_none()).count();
    let items = out.events.len() + out.feedback.len() + out.rejects.len();
    assert!(
        whole == 0 || (items == 1 && out.skipped_spans == 0),
        "{format:?}: a whole-message reject beside {} events, {} feedback, {} rejects, {} skipped",
        out.events.len(),
        out.feedback.len(),
        out.rejects.len(),
        out.skipped_spans
    );
}

/// The context the format decoders get from [`Decoder::decode`].
fn ctx() -> Ctx<'static> {
    static CONFIG: std::sync::LazyLock<DecodeConfig> = std::sync::LazyLock::new(DecodeConfig::default);
    Ctx { config: &CONFIG, now: NOW }
}

/// Target `wire`: the bytes as a protobuf traces message and as a logs message, read in place
/// and by prost (see [`wire_traces`]).
pub fn wire(data: &[u8]) {
    wire_traces(data);
    wire_logs(data);
}

/// The wire reader against prost on one traces message: when prost decodes it, the reader
/// maps it exactly as the prost path does or leaves it to prost; when prost rejects it, the
/// reader leaves it to prost or rejects the bad span alone. True when the reader took it.
pub fn wire_traces(bytes: &[u8]) -> bool {
    agree(TracesData::decode(bytes).map(|data| prost_traces(&data)), wire_read(bytes, otlp_traces::decode_wire))
}

/// [`wire_traces`] for a logs message.
pub fn wire_logs(bytes: &[u8]) -> bool {
    agree(LogsData::decode(bytes).map(|data| prost_logs(&data)), wire_read(bytes, otlp_logs::decode_wire))
}

fn agree(prost: Result<Decoded, prost::DecodeError>, wire: Option<Decoded>) -> bool {
    match (prost, wire) {
        (Ok(prost), Some(wire)) => {
            assert_same(&wire, &prost);
            true
        }
        (Ok(_) | Err(_), None) => false,
        // A span or record prost rejects, in outer layers the reader reads, is rejected alone:
        // prost rejects the message for it, the reader keeps the items beside it.
        (Err(_), Some(wire)) if wire.rejects.iter().any(|r| r.reason == "malformed_protobuf") => true,
        (Err(error), Some(wire)) => panic!(
            "prost rejects ({error}) what the wire reader read into {} events, {} feedback, {} rejects",
            wire.events.len(),
            wire.feedback.len(),
            wire.rejects.len()
        ),
    }
}

/// What the prost path makes of a decoded traces message.
pub(super) fn prost_traces(data: &TracesData) -> Decoded {
    let mut out = Decoded::default();
    otlp_traces::decode(data, ctx(), &mut out);
    out
}

/// What the prost path makes of a decoded logs message.
pub(super) fn prost_logs(data: &LogsData) -> Decoded {
    let mut out = Decoded::default();
    otlp_logs::decode(data, ctx(), &mut out);
    out
}

/// The signature of `otlp_traces::decode_wire` and `otlp_logs::decode_wire`.
pub(super) type DecodeWire = fn(&[u8], Ctx<'_>, &mut Decoded) -> Result<(), Malformed>;

/// What the wire reader makes of a protobuf message; `None` when it leaves it to prost, which
/// it must do without leaving any output.
pub(super) fn wire_read(bytes: &[u8], decode_wire: DecodeWire) -> Option<Decoded> {
    let mut out = Decoded::default();
    let read = decode_wire(bytes, ctx(), &mut out);
    let untouched = out.events.is_empty() && out.feedback.is_empty() && out.rejects.is_empty();
    assert!(read.is_ok() || (untouched && out.skipped_spans == 0), "a message left to prost leaves no output");
    read.ok().map(|()| out)
}

/// The wire reader's output is the prost path's, rejects (with the copy of the item they keep)
/// included.
pub(super) fn assert_same(wire: &Decoded, prost: &Decoded) {
    assert_eq!(wire.events, prost.events);
    assert_eq!(wire.feedback, prost.feedback);
    assert_eq!(wire.skipped_spans, prost.skipped_spans);
    assert_eq!(wire.dropped_reported_costs, prost.dropped_reported_costs);
    assert_eq!(wire.dropped_ttfts, prost.dropped_ttfts);
    assert_eq!(wire.rejects, prost.rejects);
}

/// A record handed out by the reader, owned: bytes, offset, next offset, why unreadable.
type OwnedRecord = (Vec<u8>, i64, i64, Option<Unreadable>);

/// Everything a reader hands out for one input: its records, the bytes it counted as
/// unreadable, and what it left unconsumed.
#[derive(Debug, PartialEq)]
struct Framed {
    records: Vec<OwnedRecord>,
    skipped_bytes: u64,
    unconsumed: (i64, usize),
}

/// Target `framing`: four header bytes (framing and flags, record limit, bytes kept of an
/// unreadable record, chunking), then the file. Read whole and at once, and in chunks of the
/// header's sizes (with records given back and read again when a flag says so), the file gives
/// the same records. The records tile the file from the start offset to the unconsumed rest,
/// a message's bytes are the file's, and nothing kept exceeds its limit. The sniffer takes any
/// head of the file.
pub fn framing(data: &[u8]) {
    let [flags, limit, keep, chunking, file @ ..] = data else { return };
    let framing = if flags & 1 == 0 { Framing::Lines } else { Framing::LengthPrefixed };
    // Small limits, so that too-large records and lost framing are as easy to reach as messages.
    let max_record_bytes = usize::from(*limit) + 1;
    let max_framed_bytes = if flags & 2 == 0 { max_record_bytes } else { max_record_bytes * 4 };
    let keep_bytes = usize::from(keep % 32);
    // A start past 0: a byte order mark is then no longer the file's.
    let start = if flags & 4 == 0 { 0 } else { 7 };
    let give_back = flags & 8 != 0;
    for head in [&file[..file.len().min(8)], &file[..file.len().min(3)]] {
        let _ = Framing::sniff(head, file.len() as u64, max_record_bytes);
    }
    let new_reader =
        || RecordReader::new(framing, start, max_record_bytes, keep_bytes).with_max_framed_bytes(max_framed_bytes);
    let whole = read_framed(new_reader(), file, &mut Chunks::whole());
    let chunked = read_framed(new_reader(), file, &mut Chunks::new(*chunking, file.len(), give_back));
    assert_eq!(chunked, whole, "{framing:?}: chunked reads differ from one read");

    let mut at = start;
    for (bytes, offset, next_offset, unreadable) in &whole.records {
        assert_eq!(*offset, at, "{framing:?}: records do not tile the file");
        assert!(next_offset > offset, "{framing:?}: an empty record at {offset}");
        let in_file = &file[usize::try_from(offset - start).unwrap_or(usize::MAX)..];
        match unreadable {
            Some(_) => assert!(bytes.len() <= keep_bytes, "{framing:?}: unreadable record keeps {}", bytes.len()),
            None => {
                assert!(bytes.len() <= max_record_bytes, "{framing:?}: a {} byte message", bytes.len());
                let content = match framing {
                    Framing::Lines if *offset == 0 => in_file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(in_file),
                    Framing::Lines => in_file,
                    Framing::LengthPrefixed => &in_file[4..],
                };
                assert!(content.starts_with(bytes), "{framing:?}: a message at {offset} is not the file's bytes");
                if framing == Framing::Lines {
                    assert!(!bytes.contains(&b'\n'), "{framing:?}: a line holds a newline");
                }
            }
        }
        at = *next_offset;
    }
    let (first, left) = whole.unconsumed;
    assert_eq!(first, at, "{framing:?}: the unconsumed rest does not follow the last record");
    assert_eq!(first + left as i64, start + file.len() as i64, "{framing:?}: bytes lost at the end");
}

/// How a file is fed to a reader: the length of each read, and whether to give records back.
struct Chunks {
    /// Xorshift state; 0 reads the file whole.
    state: u64,
    /// Longest read.
    max: u64,
    give_back: bool,
}

impl Chunks {
    fn whole() -> Self {
        Chunks { state: 0, max: u64::MAX, give_back: false }
    }

    /// Reads of 1 byte (`chunking` 0) up to about four times `chunking`.
    fn new(chunking: u8, file_len: usize, give_back: bool) -> Self {
        Chunks {
            state: 0x9e37_79b9_7f4a_7c15 ^ (u64::from(chunking) << 32) ^ file_len as u64,
            max: 1 + u64::from(chunking) * 4,
            give_back,
        }
    }

    fn next(&mut self) -> u64 {
        if self.state == 0 {
            return u64::MAX;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        1 + self.state % self.max
    }
}

/// Feed `file` to `reader` as `chunks` says, the end of input with the last read, and take
/// every record as the file source does.
fn read_framed(mut reader: RecordReader, file: &[u8], chunks: &mut Chunks) -> Framed {
    let mut records = Vec::new();
    let mut fed = 0;
    loop {
        let spare = reader.spare();
        let want = usize::try_from(chunks.next()).unwrap_or(usize::MAX);
        let read = want.min(spare.len()).min(file.len() - fed);
        spare[..read].copy_from_slice(&file[fed..fed + read]);
        fed += read;
        let at_end = fed == file.len();
        let mut new = read;
        loop {
            let batch: Vec<OwnedRecord> = reader
                .advance(new, at_end)
                .into_iter()
                .map(|r| (r.bytes.to_vec(), r.offset, r.next_offset, r.unreadable))
                .collect();
            new = 0;
            // Stopping before the last record, as the source does over its memory budget: the
            // next `advance`, with no new bytes, hands the rest out again.
            let stop = (chunks.give_back && batch.len() >= 2).then(|| 1 + chunks.next() as usize % (batch.len() - 1));
            match stop {
                Some(stop) => {
                    reader.give_back(batch[stop].1);
                    records.extend_from_slice(&batch[..stop]);
                    reader.compact();
                }
                None => {
                    records.extend(batch);
                    reader.compact();
                    break;
                }
            }
        }
        if at_end {
            return Framed { records, skipped_bytes: reader.skipped_bytes, unconsumed: reader.unconsumed() };
        }
    }
}

/// Secrets the scrubber tests show masked, planted into fuzzed text by [`scrub`].
const PLANTED: [&str; 6] = [
    "jane.doe+billing@example.co.uk",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "sk-proj-abcdEFGH1234ijklMNOP5678qrst",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
];

/// Target `scrub`: any bytes through [`Scrubber::scrub_bytes`] (not UTF-8: masked in place,
/// the length kept), and UTF-8 text through [`Scrubber::scrub`] and
/// [`Scrubber::scrub_json`]: the spans found are sorted, apart and on character boundaries;
/// scrubbing is idempotent (placeholders match no detector); a JSON document stays JSON; and a secret
/// planted into the text between spaces is never left whole.
pub fn scrub(data: &[u8]) {
    let scrubber = Scrubber::new();
    let Ok(text) = std::str::from_utf8(data) else {
        let scrubbed = scrubber.scrub_bytes(data);
        assert_eq!(scrubbed.len(), data.len(), "masks in binary keep its length");
        return;
    };
    let mut end = 0;
    for (_, range) in scrubber.find(text) {
        assert!(range.start >= end && range.start < range.end, "spans overlap or are empty: {range:?}");
        assert!(text.is_char_boundary(range.start) && text.is_char_boundary(range.end), "{range:?} splits a char");
        end = range.end;
    }
    let once = scrubber.scrub(text);
    let twice = scrubber.scrub(&once);
    assert!(matches!(twice, Cow::Borrowed(_)), "scrub is not idempotent: {once:?} became {twice:?}");
    let json = scrubber.scrub_json(text);
    let json_twice = scrubber.scrub_json(&json);
    assert!(matches!(json_twice, Cow::Borrowed(_)), "scrub_json is not idempotent: {json:?} became {json_twice:?}");
    // The promise is for documents (objects and arrays); a bare number or string is text.
    let document = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
    if document && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        let still = serde_json::from_str::<serde::de::IgnoredAny>(&json);
        assert!(still.is_ok(), "JSON {text:?} scrubbed into {json:?}, which is not JSON");
    }

    let secret = PLANTED[data.len() % PLANTED.len()];
    if text.contains(secret) {
        // Inside a longer look-alike (`DE89 3704 0044 0532 0130 004`) it may rightly stay.
        return;
    }
    let middle = text.floor_char_boundary(text.len() / 2);
    let planted = format!("{} {secret} {}", &text[..middle], &text[middle..]);
    for scrubbed in [scrubber.scrub(&planted), scrubber.scrub_json(&planted)] {
        assert!(!scrubbed.contains(secret), "{secret:?} left in {scrubbed:?}");
    }
}

/// Target `text`: message-text extraction takes any text, and the fingerprints' fast paths
/// (ASCII, whole blocks) equal their plain definitions on it and on the text extracted.
pub fn text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let extracted = message_text(&text);
    for text in [&*text, &*extracted] {
        assert_eq!(content_hash(text), reference::content_hash(text), "content_hash of {text:?}");
        assert_eq!(simhash64(text), reference::simhash64(text), "simhash64 of {text:?}");
    }
}

/// Dead-letter payload caps the `process` target's processors keep, in bytes.
const DEAD_LETTER_CAPS: [usize; 4] = [16, 100, 1024, 65536];

thread_local! {
    /// One processor per dead-letter cap, without and with content retention, over the embedded
    /// registry: built once per thread, since building one parses the registry.
    static PROCESSORS: std::cell::RefCell<Vec<crate::pipeline::Processor>> =
        std::cell::RefCell::new(processors());
}

fn processors() -> Vec<crate::pipeline::Processor> {
    use std::sync::Arc;
    let Ok(registry) = crate::enrich::ModelRegistry::default_embedded() else { return Vec::new() };
    let registry = Arc::new(registry);
    let mut all = Vec::new();
    for retain in [false, true] {
        for cap in DEAD_LETTER_CAPS {
            let mut config = crate::config::Config::default();
            config.decode.max_dead_letter_payload_bytes = bytesize::ByteSize::b(cap as u64);
            config.default_app.retain_content = retain;
            let (policies, default_policy) = config.content_policies();
            let enricher = crate::enrich::Enricher::new(Arc::clone(&registry), policies, default_policy);
            let metrics = crate::telemetry::Metrics::new(&crate::telemetry::MetricsConfig::default());
            all.push(crate::pipeline::Processor::new(&config, Arc::new(enricher), metrics));
        }
    }
    all
}

/// Target `process`: a selector byte (dead-letter cap, content retention, payload format), then
/// one message through the whole per-message path, as a source hands it over: decode, enrich
/// (scrub, price at the tier's rates, fingerprint), dedup, rollups, the feedback join, then the
/// batch a flush would write. Nothing panics, the batch is built, and no dead letter (a
/// whole-message one included: its payload is inflated, unframed and masked) keeps more than
/// its cap.
pub fn process(data: &[u8]) {
    let [selector, payload @ ..] = data else { return };
    let cap_index = usize::from(selector & 3);
    let processor_index = usize::from((selector >> 2) & 1) * DEAD_LETTER_CAPS.len() + cap_index;
    let format = FORMATS[usize::from((selector >> 3) & 3)];
    let cap = DEAD_LETTER_CAPS[cap_index];
    PROCESSORS.with(|processors| {
        let mut processors = processors.borrow_mut();
        let Some(processor) = processors.get_mut(processor_index) else {
            panic!("the embedded registry does not load");
        };
        let aggregate = crate::aggregate::AggregateConfig::default();
        let mut buffer = crate::pipeline::PartitionBuffer::new(
            std::sync::Arc::from("s"),
            std::sync::Arc::from("t"),
            0,
            0,
            &aggregate,
            100,
        );
        processor.process(&mut buffer, payload, format, (0, 1), NOW);
        let batch = match processor.take_batch(&mut buffer, NOW) {
            Ok(Some(batch)) => batch,
            Ok(None) => panic!("a message gives no batch"),
            Err(error) => panic!("the batch is not built: {error}"),
        };
        for dead in &batch.dead_letters {
            assert!(
                dead.payload.len() <= cap,
                "a dead letter keeps {} bytes, above its cap of {cap}",
                dead.payload.len()
            );
        }
    });
}
