//! What becomes of partitions: events from the poll thread (messages, assignments, revokes,
//! losses), partitions the lake says another daemon has claimed, and partitions whose offsets
//! went backwards. Also where each partition's lag counts from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Daemon;
use crate::error::{Error, Result};
use crate::pipeline::{FlushReason, PartitionBuffer};
use crate::source::kafka::channel::{Command, Event};
use crate::source::kafka::poller::kafka_stream_id;

/// How long a partition claimed in the lake by another writer, and neither taken away nor
/// assigned again by the group, is skipped before this member claims it back: longer than a
/// member the group moved on from takes to hear so (within a session, `session.timeout.ms`, 30 s
/// by default here), so that the rightful owner is not fenced by the member it replaced.
pub(super) const RECLAIM_AFTER: Duration = Duration::from_secs(60);

impl Daemon<'_> {
    pub(super) async fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Messages(messages) => {
                for message in messages {
                    self.on_message(&message).await?;
                }
                // Once per batch: the budget check sums every partition's buffer.
                self.relieve_memory().await?;
            }
            Event::Assigned(partitions) => {
                for assigned in partitions {
                    let (topic, partition) = (self.topic(&assigned.topic), assigned.partition);
                    let key = (Arc::clone(&topic), partition);
                    self.claimed_elsewhere.remove(&key);
                    let buffer = self.new_buffer(&topic, partition, assigned.resume_at, assigned.claim);
                    if let Some(start) = assigned.resume_at {
                        self.durable.insert(key.clone(), (start, Instant::now()));
                    }
                    // From the recovered checkpoint, so the age is there (and right) from the
                    // assignment on, not only after this daemon's first flush; without one,
                    // from now, so that a partition whose first flush never lands still ages.
                    match assigned.checkpoint_at {
                        Some(at) => self.components.metrics.record_checkpoint(&topic, partition, at),
                        None => self.components.metrics.record_assigned_without_checkpoint(
                            &topic,
                            partition,
                            std::time::SystemTime::now(),
                        ),
                    }
                    match assigned.position {
                        Some(position) => self.started_at.insert(key.clone(), position),
                        None => self.started_at.remove(&key),
                    };
                    self.publish_lag_start(&key);
                    self.buffers.insert(key, buffer);
                }
            }
            Event::Revoked { partitions, reply } => {
                let keys: Vec<(Arc<str>, i32)> =
                    partitions.iter().map(|(topic, partition)| (self.topic(topic), *partition)).collect();
                for key in &keys {
                    self.flush(key, FlushReason::Revoke).await?;
                }
                self.drain_flushes().await?;
                let mut durable = Vec::new();
                for key in &keys {
                    self.buffers.remove(key);
                    self.claimed_elsewhere.remove(key);
                    if let Some(offset) = self.forget_partition(key) {
                        durable.push((key.0.to_string(), key.1, offset));
                    }
                }
                // The poll thread waits for this answer inside the rebalance callback.
                let _ = reply.send(durable);
            }
            Event::Lost { partitions, done } => {
                let mut fenced = Vec::with_capacity(partitions.len());
                for (topic, partition) in partitions {
                    let key = (self.topic(&topic), partition);
                    self.claimed_elsewhere.remove(&key);
                    let dropped = self.buffers.remove(&key).map_or(0, |buffer| buffer.rows());
                    tracing::warn!(
                        topic,
                        partition,
                        dropped_rows = dropped,
                        "Partition lost; its buffered rows were dropped unwritten for the new owner to read again."
                    );
                    self.forget_partition(&key);
                    let stream = kafka_stream_id(&self.group_id, &topic);
                    self.flusher.fence(&stream, partition);
                    fenced.push((stream, partition));
                }
                // Flushes not yet started are dropped (fenced); the one being written, if any,
                // completes. All must be over before the poll thread may recover a partition
                // that comes back to this member.
                self.drain_flushes().await?;
                for (stream, partition) in fenced {
                    self.flusher.unfence(&stream, partition);
                }
                let _ = done.send(());
            }
            Event::Fatal { kind, message } => {
                return Err(Error::FatalKafka { kind, message });
            }
        }
        Ok(())
    }

    /// The lake says another daemon has claimed this partition: this member was stalled long
    /// enough for the group to move the partition, and has not heard of it yet. Drop what it
    /// holds of it and skip its messages until the group assigns it here again.
    pub(super) fn drop_claimed_partition(&mut self, stream: &str, partition: i32) {
        let Some(topic) = self.streams.get(stream).cloned() else { return };
        let key = (topic, partition);
        let dropped = self.buffers.remove(&key).map_or(0, |buffer| buffer.rows());
        tracing::warn!(
            topic = %key.0,
            partition,
            dropped_rows = dropped,
            "Partition claimed by another daemon in the lake; its messages are skipped until it is assigned here again."
        );
        self.forget_partition(&key);
        // A second flush of the partition that was already in flight reports the same claim:
        // the wait for a reclaim counts from the first report, or a steady trickle of such
        // reports would put the reclaim off for good.
        self.claimed_elsewhere.entry(key).or_insert_with(Instant::now);
    }

    /// Partitions claimed in the lake by another writer for [`RECLAIM_AFTER`] while the group
    /// has neither taken them away nor assigned them here again: ask the poll thread to claim
    /// them back. The group, not the lake, says who owns a partition; the lake's claim only
    /// fences a writer the group has moved on from, which hears of it within a session. A
    /// claim that outlives that came from such a writer finishing a late recovery (it waited
    /// out a lake outage in its rebalance callback), and left unanswered it stopped this
    /// partition for good under cooperative rebalancing, which never assigns a kept partition
    /// again (the cooperative chaos audit), and until the next rebalance under eager.
    pub(super) fn reclaim_partitions_still_assigned(&mut self, now: Instant) {
        for ((topic, partition), since) in &mut self.claimed_elsewhere {
            if now.duration_since(*since) < RECLAIM_AFTER {
                continue;
            }
            // Asked again after as long if the poll thread finds the lake or the group unwilling.
            *since = now;
            let command = Command::Reclaim { topic: topic.to_string(), partition: *partition };
            if self.commands.send(command).is_err() {
                return;
            }
        }
    }

    /// Tell the metrics where a partition's lag counts from: the next offset to commit, which is
    /// the durable offset once a flush has completed, and before that the offset the consumer
    /// started reading at. Not started anywhere known yet (at the log's end, `start_from =
    /// "latest"`, with nothing read): nothing is behind. Lag itself is computed at each scrape
    /// from the latest high watermark, so it keeps moving while this loop waits.
    pub(super) fn publish_lag_start(&self, key: &(Arc<str>, i32)) {
        let start = self.durable.get(key).map(|(offset, _)| *offset).or_else(|| self.started_at.get(key).copied());
        self.components.metrics.set_lag_start(&key.0, key.1, start);
    }

    /// Drop the bookkeeping of a partition this member no longer owns; returns the offset it
    /// was durable up to, if any flush of it completed.
    fn forget_partition(&mut self, key: &(Arc<str>, i32)) -> Option<i64> {
        self.processor.metrics().remove_partition(&key.0, key.1);
        self.started_at.remove(key);
        self.durable.remove(key).map(|(offset, _)| offset)
    }

    /// The first message after assignment lies below the checkpoint: the log itself went
    /// backwards (the topic was deleted and recreated, or the broker lost it): make what is buffered durable, then start a new lake epoch at
    /// `offset` so the new incarnation's files never overwrite the old one's.
    pub(super) async fn reset_partition(&mut self, key: &(Arc<str>, i32), offset: i64) -> Result<()> {
        let expected = self.buffers.get(key).map_or(-1, PartitionBuffer::next_offset);
        tracing::warn!(
            topic = %key.0,
            partition = key.1,
            expected,
            offset,
            "Partition offsets went backwards (topic recreated?); starting a new lake epoch."
        );
        self.flush(key, FlushReason::OffsetReset).await?;
        self.drain_flushes().await?;
        let stream = kafka_stream_id(&self.group_id, &key.0);
        self.components
            .writer
            .reset_partition(&stream, key.1, offset)
            .await
            .map_err(|source| Error::Lake { context: format!("resetting {stream}/{}", key.1), source })?;
        let buffer = self.new_buffer(&key.0, key.1, Some(offset), None);
        self.buffers.insert(key.clone(), buffer);
        self.durable.insert(key.clone(), (offset, Instant::now()));
        self.publish_lag_start(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::message::OwnedMessage;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::super::lake_probe::LakeProbe;
    use super::*;
    use crate::FastHashMap;
    use crate::config::Config;
    use crate::pipeline::Flusher;
    use crate::runtime::Components;
    use crate::source::file::now_nanos;
    use crate::source::kafka::channel::AssignedPartition;
    use crate::telemetry::names::{
        CHECKPOINT_AGE_SECONDS, CHECKPOINT_TIMESTAMP_SECONDS, CONSUMER_LAG, LAKE_ROWS_WRITTEN_TOTAL,
    };

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Components over a local lake in `dir`.
    async fn components(dir: &std::path::Path) -> Result<Components> {
        let mut config = Config::default();
        config.lake.location = dir.join("lake").display().to_string();
        Components::build(config).await
    }

    /// The processing loop's state as `consume` builds it, without a consumer behind it.
    fn daemon<'a>(components: &'a Components, tasks: &TaskTracker) -> Daemon<'a> {
        daemon_with_slots(components, tasks, 2)
    }

    /// [`daemon`] with `slots` flushes in flight at most.
    fn daemon_with_slots<'a>(components: &'a Components, tasks: &TaskTracker, slots: usize) -> Daemon<'a> {
        // The poll thread's end of the commands is not needed: the loop ignores a closed one.
        #[allow(clippy::disallowed_methods)] // the daemon's command channel's type
        let (commands, _) = std::sync::mpsc::channel();
        Daemon {
            components,
            processor: components.processor(),
            flusher: Flusher::spawn(
                Arc::clone(&components.writer),
                components.metrics.clone(),
                slots,
                tasks,
                CancellationToken::new(),
            ),
            buffers: FastHashMap::default(),
            formats: FastHashMap::default(),
            topics: FastHashMap::default(),
            streams: FastHashMap::default(),
            group_id: "group".to_owned(),
            durable: FastHashMap::default(),
            started_at: FastHashMap::default(),
            claimed_elsewhere: crate::FastHashMap::default(),
            commands,
            lake: {
                let mut lake = LakeProbe::new();
                lake.writable = true;
                lake
            },
        }
    }

    /// The value of a per-partition series of topic `spans` in the exposition.
    fn series(text: &str, name: &str, partition: i32) -> Option<f64> {
        let prefix = format!("{name}{{topic=\"spans\",partition=\"{partition}\"}} ");
        text.lines().find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
    }

    fn assigned(partition: i32, resume_at: Option<i64>, position: Option<i64>) -> AssignedPartition {
        AssignedPartition {
            topic: "spans".to_owned(),
            partition,
            resume_at,
            position,
            checkpoint_at: None,
            claim: None,
        }
    }

    /// Without a durable offset, lag counts from where the consumer started reading, not
    /// from offset 0: an idle topic consumed from its end is not behind by its whole log.
    #[tokio::test]
    async fn lag_counts_from_where_consumption_started_until_a_flush_is_durable() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        components.metrics.note_high_watermarks([("spans", 0, 1_000), ("spans", 1, 1_000), ("spans", 2, 1_000)]);
        daemon
            .on_event(Event::Assigned(vec![
                // start_from = "latest", nothing read yet: at the log's end.
                assigned(0, None, None),
                // start_from = "earliest" on a log that starts at 400.
                assigned(1, None, Some(400)),
                // Resumed at a lake checkpoint.
                assigned(2, Some(900), Some(900)),
            ]))
            .await?;
        daemon.on_tick().await?;
        let text = components.metrics.encode()?;
        assert_eq!(series(&text, CONSUMER_LAG, 0), Some(0.0), "{text}");
        assert_eq!(series(&text, CONSUMER_LAG, 1), Some(600.0), "{text}");
        assert_eq!(series(&text, CONSUMER_LAG, 2), Some(100.0), "{text}");
        Ok(())
    }

    /// A partition resumed at a checkpoint reports the checkpoint's time from its assignment
    /// on, as after a restart, not only from its next flush.
    #[tokio::test]
    async fn the_recovered_checkpoints_time_is_reported_at_assignment() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        let written = std::time::UNIX_EPOCH + Duration::from_secs(1_772_323_200);
        let resumed = AssignedPartition { checkpoint_at: Some(written), ..assigned(3, Some(900), Some(900)) };
        daemon.on_event(Event::Assigned(vec![resumed, assigned(4, None, None)])).await?;
        let text = components.metrics.encode()?;
        assert_eq!(series(&text, CHECKPOINT_TIMESTAMP_SECONDS, 3), Some(1_772_323_200.0), "{text}");
        assert!(series(&text, CHECKPOINT_AGE_SECONDS, 3).is_some_and(|age| age > 0.0), "{text}");
        // No checkpoint: the age counts from the assignment, and there is no timestamp.
        assert!(series(&text, CHECKPOINT_AGE_SECONDS, 4).is_some_and(|age| age < 60.0), "{text}");
        assert_eq!(series(&text, CHECKPOINT_TIMESTAMP_SECONDS, 4), None, "no checkpoint, no time: {text}");
        Ok(())
    }

    /// The wait before a reclaim counts from the first report that another writer holds the
    /// partition; a later one (a second flush that was in flight) does not restart it.
    #[tokio::test]
    async fn a_second_claim_report_does_not_put_the_reclaim_off() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        let stream = kafka_stream_id("group", "spans");
        let topic: Arc<str> = Arc::from("spans");
        daemon.streams.insert(stream.clone(), Arc::clone(&topic));
        daemon.on_event(Event::Assigned(vec![assigned(0, None, Some(0))])).await?;

        daemon.drop_claimed_partition(&stream, 0);
        let first = daemon.claimed_elsewhere.get(&(Arc::clone(&topic), 0)).copied();
        std::thread::sleep(Duration::from_millis(5));
        daemon.drop_claimed_partition(&stream, 0);
        let second = daemon.claimed_elsewhere.get(&(Arc::clone(&topic), 0)).copied();
        assert!(first.is_some());
        assert_eq!(first, second, "the reclaim waits from the first report");
        Ok(())
    }

    /// JSON inference events at `offsets` of partition 0 of `spans`, timed now.
    fn json_messages(offsets: std::ops::Range<i64>) -> Vec<OwnedMessage> {
        json_messages_of(0, offsets)
    }

    /// JSON inference events at `offsets` of `partition` of `spans`, timed now.
    fn json_messages_of(partition: i32, offsets: std::ops::Range<i64>) -> Vec<OwnedMessage> {
        offsets
            .map(|offset| {
                let payload = serde_json::json!({
                    "id": format!("call-{offset}"),
                    "time_unix_nano": now_nanos(),
                    "app": "support-bot",
                    "request_model": "gpt-4o",
                    "input_tokens": 10,
                    "output_tokens": 20,
                });
                let timestamp = rdkafka::Timestamp::NotAvailable;
                OwnedMessage::new(
                    Some(payload.to_string().into_bytes()),
                    None,
                    "spans".into(),
                    timestamp,
                    partition,
                    offset,
                    None,
                )
            })
            .collect()
    }

    /// A revoke whose flush outlasts the poll thread's wait is released uncommitted; if the
    /// group then assigns the partition back here, the poll thread recovers it again (a new
    /// claim) and the partition is re-read from the checkpoint. The flush that was still queued
    /// from the first reading must not be committed under the new claim: the re-read's first
    /// flush would straddle it, and the daemon would stop.
    #[tokio::test]
    async fn a_flush_left_from_before_a_partition_came_back_is_dropped_not_committed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        let stream = kafka_stream_id("group", "spans");
        let writer = &components.writer;
        let rows_written = |text: &str| -> Option<f64> {
            let prefix = format!("{LAKE_ROWS_WRITTEN_TOTAL}{{kind=\"events\"}} ");
            text.lines().find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        };

        writer.recover(&stream, 0).await?;
        let first = AssignedPartition { claim: writer.held_claim(&stream, 0), ..assigned(0, None, Some(0)) };
        daemon.on_event(Event::Assigned(vec![first])).await?;
        daemon.on_event(Event::Messages(json_messages(0..10))).await?;
        // The poll thread gave up waiting, released the partition and got it back: recovered
        // again, from the checkpoint that the first reading never advanced.
        assert_eq!(writer.recover(&stream, 0).await?, None);
        let again = AssignedPartition { claim: writer.held_claim(&stream, 0), ..assigned(0, None, Some(0)) };
        let (reply, _gave_up) = std::sync::mpsc::sync_channel(1);
        // The loop now gets to the revoke: its flush belongs to the first claim.
        daemon.on_event(Event::Revoked { partitions: vec![("spans".to_owned(), 0)], reply }).await?;
        assert_eq!(writer.read_checkpoint(&stream, 0).await?, None, "the stale flush is not committed");

        daemon.on_event(Event::Assigned(vec![again])).await?;
        daemon.on_event(Event::Messages(json_messages(0..15))).await?;
        let (reply, durable) = std::sync::mpsc::sync_channel(1);
        daemon.on_event(Event::Revoked { partitions: vec![("spans".to_owned(), 0)], reply }).await?;
        assert_eq!(durable.try_recv()?, vec![("spans".to_owned(), 0, 15)]);
        assert_eq!(writer.read_checkpoint(&stream, 0).await?.map(|c| c.next_offset), Some(15));
        let text = components.metrics.encode()?;
        assert_eq!(rows_written(&text), Some(15.0), "each call once: {text}");
        Ok(())
    }

    /// With every flush slot taken, handing over the next due partition waits for a completion;
    /// that completion is applied at once (checkpoint time, lag, the Kafka commit), not after
    /// the tick has handed over every due partition: behind a slow lake with 48 partitions due
    /// together, checkpoint ages rose to minutes while the commits had landed (backlog audit).
    #[tokio::test]
    async fn a_completion_taken_to_free_a_slot_is_applied_at_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon_with_slots(&components, &tasks, 1);
        let stream = kafka_stream_id("group", "spans");
        let mut partitions = Vec::new();
        for partition in 0..3 {
            components.writer.recover(&stream, partition).await?;
            let claim = components.writer.held_claim(&stream, partition);
            partitions.push(AssignedPartition { claim, ..assigned(partition, None, Some(0)) });
        }
        daemon.on_event(Event::Assigned(partitions)).await?;
        for partition in 0..3 {
            daemon.on_event(Event::Messages(json_messages_of(partition, 0..5))).await?;
        }
        let spans: Arc<str> = Arc::from("spans");
        daemon.flush(&(Arc::clone(&spans), 0), FlushReason::Age).await?;
        // The one slot is taken: this waits for partition 0's flush, and applies it.
        daemon.flush(&(Arc::clone(&spans), 1), FlushReason::Age).await?;
        let text = components.metrics.encode()?;
        assert!(series(&text, CHECKPOINT_TIMESTAMP_SECONDS, 0).is_some(), "{text}");
        assert_eq!(daemon.durable.get(&(Arc::clone(&spans), 0)).map(|(offset, _)| *offset), Some(5));
        daemon.drain_flushes().await?;
        assert_eq!(daemon.durable.len(), 2, "both flushes applied once");
        Ok(())
    }
}
