//! Encode → Parquet → read back → decode round trips, and the writer properties
//! really landing in the files.

use arrow::array::{Array, BinaryArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use parquet::basic::{Compression, Encoding};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::serialized_reader::ReadOptionsBuilder;

use super::*;
use crate::decode::{decode_events, decode_feedback, decode_rollups};
use crate::layout::FileKind;
use crate::parquet::{ParquetOptions, read_parquet, write_parquet};
use crate::test_support::{DAY1, bare_event, dead_letter, feedback, full_event, rollup};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One microsecond in the rows' nanoseconds: the lake's time resolution, so times that are
/// whole microseconds round-trip exactly.
const US: i64 = 1_000;

fn round_trip(batch: &RecordBatch, kind: FileKind) -> Result<RecordBatch, Box<dyn std::error::Error>> {
    let file = write_parquet(batch, ParquetOptions::default().writer_properties(kind)?)?;
    let batches = read_parquet(file)?;
    Ok(arrow::compute::concat_batches(&batch.schema(), &batches)?)
}

#[test]
fn events_round_trip_every_column_including_nulls() -> TestResult {
    let rows: Vec<InferenceEvent> = (1..=6)
        .map(|i| if i % 2 == 0 { full_event(i, "chat", DAY1 + i * US) } else { bare_event(i, "chat", DAY1 + i * US) })
        .collect();
    let batch = encode_events(&rows)?;
    let back = round_trip(&batch, FileKind::Events)?;
    assert_eq!(back, batch);
    assert_eq!(decode_events(&back)?, rows);
    Ok(())
}

/// Times are stored as `TIMESTAMP(MICROS)`, the unit every Parquet reader takes (Spark and
/// BigQuery refuse nanoseconds), rounded down from the rows' nanoseconds, before 1970 too.
#[test]
fn times_are_stored_as_microseconds_rounded_down() -> TestResult {
    let rows = [full_event(1, "chat", DAY1 + 1_999), full_event(2, "chat", -1)];
    let file = write_parquet(&encode_events(&rows)?, ParquetOptions::default().writer_properties(FileKind::Events)?)?;
    let reader = SerializedFileReader::new(file.clone())?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let time = (0..schema.num_columns()).map(|i| schema.column(i)).find(|c| c.name() == "time").ok_or("no time")?;
    assert_eq!(
        time.logical_type_ref(),
        Some(&parquet::basic::LogicalType::timestamp(true, parquet::basic::TimeUnit::MICROS)),
    );
    let back = decode_events(&arrow::compute::concat_batches(&events_schema(), &read_parquet(file)?)?)?;
    assert_eq!((back[0].time, back[0].start_time), (DAY1 + 1_000, DAY1 + 1_000 - 1_500_000_000));
    assert_eq!(back[1].time, -1_000, "rounded down, not toward zero");
    Ok(())
}

#[test]
fn feedback_round_trips() -> TestResult {
    let rows: Vec<FeedbackEvent> = (0..5).map(|i| feedback(i, DAY1 + i * US)).collect();
    let back = round_trip(&encode_feedback(&rows)?, FileKind::Feedback)?;
    assert_eq!(decode_feedback(&back)?, rows);
    Ok(())
}

#[test]
fn rollups_round_trip_with_feedback_lists() -> TestResult {
    let rows: Vec<RollupRow> = (0..7).map(|i| rollup(i, DAY1 + i * 60_000_000_000)).collect();
    assert!(rows.iter().any(|r| r.feedback.is_empty()) && rows.iter().any(|r| r.feedback.len() == 2));
    let back = round_trip(&encode_rollups(&rows)?, FileKind::Rollups)?;
    assert_eq!(decode_rollups(&back)?, rows);
    Ok(())
}

/// Lakes written before `cache_write_tokens` and `service_tier` existed have files without the
/// columns: their rows read as reporting no cache writes (events: null, rollups: 0) and no
/// service tier, not as an undecodable file.
#[test]
fn files_without_added_columns_still_decode() -> TestResult {
    let without = |batch: RecordBatch, added: &[&str]| -> Result<RecordBatch, Box<dyn std::error::Error>> {
        let schema = batch.schema();
        let keep: Vec<usize> =
            (0..schema.fields().len()).filter(|&i| !added.contains(&schema.field(i).name().as_str())).collect();
        assert_eq!(keep.len() + added.len(), schema.fields().len(), "the columns exist before they are dropped");
        Ok(batch.project(&keep)?)
    };
    let events = vec![full_event(2, "chat", DAY1), bare_event(3, "chat", DAY1 + US)];
    let back =
        round_trip(&without(encode_events(&events)?, &["cache_write_tokens", "service_tier"])?, FileKind::Events)?;
    let expected: Vec<InferenceEvent> =
        events.into_iter().map(|e| InferenceEvent { cache_write_tokens: None, service_tier: None, ..e }).collect();
    assert_eq!(decode_events(&back)?, expected);

    let rollups = vec![rollup(1, DAY1)];
    let back = round_trip(&without(encode_rollups(&rollups)?, &["cache_write_tokens"])?, FileKind::Rollups)?;
    let expected: Vec<RollupRow> = rollups.into_iter().map(|r| RollupRow { cache_write_tokens: 0, ..r }).collect();
    assert_eq!(decode_rollups(&back)?, expected);
    Ok(())
}

#[test]
fn dead_letters_round_trip() -> TestResult {
    let mut rows: Vec<DeadLetter> = (0..3).map(|i| dead_letter(i, DAY1 + i * US)).collect();
    rows[1].source = None;
    let back = round_trip(&encode_dead_letters(&rows)?, FileKind::DeadLetter)?;
    let column = |name: &str| back.column_by_name(name).ok_or(format!("no column {name}"));
    let time = column("time")?.as_any().downcast_ref::<TimestampMicrosecondArray>().ok_or("time")?;
    let reason = column("reason")?.as_any().downcast_ref::<StringArray>().ok_or("reason")?;
    let detail = column("detail")?.as_any().downcast_ref::<StringArray>().ok_or("detail")?;
    let payload = column("payload")?.as_any().downcast_ref::<BinaryArray>().ok_or("payload")?;
    let topic = column("source_topic")?.as_any().downcast_ref::<StringArray>().ok_or("topic")?;
    let partition = column("source_partition")?.as_any().downcast_ref::<Int32Array>().ok_or("partition")?;
    let offset = column("source_offset")?.as_any().downcast_ref::<Int64Array>().ok_or("offset")?;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(time.value(i) * 1_000, row.time);
        assert_eq!(reason.value(i), row.reason);
        assert_eq!(detail.value(i), row.detail);
        assert_eq!(payload.value(i), row.payload.as_slice());
        match &row.source {
            Some(source) => {
                assert_eq!(topic.value(i), &*source.topic);
                assert_eq!(partition.value(i), source.partition);
                assert_eq!(offset.value(i), source.offset);
            }
            None => assert!(topic.is_null(i) && partition.is_null(i) && offset.is_null(i)),
        }
    }
    Ok(())
}

#[test]
fn empty_slices_encode_to_empty_batches() -> TestResult {
    assert_eq!(encode_events::<InferenceEvent>(&[])?.num_rows(), 0);
    assert_eq!(encode_rollups(&[])?.num_rows(), 0);
    Ok(())
}

#[test]
fn writer_properties_are_applied_to_the_file() -> TestResult {
    let options = ParquetOptions { max_row_group_rows: 100, compression_level: 5, ..ParquetOptions::default() };
    let rows: Vec<InferenceEvent> = (0..1_050).map(|i| full_event(i, "chat", DAY1 + i)).collect();
    let file = write_parquet(&encode_events(&rows)?, options.writer_properties(FileKind::Events)?)?;
    let reader = SerializedFileReader::new_with_options(file, ReadOptionsBuilder::new().with_page_index().build())?;
    let metadata = reader.metadata();
    assert_eq!(metadata.num_row_groups(), 11);
    assert_eq!(metadata.file_metadata().num_rows(), 1_050);
    let event_id = 0;
    let time = i32::try_from(crate::schema::events_schema().index_of("time")?)?;
    assert_eq!(metadata.file_metadata().schema_descr().column(time as usize).name(), "time");
    for group in metadata.row_groups() {
        assert!(group.num_rows() <= 100);
        assert_eq!(group.sorting_columns().map(|c| c[0].column_idx), Some(time), "sorted by time");
        for column in group.columns() {
            assert!(matches!(column.compression(), Compression::ZSTD(_)), "{:?}", column.column_path());
            assert!(column.statistics().is_some(), "statistics on {:?}", column.column_path());
        }
        assert!(group.column(event_id).bloom_filter_offset().is_some(), "bloom filter on event_id");
        assert!(group.column(1).bloom_filter_offset().is_none(), "bloom filter only on event_id");
        for column in group.columns() {
            let name = column.column_path().string();
            let unique = crate::parquet::EVENTS_UNIQUE_COLUMNS.contains(&name.as_str());
            assert_eq!(column.dictionary_page_offset().is_none(), unique, "dictionary encoding of {name}");
            let delta = crate::parquet::EVENTS_DELTA_COLUMNS.contains(&name.as_str());
            let encodings: Vec<Encoding> = column.encodings().collect();
            assert_eq!(encodings.contains(&Encoding::DELTA_BINARY_PACKED), delta, "{name}: {encodings:?}");
        }
    }
    assert!(metadata.column_index().is_some(), "page-level statistics");
    assert!(metadata.file_metadata().created_by().is_some_and(|c| c.starts_with("driftwatch-lake")));

    let rollups = write_parquet(&encode_rollups(&[rollup(1, DAY1)])?, options.writer_properties(FileKind::Rollups)?)?;
    let reader = SerializedFileReader::new(rollups)?;
    assert!(reader.metadata().row_group(0).column(0).bloom_filter_offset().is_none());
    Ok(())
}

#[test]
fn columns_with_their_own_encoding_exist_in_the_events_schema() {
    let schema = crate::schema::events_schema();
    for column in crate::parquet::EVENTS_UNIQUE_COLUMNS.iter().chain(&crate::parquet::EVENTS_DELTA_COLUMNS) {
        assert!(schema.field_with_name(column).is_ok(), "{column} is not an events column");
    }
}

#[test]
fn invalid_options_are_rejected() {
    for options in [
        ParquetOptions { compression_level: 40, ..ParquetOptions::default() },
        ParquetOptions { max_row_group_rows: 0, ..ParquetOptions::default() },
        ParquetOptions { bloom_filter_fpp: 1.0, ..ParquetOptions::default() },
    ] {
        assert!(options.validate().is_err(), "{options:?}");
        assert!(options.writer_properties(FileKind::Events).is_err());
    }
    assert!(ParquetOptions::default().validate().is_ok());
    assert!(ParquetOptions::default().problems().is_empty());
    let all_bad = ParquetOptions {
        compression_level: 0,
        max_row_group_rows: 0,
        max_row_group_bytes: 0,
        data_page_size_bytes: 0,
        dictionary_page_size_bytes: 0,
        bloom_filter_fpp: f64::NAN,
        ..ParquetOptions::default()
    };
    let fields: Vec<&str> = all_bad.problems().into_iter().map(|(field, _)| field).collect();
    assert_eq!(
        fields,
        [
            "compression_level",
            "max_row_group_rows",
            "max_row_group_bytes",
            "data_page_size_bytes",
            "dictionary_page_size_bytes",
            "bloom_filter_fpp"
        ]
    );
}

#[test]
fn options_deserialize_with_defaults_and_reject_unknown_fields() -> TestResult {
    let options: ParquetOptions = serde_json::from_str(r#"{"compression_level": 7}"#)?;
    assert_eq!(options, ParquetOptions { compression_level: 7, ..ParquetOptions::default() });
    assert!(serde_json::from_str::<ParquetOptions>(r#"{"compresion_level": 7}"#).is_err());
    Ok(())
}
