//! Arrow batches to Parquet bytes: takes a [`RecordBatch`] from
//! [`crate::encode`] and the [`ParquetOptions`] section of the daemon config, and
//! returns the complete file in memory for [`crate::store::LakeStore::put_atomic`].
//!
//! Every writer property is set on purpose (STYLE 11): arrow-rs defaults to no
//! compression and million-row row groups, which would make the lake large and
//! the writer's memory proportional to input volume.

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{
    BloomFilterPosition, EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion,
};
use parquet::schema::types::ColumnPath;
use serde::Deserialize;

use crate::error::{LakeError, Result};
use crate::layout::FileKind;

/// Rows handed to the column writers at a time (arrow-rs' default, set explicitly).
const WRITE_BATCH_SIZE: usize = 1024;
/// Rows per data page at most, so page-level statistics stay selective.
const DATA_PAGE_ROW_LIMIT: usize = 20_000;
/// Min/max statistics and column index entries are cut to this many bytes, so a
/// long `content` or `detail` value does not bloat the footer.
const STATISTICS_TRUNCATE_BYTES: usize = 64;
/// Events columns whose values are (nearly) all distinct. Dictionary-encoding them only
/// interns every value until the dictionary page fills and then falls back to plain, so it
/// costs CPU and, for the ids, a larger file (measured in benches/README.md).
pub(crate) const EVENTS_UNIQUE_COLUMNS: [&str; 13] = [
    "event_id",
    "trace_id",
    "span_id",
    "response_id",
    "input_hash",
    "output_hash",
    "output_simhash",
    "time",
    "start_time",
    "latency_ms",
    "ttft_ms",
    "source_offset",
    "content",
];
/// Events columns stored as DELTA_BINARY_PACKED instead of PLAIN: the end and start times.
/// Rows are sorted by `time` within a file (and `start_time` is `time` less a latency), so each
/// value is a few bits of difference from the one before instead of 8 bytes, which zstd could
/// barely compress (nanosecond timestamps share only their high bytes). Measured in
/// benches/README.md, "Seventh session": the two columns shrink from 14.2 to 9.5 bytes per row.
/// Source offsets and the float measures were tried too and came out no smaller, so they stay
/// PLAIN. DataFusion, DuckDB, pyarrow and Spark all read this encoding.
pub(crate) const EVENTS_DELTA_COLUMNS: [&str; 2] = ["time", "start_time"];
/// Position of `time` in the events schema, declared as the sort key (a test in
/// `encode/tests.rs` checks it against the schema).
const EVENTS_TIME_COLUMN: i32 = 4;

/// How lake files are written: the `parquet` section of the daemon config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParquetOptions {
    /// zstd level (1..=22). The lake is mostly hex ids, hashes and dictionary-encoded labels,
    /// which level 3 compresses no better than level 1 (same lake size within 0.3 %) at
    /// about 25 % more writer CPU, so the default is 1.
    pub compression_level: i32,
    /// Rows per row group at most; bounds reader and writer memory and sets the
    /// pruning granularity of row-group statistics.
    pub max_row_group_rows: usize,
    /// Encoded bytes per row group at most, so wide rows (retained content, big
    /// payloads) cannot grow a row group without limit.
    pub max_row_group_bytes: usize,
    /// Target encoded size of a data page.
    pub data_page_size_bytes: usize,
    /// Dictionary-encode columns: most lake columns (app, model, provider) have few distinct values.
    pub dictionary_enabled: bool,
    /// Dictionary page size at which a column falls back to plain encoding.
    pub dictionary_page_size_bytes: usize,
    /// Write a bloom filter on `events.event_id`, so point lookups by id skip row groups.
    pub bloom_filter_event_id: bool,
    /// False-positive probability of that bloom filter.
    pub bloom_filter_fpp: f64,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            compression_level: 1,
            max_row_group_rows: 65_536,
            max_row_group_bytes: 128 * 1024 * 1024,
            data_page_size_bytes: 1024 * 1024,
            dictionary_enabled: true,
            dictionary_page_size_bytes: 1024 * 1024,
            bloom_filter_event_id: true,
            bloom_filter_fpp: 0.01,
        }
    }
}

impl ParquetOptions {
    /// Check every value before anything is written; the daemon calls this at startup.
    pub fn validate(&self) -> Result<()> {
        match self.problems().first() {
            Some(&(field, reason)) => Err(LakeError::ParquetOptions { field, reason: reason.to_owned() }),
            None => Ok(()),
        }
    }

    /// Every invalid option, as (field, what is wrong), so a config check can report them all
    /// at once.
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let positive = "must be positive";
        [
            ("compression_level", ZstdLevel::try_new(self.compression_level).is_err(), "must be a zstd level, 1 to 22"),
            ("max_row_group_rows", self.max_row_group_rows == 0, positive),
            ("max_row_group_bytes", self.max_row_group_bytes == 0, positive),
            ("data_page_size_bytes", self.data_page_size_bytes == 0, positive),
            ("dictionary_page_size_bytes", self.dictionary_page_size_bytes == 0, positive),
            (
                "bloom_filter_fpp",
                !(self.bloom_filter_fpp > 0.0 && self.bloom_filter_fpp < 1.0),
                "must be strictly between 0 and 1",
            ),
        ]
        .into_iter()
        .filter_map(|(field, bad, reason)| bad.then_some((field, reason)))
        .collect()
    }

    /// The writer properties for one table. Every property is set explicitly;
    /// event files also declare their `time` sort order, which
    /// [`crate::writer::LakeWriter`] guarantees.
    pub fn writer_properties(&self, kind: FileKind) -> Result<WriterProperties> {
        self.validate()?;
        let level = ZstdLevel::try_new(self.compression_level)
            .map_err(|source| LakeError::ParquetOptions { field: "compression_level", reason: source.to_string() })?;
        let builder = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_created_by(format!("driftwatch-lake {}", env!("CARGO_PKG_VERSION")))
            .set_compression(Compression::ZSTD(level))
            .set_encoding(Encoding::PLAIN)
            .set_max_row_group_row_count(Some(self.max_row_group_rows))
            .set_max_row_group_bytes(Some(self.max_row_group_bytes))
            .set_write_batch_size(WRITE_BATCH_SIZE)
            .set_data_page_size_limit(self.data_page_size_bytes)
            .set_data_page_row_count_limit(DATA_PAGE_ROW_LIMIT)
            .set_dictionary_enabled(self.dictionary_enabled)
            .set_dictionary_page_size_limit(self.dictionary_page_size_bytes)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_write_page_header_statistics(false)
            .set_statistics_truncate_length(Some(STATISTICS_TRUNCATE_BYTES))
            .set_column_index_truncate_length(Some(STATISTICS_TRUNCATE_BYTES))
            .set_offset_index_disabled(false)
            .set_coerce_types(false)
            .set_bloom_filter_enabled(false)
            .set_bloom_filter_position(BloomFilterPosition::AfterRowGroup)
            .set_key_value_metadata(None);
        Ok(self.table_specific(builder, kind).build())
    }

    fn table_specific(&self, builder: WriterPropertiesBuilder, kind: FileKind) -> WriterPropertiesBuilder {
        match kind {
            FileKind::Events => {
                let builder = EVENTS_UNIQUE_COLUMNS.iter().fold(builder, |builder, column| {
                    builder.set_column_dictionary_enabled(ColumnPath::from(*column), false)
                });
                let builder = EVENTS_DELTA_COLUMNS.iter().fold(builder, |builder, column| {
                    builder.set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED)
                });
                let builder = builder.set_sorting_columns(Some(vec![SortingColumn {
                    column_idx: EVENTS_TIME_COLUMN,
                    descending: false,
                    nulls_first: false,
                }]));
                if self.bloom_filter_event_id {
                    let event_id = ColumnPath::from("event_id");
                    builder
                        .set_column_bloom_filter_enabled(event_id.clone(), true)
                        .set_column_bloom_filter_fpp(event_id.clone(), self.bloom_filter_fpp)
                        .set_column_bloom_filter_max_ndv(event_id, self.max_row_group_rows as u64)
                } else {
                    builder
                }
            }
            FileKind::Feedback | FileKind::Rollups | FileKind::DeadLetter | FileKind::Findings => {
                builder.set_sorting_columns(None)
            }
        }
    }
}

/// Write one batch as a complete Parquet file in memory.
pub fn write_parquet(batch: &RecordBatch, props: WriterProperties) -> Result<Bytes> {
    let err = |op, source| LakeError::Parquet { op, kind: "lake file", source };
    // Encoded files are usually well under a tenth of the in-memory batch.
    let mut writer =
        ArrowWriter::try_new(Vec::with_capacity(batch.get_array_memory_size() / 8), batch.schema(), Some(props))
            .map_err(|source| err("open writer", source))?;
    writer.write(batch).map_err(|source| err("write", source))?;
    let buffer = writer.into_inner().map_err(|source| err("finish", source))?;
    Ok(Bytes::from(buffer))
}

/// Read a whole Parquet file (as returned by [`crate::store::LakeStore::get`]) into batches.
pub fn read_parquet(file: Bytes) -> Result<Vec<RecordBatch>> {
    let err = |op, source| LakeError::Parquet { op, kind: "lake file", source };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|source| err("open reader", source))?
        .build()
        .map_err(|source| err("open reader", source))?;
    reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|source| LakeError::Arrow { kind: "lake file", source })
}
