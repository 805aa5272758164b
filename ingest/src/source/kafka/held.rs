//! What the poll thread holds between librdkafka and the event channel, and when it pauses.
//!
//! Accepted messages are gathered into batches (up to [`BATCH_MAX_MESSAGES`] or
//! [`BATCH_MAX_BYTES`]); a sealed batch waits in `Held` while the channel is full.
//! `decide_backpressure` turns how long messages have been held into waiting (librdkafka
//! keeps its prefetch) or pausing the assignment (after [`PAUSE_AFTER`]). `NextOffsets`
//! remembers where each partition stands, so a refetch after a resume is not handed on twice.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::message::OwnedMessage;

use super::channel::{Event, message_cost};

/// How long the channel may stay full before the assignment is paused. Longer than a flush
/// handover, far shorter than `max.poll.interval.ms`.
pub const PAUSE_AFTER: Duration = Duration::from_secs(2);

/// Messages gathered into one [`Event::Messages`] at most.
pub const BATCH_MAX_MESSAGES: usize = 512;

/// Payload bytes gathered into one [`Event::Messages`] at most (a batch is closed once it
/// reaches this; a single larger message makes a batch of its own).
pub const BATCH_MAX_BYTES: usize = 1024 * 1024;

/// State shared between the poll loop and the rebalance callbacks (same thread; the mutex
/// is never contended, it only satisfies `Sync`).
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Messages polled while the channel was full, oldest first.
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
}

impl Held {
    /// Add an accepted message to the batch being gathered; true when the batch is full.
    pub(super) fn gather(&mut self, message: OwnedMessage) -> bool {
        self.batch_bytes += message_cost(&message);
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

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.0.iter().flat_map(|(topic, partitions)| partitions.iter().map(|(p, next)| (&**topic, *p, *next)))
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
        assert_eq!(batches.len(), 3, "sealing an empty batch queues nothing");
        assert_eq!(batches[0], (0..BATCH_MAX_MESSAGES as i64).collect::<Vec<_>>());
        assert_eq!(batches[1..], [vec![1_000], vec![2_000]]);
        assert_eq!(held.batch_bytes, 0);
    }
}
