//! The event channel between the poll thread and the processing loop.
//!
//! The poll thread sends [`Event`]s (message batches and rebalance notices) in consumption
//! order; the processing loop answers with [`Command`]s on a std channel. The event channel is
//! bounded twice: by a count of events, like any tokio channel, and by the bytes of the messages
//! it holds, because with messages of up to `message.max.bytes` a count alone would not bound
//! memory. When either bound is reached the poll thread holds what it polled and, after a while,
//! pauses its partitions (see the poller).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tokio::sync::mpsc;

/// Bytes of messages the event channel may hold (besides its count bound): with messages of up
/// to `message.max.bytes` a count alone would not bound memory.
pub const CHANNEL_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Bookkeeping bytes charged per message on top of its payload and key.
const MESSAGE_OVERHEAD_BYTES: usize = 256;

/// What an event costs against [`CHANNEL_MAX_BYTES`]: a message's payload and key; control
/// events are free (they are few and must never wait).
fn channel_cost(event: &Event) -> usize {
    match event {
        Event::Messages(messages) => messages.iter().map(message_cost).sum(),
        _ => 0,
    }
}

pub(super) fn message_cost(message: &OwnedMessage) -> usize {
    message.payload().map_or(0, <[u8]>::len) + message.key().map_or(0, <[u8]>::len) + MESSAGE_OVERHEAD_BYTES
}

/// The channel from the poll thread to the processing loop, bounded to `capacity` events and
/// [`CHANNEL_MAX_BYTES`] of messages.
pub fn event_channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (events, receiver) = mpsc::channel(capacity);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (EventSender { events, queued_bytes: Arc::clone(&queued_bytes) }, EventReceiver { events: receiver, queued_bytes })
}

/// The poll thread's end of the event channel.
#[derive(Debug)]
pub struct EventSender {
    events: mpsc::Sender<Event>,
    /// [`channel_cost`] of the events sent and not yet received.
    queued_bytes: Arc<AtomicUsize>,
}

/// The processing loop's end of the event channel.
#[derive(Debug)]
pub struct EventReceiver {
    events: mpsc::Receiver<Event>,
    queued_bytes: Arc<AtomicUsize>,
}

impl EventReceiver {
    /// The next event, giving its bytes back to the sender; `None` once the poll thread is
    /// gone. Cancel safe.
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.events.recv().await?;
        self.queued_bytes.fetch_sub(channel_cost(&event), Ordering::AcqRel);
        Some(event)
    }
}

impl EventSender {
    /// Send without waiting; `Full` also when the channel already holds its bytes' worth (a
    /// single message larger than the bound still passes when the channel is empty).
    pub(super) fn try_send(&self, event: Event) -> Result<(), mpsc::error::TrySendError<Event>> {
        let cost = channel_cost(&event);
        let queued = self.queued_bytes.fetch_add(cost, Ordering::AcqRel);
        if cost > 0 && queued > 0 && queued + cost > CHANNEL_MAX_BYTES {
            self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
            return Err(mpsc::error::TrySendError::Full(event));
        }
        self.events.try_send(event).inspect_err(|_| {
            self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
        })
    }

    /// Send, waiting for room in the count bound only (rebalance callbacks must hand over).
    pub(super) fn blocking_send(&self, event: Event) -> Result<(), mpsc::error::SendError<Event>> {
        let cost = channel_cost(&event);
        self.queued_bytes.fetch_add(cost, Ordering::AcqRel);
        self.events.blocking_send(event).inspect_err(|_| {
            self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
        })
    }
}

/// What the poll thread tells the processing loop, in consumption order.
#[derive(Debug)]
pub enum Event {
    /// Consumed messages, in order (at most [`BATCH_MAX_MESSAGES`](super::held::BATCH_MAX_MESSAGES)).
    Messages(Vec<OwnedMessage>),
    /// Partitions now owned, and where each starts.
    Assigned(Vec<AssignedPartition>),
    /// Partitions being released: flush them, then answer with the offsets now durable.
    Revoked { partitions: Vec<(String, i32)>, reply: std::sync::mpsc::SyncSender<Vec<(String, i32, i64)>> },
    /// Partitions taken away without a handshake: the group moved on while this member could
    /// not answer (frozen, partitioned from the coordinator). Another member may already be
    /// consuming them from the lake checkpoint, so what is buffered for them is dropped
    /// unwritten; writing it now would race the new owner. Answer once the flushes already in
    /// flight have finished, so that a later assignment's recovery never runs beside them.
    Lost { partitions: Vec<(String, i32)>, done: std::sync::mpsc::SyncSender<()> },
    /// A consumer error the daemon cannot recover from (already counted and logged).
    Fatal { kind: &'static str, message: String },
}

/// A partition now owned, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedPartition {
    pub topic: String,
    pub partition: i32,
    /// The lake checkpoint consumption resumes from (`None`: no checkpoint; the first message
    /// read starts the first range).
    pub resume_at: Option<i64>,
    /// The offset the consumer starts reading at, when known: the checkpoint, or the log's
    /// start for `start_from = "earliest"`, the log's end kept as the first checkpoint for
    /// `"latest"`. `None` when the log's start or end could not be queried (or the end not kept).
    pub position: Option<i64>,
    /// When the lake checkpoint was written, if there is one.
    pub checkpoint_at: Option<std::time::SystemTime>,
    /// The lake claim taken by this assignment's recovery: the partition's flushes are bound
    /// to it, so that one still queued from an earlier assignment is never committed under it.
    pub claim: Option<String>,
}

/// What the processing loop asks of the poll thread.
#[derive(Debug)]
pub enum Command {
    /// Commit these offsets to Kafka (asynchronously); the lake already has the data.
    Commit(Vec<(String, i32, i64)>),
    /// Commit synchronously, leave the group and exit the thread.
    Stop(Vec<(String, i32, i64)>),
    /// Claim this partition back in the lake and read it again from its checkpoint, if the
    /// group still assigns it here: another writer claimed it while this member held it.
    Reclaim { topic: String, partition: i32 },
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A message of `bytes` payload bytes at `offset` of partition 0 of topic `t`.
    pub(in crate::source::kafka) fn owned(offset: i64, bytes: usize) -> OwnedMessage {
        OwnedMessage::new(Some(vec![0; bytes]), None, "t".to_owned(), rdkafka::Timestamp::NotAvailable, 0, offset, None)
    }

    #[tokio::test]
    async fn the_event_channel_is_bounded_in_bytes() {
        let (sender, mut receiver) = event_channel(1_000);
        let message = |bytes: usize| Event::Messages(vec![owned(0, bytes)]);
        // One message larger than the bound still passes into an empty channel.
        assert!(sender.try_send(message(CHANNEL_MAX_BYTES * 2)).is_ok());
        assert!(matches!(sender.try_send(message(1)), Err(mpsc::error::TrySendError::Full(_))));
        // Control events are never held back by bytes.
        assert!(sender.try_send(Event::Fatal { kind: "test", message: String::new() }).is_ok());
        // The receiver gives the bytes back; then messages flow until the bound.
        assert!(matches!(receiver.recv().await, Some(Event::Messages(_))));
        assert!(matches!(receiver.recv().await, Some(Event::Fatal { .. })));
        assert_eq!(sender.queued_bytes.load(Ordering::Acquire), 0);
        let size = CHANNEL_MAX_BYTES / 4;
        let mut sent = 0;
        while sender.try_send(message(size)).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 3, "three quarter-bound messages (plus overhead) fit, the fourth does not");
        assert!(sender.queued_bytes.load(Ordering::Acquire) <= CHANNEL_MAX_BYTES);
    }
}
