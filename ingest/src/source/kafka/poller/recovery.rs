//! Where an assigned partition starts. Each one is recovered from the lake (removing files of a
//! flush that never committed; several partitions at once) and resumes at the lake checkpoint, so Kafka's own committed
//! offsets are only advisory; an unavailable lake is waited for until it answers or shutdown
//! begins. The checkpoint is compared with the log's watermarks: beyond the log's end (the topic
//! was recreated) a new lake epoch starts at the log's start, before it (retention deleted
//! messages never ingested) the loss is reported. When that query fails, the poll loop asks
//! again with backoff until the partition delivers a message. The watermarks are asked of the
//! broker while the lake is read, several partitions at once, so an assignment waits for the
//! slower of the two round trips rather than for their sum, partition after partition.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use driftwatch_lake::checkpoint::Checkpoint;

use super::{PollerContext, SEEK_TIMEOUT, kafka_stream_id};
use crate::config::StartFrom;
use crate::source::kafka::channel::{AssignedPartition, Event};
use crate::telemetry::ConsumerErrorKind;

/// An assignment recovered from the lake: where librdkafka starts each partition, and what
/// the processing loop is told of each (topic, partition, resume offset).
type RecoveredAssignment = (TopicPartitionList, Vec<AssignedPartition>);

/// Partitions whose lake records are recovered at once when an assignment arrives. Each
/// recovery is a handful of object-store round trips (read and claim the partition's record,
/// list its manifests, check the claim, sweep temporary files); one after another, a member
/// given 48 partitions of a lake on S3 waited seconds before reading anything, at every
/// rebalance of an eager group.
const RECOVERY_CONCURRENCY: usize = 16;

/// Watermark queries in flight at once when an assignment arrives. librdkafka's query holds
/// its thread for a round trip to the partition's leader, and for the whole offset query
/// timeout when the leader does not answer: one after another, a member given 48 partitions
/// waited 48 round trips, or 48 timeouts while a broker was failing over, inside the rebalance
/// callback, with the poll thread (and every other partition) stopped.
const WATERMARK_QUERY_CONCURRENCY: usize = 16;

/// An assigned partition as the lake names it: topic, lake stream id, partition.
type AssignedPartitionName = (String, String, i32);

/// Watermarks older than this when a checkpoint is compared with them are asked again: a lake
/// that kept the assignment waiting (an outage) leaves them as old as the wait, and retention
/// may have passed the checkpoint meanwhile.
const WATERMARKS_FRESH_FOR: Duration = Duration::from_secs(10);

/// A partition's watermarks (low, high) as the broker gave them, or why it did not, and when
/// they were asked.
struct AskedWatermarks {
    marks: KafkaResult<(i64, i64)>,
    asked_at: Instant,
}

/// An assigned partition, its recovered lake checkpoint (`None`: nothing committed yet) and
/// its log's watermarks.
struct RecoveredPartition {
    topic: String,
    stream: String,
    partition: i32,
    checkpoint: Option<Checkpoint>,
    watermarks: AskedWatermarks,
}

impl PollerContext {
    /// Recover one partition's checkpoint from the lake, retrying until the lake answers.
    /// `None` when shutdown started first: nothing of the partition was read or buffered, so
    /// it is simply left for the next owner.
    async fn recover_checkpoint(&self, topic: &str, stream: &str, partition: i32) -> Option<Option<Checkpoint>> {
        let mut delay = Duration::from_millis(200);
        loop {
            let attempt = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                result = self.writer.recover(stream, partition) => result,
            };
            match attempt {
                Ok(checkpoint) => return Some(checkpoint),
                Err(error) => {
                    self.metrics.record_consumer_error(ConsumerErrorKind::LakeRecover);
                    tracing::warn!(topic, partition, %error, "Cannot recover partition from the lake; retrying.");
                }
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Every partition of `assigned` recovered from the lake, in its order,
    /// [`RECOVERY_CONCURRENCY`] at a time. `None` when shutdown started while the lake was being
    /// waited for.
    fn recover_checkpoints(&self, assigned: &[AssignedPartitionName]) -> Option<Vec<Option<Checkpoint>>> {
        let checkpoints: Vec<Option<Option<Checkpoint>>> = self.runtime.block_on(
            futures::stream::iter(assigned)
                .map(|(topic, stream, partition)| self.recover_checkpoint(topic, stream, *partition))
                .buffered(RECOVERY_CONCURRENCY)
                .collect(),
        );
        checkpoints.into_iter().collect()
    }

    /// The watermarks of every partition of `assigned`, in its order,
    /// [`WATERMARK_QUERY_CONCURRENCY`] at a time, each query bounded by the offset query
    /// timeout. `None` when shutdown started before all were asked.
    fn query_watermarks(
        &self,
        consumer: &BaseConsumer<Self>,
        assigned: &[AssignedPartitionName],
    ) -> Option<Vec<AskedWatermarks>> {
        let mut watermarks = Vec::with_capacity(assigned.len());
        for batch in assigned.chunks(WATERMARK_QUERY_CONCURRENCY) {
            if self.shutdown.is_cancelled() {
                return None;
            }
            let asked_at = Instant::now();
            std::thread::scope(|scope| {
                let queries: Vec<_> = batch
                    .iter()
                    .map(|(topic, _, partition)| {
                        scope.spawn(move || consumer.fetch_watermarks(topic, *partition, self.offset_query_timeout))
                    })
                    .collect();
                watermarks.extend(
                    queries
                        .into_iter()
                        .map(|query| AskedWatermarks { marks: join_or_resume_panic(query.join()), asked_at }),
                );
            });
        }
        Some(watermarks)
    }

    /// Every partition of `tpl` recovered from the lake and measured against its log, the
    /// broker asked while the lake is read. `None` when shutdown started meanwhile.
    fn recover_partitions(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Option<Vec<RecoveredPartition>> {
        let assigned: Vec<AssignedPartitionName> = tpl
            .elements()
            .iter()
            .map(|element| {
                let topic = element.topic();
                (topic.to_owned(), kafka_stream_id(&self.group_id, topic), element.partition())
            })
            .collect();
        let (checkpoints, watermarks) = std::thread::scope(|scope| {
            let watermarks = scope.spawn(|| self.query_watermarks(consumer, &assigned));
            let checkpoints = self.recover_checkpoints(&assigned);
            (checkpoints, join_or_resume_panic(watermarks.join()))
        });
        let recovered = assigned.into_iter().zip(checkpoints?).zip(watermarks?).map(
            |(((topic, stream, partition), checkpoint), watermarks)| RecoveredPartition {
                topic,
                stream,
                partition,
                checkpoint,
                watermarks,
            },
        );
        Some(recovered.collect())
    }

    /// Recover every assigned partition from the lake, retrying the lake until it answers.
    /// `None` when shutdown started while waiting for the lake.
    pub(super) fn recover_assignment(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Option<RecoveredAssignment> {
        let mut positioned = TopicPartitionList::new();
        let mut starts = Vec::new();
        for RecoveredPartition { topic, stream, partition, checkpoint, watermarks } in
            self.recover_partitions(consumer, tpl)?
        {
            let checkpoint_at = checkpoint.as_ref().map(|c| std::time::SystemTime::from(c.updated_at));
            let mut next = checkpoint.map(|c| c.next_offset);
            if let Some(committed) = next {
                next = Some(self.check_log_bounds(consumer, &watermarks, &stream, &topic, partition, committed));
            }
            let offset = match (next, self.start_from) {
                (Some(next), _) => Offset::Offset(next),
                // Resolve "earliest" with our own bounded watermark query rather than leaving
                // it to librdkafka, whose internal offset lookup has no timeout.
                (None, StartFrom::Earliest) => match watermarks.marks {
                    Ok((low, _)) => Offset::Offset(low),
                    Err(error) => {
                        tracing::warn!(topic, partition, %error, "Watermark query failed; starting at the beginning.");
                        Offset::Beginning
                    }
                },
                (None, StartFrom::Latest) => match self.pin_latest(&watermarks.marks, &stream, &topic, partition) {
                    Some(end) => {
                        next = Some(end);
                        Offset::Offset(end)
                    }
                    None => Offset::End,
                },
            };
            if let Err(error) = positioned.add_partition_offset(&topic, partition, offset) {
                tracing::error!(topic, partition, %error, "Cannot position partition.");
            }
            match next {
                Some(resume_at) => {
                    tracing::info!(topic, partition, resume_at, "Partition assigned; resuming at the lake checkpoint.");
                }
                None => tracing::info!(topic, partition, "Partition assigned; no lake checkpoint yet."),
            }
            let position = match offset {
                Offset::Offset(position) => Some(position),
                _ => None,
            };
            // Read after the bounds check, which may have started a new epoch under a new claim.
            let claim = self.writer.held_claim(&stream, partition);
            starts.push(AssignedPartition { topic, partition, resume_at: next, position, checkpoint_at, claim });
        }
        Some((positioned, starts))
    }

    /// Claim back in the lake a partition another writer claimed while the group still assigns
    /// it here, and read it again from its checkpoint: the processing loop asked, having
    /// skipped it for `RECLAIM_AFTER` without hearing of a revoke.
    /// A partition the group no longer assigns here is left alone (its revoke is on the way).
    pub(super) fn reclaim(&self, consumer: &BaseConsumer<Self>, topic: &str, partition: i32) {
        let still_assigned =
            consumer.assignment().is_ok_and(|assignment| assignment.find_partition(topic, partition).is_some());
        if !still_assigned {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let Some((positioned, starts)) = self.recover_assignment(consumer, &tpl) else { return };
        let Some(Offset::Offset(resume_at)) = positioned.find_partition(topic, partition).map(|p| p.offset()) else {
            tracing::warn!(topic, partition, "Claimed back in the lake, but no position to resume at; left skipped.");
            return;
        };
        if let Err(error) = consumer.seek(topic, partition, Offset::Offset(resume_at), SEEK_TIMEOUT) {
            tracing::warn!(topic, partition, %error, "Cannot move the partition back to its checkpoint; will ask again.");
            return;
        }
        tracing::warn!(
            topic,
            partition,
            resume_at,
            "Partition claimed in the lake by another writer while the group still assigns it here; claimed back, reading it again from the lake checkpoint."
        );
        // After what was read of it before: the processing loop skips those, then starts over
        // at the checkpoint; the offsets read again are no redeliveries.
        let mut held = self.lock_held();
        held.seal();
        held.positions.remove(topic, partition);
        held.events.push_back(Event::Assigned(starts));
    }

    /// `start_from = "latest"` on a partition without a checkpoint: the log's end now, kept in
    /// the lake as the partition's first checkpoint. Resolved again at every assignment, a quiet
    /// partition would skip whatever was produced while the daemon was stopped or the partition
    /// was being handed over, and a new topic what was produced before the group took it up.
    /// `None` (the end left to the fetch, as before) when the watermark query or the write
    /// fails; the next assignment tries again.
    fn pin_latest(
        &self,
        watermarks: &KafkaResult<(i64, i64)>,
        stream: &str,
        topic: &str,
        partition: i32,
    ) -> Option<i64> {
        let end = match watermarks {
            Ok((_, high)) => *high,
            Err(error) => {
                tracing::warn!(topic, partition, %error, "Watermark query failed; starting at the log's end without keeping it.");
                return None;
            }
        };
        match self.runtime.block_on(self.writer.pin_start(stream, partition, end)) {
            Ok(checkpoint) => Some(checkpoint.next_offset),
            Err(error) => {
                self.metrics.record_consumer_error(ConsumerErrorKind::LakeRecover);
                tracing::warn!(topic, partition, %error, "Cannot keep the start in the lake; starting at the log's end without it.");
                None
            }
        }
    }

    /// Compare the checkpoint with the partition's log (its watermarks, bounded queries). A
    /// checkpoint beyond the log's end means the log was recreated or lost: start a new lake
    /// epoch at the log's start instead of waiting on an out-of-range fetch. A checkpoint before
    /// the log's start means retention deleted messages that were never ingested: say so loudly
    /// and continue from the start. When the query fails or times out, the checkpoint stands
    /// and the partition is checked again from the poll loop until it delivers a message.
    ///
    /// `watermarks` were asked while the lake was read, before this member's claim fenced the
    /// partition's previous writer, which may have committed past the log's end as it stood
    /// then (a member the group has moved on from, flushing what it read meanwhile). A
    /// checkpoint that seems to lie past the end is measured again against the log as it is
    /// now, under the claim, before a new epoch would read the whole log into the lake again;
    /// so is every checkpoint whose watermarks are older than [`WATERMARKS_FRESH_FOR`].
    fn check_log_bounds(
        &self,
        consumer: &BaseConsumer<Self>,
        watermarks: &AskedWatermarks,
        stream: &str,
        topic: &str,
        partition: i32,
        committed: i64,
    ) -> i64 {
        let asked_again;
        let watermarks = match &watermarks.marks {
            Ok((low, high))
                if compare_with_log(committed, *low, *high) == LogBounds::BeyondEnd
                    || watermarks.asked_at.elapsed() > WATERMARKS_FRESH_FOR =>
            {
                asked_again = consumer.fetch_watermarks(topic, partition, self.offset_query_timeout);
                &asked_again
            }
            asked_before => asked_before,
        };
        let (low, high) = match watermarks {
            Ok(marks) => *marks,
            Err(error) => {
                tracing::warn!(
                    topic,
                    partition,
                    %error,
                    "Watermark query failed; resuming at the checkpoint and checking again until the partition delivers."
                );
                self.lock_held().unverified.add(topic.to_owned(), partition, committed, Instant::now());
                return committed;
            }
        };
        match compare_with_log(committed, low, high) {
            LogBounds::Within => committed,
            LogBounds::BeyondEnd => match self.runtime.block_on(self.writer.reset_partition(stream, partition, low)) {
                Ok(_) => {
                    tracing::warn!(
                        topic,
                        partition,
                        committed,
                        high,
                        "Checkpoint lies beyond the end of the log (topic recreated?); starting a new lake epoch at its start."
                    );
                    low
                }
                Err(error) => {
                    tracing::error!(topic, partition, %error, "Cannot start a new lake epoch; resuming at the checkpoint.");
                    committed
                }
            },
            LogBounds::BeforeStart => {
                self.report_retention_loss(topic, partition, committed, low);
                low
            }
        }
    }

    fn report_retention_loss(&self, topic: &str, partition: i32, committed: i64, low: i64) {
        self.metrics.record_consumer_error(ConsumerErrorKind::OffsetsLostToRetention);
        tracing::error!(
            topic,
            partition,
            committed,
            low,
            lost = low - committed,
            "Messages were deleted by retention before they were ingested; continuing at the log start."
        );
    }

    /// Check again one partition whose watermark query failed at assignment and which has
    /// delivered nothing since. A checkpoint beyond the log's end moves the partition to the
    /// log's start: its first message then lies below the checkpoint, and the processing loop
    /// starts a new lake epoch there, as it does after a consumer offset reset.
    pub(super) fn recheck_log_bounds(&self, consumer: &BaseConsumer<Self>) {
        let due = {
            let mut held = self.lock_held();
            let held = &mut *held;
            if held.unverified.is_empty() {
                return;
            }
            held.unverified.take_due(Instant::now(), &held.positions)
        };
        let Some(entry) = due else { return };
        let (topic, partition, committed) = (entry.topic.as_str(), entry.partition, entry.committed);
        let (low, high) = match consumer.fetch_watermarks(topic, partition, self.offset_query_timeout) {
            Ok(marks) => marks,
            Err(error) => {
                tracing::debug!(topic, partition, %error, "Watermark query failed again; will retry.");
                self.lock_held().unverified.retry_later(entry, Instant::now());
                return;
            }
        };
        let start_over = match compare_with_log(committed, low, high) {
            LogBounds::Within => {
                tracing::info!(topic, partition, committed, low, high, "Checkpoint verified against the log.");
                return;
            }
            LogBounds::BeyondEnd => {
                tracing::warn!(
                    topic,
                    partition,
                    committed,
                    high,
                    "Checkpoint lies beyond the end of the log (topic recreated?); moving to its start, where a new lake epoch begins."
                );
                low
            }
            LogBounds::BeforeStart => {
                self.report_retention_loss(topic, partition, committed, low);
                low
            }
        };
        if let Err(error) = consumer.seek(topic, partition, Offset::Offset(start_over), SEEK_TIMEOUT) {
            tracing::warn!(topic, partition, %error, "Cannot move the partition to the log's start; will retry.");
            self.lock_held().unverified.retry_later(entry, Instant::now());
        }
    }
}

/// A scoped thread's result; its panic, a bug of ours, goes on in the caller's thread.
fn join_or_resume_panic<T>(joined: std::thread::Result<T>) -> T {
    joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Where a lake checkpoint lies relative to its partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogBounds {
    /// The log holds the checkpoint (or ends exactly at it): resume there.
    Within,
    /// The checkpoint lies past the log's end: the log was recreated or lost.
    BeyondEnd,
    /// The checkpoint lies before the log's start: retention deleted messages never ingested.
    BeforeStart,
}

/// Compare a checkpoint (the next offset to read) with the log's watermarks `[low, high)`.
fn compare_with_log(committed: i64, low: i64, high: i64) -> LogBounds {
    if committed > high {
        LogBounds::BeyondEnd
    } else if committed < low {
        LogBounds::BeforeStart
    } else {
        LogBounds::Within
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use driftwatch_lake::parquet::ParquetOptions;
    use driftwatch_lake::store::LakeStore;
    use driftwatch_lake::writer::LakeWriter;
    use rdkafka::Message;

    use super::super::test_support::{
        TestResult, context_over_lake, group_member, member_over_a_fresh_lake, produce, test_brokers,
        topic_with_messages, unique_name,
    };
    use super::*;
    use crate::source::kafka::channel::event_channel;
    use crate::source::kafka::held::RECHECK_FIRST_DELAY;
    use crate::telemetry::{Metrics, MetricsConfig};

    /// Against the dev stack's broker (`scripts/test` starts it and exports its address): a
    /// partition assigned past the end of its log, whose check at assignment failed, is found
    /// by the poll loop's re-check and moved to the log's start. Without the re-check it would
    /// wait there (a broker answering the fetch with nothing) or jump to the end (Kafka's
    /// offset reset to `latest`, this consumer's default), and the first message never comes.
    #[test]
    fn a_recheck_moves_a_partition_assigned_past_its_logs_end_to_its_start() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "recheck", 3)?;

        let (_lake, consumer) = member_over_a_fresh_lake(&runtime, &brokers, &topic)?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Offset(771))?;
        consumer.assign(&assignment)?;
        // What an assignment whose watermark query failed leaves behind, already due.
        let assigned_at = Instant::now().checked_sub(RECHECK_FIRST_DELAY).ok_or("clock too young")?;
        consumer.context().lock_held().unverified.add(topic.clone(), 0, 771, assigned_at);

        let deadline = Instant::now() + Duration::from_secs(60);
        let first = loop {
            consumer.context().recheck_log_bounds(&consumer);
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                break message?.offset();
            }
            if Instant::now() > deadline {
                return Err("no message within 60 s of the re-check".into());
            }
        };
        assert_eq!(first, 0, "the partition resumes at the log's start");
        assert!(consumer.context().lock_held().unverified.is_empty(), "verified once moved");
        Ok(())
    }

    /// Shutdown while an assignment waits for an unavailable lake: the wait ends and the
    /// partition is left unrecovered, instead of holding the poll thread (and with it the
    /// daemon's exit) until the shutdown deadline.
    #[test]
    fn shutdown_ends_the_wait_for_an_unavailable_lake_during_an_assignment() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let dir = tempfile::tempdir()?;
        let lake = dir.path().join("lake");
        std::fs::create_dir_all(&lake)?;
        let store = runtime.block_on(LakeStore::open(&lake.display().to_string(), &Default::default()))?;
        // A file where the checkpoint folder belongs: every recovery fails, as on a lost disk.
        std::fs::write(lake.join("_checkpoints"), b"not a folder")?;
        let metrics = Metrics::new(&MetricsConfig::default());
        let (events, _receiver) = event_channel(16);
        let context = Arc::new(PollerContext::new(
            events,
            Arc::new(LakeWriter::new(store, ParquetOptions::default())),
            runtime.handle().clone(),
            "group".to_owned(),
            StartFrom::Latest,
            Duration::from_secs(5),
            metrics.clone(),
        ));
        let (gave_up, answer) = std::sync::mpsc::sync_channel(1);
        let recovering = Arc::clone(&context);
        std::thread::spawn(move || {
            let recovery = recovering.recover_checkpoint("spans", "kafka.group.spans", 0);
            let _ = gave_up.send(recovering.runtime.block_on(recovery).is_none());
        });
        // Shut down once recovery has failed and is waiting to try again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !metrics.encode()?.contains("kind=\"lake_recover\"") {
            if Instant::now() > deadline {
                return Err("recovery never reported the failing lake".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        context.shutdown.cancel();
        let gave_up =
            answer.recv_timeout(Duration::from_secs(60)).map_err(|_| "still waiting for the lake after shutdown")?;
        assert!(gave_up, "no checkpoint is made up when recovery gives up");
        Ok(())
    }

    /// `start_from = "latest"` on a quiet partition: where the group first took it up is kept,
    /// so the messages produced while the daemon was stopped are read by the next one, not
    /// skipped by resolving "latest" again (the Kafka audit's reproduction lost them all).
    #[test]
    fn latest_is_resolved_once_and_a_restart_reads_what_came_in_between() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "latest", 5)?;
        let lake = tempfile::tempdir()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition(&topic, 0);

        let mut starts = Vec::new();
        for _restart in 0..2 {
            let (_events, context) =
                context_over_lake(&runtime, lake.path(), &topic, StartFrom::Latest, Duration::from_secs(5))?;
            let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic).create_with_context(context)?;
            let (positioned, assigned) =
                consumer.context().recover_assignment(&consumer, &assignment).ok_or("recovery gave up")?;
            let offset = positioned.find_partition(&topic, 0).ok_or("not positioned")?.offset();
            starts.push((offset, assigned[0].resume_at, assigned[0].position));
            // Produced while no daemon runs.
            produce(&brokers, &topic, 3)?;
        }
        assert_eq!(starts[0], (Offset::Offset(5), Some(5), Some(5)), "the log's end when first assigned");
        assert_eq!(starts[1], (Offset::Offset(5), Some(5), Some(5)), "resumed there, not at 8");
        Ok(())
    }

    /// An assignment of many partitions, recovered from the lake and measured against the broker
    /// several at a time: each partition resumes at its own checkpoint, checked against its own
    /// log, whatever order the recoveries and queries finish in. Odd partitions' checkpoints lie
    /// past their log's end (a recreated topic) and start a new epoch at its start; checked
    /// against another partition's log, some would resume past their end or be moved wrongly.
    #[test]
    fn each_partition_of_a_large_assignment_resumes_at_its_own_checkpoint() -> TestResult {
        const PARTITIONS: i32 = 40;
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = unique_name("many")?;
        runtime.block_on(crate::loadgen::ensure_topics(
            &brokers,
            &[],
            &[&topic],
            PARTITIONS,
            Duration::from_secs(30),
        ))?;
        // Partition p holds p messages; an even one's checkpoint is at its end, p, an odd one's
        // past it, at p + PARTITIONS.
        let producer: rdkafka::producer::BaseProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("batch.num.messages", "1").create()?;
        for partition in 0..PARTITIONS {
            for _ in 0..partition {
                let record = rdkafka::producer::BaseRecord::<(), _>::to(&topic).partition(partition).payload("m");
                producer.send(record).map_err(|(error, _)| error)?;
            }
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30))?;
        let lake = tempfile::tempdir()?;
        let (_events, context) =
            context_over_lake(&runtime, lake.path(), &topic, StartFrom::Earliest, Duration::from_secs(5))?;
        let stream = kafka_stream_id(&topic, &topic);
        let mut assignment = TopicPartitionList::new();
        let checkpoint = |partition: i32| i64::from(partition + if partition % 2 == 0 { 0 } else { PARTITIONS });
        for partition in 0..PARTITIONS {
            runtime.block_on(context.writer.pin_start(&stream, partition, checkpoint(partition)))?;
            assignment.add_partition(&topic, partition);
        }

        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic).create_with_context(context)?;
        let (positioned, assigned) =
            consumer.context().recover_assignment(&consumer, &assignment).ok_or("recovery gave up")?;
        assert_eq!(assigned.len(), usize::try_from(PARTITIONS)?);
        for (start, partition) in assigned.iter().zip(0..) {
            let expected = if partition % 2 == 0 { i64::from(partition) } else { 0 };
            assert_eq!((start.partition, start.resume_at), (partition, Some(expected)));
            let offset = positioned.find_partition(&topic, partition).ok_or("not positioned")?.offset();
            assert_eq!(offset, Offset::Offset(expected), "partition {partition}");
        }
        Ok(())
    }

    /// Against the dev stack's broker: watermarks asked before the claim can be older than a
    /// checkpoint the partition's previous writer committed meanwhile. Such a checkpoint is
    /// measured again against the log as it is, and resumed at, instead of starting a new
    /// epoch that would read the whole log into the lake a second time; and watermarks asked
    /// before a long wait for the lake are asked again.
    #[test]
    fn a_checkpoint_past_older_watermarks_is_measured_again_before_a_new_epoch() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "stale-marks", 10)?;
        let (_lake, consumer) = member_over_a_fresh_lake(&runtime, &brokers, &topic)?;
        let stream = kafka_stream_id(&topic, &topic);
        let context = consumer.context();
        // The log held 3 messages when asked; the previous writer has since committed 8.
        let asked_before = AskedWatermarks { marks: Ok((0, 3)), asked_at: Instant::now() };
        let resumed = context.check_log_bounds(&consumer, &asked_before, &stream, &topic, 0, 8);
        assert_eq!(resumed, 8, "the log now holds the checkpoint");
        // Past the log's end as it is now too: a new epoch at its start.
        let resumed = context.check_log_bounds(&consumer, &asked_before, &stream, &topic, 0, 40);
        assert_eq!(resumed, 0, "recreated log");
        // Asked before a long wait for the lake: the log has changed since (here it is shorter
        // than the old answer said), and the checkpoint is measured against it as it is now.
        let asked_long_ago = Instant::now().checked_sub(WATERMARKS_FRESH_FOR * 2).ok_or("clock too young")?;
        let stale = AskedWatermarks { marks: Ok((0, 100)), asked_at: asked_long_ago };
        let resumed = context.check_log_bounds(&consumer, &stale, &stream, &topic, 0, 50);
        assert_eq!(resumed, 0, "past the end of the log as it is now");
        Ok(())
    }

    #[test]
    fn a_checkpoint_is_compared_with_the_log_it_resumes() {
        assert_eq!(compare_with_log(771, 0, 900), LogBounds::Within);
        assert_eq!(compare_with_log(900, 0, 900), LogBounds::Within, "caught up: the next message goes there");
        assert_eq!(compare_with_log(0, 0, 0), LogBounds::Within, "an empty new log, nothing read yet");
        assert_eq!(compare_with_log(901, 0, 900), LogBounds::BeyondEnd);
        assert_eq!(compare_with_log(898, 0, 181), LogBounds::BeyondEnd, "a recreated, shorter log");
        assert_eq!(compare_with_log(100, 150, 900), LogBounds::BeforeStart, "retention passed the checkpoint");
        assert_eq!(compare_with_log(150, 150, 900), LogBounds::Within);
    }
}
