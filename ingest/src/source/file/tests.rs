//! Unit tests of the file source: bad framing beside good lines, unfinished last records,
//! rotated or replaced files, the memory budget and feedback joined across files.

use super::*;
use crate::config::Config;

/// A shutdown that is never asked for, with the CLI's default deadline.
fn never_stopped() -> Shutdown {
    Shutdown::new(CancellationToken::new(), Duration::from_secs(30))
}

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
async fn ingest(
    dir: &Path,
    path: &Path,
    format: PayloadFormat,
) -> std::result::Result<(FileRunReport, String), Box<dyn std::error::Error>> {
    let components = components(dir, 1024).await?;
    let report = run_file(&components, path, format, &never_stopped()).await?;
    let metrics = components.metrics.encode()?;
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
    assert_eq!((report.messages, report.rejected_messages, report.partly_rejected_messages), (3, 1, 0));
    Ok(())
}

/// Personal data that the dead-letter size cuts through, in a line too long to read, is
/// masked whole: the head is kept past the cut for the scrubber.
#[tokio::test]
async fn personal_data_across_the_dead_letter_cut_of_a_long_line_is_masked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let mut config = Config::default();
    config.lake.location = dir.path().join("lake").display().to_string();
    config.decode.max_payload_bytes = bytesize::ByteSize::b(1024);
    config.decode.max_dead_letter_payload_bytes = bytesize::ByteSize::b(100);
    let components = Components::build(config).await?;
    // The address runs from byte 88 to 113 of the line, across the cut at 100.
    let long = format!(r#"{{"id":"evt-x","note":"{}jane.doe@example.com {}"}}"#, "x".repeat(66), "y".repeat(3000));
    assert_eq!(long.find("jane"), Some(88));
    std::fs::write(&path, format!("{long}\n{}\n", event(1)))?;
    run_file(&components, &path, PayloadFormat::Auto, &never_stopped()).await?;

    let payloads = dead_letter_payloads(&dir.path().join("lake"))?;
    assert_eq!(payloads.len(), 1, "one dead letter");
    let kept = String::from_utf8_lossy(&payloads[0]);
    assert!(kept.len() <= 100, "cut to the dead-letter size: {kept}");
    assert!(!kept.contains("jane"), "no part of the address is kept: {kept}");
    Ok(())
}

/// The payloads of every dead letter in the lake at `lake`.
fn dead_letter_payloads(lake: &Path) -> std::result::Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut payloads = Vec::new();
    let mut folders = vec![lake.join("dead_letter")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                    std::fs::File::open(&path)?,
                )?
                .build()?;
                for batch in reader {
                    let batch = batch?;
                    let column = batch.column_by_name("payload").ok_or("no payload column")?;
                    let column =
                        column.as_any().downcast_ref::<arrow::array::BinaryArray>().ok_or("payload is not binary")?;
                    payloads.extend(column.iter().map(|value| value.unwrap_or_default().to_vec()));
                }
            }
        }
    }
    Ok(payloads)
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
    let request = crate::fleet::encode_otlp::trace_request("chat", None, vec![crate::fleet::encode_otlp::span(&event)]);
    crate::source::framing::tests::framed(&[&crate::fleet::encode_otlp::encode(&request, false)])
}

/// The OTel Collector's file exporter with `compression: zstd` writes each export as a length
/// prefix and one zstd frame, for `format: proto` and `format: json` alike. Such files of the
/// Python SDK fixtures' traces and logs land as their plain twins do, and a compressed record
/// that will not inflate is one dead letter that keeps no compressed copy of its content.
#[tokio::test]
async fn collector_files_compressed_with_zstd_land_as_their_plain_twins() -> TestResult {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/otel-python");
    let compressed_file = |records: Vec<Vec<u8>>| -> std::io::Result<Vec<u8>> {
        let mut file = Vec::new();
        for record in records {
            let frame = zstd::encode_all(&record[..], 3)?;
            file.extend(u32::try_from(frame.len()).map_err(std::io::Error::other)?.to_be_bytes());
            file.extend(frame);
        }
        Ok(file)
    };
    // The fixtures' exports are larger than the other tests' 1 KiB limit.
    let ingest = |lake: PathBuf, path: PathBuf| async move {
        let components = components(&lake, 4 << 20).await?;
        let report = run_file(&components, &path, PayloadFormat::Auto, &never_stopped()).await?;
        let metrics = components.metrics.encode()?;
        Ok::<_, Box<dyn std::error::Error>>((report, metrics))
    };
    let written = |metrics: &str, kind: &str| {
        crate::telemetry::counter_sum(metrics, &format!("driftwatch_lake_rows_written_total{{kind=\"{kind}\"}}"))
    };
    for (name, json) in [("traces.pb", false), ("logs.pb", false), ("traces.jsonl", true), ("logs.jsonl", true)] {
        let plain = std::fs::read(fixtures.join(name))?;
        // One export per protobuf file and per JSON line, as the exporter wrote them.
        let records: Vec<Vec<u8>> = if json {
            plain.split(|&b| b == b'\n').filter(|line| !line.is_empty()).map(<[u8]>::to_vec).collect()
        } else {
            vec![plain.clone()]
        };
        let dir = tempfile::tempdir()?;
        let plain_path = dir.path().join(name);
        std::fs::write(&plain_path, if json { plain } else { crate::source::framing::tests::framed(&[&plain]) })?;
        let compressed_path = dir.path().join(format!("{name}.zst"));
        std::fs::write(&compressed_path, compressed_file(records)?)?;

        let (_, plain_metrics) = ingest(dir.path().join("plain"), plain_path).await?;
        let (report, metrics) = ingest(dir.path().join("zstd"), compressed_path.clone()).await?;
        assert_eq!(report.committed_to, i64::try_from(std::fs::metadata(&compressed_path)?.len())?, "{name}");
        for kind in ["events", "feedback", "dead_letter"] {
            assert_eq!(written(&metrics, kind), written(&plain_metrics, kind), "{name} {kind}: {metrics}");
        }
        assert!(written(&metrics, "events") + written(&metrics, "feedback") > 0, "{name}: {metrics}");
    }

    let dir = tempfile::tempdir()?;
    let secret = r#"{"id":"evt-1","time":"2025-06-01T12:00:00Z","app":"chat","request_model":"gpt-4o","input_tokens":-1,"input":"my secret plan"}"#;
    let bad = compressed_file(vec![secret.as_bytes().to_vec()])?;
    // A record whose zstd frame breaks off after its header.
    let broken = [&bad[4..4 + 8], &[0xFF; 8][..]].concat();
    let path = dir.path().join("bad.zst");
    std::fs::write(&path, [&bad[..], &crate::source::framing::tests::framed(&[&broken])[..]].concat())?;
    let (_, metrics) = ingest(dir.path().join("lake"), path).await?;
    assert_eq!(dead_letters(&metrics, "negative_tokens"), 1, "{metrics}");
    assert_eq!(dead_letters(&metrics, "corrupt_framing"), 1, "{metrics}");
    let kept = crate::decode::dead_letter_payload(&bad[4..], 4096, crate::decode::DeadLetterContent::Mask);
    let kept = String::from_utf8(kept)?;
    assert!(kept.contains("evt-1") && !kept.contains("secret"), "inflated and masked: {kept}");
    let broken = crate::decode::dead_letter_payload(&broken, 4096, crate::decode::DeadLetterContent::Keep);
    assert!(broken.is_empty(), "a frame that does not inflate keeps nothing of its compressed content");
    Ok(())
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

    // Rotated again, to a file with a line end just before the checkpoint, as a record
    // boundary would have it: its head tells it from the file checkpointed.
    let checkpoint = usize::try_from(report.committed_to)?;
    let first_line = format!("{:<width$}\n", event(30), width = checkpoint - 1);
    std::fs::write(&path, format!("{first_line}{}\n", event(31)))?;
    let refused = ingest(dir.path(), &path, PayloadFormat::Auto).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().is_some_and(|e| e.contains("replaced or rotated")), "{refused:?}");
    Ok(())
}

/// A file regenerated in place with the same first 64 KiB (a re-exported backfill) but other
/// records after them: the head fingerprint matches, and the checkpoint now falls inside a
/// record. Resuming there would lose that record and dead-letter its tail.
#[tokio::test]
async fn a_file_regenerated_behind_the_same_head_is_refused_when_the_checkpoint_is_mid_record() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("backfill.jsonl");
    let head: String = (0..).map(|id| format!("{}\n", event(id))).take(700).collect();
    assert!(head.len() > HEAD_FINGERPRINT_BYTES);
    let tail: String = (1_000..1_010).map(|id| format!("{}\n", event(id))).collect();
    std::fs::write(&path, format!("{head}{tail}"))?;
    let (first, _) = ingest(dir.path(), &path, PayloadFormat::Auto).await?;
    let checkpoint = usize::try_from(first.committed_to)?;

    // Same head, then one long record across the old end of the file.
    let across = format!("{:<width$}\n", event(2_000), width = checkpoint - head.len() + 40);
    std::fs::write(&path, format!("{head}{across}{}\n", event(2_001)))?;
    let refused = ingest(dir.path(), &path, PayloadFormat::Auto).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().is_some_and(|e| e.contains("is not where a record starts")), "{refused:?}");
    Ok(())
}

#[test]
fn a_file_heads_fingerprint_matches_the_same_file_grown_longer_only() {
    let file = b"{\"id\":\"evt-1\"}\n{\"id\":\"evt-2\"}\n".repeat(3000);
    let head = &file[..HEAD_FINGERPRINT_BYTES];
    // Before 64 KiB the bytes up to the checkpoint are covered, then the first 64 KiB.
    let early = head_fingerprint(head, 32);
    assert_eq!((early.bytes, early.blake3.len()), (32, 64));
    let late = head_fingerprint(head, i64::try_from(file.len()).unwrap_or(i64::MAX));
    assert_eq!(late.bytes, HEAD_FINGERPRINT_BYTES as u64);

    // The same file, grown longer, or read only to its first bytes.
    assert!(same_head(&early, head) && same_head(&late, head));
    assert!(same_head(&early, &head[..32]));
    // Another file: one byte changed, even past the checkpoint's offset within the head...
    let mut changed = head.to_vec();
    changed[20] = b'X';
    assert!(!same_head(&early, &changed) && !same_head(&late, &changed));
    changed[20] = head[20];
    changed[HEAD_FINGERPRINT_BYTES - 1] ^= 1;
    assert!(same_head(&early, &changed), "bytes past the checkpoint are not covered");
    assert!(!same_head(&late, &changed));
    // ...or shorter than what was covered.
    assert!(!same_head(&early, &head[..31]));
    // A stored hash is compared as written, not parsed.
    assert!(!same_head(&FileHead { blake3: "not a hash".to_owned(), ..early }, head));
}

/// `flush.max_buffered_bytes` holds the rows buffered plus those being written, whatever
/// the flusher could take: at one buffer the file goes to the lake one batch at a time; at
/// one and a half the buffer goes early (`memory`) while a batch is written. The lake holds
/// the file exactly either way.
#[tokio::test]
async fn the_memory_budget_bounds_rows_buffered_and_being_written() -> TestResult {
    const MAX_BYTES: u64 = 512 << 10;
    const EVENTS: usize = 12_000;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let lines: String = (0..EVENTS).map(|n| format!("{}\n", event(n))).collect();
    std::fs::write(&path, &lines)?;
    // What one message may add beyond the budget: its rows, at most what the first row of an
    // empty buffer costs (it opens the app's columns and a rollup key), measured on the file's
    // longest line (the longest id) with the run's source topic, the file's path, which every
    // row stores. Plus what a drained buffer keeps (the rollups' index), counted again when it
    // goes.
    let one_message = {
        let components = components(dir.path(), 1024).await?;
        let topic: Arc<str> = Arc::from(path.display().to_string());
        let mut buffer = PartitionBuffer::new(topic.clone(), topic, 0, 0, &components.config.aggregate, 100);
        let mut processor = components.processor();
        processor.process(&mut buffer, event(EVENTS - 1).as_bytes(), PayloadFormat::Auto, (0, 1), now_nanos());
        let first_row = buffer.bytes();
        processor.take_batch(&mut buffer, now_nanos())?;
        (first_row + buffer.bytes()) as u64
    };
    for budget in [MAX_BYTES, MAX_BYTES * 3 / 2] {
        let run = tempfile::tempdir()?;
        let mut config = Config::default();
        config.lake.location = run.path().join("lake").display().to_string();
        config.flush.max_bytes = bytesize::ByteSize::b(MAX_BYTES);
        config.flush.max_buffered_bytes = bytesize::ByteSize::b(budget);
        let components = Components::build(config).await?;
        let report = run_file(&components, &path, PayloadFormat::Auto, &never_stopped()).await?;
        let metrics = components.metrics.encode()?;

        let peak = report.peak_held_bytes as u64;
        assert!(report.flushes >= 5, "budget {budget}: several flushes needed, {} made", report.flushes);
        assert!(peak <= budget + one_message, "budget {budget} (+{one_message} for one message), peak {peak}");
        let early = crate::telemetry::counter_sum(&metrics, "driftwatch_flushes_total{reason=\"memory\"}");
        assert_eq!(early > 0, budget > MAX_BYTES, "budget {budget}: {early} early flushes");

        assert_eq!(report.committed_to, i64::try_from(lines.len())?);
        assert_eq!((rows(&metrics), all_dead_letters(&metrics)), (EVENTS as u64, 0), "{metrics}");
        let mut ids = Vec::new();
        let store = components.writer.store();
        for file in store.list("events").await? {
            let bytes = store.get(&file.path).await?.ok_or("events file vanished")?;
            for batch in driftwatch_lake::parquet::read_parquet(bytes)? {
                let column = batch.column_by_name("event_id").ok_or("no event_id")?;
                let column = column
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .ok_or("event_id is not a string column")?;
                ids.extend(column.iter().flatten().map(str::to_owned));
            }
        }
        ids.sort_unstable();
        let mut expected: Vec<String> = (0..EVENTS).map(|n| format!("evt-{n}")).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected, "budget {budget}: every line once");
    }
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
        run_file_with(&components, &mut processor, path, PayloadFormat::Auto, &never_stopped()).await?;
    }
    let store = components.writer.store().clone();
    let feedback_files: Vec<String> = store.list("feedback").await?.into_iter().map(|f| f.path).collect();
    assert_eq!(feedback_files.len(), 1, "{feedback_files:?}");
    let file = store.get(&feedback_files[0]).await?.ok_or("feedback file vanished")?;
    let batches = driftwatch_lake::parquet::read_parquet(file)?;
    let column = batches.first().and_then(|b| b.column_by_name("response_model")).ok_or("no response_model")?;
    let models =
        column.as_any().downcast_ref::<arrow::array::StringArray>().ok_or("response_model is not a string column")?;
    assert_eq!(models.iter().collect::<Vec<_>>(), [Some("gpt-4o")], "the join filled the model");
    Ok(())
}
