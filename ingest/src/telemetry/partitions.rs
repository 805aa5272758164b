//! Per-partition series computed at scrape time: checkpoint age and timestamp, consumer lag,
//! and how many partitions the daemon holds. The pipeline notes what it knows (a commit, an
//! assignment, a high watermark, where a partition's lake data ends) into a [`PartitionMap`];
//! each collector turns that into gauges when `/metrics` is read, so an age keeps growing and a
//! lag keeps moving while the processing loop is blocked, where a gauge the loop set would
//! freeze.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::metrics::TopicPartition;
use super::names::{
    ASSIGNED_PARTITIONS, CHECKPOINT_AGE_SECONDS, CHECKPOINT_TIMESTAMP_SECONDS, CONSUMER_LAG, LABEL_PARTITION,
    LABEL_TOPIC,
};

/// What a partition's checkpoint age counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AgeSince {
    /// The last committed checkpoint: its time is also the checkpoint timestamp.
    Checkpoint(SystemTime),
    /// The assignment of a partition that has no checkpoint yet: no timestamp series.
    Assignment(SystemTime),
}

impl AgeSince {
    fn start(self) -> SystemTime {
        match self {
            AgeSince::Checkpoint(at) | AgeSince::Assignment(at) => at,
        }
    }
}

/// Values per (topic, partition), set by the pipeline and read by a collector at each scrape.
#[derive(Debug)]
struct PartitionMap<V>(Mutex<HashMap<Arc<str>, HashMap<i32, V>>>);

impl<V> Default for PartitionMap<V> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<V> PartitionMap<V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, HashMap<i32, V>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Apply `change` to a partition's value, `new` if it has none yet, in a map already locked.
    fn update(
        partitions: &mut HashMap<Arc<str>, HashMap<i32, V>>,
        topic: &str,
        partition: i32,
        new: impl FnOnce() -> V,
        change: impl FnOnce(&mut V),
    ) {
        // Looked up by `&str` first: statistics arrive every few seconds for every partition.
        match partitions.get_mut(topic) {
            Some(of_topic) => change(of_topic.entry(partition).or_insert_with(new)),
            None => change(partitions.entry(Arc::from(topic)).or_default().entry(partition).or_insert_with(new)),
        }
    }

    fn remove(&self, topic: &str, partition: i32) {
        let mut partitions = self.lock();
        if let Some(of_topic) = partitions.get_mut(topic) {
            of_topic.remove(&partition);
            if of_topic.is_empty() {
                partitions.remove(topic);
            }
        }
    }

    /// What `row` makes of each partition's value (partitions it returns `None` for are left
    /// out), in (topic, partition) order.
    fn rows<T>(&self, row: impl Fn(&V) -> Option<T>) -> Vec<(Arc<str>, i32, T)> {
        let mut rows: Vec<(Arc<str>, i32, T)> = self
            .lock()
            .iter()
            .flat_map(|(topic, of_topic)| {
                of_topic.iter().filter_map(|(partition, value)| Some((Arc::clone(topic), *partition, row(value)?)))
            })
            .collect();
        rows.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        rows
    }
}

/// Emits checkpoint timestamps and ages computed at scrape time, so the age
/// keeps growing when commits stall (a stored age would freeze).
#[derive(Debug, Default)]
pub(super) struct CheckpointCollector {
    /// What each partition's age counts from.
    times: PartitionMap<AgeSince>,
}

impl CheckpointCollector {
    pub(super) fn note(&self, topic: &str, partition: i32, since: AgeSince) {
        PartitionMap::update(&mut self.times.lock(), topic, partition, || since, |time| *time = since);
    }

    /// Stop reporting a partition this process no longer owns.
    pub(super) fn forget(&self, topic: &str, partition: i32) {
        self.times.remove(topic, partition);
    }
}

impl Collector for CheckpointCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let now = SystemTime::now();
        // (age, Unix time of the checkpoint if there is one) per partition
        let rows = self.times.rows(|&since| {
            // A start "in the future" (clock step) has age 0, not a negative age.
            let age = now.duration_since(since.start()).unwrap_or(Duration::ZERO).as_secs_f64();
            let unix = match since {
                AgeSince::Checkpoint(at) => Some(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()),
                AgeSince::Assignment(_) => None,
            };
            Some((age, unix))
        });
        let help = "Seconds since the last committed checkpoint (since assignment before the first).";
        let mut ages = encoder.encode_descriptor(CHECKPOINT_AGE_SECONDS, help, None, MetricType::Gauge)?;
        for (topic, partition, (age, _)) in &rows {
            let labels: TopicPartition = ([(LABEL_TOPIC, Arc::clone(topic))], [(LABEL_PARTITION, *partition)]);
            ConstGauge::new(*age).encode(ages.encode_family(&labels)?)?;
        }
        let help = "Unix time of the last committed checkpoint.";
        let mut stamps = encoder.encode_descriptor(CHECKPOINT_TIMESTAMP_SECONDS, help, None, MetricType::Gauge)?;
        for (topic, partition, (_, unix)) in &rows {
            let Some(unix) = unix else { continue };
            let labels: TopicPartition = ([(LABEL_TOPIC, Arc::clone(topic))], [(LABEL_PARTITION, *partition)]);
            ConstGauge::new(*unix).encode(stamps.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Emits consumer lag computed at scrape time, from the latest high watermark known and where
/// each owned partition's lake data ends: lag keeps moving while the processing loop waits (for
/// the lake, for a flush slot), where a gauge the loop set froze.
///
/// A log's tail may hold records that are not messages: a transaction's commit or abort marker
/// and an aborted transaction's records, which the consumer passes over without handing them on
/// (driftwatch reads committed transactions only). The lake's data ends before them, so lag
/// counted from there never fell to 0 on a partition a transactional producer wrote last, and
/// the stall alert paged for it once the partition went quiet. Lag counts from the consumer's
/// position past them instead, once every message before them is in the lake.
#[derive(Debug, Default)]
pub(super) struct LagCollector {
    partitions: PartitionMap<PartitionLag>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PartitionLag {
    /// Owned by this process: only owned partitions are reported (librdkafka's statistics also
    /// carry partitions just given away).
    owned: bool,
    /// The offset lag counts from (`None`: nothing read yet).
    start: Option<i64>,
    /// The latest high watermark known (librdkafka's statistics, every few seconds).
    high: Option<i64>,
    /// The offset after the last message handed on, noted four times a second: a floor under the high
    /// watermark fresher than the statistics, without which lag read close to 0 under steady load
    /// (a flush moved the start up to a watermark seconds old).
    handed_on_to: Option<i64>,
    /// Where the consumer stood at the last statistics of this assignment.
    passed_over: Option<PassedOver>,
}

/// Where the consumer stood when last asked: it had handed on every message below
/// `handed_on_to` (`None`: none since the assignment) and its position was `position`, which
/// is past the last message handed on, or past the records between them it passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PassedOver {
    pub(super) handed_on_to: Option<i64>,
    pub(super) position: i64,
}

impl PartitionLag {
    /// Where lag counts from: the offset the lake's data ends at, or the consumer's position
    /// when every message handed on is in the lake (what lies between is no message, and a
    /// message still to come has an offset at or after the position).
    fn counted_from(&self, start: i64) -> i64 {
        match self.passed_over {
            Some(PassedOver { handed_on_to, position }) if handed_on_to.is_none_or(|to| start >= to) => {
                start.max(position)
            }
            _ => start,
        }
    }
}

impl LagCollector {
    pub(super) fn note_high_watermarks<'a>(&self, marks: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        let mut partitions = self.partitions.lock();
        for (topic, partition, high) in marks {
            if partition >= 0 && high >= 0 {
                PartitionMap::update(&mut partitions, topic, partition, PartitionLag::default, |lag| {
                    lag.high = Some(high);
                });
            }
        }
    }

    /// Note where the consumer stands in each partition it owns (its position, after its last
    /// message or past records it passed over). Statistics taken while a partition was being
    /// released still carry its old position; kept for a partition not owned, it would count
    /// lag from there should the partition come back resuming at an earlier checkpoint.
    pub(super) fn note_positions<'a>(&self, positions: impl IntoIterator<Item = (&'a str, i32, PassedOver)>) {
        let mut partitions = self.partitions.lock();
        for (topic, partition, passed_over) in positions {
            if passed_over.position < 0 {
                continue;
            }
            if let Some(lag) = partitions.get_mut(topic).and_then(|of_topic| of_topic.get_mut(&partition))
                && lag.owned
            {
                lag.passed_over = Some(passed_over);
            }
        }
    }

    /// Note the offset after the last message handed on in each partition this process owns.
    pub(super) fn note_handed_on<'a>(&self, positions: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        let mut partitions = self.partitions.lock();
        for (topic, partition, next) in positions {
            if let Some(lag) = partitions.get_mut(topic).and_then(|of_topic| of_topic.get_mut(&partition))
                && lag.owned
            {
                lag.handed_on_to = Some(next);
            }
        }
    }

    /// Stop reporting a partition this process no longer owns.
    pub(super) fn forget(&self, topic: &str, partition: i32) {
        self.partitions.remove(topic, partition);
    }

    pub(super) fn set_start(&self, topic: &str, partition: i32, start: Option<i64>) {
        PartitionMap::update(&mut self.partitions.lock(), topic, partition, PartitionLag::default, |lag| {
            lag.owned = true;
            lag.start = start;
        });
    }
}

impl Collector for LagCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // One snapshot for both: the partitions held are those whose lag is reported, and those
        // with no watermark known yet.
        let owned = self.partitions.rows(|lag| lag.owned.then_some(*lag));
        let help = "Messages behind the high watermark.";
        let mut lags = encoder.encode_descriptor(CONSUMER_LAG, help, None, MetricType::Gauge)?;
        for (topic, partition, lag) in &owned {
            let Some(high) = lag.high.max(lag.handed_on_to) else { continue };
            let behind = lag.start.map_or(0, |start| (high - lag.counted_from(start)).max(0));
            let labels: TopicPartition = ([(LABEL_TOPIC, Arc::clone(topic))], [(LABEL_PARTITION, *partition)]);
            ConstGauge::new(behind).encode(lags.encode_family(&labels)?)?;
        }
        let help = "Kafka partitions this daemon holds.";
        let assigned = encoder.encode_descriptor(ASSIGNED_PARTITIONS, help, None, MetricType::Gauge)?;
        ConstGauge::new(i64::try_from(owned.len()).unwrap_or(i64::MAX)).encode(assigned)?;
        Ok(())
    }
}
