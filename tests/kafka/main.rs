//! The Kafka daemon against a real broker (Tansu, started by `scripts/dev-stack`): mixed load,
//! its metrics as the dev stack's Prometheus scrapes them, kill -9 crashes, a consumer group
//! losing a member, a frozen member waking up after the group gave its partitions away, a member
//! whose partitions were claimed in the lake, SIGTERM, a broker outage, an object store outage,
//! and loadgen meeting a broker that starts late, a producer that refuses its messages or topics
//! that do not exist. Each
//! test uses its own topics and consumer group. They run one at a time: each saturates the
//! machine.
//!
//! The tests, by theme:
//!
//! - `delivery`: mixed load landing exactly once, kill -9 crashes under load, and a log ending in
//!   a transaction marker caught up to.
//! - `metrics`: what the daemon serves is what the dev stack's Prometheus stores.
//! - `groups`: a member leaving the group, a frozen member waking up, partitions claimed in the
//!   lake by another writer.
//! - `outages`: a broker outage and an object store outage, ridden out.
//! - `shutdown`: SIGTERM within the deadline, and shutdowns during an object store outage.
//! - `loadgen`: loadgen meeting a broker that starts late, a producer that refuses messages, or
//!   topics that do not exist.
//!
//! `harness` runs daemons, load, Prometheus queries and private brokers for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod delivery;
mod groups;
mod loadgen;
mod metrics;
mod outages;
mod shutdown;

use std::time::Duration;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INGEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a daemon may take to consume a test's load (by its `/metrics`).
const CONSUME_TIMEOUT: Duration = Duration::from_secs(300);

fn brokers() -> String {
    common::stack_var("DRIFTWATCH_TEST_KAFKA")
}
