//! The Kafka daemon: a consumer group over several topics, exactly-once into the lake.
//!
//! # Data path
//!
//! ```text
//! poll thread (rdkafka)  --Event (bounded)-->  processing loop  --FlushBatch-->  flusher task
//!        ^                                          |                               |
//!        +------------- Command::Commit <-----------+<-------- FlushDone -----------+
//! ```
//!
//! # Layout
//!
//! - this file: [`run_daemon`], which serves `/metrics`, `/healthz` and `/readyz` and runs the
//!   pipeline until shutdown.
//! - [`client`]: the librdkafka configuration the consumer is built from, and how its refusals
//!   are worded.
//! - [`poller`] (`poller.rs`): the poll thread, which owns the consumer; forwards messages and
//!   rebalance events in order; pauses partitions under backpressure. Its parts:
//!   - `poller/rebalance.rs`: librdkafka's rebalance callback: assign, revoke (flushed by the loop
//!     first, then committed) and lost assignments.
//!   - `poller/recovery.rs`: recovers assigned partitions from the lake and checks each
//!     checkpoint against the log's watermarks.
//!   - `poller/client_callbacks.rs`: librdkafka's statistics, log and error callbacks: high
//!     watermarks, broker health, consumer errors counted.
//!   - `poller/commit.rs`: advisory offset commits to Kafka.
//!   - `poller/watermarks.rs`: the watermark thread, which keeps lag moving while paused.
//! - [`held`]: what the poll thread holds while the channel is full (batches being gathered,
//!   per-partition positions) and when it pauses.
//! - [`channel`]: the event channel from the poll thread, bounded in events and in message
//!   bytes, and the commands going back.
//! - `processing.rs`: builds the consumer, starts the poll and watermark threads and runs the
//!   processing loop, one `select!` over shutdown, a tick, flush completions and events, in that
//!   order (see `next_step`); then shuts down: final flush, last commit, leaving the group. The
//!   loop keeps one [`PartitionBuffer`](crate::pipeline::PartitionBuffer) per assigned partition,
//!   flushes on rows, bytes or age per partition (and the largest buffer when all together exceed
//!   the memory budget), and after each durable flush asks the poll thread to commit that offset
//!   to Kafka so lag tools see it. The lake checkpoint, not Kafka, is where partitions resume.
//!   Its parts:
//!   - `processing/partitions.rs`: the poll thread's events, and what becomes of partitions:
//!     assigned, revoked, lost, claimed in the lake by another daemon, reset when their offsets go
//!     backwards.
//!   - `processing/buffers.rs`: messages into partition buffers; flushes, the memory budget and
//!     flush completions.
//!   - `processing/lake_probe.rs`: whether the lake takes writes, for `/readyz`.
//!
//! A message's path: `poller.rs` polls it and gathers it into a batch ([`held`]), sent as one
//! [`Event`](channel::Event) over the [`channel`]; `processing/partitions.rs` hands the batch to
//! `processing/buffers.rs`, which puts each message in its partition's buffer and hands a due
//! buffer to the flusher; the flush's completion goes back to the poll thread as
//! [`Command::Commit`](channel::Command::Commit) (`poller/commit.rs`). A partition's path: the
//! group assigns it in `poller/rebalance.rs`, `poller/recovery.rs` finds where it resumes in the
//! lake, and `processing/partitions.rs` gets it as `Event::Assigned`. On revoke,
//! `poller/rebalance.rs` waits while `processing/partitions.rs` flushes the partition and answers
//! with its durable offset, which is committed before the partition is released.

pub mod channel;
pub mod client;
pub mod held;
pub mod poller;
mod processing;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::pipeline::Shutdown;
use crate::runtime::Components;
use crate::telemetry::{Readiness, http};
use processing::consume;

/// How long a revoke waits for the loop to flush the revoked partitions before giving up and
/// releasing them anyway (the new owner then replays from the last checkpoint). The group's
/// rebalance timeout (`max.poll.interval.ms`) may not be shorter.
pub const REVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// Run the daemon until shutdown is requested; then flush, checkpoint, commit and leave the
/// group, all within the shutdown's deadline. The final flush gets all of it but the last
/// quarter (at most 10 s, [`crate::pipeline::final_flush_budget`]), kept for leaving the group
/// even when the lake does not take the flush.
pub async fn run_daemon(config: Config, shutdown: Shutdown) -> Result<()> {
    let kafka = config.kafka.clone().ok_or(Error::KafkaNotConfigured)?;
    let components = Components::build(config).await?;
    let readiness = Readiness::new();
    readiness.set_not_ready("starting");
    let tasks = TaskTracker::new();
    let http_shutdown = CancellationToken::new();
    let server = http::bind(components.config.http.clone(), components.metrics.clone(), readiness.clone()).await?;
    tracing::info!(address = %server.local_addr(), "HTTP endpoint serving /metrics, /healthz and /readyz.");
    let serving = http_shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = server.run(serving).await {
            tracing::error!(%error, "HTTP endpoint failed.");
        }
    });

    let result = consume(&components, &kafka, &readiness, &tasks, shutdown).await;
    http_shutdown.cancel();
    tasks.close();
    // After a shutdown that gave up on the lake, the flusher can still be inside a store
    // attempt (a store client's own retries run for minutes). Waiting for it would end in the
    // deadline's kill; leaving it is a crash to the lake, which its protocol makes exact.
    if tokio::time::timeout(TASKS_GRACE, tasks.wait()).await.is_err() {
        tracing::warn!(
            grace_ms = TASKS_GRACE.as_millis() as u64,
            "A lake commit given up at shutdown is still under way; exiting without waiting for it."
        );
    }
    result
}

/// How long the daemon's tasks get to finish once the pipeline has stopped: the HTTP server's
/// last answers, and a flusher task that has nothing left to do.
const TASKS_GRACE: Duration = Duration::from_secs(1);
