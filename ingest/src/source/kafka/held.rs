//! What the poll thread holds between librdkafka and the event channel, and when it pauses.
//!
//! Accepted messages are gathered into batches (up to [`BATCH_MAX_MESSAGES`] or
//! [`BATCH_MAX_BYTES`]); a sealed batch waits in `Held` while the channel is full.
//! `decide_backpressure` turns how long messages have been held into waiting (librdkafka
//! keeps its prefetch) or pausing the assignment (after [`PAUSE_AFTER`]). `NextOffsets`
//! remembers where each partition stands, so a refetch after a resume is not handed on twice.
//! `UnverifiedBounds` keeps the partitions whose checkpoint could not be compared with their
//! log at assignment, for the poll loop to check again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::message::OwnedMessage;

use super::channel::{Event, message_cost};

/// How long the channel may stay full before the assignment is paused. Longer than a flush
/// handover, far shorter than `max.poll.interval.ms`.
pub const PAUSE_AFTER: Duration = Duration::from_secs(2);

/// Messages gathered into one [`Event::Messages`] at most.
pub const BATCH_MAX_MESSAGES: usize = 512;

/// Bytes gathered into one [`Event::Messages`] at most, counted as the channel counts them
/// (`channel::message_cost`: payload, key and a fixed overhead). A message that would carry
/// the batch past this starts the next one, so only a single message larger than this makes a
/// larger batch, of its own.
pub const BATCH_MAX_BYTES: usize = 1024 * 1024;

/// State shared between the poll loop and the rebalance callbacks (same thread; the mutex
/// is never contended, it only satisfies `Sync`).
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Messages polled while the channel was full, oldest first, and a fatal client error
    /// behind them. Not bounded here: only messages librdkafka has already fetched can be held,
    /// and it bounds those (`queued.max.messages.kbytes`); past [`PAUSE_AFTER`] the assignment is
    /// paused, so nothing more is fetched.
    pub(super) events: VecDeque<Event>,
    /// Whether the assignment is paused for backpressure.
    pub(super) paused: bool,
    /// Since when messages have been held back (the channel full); `None` when none are.
    pub(super) blocked_since: Option<Instant>,
    /// Per partition, the offset after the last message accepted from librdkafka: where a
    /// resumed partition is sought to, and below which a message is a redelivery.
    pub(super) positions: NextOffsets,
    /// Messages accepted and not yet sealed into an event (the batch being gathered). Kept
    /// here, not on the poll loop's stack, so a revoke forwards them before it asks for a flush.
    pub(super) batch: Vec<OwnedMessage>,
    /// [`message_cost`] of `batch`.
    pub(super) batch_bytes: usize,
    /// Assigned partitions whose checkpoint could not be checked against the log.
    pub(super) unverified: UnverifiedBounds,
}

impl Held {
    /// Add an accepted message to the batch being gathered, after sealing that batch when the
    /// message would carry it past [`BATCH_MAX_BYTES`]; true when the batch is full.
    pub(super) fn gather(&mut self, message: OwnedMessage) -> bool {
        let cost = message_cost(&message);
        if self.batch_bytes + cost > BATCH_MAX_BYTES {
            self.seal();
        }
        self.batch_bytes += cost;
        self.batch.push(message);
        self.batch.len() >= BATCH_MAX_MESSAGES || self.batch_bytes >= BATCH_MAX_BYTES
    }

    /// Close the batch being gathered (if any) and queue it behind the held events.
    pub(super) fn seal(&mut self) {
        if !self.batch.is_empty() {
            self.batch_bytes = 0;
            self.events.push_back(Event::Messages(std::mem::take(&mut self.batch)));
        }
    }
}

/// Per (topic, partition), the offset after the last accepted message. Keyed topic first so
/// the per-message lookup borrows the message's topic instead of allocating a key.
#[derive(Debug, Default)]
pub(super) struct NextOffsets(rustc_hash::FxHashMap<Box<str>, rustc_hash::FxHashMap<i32, i64>>);

impl NextOffsets {
    /// Record the message at `offset`; false when it lies below what was already accepted (a
    /// refetch after pause/resume), which must not be handed on again.
    pub(super) fn accept(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let partitions = match self.0.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.0.entry(Box::from(topic)).or_default(),
        };
        let next = partitions.entry(partition).or_insert(offset);
        if offset < *next {
            return false;
        }
        *next = offset + 1;
        true
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// The offset after the last message of this partition accepted since the assignment.
    pub(super) fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic).and_then(|partitions| partitions.get(&partition).copied())
    }

    /// Forget a partition released from the assignment.
    pub(super) fn remove(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.0.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.0.remove(topic);
            }
        }
    }

    /// Whether a message of this partition was accepted since the assignment.
    pub(super) fn contains(&self, topic: &str, partition: i32) -> bool {
        self.0.get(topic).is_some_and(|partitions| partitions.contains_key(&partition))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.0.iter().flat_map(|(topic, partitions)| partitions.iter().map(|(p, next)| (&**topic, *p, *next)))
    }
}

/// First wait before re-checking a partition whose watermark query failed at assignment.
pub(super) const RECHECK_FIRST_DELAY: Duration = Duration::from_secs(2);

/// Longest wait between re-checks of one partition.
pub(super) const RECHECK_MAX_DELAY: Duration = Duration::from_secs(30);

/// A partition assigned at its lake checkpoint without knowing whether the log still reaches
/// it (the watermark query failed or timed out, typically just after a broker restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unverified {
    pub(super) topic: String,
    pub(super) partition: i32,
    /// The lake checkpoint it was assigned at.
    pub(super) committed: i64,
    next_attempt: Instant,
    delay: Duration,
}

/// The partitions whose log bounds are still to be checked, with a per-partition backoff.
///
/// A checkpoint beyond the log's end (a recreated topic, a broker that lost its log) must be
/// noticed by driftwatch itself: Kafka answers the fetch with `OFFSET_OUT_OF_RANGE` and the
/// consumer's reset brings the partition back to the log's start, but a broker is free to
/// answer an empty fetch instead, and then the partition would wait at its checkpoint for
/// messages that never come. A partition that delivers a message needs no check: the log
/// demonstrably reaches its position.
#[derive(Debug, Default)]
pub(super) struct UnverifiedBounds(Vec<Unverified>);

impl UnverifiedBounds {
    pub(super) fn add(&mut self, topic: String, partition: i32, committed: i64, now: Instant) {
        let next_attempt = now + RECHECK_FIRST_DELAY;
        self.0.push(Unverified { topic, partition, committed, next_attempt, delay: RECHECK_FIRST_DELAY });
    }

    /// The next partition due for a check, removed from the set; partitions that delivered
    /// a message since the assignment are dropped first.
    pub(super) fn take_due(&mut self, now: Instant, delivered: &NextOffsets) -> Option<Unverified> {
        self.0.retain(|entry| !delivered.contains(&entry.topic, entry.partition));
        let due = self.0.iter().position(|entry| entry.next_attempt <= now)?;
        Some(self.0.swap_remove(due))
    }

    /// The check failed again: try later, backing off.
    pub(super) fn retry_later(&mut self, mut entry: Unverified, now: Instant) {
        entry.delay = (entry.delay * 2).min(RECHECK_MAX_DELAY);
        entry.next_attempt = now + entry.delay;
        self.0.push(entry);
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Forget a partition released from the assignment.
    pub(super) fn remove(&mut self, topic: &str, partition: i32) {
        self.0.retain(|entry| !(entry.topic == topic && entry.partition == partition));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the poll loop does about held messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backpressure {
    /// Nothing held: poll (resuming a paused assignment first).
    Flowing,
    /// Held only briefly: wait for room without polling, keeping librdkafka's prefetch.
    Wait,
    /// Held for longer than [`PAUSE_AFTER`]: pause the assignment and poll for callbacks.
    Pause,
}

/// The backpressure decision: `blocked_since` starts when messages are first held and clears
/// once they are all forwarded.
pub(super) fn decide_backpressure(
    holding: bool,
    paused: bool,
    blocked_since: &mut Option<Instant>,
    now: Instant,
) -> Backpressure {
    if !holding {
        *blocked_since = None;
        return Backpressure::Flowing;
    }
    let since = *blocked_since.get_or_insert(now);
    if paused || now.duration_since(since) >= PAUSE_AFTER { Backpressure::Pause } else { Backpressure::Wait }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Message;

    use super::super::channel::tests::owned;

    #[test]
    fn next_offsets_accept_each_offset_once_per_partition() {
        let mut next = NextOffsets::default();
        assert!(next.accept("spans", 0, 10));
        assert!(next.accept("spans", 0, 11));
        assert!(!next.accept("spans", 0, 11), "a refetched message is a redelivery");
        assert!(!next.accept("spans", 0, 5));
        assert!(next.accept("spans", 1, 3), "partitions are independent");
        assert!(next.accept("logs", 0, 0), "topics are independent");
        assert!(next.accept("spans", 0, 20), "a gap (compaction, transaction markers) is fine");
        let mut seen: Vec<_> = next.iter().collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![("logs", 0, 1), ("spans", 0, 21), ("spans", 1, 4)]);
        next.clear();
        assert!(next.accept("spans", 0, 0), "cleared on a new assignment");
    }

    #[test]
    fn unverified_partitions_come_due_back_off_and_are_dropped_once_they_deliver() -> Result<(), &'static str> {
        let start = Instant::now();
        let mut unverified = UnverifiedBounds::default();
        let mut delivered = NextOffsets::default();
        unverified.add("spans".to_owned(), 0, 771, start);
        unverified.add("spans".to_owned(), 1, 898, start);
        assert_eq!(unverified.take_due(start, &delivered), None, "not before the first delay");

        let due = start + RECHECK_FIRST_DELAY;
        let first = unverified.take_due(due, &delivered).ok_or("a partition is due")?;
        let second = unverified.take_due(due, &delivered).ok_or("both are due")?;
        let mut taken = [(first.partition, first.committed), (second.partition, second.committed)];
        taken.sort_unstable();
        assert_eq!(taken, [(0, 771), (1, 898)]);
        assert!(unverified.is_empty());

        // A failed check waits twice as long, up to the cap.
        unverified.retry_later(first, due);
        assert_eq!(unverified.take_due(due + RECHECK_FIRST_DELAY, &delivered), None);
        let again = unverified.take_due(due + 2 * RECHECK_FIRST_DELAY, &delivered).ok_or("due after 2x")?;
        let mut at = due;
        let mut entry = again;
        for _ in 0..10 {
            unverified.retry_later(entry, at);
            at += RECHECK_MAX_DELAY;
            entry = unverified.take_due(at, &delivered).ok_or("the delay is capped")?;
        }

        // A partition that delivered a message needs no check.
        unverified.retry_later(entry, at);
        assert!(delivered.accept("spans", 0, 0));
        assert_eq!(unverified.take_due(at + RECHECK_MAX_DELAY, &delivered), None);
        assert!(unverified.is_empty());
        Ok(())
    }

    #[test]
    fn short_stalls_wait_long_stalls_pause_and_draining_resumes() {
        let start = Instant::now();
        let mut since = None;
        assert_eq!(decide_backpressure(false, false, &mut since, start), Backpressure::Flowing);
        // Messages held: wait (keeping librdkafka's prefetch) until the stall outlasts PAUSE_AFTER.
        assert_eq!(decide_backpressure(true, false, &mut since, start), Backpressure::Wait);
        let almost = start + PAUSE_AFTER - Duration::from_millis(1);
        assert_eq!(decide_backpressure(true, false, &mut since, almost), Backpressure::Wait);
        assert_eq!(decide_backpressure(true, false, &mut since, start + PAUSE_AFTER), Backpressure::Pause);
        // Once paused, stay paused while anything is held.
        assert_eq!(decide_backpressure(true, true, &mut since, start + PAUSE_AFTER), Backpressure::Pause);
        // Everything forwarded: flow (the caller resumes) and the stall clock restarts.
        let later = start + 3 * PAUSE_AFTER;
        assert_eq!(decide_backpressure(false, true, &mut since, later), Backpressure::Flowing);
        assert_eq!(since, None);
        assert_eq!(decide_backpressure(true, false, &mut since, later), Backpressure::Wait);
    }

    #[test]
    fn batches_close_at_their_message_or_byte_bound_and_keep_order() {
        let mut held = Held::default();
        for offset in 0..BATCH_MAX_MESSAGES as i64 - 1 {
            assert!(!held.gather(owned(offset, 10)));
        }
        assert!(held.gather(owned(BATCH_MAX_MESSAGES as i64 - 1, 10)), "full at the message bound");
        held.seal();
        assert!(!held.gather(owned(999, 10)));
        assert!(held.gather(owned(1_000, BATCH_MAX_BYTES)), "one big message fills a batch alone");
        held.seal();
        assert!(!held.gather(owned(2_000, 10)));
        held.seal();
        held.seal();
        let batches: Vec<Vec<i64>> = held
            .events
            .iter()
            .map(|event| match event {
                Event::Messages(messages) => messages.iter().map(Message::offset).collect(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(batches.len(), 4, "sealing an empty batch queues nothing");
        assert_eq!(batches[0], (0..BATCH_MAX_MESSAGES as i64).collect::<Vec<_>>());
        assert_eq!(batches[1..], [vec![999], vec![1_000], vec![2_000]], "the big message does not join a batch");
        assert_eq!(held.batch_bytes, 0);
    }
}
