//! librdkafka's rebalance callback, the only place where a partition can still be flushed before
//! it is released.
//!
//! - **assign**: recover the partitions from the lake (see `recovery`), tell the processing loop
//!   where each starts, assign them there and resume them (a pause survives a rebalance).
//! - **revoke**: hand the loop everything already read, ask it to flush and checkpoint the revoked
//!   partitions, wait for its answer, commit those offsets to Kafka synchronously, and only then
//!   release the partitions.
//! - **lost**: the group gave the partitions away while this member was unreachable: drop what is
//!   held of them and have the loop drop its buffers; the new owner resumes from the lake.
//!
//! With eager rebalancing (the `range` and `roundrobin` assignors) every rebalance revokes the
//! whole assignment and assigns a new one; with cooperative rebalancing (`cooperative-sticky`)
//! only the partitions that move are revoked from one member and assigned to another, and the
//! rest are read on, so a member joining or leaving a large group no longer stops, flushes and
//! recovers every partition of every member.

use std::sync::atomic::Ordering;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use super::{PollerContext, offsets_list};
use crate::source::kafka::channel::Event;
use crate::telemetry::ConsumerErrorKind;

use crate::source::kafka::REVOKE_TIMEOUT;

impl PollerContext {
    /// The assignment was lost: drop held messages of the lost partitions (the next owner reads
    /// them again), forward the rest in order, and tell the loop to drop its buffers.
    fn lose(&self, tpl: &TopicPartitionList) {
        let lost = topic_partitions(tpl);
        if lost.is_empty() || self.stopping.load(Ordering::Acquire) {
            return;
        }
        self.metrics.record_consumer_error(ConsumerErrorKind::AssignmentLost);
        tracing::warn!(
            partitions = lost.len(),
            "Assignment lost (the group moved on while this member was unreachable); dropping its \
             unwritten messages, the new owner resumes from the lake checkpoint."
        );
        let is_lost = |message: &OwnedMessage| {
            lost.iter().any(|(topic, partition)| topic == message.topic() && *partition == message.partition())
        };
        for event in self.take_held() {
            let event = match event {
                Event::Messages(mut messages) => {
                    messages.retain(|message| !is_lost(message));
                    if messages.is_empty() {
                        continue;
                    }
                    Event::Messages(messages)
                }
                other => other,
            };
            if self.events.blocking_send(event).is_err() {
                return;
            }
        }
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        if self.events.blocking_send(Event::Lost { partitions: lost, done }).is_err() {
            return;
        }
        match await_loop(&answer) {
            Ok(()) => {}
            Err(Unanswered::TimedOut) => tracing::error!(
                timeout_secs = REVOKE_TIMEOUT.as_secs(),
                "Flushes in flight did not finish in time after losing partitions; releasing them anyway."
            ),
            Err(Unanswered::LoopStopped) => tracing::info!(
                "The processing loop stopped before the lost partitions' flushes were over; releasing them."
            ),
        }
    }

    /// Close the batch being gathered and take every event held back from the channel.
    fn take_held(&self) -> Vec<Event> {
        let mut held = self.lock_held();
        held.seal();
        held.events.drain(..).collect()
    }

    /// Forward held messages (the revoked partitions' tail) and ask the loop to flush. Returns
    /// the flushed partitions' durable positions, or `None` when the partitions are released
    /// without a flush of their own (each such path logs why).
    fn revoke(&self, tpl: &TopicPartitionList) -> Option<Vec<(String, i32, i64)>> {
        let partitions = topic_partitions(tpl);
        if partitions.is_empty() {
            return Some(Vec::new());
        }
        if self.stopping.load(Ordering::Acquire) {
            // Leaving the group at shutdown: the loop's final flush came first, and its own log
            // says whether the lake took it.
            tracing::info!(partitions = partitions.len(), "Partitions released at shutdown.");
            return None;
        }
        let loop_stopped = || {
            // The loop is shutting down (its own log says whether it flushed, or why it
            // stopped): a rolling deploy, not a failure of the revoke.
            tracing::info!(
                "The processing loop stopped before answering the revoke; releasing the partitions \
                 (the lake checkpoint stands for their next owner)."
            );
        };
        for event in self.take_held() {
            if self.events.blocking_send(event).is_err() {
                loop_stopped();
                return None;
            }
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if self.events.blocking_send(Event::Revoked { partitions, reply }).is_err() {
            loop_stopped();
            return None;
        }
        match await_loop(&answer) {
            Ok(durable) => Some(durable),
            Err(Unanswered::TimedOut) => {
                tracing::error!(
                    timeout_secs = REVOKE_TIMEOUT.as_secs(),
                    "Revoked partitions were not flushed in time; releasing them uncommitted (the next owner replays them)."
                );
                None
            }
            Err(Unanswered::LoopStopped) => {
                loop_stopped();
                None
            }
        }
    }
}

/// Why the processing loop gave no answer to a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unanswered {
    /// It is still busy after [`REVOKE_TIMEOUT`]: flushes are stuck.
    TimedOut,
    /// It dropped the question: it has stopped (shutdown, or an error it reports itself).
    LoopStopped,
}

/// Wait for the processing loop's answer to a rebalance, up to [`REVOKE_TIMEOUT`].
fn await_loop<T>(answer: &std::sync::mpsc::Receiver<T>) -> Result<T, Unanswered> {
    answer.recv_timeout(REVOKE_TIMEOUT).map_err(|error| match error {
        std::sync::mpsc::RecvTimeoutError::Timeout => Unanswered::TimedOut,
        std::sync::mpsc::RecvTimeoutError::Disconnected => Unanswered::LoopStopped,
    })
}

impl ConsumerContext for PollerContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // Reached only if librdkafka is given an offset-commit callback, which rdkafka 0.39 does
        // not register: asynchronous commits fail through the COMMITFAIL log line instead (see
        // `log`). Kept so that a later rdkafka that registers it counts them here (librdkafka
        // then no longer logs COMMITFAIL, so nothing is counted twice). The lake checkpoint
        // stays authoritative; a failing commit only leaves Kafka-side lag tools behind, which
        // is worth a count and a log line. Nothing to commit is no failure.
        if let Err(error) = result
            && error.rdkafka_error_code() != Some(RDKafkaErrorCode::NoOffset)
        {
            self.metrics.record_consumer_error(ConsumerErrorKind::Commit);
            self.log_rate_limited("commit", &format!("Kafka offset commit failed: {error}"));
        }
    }

    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        // Eager rebalancing (range, roundrobin) revokes the whole assignment and assigns a new
        // one whole; cooperative rebalancing (cooperative-sticky) hands over only the partitions
        // that move, and the others are read on meanwhile. Each partition is recovered, flushed
        // and released the same way in both.
        let incremental = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if !incremental {
                    self.lock_held().unverified.clear();
                }
                let Some((positioned, starts)) = self.recover_assignment(consumer, tpl) else {
                    tracing::info!(
                        partitions = tpl.count(),
                        "Shutting down while the lake was unavailable; the assignment is left unconsumed."
                    );
                    // Incremental: none of these was assigned, and what is held stays so until
                    // the shutdown revokes it.
                    if !incremental {
                        if let Err(error) = consumer.unassign() {
                            tracing::warn!(%error, "Cannot release the unrecovered assignment.");
                        }
                        self.assigned.store(0, Ordering::Release);
                    }
                    return;
                };
                if !starts.is_empty() && self.events.blocking_send(Event::Assigned(starts)).is_err() {
                    return;
                }
                let assigned =
                    if incremental { consumer.incremental_assign(&positioned) } else { consumer.assign(&positioned) };
                if let Err(error) = assigned {
                    self.metrics.record_consumer_error(ConsumerErrorKind::Assign);
                    // The group still counts the partitions as this member's, so nobody reads
                    // them while it lives: stop the daemon (unready until then) so that the
                    // group moves them, as for a fatal client error.
                    self.assigned.store(0, Ordering::Release);
                    self.queue_fatal("assign", format!("librdkafka refused the assignment: {error}"));
                    return;
                }
                let mut held = self.lock_held();
                // librdkafka keeps an application's pause on a partition across unassign and
                // assign (it clears only its own), so a partition paused for backpressure
                // before a rebalance would come back paused for good: an eager assignment starts
                // unpaused, and partitions added to a kept assignment take its state, which the
                // backpressure check changes for all of them together.
                let paused = incremental && held.paused;
                let state = if paused { consumer.pause(&positioned) } else { consumer.resume(&positioned) };
                if let Err(error) = state {
                    tracing::warn!(%error, paused, "Cannot set the new partitions' pause state.");
                }
                if incremental {
                    self.assigned.fetch_add(positioned.count(), Ordering::AcqRel);
                } else {
                    self.assigned.store(positioned.count(), Ordering::Release);
                    held.paused = false;
                    held.positions.clear();
                }
                // A completed assignment needed the group coordinator: the brokers are back.
                self.brokers.mark_up();
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Lost: the group already gave the partitions to someone else, and a commit
                // would be refused; the new owner resumes from the lake checkpoint.
                if consumer.assignment_lost() {
                    self.lose(tpl);
                } else {
                    if let Some(durable) = self.revoke(tpl) {
                        // Advisory only: the lake checkpoint is what the next owner resumes from.
                        if !durable.is_empty()
                            && let Err(error) = consumer.commit(&offsets_list(&durable), CommitMode::Sync)
                        {
                            self.metrics.record_consumer_error(ConsumerErrorKind::Commit);
                            tracing::warn!(%error, "Could not commit revoked partitions' offsets to Kafka.");
                        }
                        tracing::info!(partitions = tpl.count(), "Partitions revoked after flushing.");
                    }
                }
                let released = if incremental { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(error) = released {
                    tracing::error!(%error, "Cannot unassign partitions.");
                }
                let mut held = self.lock_held();
                if incremental {
                    let revoked = tpl.count();
                    let _ = self.assigned.fetch_update(Ordering::AcqRel, Ordering::Acquire, |assigned| {
                        Some(assigned.saturating_sub(revoked))
                    });
                    for (topic, partition) in topic_partitions(tpl) {
                        held.positions.remove(&topic, partition);
                        held.unverified.remove(&topic, partition);
                    }
                } else {
                    self.assigned.store(0, Ordering::Release);
                    held.paused = false;
                    held.positions.clear();
                    held.unverified.clear();
                }
            }
            other => {
                self.metrics.record_consumer_error(ConsumerErrorKind::Rebalance);
                tracing::error!(error = ?other, "Rebalance error; releasing the assignment.");
                let released = if incremental {
                    consumer.assignment().and_then(|assignment| consumer.incremental_unassign(&assignment))
                } else {
                    consumer.unassign()
                };
                if let Err(error) = released {
                    tracing::error!(%error, "Cannot unassign partitions.");
                }
                self.assigned.store(0, Ordering::Release);
                self.lock_held().unverified.clear();
            }
        }
    }
}

/// The (topic, partition) pairs of a list, owned.
fn topic_partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::set_paused;
    use super::super::test_support::{
        TestResult, consumer_errors, context_over_a_fresh_lake, group_member, member_over_a_fresh_lake, poll_for,
        test_brokers, topic_with_messages,
    };
    use super::*;

    /// Against the dev stack's broker: an assignment librdkafka refuses is not counted as
    /// assigned and stops the daemon. Here a cooperative member (`cooperative-sticky`) is given
    /// a partition it already holds, which librdkafka refuses to assign twice.
    #[test]
    fn an_assignment_librdkafka_refuses_stops_the_daemon() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "refused", 0)?;
        let ((_lake, mut receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create_with_context(context)?;
        consumer.subscribe(&[topic.as_str()])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer.context().assigned.load(Ordering::Acquire) == 0 {
            if consumer.poll(Duration::from_millis(100)).is_some_and(|message| message.is_err()) {
                return Err("poll error while joining".into());
            }
            if Instant::now() > deadline {
                return Err("no assignment within 60 s of subscribing".into());
            }
        }
        assert!(matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative));
        let mut again = TopicPartitionList::new();
        again.add_partition(&topic, 0);
        consumer.context().rebalance(&consumer, RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, &mut again);

        let mut fatal = None;
        poll_for(&runtime, &consumer, &mut receiver, Duration::from_secs(60), |event| {
            if let Event::Fatal { kind, message } = event {
                fatal = Some((*kind, message.clone()));
            }
            fatal.is_some()
        });
        let (kind, message) = fatal.ok_or("no fatal event within 60 s of the second assignment")?;
        assert_eq!(kind, "assign");
        assert!(message.contains("refused the assignment"), "{message}");
        assert_eq!(consumer.context().assigned.load(Ordering::Acquire), 0, "not counted as assigned");
        assert_eq!(consumer_errors(&consumer.context().metrics, "assign")?, (1, 1));
        Ok(())
    }

    /// Against the dev stack's broker: a partition paused for backpressure, then revoked and
    /// assigned again, is consumed. librdkafka keeps an application's pause across a rebalance,
    /// so without the resume at assignment it stayed paused for good while the daemon said ready.
    #[test]
    fn a_partition_paused_before_a_rebalance_is_consumed_after_it() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "paused", 3)?;

        let (_lake, consumer) = member_over_a_fresh_lake(&runtime, &brokers, &topic)?;
        let context = consumer.context();
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(&topic, 0);
        let rebalance = |kind, partitions: &mut TopicPartitionList| context.rebalance(&consumer, kind, partitions);

        rebalance(RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, &mut partitions);
        set_paused(&consumer, context, true);
        assert!(context.lock_held().paused, "paused for backpressure");
        // The revoke's handshake with the processing loop is not under test: release at once.
        context.stopping.store(true, Ordering::Release);
        rebalance(RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, &mut partitions);
        rebalance(RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, &mut partitions);
        assert_eq!(context.assigned.load(Ordering::Acquire), 1);

        let deadline = Instant::now() + Duration::from_secs(30);
        let first = loop {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                break message?.offset();
            }
            if Instant::now() > deadline {
                return Err("no message within 30 s of the new assignment: the partition is still paused".into());
            }
        };
        assert_eq!(first, 0);
        Ok(())
    }

    /// Against the dev stack's broker: an assignment that arrives while the lake is down waits
    /// for it inside the rebalance callback, and the member stays in the group however long
    /// the outage lasts (longer than `max.poll.interval.ms` here): librdkafka counts the
    /// callback as time inside the poll and keeps heartbeating, so the wait does not take the
    /// member out of the group and rebalance everyone again. Once the lake answers, the
    /// partition is recovered and consumed from its start.
    #[test]
    fn an_assignment_waiting_for_the_lake_keeps_the_member_in_the_group() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "lakedown", 3)?;
        let ((lake, mut receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        // A file where the checkpoint folder belongs: every recovery fails, as on a lost disk.
        let checkpoints = lake.path().join("_checkpoints");
        std::fs::write(&checkpoints, b"not a folder")?;
        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("max.poll.interval.ms", "6000")
            .create_with_context(context)?;
        consumer.subscribe(&[topic.as_str()])?;

        let outage = Duration::from_secs(15);
        let repair = std::thread::spawn(move || {
            std::thread::sleep(outage);
            std::fs::remove_file(&checkpoints).and_then(|()| std::fs::create_dir(&checkpoints))
        });
        let (mut assignments, mut revokes, mut first_offset) = (0, 0, None);
        poll_for(&runtime, &consumer, &mut receiver, outage + Duration::from_secs(60), |event| {
            match event {
                Event::Assigned(_) => assignments += 1,
                Event::Revoked { .. } | Event::Lost { .. } => revokes += 1,
                Event::Messages(messages) => first_offset = messages.first().map(Message::offset),
                Event::Fatal { .. } => {}
            }
            first_offset.is_some()
        });
        repair.join().map_err(|_| "the repair thread panicked")??;
        assert_eq!(first_offset, Some(0), "consumed from the log's start once the lake answered");
        assert_eq!((assignments, revokes), (1, 0), "one assignment, held through the outage");
        assert_eq!(consumer_errors(&consumer.context().metrics, "client")?.1, 0, "no poll interval exceeded");
        Ok(())
    }

    /// A revoke the loop drops unanswered (it is shutting down) is told apart from one it
    /// never finishes, which alone is an error.
    #[test]
    fn a_rebalance_question_dropped_by_a_stopping_loop_is_not_a_timeout() {
        let (reply, answer) = std::sync::mpsc::sync_channel::<Vec<(String, i32, i64)>>(1);
        drop(reply);
        assert_eq!(await_loop(&answer), Err(Unanswered::LoopStopped));
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let _ = reply.send(vec![("spans".to_owned(), 0, 42)]);
        assert_eq!(await_loop(&answer), Ok(vec![("spans".to_owned(), 0, 42)]));
    }
}
