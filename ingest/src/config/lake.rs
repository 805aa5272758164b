//! The `[lake]` and `[flush]` sections: where files go and when buffered rows become files.

use std::collections::HashMap;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use driftwatch_lake::parquet::ParquetOptions;

use super::load::text_values;

/// Lake location and writer settings. Its `Debug` form names the object-store options without
/// their values, which may be credentials (`aws_secret_access_key`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// A local path, `file://` URL, `s3://bucket/prefix`, or `memory://` (tests); `./lake` when
    /// unset, also when only `[lake.parquet]` or `[lake.options]` is given.
    #[serde(default = "default_lake_location")]
    pub location: String,
    /// Object-store options (`aws_endpoint`, `aws_region`, ...), on top of the `AWS_*` environment.
    /// Values may be TOML strings, numbers or booleans.
    #[serde(default, deserialize_with = "text_values")]
    pub options: HashMap<String, String>,
    /// Parquet writer properties; every one is explicit (DESIGN §5).
    #[serde(default)]
    pub parquet: ParquetOptions,
}

impl std::fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut options: Vec<&str> = self.options.keys().map(String::as_str).collect();
        options.sort_unstable();
        f.debug_struct("LakeConfig")
            .field("location", &driftwatch_lake::store::shown_location(&self.location))
            .field("options (values not shown)", &options)
            .field("parquet", &self.parquet)
            .finish()
    }
}

fn default_lake_location() -> String {
    "./lake".to_owned()
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self { location: default_lake_location(), options: HashMap::new(), parquet: ParquetOptions::default() }
    }
}

/// The longest `flush.max_age`: the lake is meant to be minutes behind, and a partition's rows
/// wait in memory (and its offsets uncommitted) until they are flushed.
pub const MAX_FLUSH_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest `flush.max_bytes`. Arrow string columns use 32-bit offsets, so one batch's text
/// column (content, ids) holds at most 2 GiB; a buffer flushes just past `max_bytes`, and half
/// the offsets' reach leaves room for that and for estimates that run low.
pub const MAX_FLUSH_BYTES: ByteSize = ByteSize::gib(1);

/// When a partition's buffered rows are written out. Whichever limit is hit first wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    /// Rows (events + feedback + dead letters) per partition before a flush.
    pub max_rows: usize,
    /// Approximate buffered bytes per partition before a flush; at most [`MAX_FLUSH_BYTES`].
    pub max_bytes: ByteSize,
    /// Oldest buffered row's age before a flush: bounds how stale the lake is. At most
    /// [`MAX_FLUSH_AGE`]. Each flush of a partition writes a file per app it holds rows of
    /// (and one each for rollups, feedback and dead letters), so this also sets how many files
    /// the lake grows by: the default minute keeps a quiet fleet's files six times fewer than
    /// 10 s would, with the lake still about a minute behind the live metrics.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The memory budget for rows: all partitions' buffers plus the batches being written.
    /// At the budget the largest buffer is flushed early and the Kafka source takes no more
    /// messages until a flush completes (librdkafka's prefetch, bounded by
    /// `queued.max.messages.kbytes`, then fills and the assignment is paused); the batch of
    /// messages in hand (at most 1 MiB, or one larger message) is finished first. Fixed costs come
    /// on top: the dedup window per partition (about 50 bytes per id), the feedback join
    /// (about 150 bytes per inference whose context strings other calls share, up to about 2 KB
    /// for one with context of its own), the calls remembered to recognise wrapper spans (at most
    /// 40 000, about 2 MB), the event channel (32 MiB) and Parquet encoding of one batch at a
    /// time (about the batch's size again). The file source holds its one buffer plus its batches
    /// being written to the same budget: it flushes early and stops reading until a flush
    /// completes.
    pub max_buffered_bytes: ByteSize,
    /// Recent event ids remembered per partition to drop producer retries before they reach
    /// rollups: at least the last this many, at most twice as many; 0 keeps every retry.
    pub dedup_window: usize,
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self {
            max_rows: 200_000,
            max_bytes: ByteSize::mib(64),
            max_age: Duration::from_secs(60),
            max_buffered_bytes: ByteSize::mib(512),
            dedup_window: 100_000,
        }
    }
}
