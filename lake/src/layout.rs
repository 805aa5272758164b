//! Where every row lands in the lake (DESIGN §5): takes a table kind, a UTC
//! timestamp, an app name and a flush's source range, and returns lake-relative
//! paths (`/`-separated, no leading slash) that [`crate::store::LakeStore`]
//! resolves against the lake root.
//!
//! ```text
//! events/date=YYYY-MM-DD/app=<app>/<stream>-<partition>-<first:020>-<next:020>-<owner>.parquet
//! feedback/date=YYYY-MM-DD/<file>        rollups/date=YYYY-MM-DD/<file>
//! dead_letter/date=YYYY-MM-DD/<file>     findings/date=YYYY-MM-DD/<file>
//! _checkpoints/<stream>/<partition>.json (+ <partition>.pending.<owner>.json,
//!                                         <partition>.fenced.<owner>.json)
//! _snapshots/...                         reserved
//! ```
//!
//! Partition values are escaped the way Hive and Spark escape them, so any app
//! name is one safe path segment and DataFusion, DuckDB, Spark and Trino read
//! the directories back. File names are a pure function of the flushed source
//! range and the writer's claim on the partition (`<owner>`, see
//! [`crate::checkpoint`]): a flush retried by the same writer lands under the same
//! names, and a writer that lost its claim can remove its own files without ever
//! touching the new owner's, even for the same range.

use chrono::DateTime;

use crate::model::UnixNanos;

/// Directory holding committed source positions.
pub const CHECKPOINTS_DIR: &str = "_checkpoints";
/// Directory reserved for table snapshots (not written yet).
pub const SNAPSHOTS_DIR: &str = "_snapshots";
/// What Hive writes for a null or empty partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// Marker between a final name and the unique suffix of its temporary file.
pub(crate) const TMP_MARKER: &str = ".tmp-";

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// The lake's tables; each is a top-level directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// One row per inference call, partitioned by date and app.
    Events,
    /// Feedback and evaluation results.
    Feedback,
    /// Partial 1-minute aggregates.
    Rollups,
    /// Rejected input with the reason.
    DeadLetter,
    /// Analyze's findings: reserved for the analysis job, not written yet.
    Findings,
}

impl FileKind {
    /// The table's directory name, also used as the `kind` in reports and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Events => "events",
            FileKind::Feedback => "feedback",
            FileKind::Rollups => "rollups",
            FileKind::DeadLetter => "dead_letter",
            FileKind::Findings => "findings",
        }
    }
}

/// True for characters Hive/Spark percent-encode in partition values, plus the
/// Windows-reserved ones, so a value is safe on every store and OS.
fn needs_escape(c: char) -> bool {
    c.is_ascii_control()
        || matches!(
            c,
            '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^' | '<' | '>' | '|'
        )
}

/// Longest escaped partition value ([`escape_path_value`]) a row may bring into a path. File
/// systems cap a name at 255 bytes (`NAME_MAX`); with `app=` and room to spare, a longer value
/// would make every flush holding the row fail, and a source that retries its flush would
/// stall behind that one row for good. Ingest rejects such rows instead.
pub const MAX_ESCAPED_PARTITION_VALUE_BYTES: usize = 200;

/// Length in bytes of [`escape_path_value`]`(value)`, without building it.
pub fn escaped_path_value_len(value: &str) -> usize {
    if value.is_empty() {
        return HIVE_DEFAULT_PARTITION.len();
    }
    if value == HIVE_DEFAULT_PARTITION {
        return HIVE_DEFAULT_PARTITION.len() + 2;
    }
    value.chars().map(|c| if needs_escape(c) { 3 } else { c.len_utf8() }).sum()
}

/// Escape a Hive partition value (`app=<value>`): reserved ASCII characters become
/// `%XX`; everything else, non-ASCII included, stays as is. Empty becomes
/// [`HIVE_DEFAULT_PARTITION`] as Hive does, and that name itself, as a value, has its first `_`
/// escaped, since Hive readers take the folder's name for a null.
pub fn escape_path_value(value: &str) -> String {
    if value.is_empty() {
        return HIVE_DEFAULT_PARTITION.to_owned();
    }
    if value == HIVE_DEFAULT_PARTITION {
        return value.replacen('_', "%5F", 1);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if needs_escape(c) {
            // Only ASCII is escaped, so the char is exactly one byte.
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverse [`escape_path_value`] (and Hive's escaping): `%XX` with two hex digits
/// decodes to that ASCII character; anything else is kept literally.
pub fn unescape_path_value(escaped: &str) -> String {
    if escaped == HIVE_DEFAULT_PARTITION {
        return String::new();
    }
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.get(..2).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) if byte.is_ascii() => {
                out.push(char::from(byte));
                rest = &after[2..];
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A source id (Kafka topic, file source id) as one safe path segment: escaped
/// like a partition value, and never starting with `.` so files named after it
/// are not hidden from readers.
pub fn sanitize_stream(source_id: &str) -> String {
    let escaped = escape_path_value(source_id);
    match escaped.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => escaped,
    }
}

/// The UTC calendar date (`YYYY-MM-DD`) of a timestamp: the `date=` partition.
pub fn date_partition(time: UnixNanos) -> String {
    let day_start = time.div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY;
    DateTime::from_timestamp_nanos(day_start).format("%Y-%m-%d").to_string()
}

/// The UTC day number of a timestamp (days since 1970-01-01); rows with the same
/// day share a `date=` partition. Cheaper than formatting when grouping rows.
pub fn day_of(time: UnixNanos) -> i64 {
    time.div_euclid(NANOS_PER_DAY)
}

/// Length of a writer's claim id ([`crate::checkpoint::new_owner_id`]): lower-case hex.
pub const OWNER_ID_LEN: usize = 16;

fn is_owner_id(text: &str) -> bool {
    text.len() == OWNER_ID_LEN && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The data file name for one flush of a source range by the writer holding claim `owner`.
///
/// `epoch` counts offset resets of the partition (a topic deleted and recreated starts its
/// offsets again at 0): epoch 0 keeps the plain name, later epochs add `e<epoch>-` so a new
/// incarnation's ranges never overwrite the old incarnation's files.
pub fn file_name(stream: &str, partition: i32, epoch: u64, first_offset: i64, next_offset: i64, owner: &str) -> String {
    let stream = sanitize_stream(stream);
    if epoch == 0 {
        format!("{stream}-{partition}-{first_offset:020}-{next_offset:020}-{owner}.parquet")
    } else {
        format!("{stream}-{partition}-e{epoch}-{first_offset:020}-{next_offset:020}-{owner}.parquet")
    }
}

/// The lake-relative path of a data file. `app` is used only for
/// [`FileKind::Events`], the one table partitioned by app.
pub fn data_path(kind: FileKind, date: &str, app: &str, file_name: &str) -> String {
    match kind {
        FileKind::Events => format!("{}/date={date}/app={}/{file_name}", kind.as_str(), escape_path_value(app)),
        _ => format!("{}/date={date}/{file_name}", kind.as_str()),
    }
}

/// The directory of one stream's checkpoints.
pub fn checkpoint_dir(stream: &str) -> String {
    format!("{CHECKPOINTS_DIR}/{}", sanitize_stream(stream))
}

/// The committed checkpoint of one (stream, partition).
pub fn checkpoint_path(stream: &str, partition: i32) -> String {
    format!("{}/{partition}.json", checkpoint_dir(stream))
}

/// The manifest of the flush in progress for one (stream, partition) by the writer holding
/// claim `owner`. Each writer has its own, so a writer that lost its claim cannot overwrite
/// the manifest of the flush the new owner has in progress.
pub fn pending_path(stream: &str, partition: i32, owner: &str) -> String {
    format!("{}/{partition}.pending.{owner}.json", checkpoint_dir(stream))
}

/// True when `name` (a bare file name in [`checkpoint_dir`]) is a pending manifest of
/// `partition`, by any writer.
pub fn is_pending_of(name: &str, partition: i32) -> bool {
    is_manifest_of(name, partition, "pending")
}

/// The manifest of a flush that was undone because its writer lost the partition (or
/// crashed) before committing it: kept so that files the writer's last puts land after the
/// undo are removed too (see [`crate::checkpoint`]).
pub fn fenced_path(stream: &str, partition: i32, owner: &str) -> String {
    format!("{}/{partition}.fenced.{owner}.json", checkpoint_dir(stream))
}

/// True when `name` (a bare file name in [`checkpoint_dir`]) is a fenced flush's manifest of
/// `partition`.
pub fn is_fenced_of(name: &str, partition: i32) -> bool {
    is_manifest_of(name, partition, "fenced")
}

fn is_manifest_of(name: &str, partition: i32, state: &str) -> bool {
    name.strip_prefix(&format!("{partition}.{state}."))
        .and_then(|rest| rest.strip_suffix(".json"))
        .is_some_and(is_owner_id)
}

/// True when `name` (a bare file name) is a temporary file left by an atomic write
/// of a file belonging to (stream, partition): a data file named by
/// [`file_name`] or a pending or fenced manifest. Other partitions' temporaries must survive,
/// because they may still be in flight; a stalled former owner's are removed, and its
/// rename then fails, which is what it should do. The partition record's temporaries are
/// not included: another claimer may be writing it, and its conditional put cleans them.
pub(crate) fn is_own_tmp(name: &str, stream: &str, partition: i32) -> bool {
    let Some(hidden) = name.strip_prefix('.') else {
        return false;
    };
    let Some(marker) = hidden.rfind(TMP_MARKER) else {
        return false;
    };
    let target = &hidden[..marker];
    if is_pending_of(target, partition) || is_fenced_of(target, partition) {
        return true;
    }
    let prefix = format!("{}-{partition}-", sanitize_stream(stream));
    let Some(named) = target.strip_prefix(&prefix).and_then(|t| t.strip_suffix(".parquet")) else {
        return false;
    };
    let Some(offsets) = named.rsplit_once('-').filter(|(_, owner)| is_owner_id(owner)).map(|(offsets, _)| offsets)
    else {
        return false;
    };
    // `[e<epoch>-]<first:020>-<next:020>`: requiring both fixed-width fields makes the
    // prefix unambiguous even when stream names contain `-` and digits.
    let offsets = match offsets.strip_prefix('e').and_then(|rest| rest.split_once('-')) {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => offsets,
    };
    let bytes = offsets.as_bytes();
    bytes.len() == 41 && bytes[20] == b'-' && bytes[..20].iter().chain(&bytes[21..]).all(u8::is_ascii_digit)
}

/// The temporary name an atomic local write uses before renaming to `name`:
/// hidden (leading `.`), so lake readers skip it if a crash leaves it behind.
pub(crate) fn tmp_name(name: &str, unique: &str) -> String {
    format!(".{name}{TMP_MARKER}{unique}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0123456789abcdef";

    #[test]
    fn odd_app_names_round_trip_as_one_segment() {
        for app in [
            "a/b",
            "x=y",
            "café ☕",
            "with space",
            "50%",
            "C:\\tmp",
            "q?#*|<>\"",
            "tab\tnew\nline",
            "",
            ".",
            "..",
            "plain-app_1.2",
            HIVE_DEFAULT_PARTITION,
        ] {
            let escaped = escape_path_value(app);
            assert_eq!(escaped_path_value_len(app), escaped.len(), "{app:?} -> {escaped:?}");
            assert!(!escaped.contains('/'), "{app:?} -> {escaped:?}");
            assert!(!escaped.contains('='), "{app:?} -> {escaped:?}");
            assert!(!escaped.chars().any(|c| c.is_ascii_control()), "{app:?} -> {escaped:?}");
            assert!(!escaped.is_empty());
            assert_eq!(unescape_path_value(&escaped), app, "round trip of {app:?}");
            let path = data_path(FileKind::Events, "2024-01-02", app, "f.parquet");
            assert_eq!(path.split('/').count(), 4, "{path}");
            assert!(object_store::path::Path::parse(&path).is_ok(), "{path}");
        }
        assert_eq!(escape_path_value("a/b"), "a%2Fb");
        assert_eq!(escape_path_value("x=y"), "x%3Dy");
        assert_eq!(escape_path_value("café ☕"), "café ☕");
        assert_eq!(escape_path_value(HIVE_DEFAULT_PARTITION), "%5F_HIVE_DEFAULT_PARTITION__", "not read as null");
    }

    #[test]
    fn unescape_keeps_malformed_sequences() {
        assert_eq!(unescape_path_value("100%"), "100%");
        assert_eq!(unescape_path_value("%zz%4"), "%zz%4");
        assert_eq!(unescape_path_value("%C3%A9"), "%C3%A9", "only ASCII is ever escaped");
    }

    #[test]
    fn dates_are_utc_days_including_before_the_epoch() {
        assert_eq!(date_partition(0), "1970-01-01");
        assert_eq!(date_partition(-1), "1969-12-31");
        // 2024-02-29T23:59:59.999999999Z
        assert_eq!(date_partition(1_709_251_199_999_999_999), "2024-02-29");
        assert_eq!(date_partition(1_709_251_200_000_000_000), "2024-03-01");
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn paths_follow_the_layout() {
        let name = file_name("llm-events", 3, 0, 10, 250, OWNER);
        assert_eq!(name, "llm-events-3-00000000000000000010-00000000000000000250-0123456789abcdef.parquet");
        assert_eq!(
            file_name("t", 3, 2, 10, 250, OWNER),
            "t-3-e2-00000000000000000010-00000000000000000250-0123456789abcdef.parquet"
        );
        assert_eq!(
            data_path(FileKind::Events, "2024-05-01", "chat bot", &name),
            format!("events/date=2024-05-01/app=chat bot/{name}")
        );
        assert_eq!(
            data_path(FileKind::DeadLetter, "2024-05-01", "ignored", "f.parquet"),
            "dead_letter/date=2024-05-01/f.parquet"
        );
        assert_eq!(checkpoint_path("a/b", 0), "_checkpoints/a%2Fb/0.json");
        assert_eq!(pending_path("t", 7, OWNER), "_checkpoints/t/7.pending.0123456789abcdef.json");
        assert!(is_pending_of("7.pending.0123456789abcdef.json", 7));
        assert!(!is_pending_of("7.pending.0123456789abcdef.json", 77));
        assert!(!is_pending_of("7.pending.json", 7), "owner ids are 16 hex digits");
        assert!(!is_pending_of("7.json", 7));
        assert_eq!(fenced_path("t", 7, OWNER), "_checkpoints/t/7.fenced.0123456789abcdef.json");
        assert!(is_fenced_of("7.fenced.0123456789abcdef.json", 7));
        assert!(!is_fenced_of("7.pending.0123456789abcdef.json", 7));
        assert!(!is_pending_of("7.fenced.0123456789abcdef.json", 7));
        assert!(!is_fenced_of("7.fenced.0123456789abcdef.json", 77));
        assert_eq!(sanitize_stream(".hidden"), "%2Ehidden");
        assert_eq!(sanitize_stream(""), HIVE_DEFAULT_PARTITION);
    }

    #[test]
    fn own_temporaries_are_recognised_exactly() {
        let mine = tmp_name(&file_name("a", 1, 0, 0, 5, OWNER), "x1");
        assert!(is_own_tmp(&tmp_name(&file_name("a", 1, 7, 0, 5, OWNER), "x3"), "a", 1));
        assert!(is_own_tmp(&tmp_name(&file_name("a", 1, 0, 0, 5, "fedcba9876543210"), "x4"), "a", 1));
        assert!(is_own_tmp(&mine, "a", 1));
        assert!(!is_own_tmp(&mine, "a", 2));
        assert!(!is_own_tmp(&mine, "b", 1));
        // Stream `a-1` partition 2 shares the textual prefix `a-1-` with stream `a` partition 1.
        let other = tmp_name(&file_name("a-1", 2, 0, 0, 5, OWNER), "x2");
        assert!(!is_own_tmp(&other, "a", 1));
        assert!(is_own_tmp(&other, "a-1", 2));
        assert!(!is_own_tmp(&tmp_name("1.json", "z"), "a", 1), "the record's are cleaned under its lock");
        assert!(is_own_tmp(&tmp_name(&format!("1.pending.{OWNER}.json"), "z"), "a", 1));
        assert!(is_own_tmp(&tmp_name(&format!("1.fenced.{OWNER}.json"), "z"), "a", 1));
        assert!(!is_own_tmp(&tmp_name("12.json", "z"), "a", 1));
        assert!(!is_own_tmp(&file_name("a", 1, 0, 0, 5, OWNER), "a", 1), "final files are not temporaries");
        let unowned = tmp_name("a-1-00000000000000000000-00000000000000000005.parquet", "x5");
        assert!(!is_own_tmp(&unowned, "a", 1), "names without a claim id are not this layout's");
    }
}
