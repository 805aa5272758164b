//! The watermark thread, which keeps the lag metric following the log while the assignment is
//! paused (see [`PAUSED_WATERMARK_REFRESH`]).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::PollerContext;

/// How often the high watermarks of paused partitions are queried. librdkafka learns a
/// partition's high watermark from its fetches, and a paused partition is not fetched: without
/// these queries, lag would freeze for as long as backpressure or a lake outage lasts, when it
/// matters most.
pub const PAUSED_WATERMARK_REFRESH: Duration = Duration::from_secs(10);

/// Longest wait for one partition's watermarks in [`refresh_paused_watermarks`]: short, so that
/// a shutdown never waits long for that thread.
const PAUSED_WATERMARK_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The watermark thread: while the assignment is paused, query each partition's high
/// watermark `every` ([`PAUSED_WATERMARK_REFRESH`] in the daemon) and note it for the lag
/// metric, until `stop` is dropped. Runs beside the poll thread (librdkafka's client is thread safe), so that a
/// slow or hanging query never holds up polling and rebalances.
pub fn refresh_paused_watermarks(
    consumer: &BaseConsumer<PollerContext>,
    stop: &std::sync::mpsc::Receiver<()>,
    every: Duration,
) {
    let context = consumer.context();
    let timeout = context.offset_query_timeout.min(PAUSED_WATERMARK_QUERY_TIMEOUT);
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        if !context.lock_held().paused {
            continue;
        }
        let Ok(assignment) = consumer.assignment() else { continue };
        for element in assignment.elements() {
            if !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
                return;
            }
            let (topic, partition) = (element.topic(), element.partition());
            match consumer.fetch_watermarks(topic, partition, timeout) {
                Ok((_, high)) => context.metrics.note_high_watermarks([(topic, partition, high)]),
                Err(error) => {
                    tracing::debug!(topic, partition, %error, "Watermark query of a paused partition failed.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    use super::super::test_support::{
        TestResult, context_over_a_fresh_lake, group_member, test_brokers, topic_with_messages,
    };
    use super::*;

    /// Against the dev stack's broker: a paused partition is not fetched, so librdkafka learns
    /// no new high watermark for it; the watermark thread queries it, and lag follows the log
    /// while the pause lasts.
    #[test]
    fn lag_follows_a_paused_partitions_log() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "paused-lag", 7)?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        let consumer: Arc<BaseConsumer<PollerContext>> =
            Arc::new(group_member(&brokers, &topic).create_with_context(context)?);
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Offset(2))?;
        consumer.assign(&assignment)?;
        consumer.pause(&assignment)?;
        consumer.context().lock_held().paused = true;
        let metrics = consumer.context().metrics.clone();
        metrics.set_lag_start(&topic, 0, Some(2));
        let lag = || -> Result<Option<String>, Box<dyn std::error::Error>> {
            let prefix = format!("driftwatch_consumer_lag{{topic=\"{topic}\",partition=\"0\"}} ");
            Ok(metrics.encode()?.lines().find_map(|line| line.strip_prefix(&prefix).map(str::to_owned)))
        };
        assert_eq!(lag()?, None, "nothing polled, no watermark known");

        let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(1);
        let refresher = std::thread::spawn({
            let consumer = Arc::clone(&consumer);
            move || refresh_paused_watermarks(&consumer, &stopped, Duration::from_millis(100))
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while lag()?.as_deref() != Some("5") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stop);
        refresher.join().map_err(|_| "the watermark thread panicked")?;
        assert_eq!(lag()?.as_deref(), Some("5"), "7 messages, lake data up to offset 2");
        Ok(())
    }
}
