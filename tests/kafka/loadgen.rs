//! loadgen against a broker that starts late, and a producer that refuses its messages.

use std::time::Duration;

use crate::harness;
use crate::{ONE_AT_A_TIME, brokers, common};

#[tokio::test(flavor = "multi_thread")]
async fn loadgen_creates_its_topics_on_a_broker_that_comes_up_late() -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let mut broker = harness::private_broker(dir.path())?;
    broker.stop();
    let topics = driftwatch_ingest::loadgen::LoadTopics::with_prefix(&format!("{}-", common::unique("late")));
    let names: Vec<String> = topics.all().iter().map(|name| (*name).to_owned()).collect();
    let address = broker.address.clone();
    // A creation request waits up to 10 s for a broker. The broker comes up after 12 s, so
    // the first request times out and loadgen must retry it instead of failing the run (a
    // broker slow to start in CI is this case).
    let creating = tokio::spawn(async move {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        driftwatch_ingest::loadgen::ensure_topics(&address, &[], &names, 2, Duration::from_secs(90)).await
    });
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(!creating.is_finished(), "topic creation returned with no broker listening");
    tokio::task::block_in_place(|| broker.restart())?;
    creating.await??;

    let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &broker.address).create()?;
    for topic in topics.all() {
        let metadata = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(10)))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
        assert_eq!(partitions, 2, "{topic} after a late broker start");
    }
    Ok(())
}

/// Messages librdkafka refuses to queue (here: larger than `message.max.bytes`) get no delivery
/// report; the run must fail instead of printing a truth that counts them.
#[tokio::test(flavor = "multi_thread")]
async fn loadgen_fails_when_the_producer_refuses_messages() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let prefix = format!("{}-", common::unique("refused"));
    let flags = ["--create-partitions", "1", "--format", "json", "--inferences", "300"];
    let stderr = failed_loadgen(&prefix, &[&flags[..], &["--producer-property", "message.max.bytes=1000"]].concat())?;
    assert!(stderr.contains("refused by the producer"), "{stderr}");
    Ok(())
}

/// Run loadgen on topics behind `prefix`, which must fail without printing a truth; its stderr.
fn failed_loadgen(prefix: &str, flags: &[&str]) -> anyhow::Result<String> {
    let output = tokio::task::block_in_place(|| {
        common::driftwatch()
            .args(["loadgen", "--brokers", &brokers(), "--topic-prefix", prefix])
            .args(flags)
            .stdin(std::process::Stdio::null())
            .output()
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    anyhow::ensure!(!output.status.success(), "loadgen succeeded:\n{stdout}\n{stderr}");
    anyhow::ensure!(stdout.trim().is_empty(), "a truth was printed: {stdout}");
    Ok(stderr)
}

/// Topics that do not exist fail the run at once, naming the topic and the flag that creates
/// them, instead of every message timing out with no reason given.
#[tokio::test(flavor = "multi_thread")]
async fn loadgen_names_a_missing_topic_and_the_flag_that_creates_it() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let prefix = format!("{}-", common::unique("missing"));
    let stderr = failed_loadgen(&prefix, &["--inferences", "20"])?;
    assert!(stderr.contains(&format!("topic {prefix}otlp_spans does not exist")), "{stderr}");
    assert!(stderr.contains("--create-partitions"), "{stderr}");
    Ok(())
}
