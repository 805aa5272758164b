//! A flush's inference events, held the way they will be written: one set of column
//! builders per events file, that is per (day, app).
//!
//! Ingest [`push`](EventRows::push)es each event as it is read; the row's values go straight
//! into the builders of its file and the event itself can be dropped or reused. At the flush
//! the writer [`seal`](EventRows::seal)s the builders into record batches, puts each file's
//! rows in time order and encodes it. Nothing visits the rows between the two, so a buffered
//! event costs only its values and the flush no second pass over the rows.

use std::collections::HashMap;

use arrow::array::{AsArray, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::record_batch::RecordBatch;

use crate::encode::EventColumns;
use crate::error::{LakeError, Result};
use crate::layout::day_of;
use crate::model::{InferenceEvent, UnixNanos};
use crate::schema::events_schema;

/// Rows a file's builders have room for before they first grow: small, because a flush may
/// hold hundreds of apps in each of dozens of partitions (apps × partitions files, when
/// producers key by trace id), and builders double as they fill. At 64 rows a new file was
/// charged about 110 KB, and 200 apps over 24 partitions filled the default memory budget with
/// almost empty files, which were then flushed at a few rows each.
const INITIAL_ROWS_PER_FILE: usize = 8;

/// Inference events grouped by the file they go to, in columnar form. See the module docs.
#[derive(Debug, Default)]
pub struct EventRows {
    files: Vec<EventFile>,
    /// Index of `files` by app, then day. A map by app name (rather than a scan) because a
    /// partition can carry hundreds of apps, and apps interleave in the input.
    by_app: HashMap<String, Vec<(i64, usize)>, foldhash::fast::RandomState>,
    /// The file the previous row went to: consecutive rows usually share it (an OTLP batch
    /// carries one app's spans), which spares the map probe.
    last: Option<usize>,
    rows: usize,
}

/// One events file of a flush: rows of one app on one day.
#[derive(Debug)]
struct EventFile {
    day: i64,
    /// A time on the file's day, for its date partition.
    some_time: UnixNanos,
    app: String,
    columns: EventColumns,
    /// The rows of the last [`EventRows::seal`], in time order.
    sealed: Option<RecordBatch>,
}

/// One events file's rows, ready to encode.
#[derive(Debug)]
pub struct SealedEventFile<'a> {
    /// The app, for the `app=` partition.
    pub app: &'a str,
    /// A time on the file's day, for the `date=` partition.
    pub some_time: UnixNanos,
    /// The rows, in time order; equal times keep their push order.
    pub rows: RecordBatch,
}

impl EventRows {
    /// Buffer one event; returns the heap bytes the buffer may hold for it: twice what it wrote
    /// into the builders, because builders double as they grow, and once what a new file's
    /// builders allocate up front (capacity never exceeds the larger of the two). The flush
    /// budget is counted in these.
    pub fn push(&mut self, event: &InferenceEvent) -> usize {
        let day = day_of(event.time);
        let (at, new_file_bytes) = match self.last {
            Some(at) if self.files[at].day == day && self.files[at].app == event.app => (at, 0),
            _ => self.file_for(day, event),
        };
        self.last = Some(at);
        self.rows += 1;
        new_file_bytes + 2 * self.files[at].columns.append(event)
    }

    /// The file `event` goes to, created if it is the first of its app and day; with the bytes
    /// a new file's builders take.
    fn file_for(&mut self, day: i64, event: &InferenceEvent) -> (usize, usize) {
        if let Some(&(_, at)) =
            self.by_app.get(event.app.as_str()).and_then(|days| days.iter().find(|(d, _)| *d == day))
        {
            return (at, 0);
        }
        let at = self.files.len();
        self.files.push(EventFile {
            day,
            some_time: event.time,
            app: event.app.clone(),
            columns: EventColumns::with_capacity(INITIAL_ROWS_PER_FILE),
            sealed: None,
        });
        self.by_app.entry(event.app.clone()).or_default().push((day, at));
        (at, EventColumns::initial_bytes(INITIAL_ROWS_PER_FILE) + 2 * event.app.len())
    }

    /// Events buffered.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no event is buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Every file's rows, ordered by day then app, each in time order (ties keep their push
    /// order, so the same input always gives the same files). The rows stay here: sealing
    /// again (a retried flush) returns the same files, and rows pushed after a seal join them.
    pub fn seal(&mut self) -> Result<Vec<SealedEventFile<'_>>> {
        let mut order: Vec<usize> = (0..self.files.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.files[a], &self.files[b]);
            a.day.cmp(&b.day).then_with(|| a.app.cmp(&b.app))
        });
        for file in &mut self.files {
            if !file.columns.is_empty() {
                let pushed = file.columns.finish()?;
                // Rows pushed after an earlier seal join that seal's rows: one batch per file.
                let rows = match file.sealed.take() {
                    None => pushed,
                    Some(sealed) => concat_batches(&events_schema(), [&sealed, &pushed]).map_err(arrow_error)?,
                };
                file.sealed = Some(time_ordered(rows)?);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|at| {
                let file = &self.files[at];
                let rows = file.sealed.clone()?;
                Some(SealedEventFile { app: &file.app, some_time: file.some_time, rows })
            })
            .collect())
    }
}

impl From<Vec<InferenceEvent>> for EventRows {
    fn from(events: Vec<InferenceEvent>) -> Self {
        events.into_iter().collect()
    }
}

impl FromIterator<InferenceEvent> for EventRows {
    fn from_iter<I: IntoIterator<Item = InferenceEvent>>(events: I) -> Self {
        let mut rows = Self::default();
        for event in events {
            rows.push(&event);
        }
        rows
    }
}

fn arrow_error(source: arrow::error::ArrowError) -> LakeError {
    LakeError::Arrow { kind: "events", source }
}

/// `rows` sorted by their `time` column, stably; untouched when already in order (the usual
/// case: only late events break it).
fn time_ordered(rows: RecordBatch) -> Result<RecordBatch> {
    let Some(times) = rows.column_by_name("time").and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()) else {
        return Err(arrow_error(arrow::error::ArrowError::SchemaError("events rows without a time column".into())));
    };
    let times = times.values();
    if times.is_sorted() {
        return Ok(rows);
    }
    let mut order: Vec<u32> = (0..times.len() as u32).collect();
    order.sort_by_key(|&at| times[at as usize]);
    take_record_batch(&rows, &UInt32Array::from(order)).map_err(arrow_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_events;
    use crate::layout::date_partition;
    use crate::test_support::{DAY1, DAY2, full_event};

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn ids(events: &[InferenceEvent]) -> Vec<String> {
        events.iter().map(|e| e.event_id.clone()).collect()
    }

    #[test]
    fn events_are_filed_by_day_then_app_then_time_keeping_ties_in_push_order() -> TestResult {
        // Three apps across two days, times interleaved, with equal times to test stability.
        let events: Vec<InferenceEvent> = (0..60i64)
            .map(|i| {
                let app = ["zeta", "alpha", "mid"][(i % 3) as usize];
                let day = if i % 4 == 0 { DAY2 } else { DAY1 };
                full_event(i, app, day + (i % 5) * 1_000)
            })
            .collect();
        let mut expected = events.clone();
        expected.sort_by(|a, b| (day_of(a.time), &a.app, a.time).cmp(&(day_of(b.time), &b.app, b.time)));

        let mut rows = EventRows::from(events);
        assert_eq!(rows.len(), 60);
        let files = rows.seal()?;
        assert_eq!(files.len(), 6, "3 apps x 2 days");
        let mut filed = Vec::new();
        for file in &files {
            let decoded = decode_events(&file.rows)?;
            assert!(decoded.iter().all(|e| e.app == file.app && day_of(e.time) == day_of(file.some_time)));
            filed.extend(decoded);
        }
        assert_eq!(ids(&filed), ids(&expected));
        assert_eq!(filed, expected, "every column survives the builders");
        Ok(())
    }

    #[test]
    fn ties_keep_push_order_in_a_large_file() -> TestResult {
        // Small slices sort stably whatever the algorithm; ties must survive a large one too.
        let events: Vec<InferenceEvent> =
            (0..2_000i64).map(|i| full_event(i, "chat", DAY1 + (i * 7_919) % 10 * 1_000)).collect();
        let mut expected = events.clone();
        expected.sort_by_key(|e| e.time);
        let mut rows = EventRows::from(events);
        let files = rows.seal()?;
        assert_eq!(files.len(), 1);
        assert_eq!(ids(&decode_events(&files[0].rows)?), ids(&expected));
        Ok(())
    }

    #[test]
    fn sealing_again_and_pushing_after_a_seal_keep_every_row_once() -> TestResult {
        let mut rows = EventRows::default();
        for i in (0..10).rev() {
            rows.push(&full_event(i, "chat", DAY1 + i));
        }
        let first: Vec<RecordBatch> = rows.seal()?.into_iter().map(|f| f.rows).collect();
        let again: Vec<RecordBatch> = rows.seal()?.into_iter().map(|f| f.rows).collect();
        assert_eq!(first, again, "a retried flush sees the same files");

        rows.push(&full_event(20, "chat", DAY1 + 5));
        rows.push(&full_event(21, "chat", DAY2));
        let files = rows.seal()?;
        assert_eq!(files.len(), 2);
        let day1 = decode_events(&files[0].rows)?;
        assert_eq!(day1.len(), 11);
        assert!(day1.windows(2).all(|w| w[0].time <= w[1].time), "merged rows are in time order again");
        assert_eq!(date_partition(files[1].some_time), date_partition(DAY2));
        Ok(())
    }

    #[test]
    fn pushed_bytes_count_new_files_and_string_values() {
        let mut rows = EventRows::default();
        let mut event = full_event(1, "chat", DAY1);
        event.content = None;
        let first = rows.push(&event);
        let second = rows.push(&event);
        assert!(first > second, "the first row of a file pays for its builders: {first} vs {second}");
        event.content = Some("x".repeat(10_000));
        assert!(rows.push(&event) >= second + 10_000, "string values are counted");
        assert_eq!(rows.len(), 3);
    }

    /// One row in each of 200 apps (a partition of a fleet keyed by trace id) is charged a few
    /// KB per file, not the 110 KB per file that filled the memory budget with empty files
    /// (the backlog audit: 22.3 MB for these 200 rows, 246 KB for 200 rows of one app).
    #[test]
    fn a_new_files_charge_is_a_few_kilobytes() {
        let mut event = full_event(1, "chat", DAY1);
        event.content = None;
        let mut spread = EventRows::default();
        let charged: usize = (0..200)
            .map(|n| {
                event.app = format!("app-{n:03}");
                spread.push(&event)
            })
            .sum();
        assert!(charged < 200 * 10_000, "charged {charged} bytes for 200 one-row files");
    }
}
