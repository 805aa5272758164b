//! Messages into their partition's buffer, and out of it: flushes handed to the flusher (when
//! a buffer is due, and early for the largest one over the memory budget) and their
//! completions, whose offsets go back to the poll thread to commit.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;

use super::Daemon;
use crate::decode::PayloadFormat;
use crate::error::Result;
use crate::pipeline::{FlushOutcome, FlushReason, PartitionBuffer, largest_buffer};
use crate::source::file::now_nanos;
use crate::source::kafka::channel::Command;
use crate::source::kafka::poller::kafka_stream_id;

impl Daemon<'_> {
    pub(super) fn topic(&mut self, name: &str) -> Arc<str> {
        if let Some(topic) = self.topics.get(name) {
            return Arc::clone(topic);
        }
        let topic: Arc<str> = Arc::from(name);
        self.topics.insert(name.to_owned(), Arc::clone(&topic));
        topic
    }

    /// A partition's buffer starting at `start`, its flushes bound to `claim`, or to the claim
    /// the writer holds now when `None` (see [`FlushBatch::claim`](driftwatch_lake::writer::FlushBatch::claim)).
    pub(super) fn new_buffer(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        start: Option<i64>,
        claim: Option<String>,
    ) -> PartitionBuffer {
        let stream = kafka_stream_id(&self.group_id, topic);
        self.streams.insert(stream.clone(), Arc::clone(topic));
        let claim = claim.or_else(|| self.components.writer.held_claim(&stream, partition));
        PartitionBuffer::new(
            Arc::from(stream.as_str()),
            Arc::clone(topic),
            partition,
            start.unwrap_or(-1),
            &self.components.config.aggregate,
            self.components.limits.dedup_window,
        )
        .under_claim(claim)
    }

    /// One consumed message: into its partition's buffer, then flush what is due.
    pub(super) async fn on_message(&mut self, message: &OwnedMessage) -> Result<()> {
        let topic = self.topic(message.topic());
        let partition = message.partition();
        let offset = message.offset();
        let format = self.formats.get(&*topic).copied().unwrap_or(PayloadFormat::Auto);
        let key = (Arc::clone(&topic), partition);
        if self.claimed_elsewhere.contains_key(&key) {
            return Ok(());
        }
        if !self.started_at.contains_key(&key) {
            self.started_at.insert(key.clone(), offset);
            self.publish_lag_start(&key);
        }
        if !self.buffers.contains_key(&key) {
            let buffer = self.new_buffer(&topic, partition, None, None);
            self.buffers.insert(key.clone(), buffer);
        }
        let (expected, fresh) = self.buffers.get(&key).map_or((-1, true), |b| (b.next_offset(), b.is_fresh()));
        if expected >= 0 && offset < expected {
            if !fresh {
                // Already consumed in this assignment: a redelivery (a refetch after
                // pause/resume or a broker returning a whole record batch). Skipping
                // it is what keeps the lake free of duplicates.
                self.components.metrics.record_redelivery();
                return Ok(());
            }
            self.reset_partition(&key, offset).await?;
        }
        let Some(buffer) = self.buffers.get_mut(&key) else { return Ok(()) };
        let payload = message.payload().unwrap_or_default();
        self.processor.process(buffer, payload, format, (offset, offset + 1), now_nanos());
        if let Some(reason) = buffer.due(&self.components.limits, Instant::now()) {
            self.flush(&key, reason).await?;
        }
        Ok(())
    }

    /// Hand one partition's buffer to the flusher (waiting for capacity: backpressure).
    pub(super) async fn flush(&mut self, key: &(Arc<str>, i32), reason: FlushReason) -> Result<()> {
        let Some(buffer) = self.buffers.get_mut(key) else { return Ok(()) };
        let bytes = buffer.bytes();
        if let Some(batch) = self.processor.take_batch(buffer, now_nanos())? {
            self.flusher.submit(batch, reason, bytes).await?;
            // A submit that waited for a slot took the completions that freed it: apply them
            // now (checkpoint age, lag, the Kafka commit) rather than after a tick has handed
            // over every due partition, which behind a slow lake took minutes.
            while let Some(done) = self.flusher.take_ready() {
                self.on_flushed(&done?);
            }
        }
        Ok(())
    }

    /// Heap bytes the budget covers: rows buffered in every partition plus batches being
    /// written.
    pub(super) fn held_bytes(&self) -> usize {
        self.buffers.values().map(PartitionBuffer::bytes).sum::<usize>() + self.flusher.in_flight_bytes()
    }

    /// At or over `flush.max_buffered_bytes`: stop taking messages until a flush completes.
    pub(super) fn over_budget(&self) -> bool {
        self.held_bytes() >= self.components.limits.max_buffered_bytes
    }

    /// Over budget: flush the largest buffer early, if the flusher can take it now (otherwise
    /// the completion of a flush in flight frees memory first).
    pub(super) async fn relieve_memory(&mut self) -> Result<()> {
        if !self.over_budget() || !self.flusher.has_capacity() {
            return Ok(());
        }
        let key = largest_buffer(self.buffers.values_mut()).map(|buffer| (Arc::clone(&buffer.topic), buffer.partition));
        if let Some(key) = key {
            self.flush(&key, FlushReason::Memory).await?;
        }
        Ok(())
    }

    /// Wait for every flush in flight and apply its completion.
    pub(super) async fn drain_flushes(&mut self) -> Result<()> {
        while self.flusher.in_flight() > 0 {
            let done = self.flusher.next_done().await?;
            self.on_flushed(&done);
        }
        Ok(())
    }

    pub(super) fn on_flushed(&mut self, outcome: &FlushOutcome) {
        let done = match outcome {
            FlushOutcome::Committed(done) => done,
            // A fenced flush wrote nothing: its partition was lost, and its rows are the new owner's.
            FlushOutcome::Fenced { .. } => return,
            FlushOutcome::ClaimLost { stream, partition } => {
                self.drop_claimed_partition(stream, *partition);
                return;
            }
        };
        let Some(topic) = self.streams.get(&done.stream).cloned() else { return };
        let partition = done.partition;
        let key = (Arc::clone(&topic), partition);
        if !self.buffers.contains_key(&key) {
            // A flush handed over before the partition was lost: it is in the lake, but the
            // partition's offsets and gauges belong to its new owner now.
            return;
        }
        self.components.metrics.record_checkpoint(
            &topic,
            partition,
            std::time::SystemTime::from(done.report.checkpoint.updated_at),
        );
        self.durable.insert(key.clone(), (done.next_offset, Instant::now()));
        self.publish_lag_start(&key);
        let _ = self.commands.send(Command::Commit(vec![(topic.to_string(), partition, done.next_offset)]));
    }
}
