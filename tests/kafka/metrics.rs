//! Metrics: what the daemon serves is what the dev stack's Prometheus scrapes and stores.

use std::path::Path;
use std::time::Duration;

use crate::harness::{self, Daemon, Prometheus, Setup};
use crate::{CONSUME_TIMEOUT, ONE_AT_A_TIME, brokers, common};

/// What the daemon serves is what Prometheus stores: the exposition parses in a real Prometheus
/// (an OpenMetrics parse failure would leave no samples), every sample name reaches it, and the
/// values agree once consumption has stopped.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_metric_the_daemon_serves() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let prometheus = Prometheus::from_stack();
    // The dev stack's Prometheus scrapes this port every second.
    let instance = format!("127.0.0.1:{}", common::stack_var("DRIFTWATCH_TEST_SCRAPE_PORT"));
    let setup = Setup::new(&brokers(), "prom", 3, "1s").await?;
    let daemon = Daemon::start_at(&setup.config, setup.dir.path(), &[], &instance)?;
    let selector = format!("instance=\"{instance}\"");
    // Before any input, every dead-letter reason and each topic's results are scraped at 0: the
    // sample `increase()` needs to see the first dead letter, which a series that first appears
    // at 1 lacks.
    let zeros = common::wait_for(Duration::from_secs(30), || {
        let zero = |name: &str| {
            let series = prometheus.query(&format!("{name}{{{selector}}}")).ok()?;
            (series.len() > 1 && series.iter().all(|(_, value)| *value == 0.0)).then_some(series.len())
        };
        Some((zero("driftwatch_dead_letters_total")?, zero("driftwatch_messages_total")?))
    });
    let reasons = driftwatch_ingest::telemetry::names::DECODE_ERROR_REASONS.len() + 1;
    assert_eq!(
        zeros,
        Some((reasons, 3 * 4)),
        "every dead-letter reason and 3 topics' 4 results at 0, before any input"
    );
    let truth = setup.produce(3_000, 17, 0.01).await??;
    assert!(truth.malformed_messages > 0);
    assert!(daemon.consumed(truth.messages, CONSUME_TIMEOUT), "not consumed; log:\n{}", daemon.log_tail());
    let served = daemon.metrics()?;
    // Asked with no Accept header, as curl asks, the daemon answers in the classic text format,
    // which `promtool check metrics` parses and lints (Prometheus itself gets OpenMetrics).
    common::promtool(&["check", "metrics"], Path::new("."), &served)?;
    let requests = harness::metric_sum(&served, "driftwatch_requests_total", "");
    let messages = harness::metric_sum(&served, "driftwatch_messages_total", "");
    assert_eq!(messages as u64, truth.messages);

    // Consumption is over, so the counters hold still; wait for a scrape that has them.
    let scraped = common::wait_for(Duration::from_secs(30), || {
        let sum = |name: &str| prometheus.query(&format!("sum({name}{{{selector}}})")).ok()?.first().map(|r| r.1);
        (sum("driftwatch_requests_total")? == requests && sum("driftwatch_messages_total")? == messages).then_some(())
    });
    assert!(
        scraped.is_some(),
        "Prometheus never showed {requests} requests and {messages} messages for {instance}: {:?}",
        prometheus.query(&format!("up{{{selector}}}"))
    );

    // Every sample name the daemon serves is a series there, read at the same scrape or later.
    let stored: std::collections::BTreeSet<String> = prometheus
        .query(&format!("group by (__name__) ({{{selector}}})"))?
        .into_iter()
        .filter_map(|(labels, _)| labels.get("__name__").cloned())
        .collect();
    let missing: Vec<String> =
        harness::sample_names(&served).into_iter().filter(|name| !stored.contains(name)).collect();
    assert!(missing.is_empty(), "served but not in Prometheus: {missing:?}");
    // Every dead letter, the first of each reason included, is a rise from a scraped 0.
    let first = prometheus.query(&format!("sum(min_over_time(driftwatch_dead_letters_total{{{selector}}}[10m]))"))?;
    assert_eq!(first.first().map(|r| r.1), Some(0.0), "every dead-letter series started at 0 in Prometheus");
    let rise = prometheus.query(&format!("sum(increase(driftwatch_dead_letters_total{{{selector}}}[10m]))"))?;
    assert!(rise.first().is_some_and(|r| r.1 > 0.0), "increase() sees the dead letters: {rise:?}");
    // The shipped alerting rules (dashboards/prometheus/rules.yml, loaded by the dev stack's
    // Prometheus) evaluate against the real daemon: the dead-letter alert fires for it.
    let firing = common::wait_for(Duration::from_secs(30), || {
        let alerts = prometheus
            .query(&format!("ALERTS{{alertname=\"DriftwatchDeadLetters\",alertstate=\"firing\",{selector}}}"))
            .ok()?;
        (!alerts.is_empty()).then_some(alerts.len())
    });
    assert!(firing.is_some(), "DriftwatchDeadLetters never fired in the dev stack's Prometheus for {instance}");
    for name in ["gen_ai_client_operation_duration_seconds_bucket", "process_resident_memory_bytes"] {
        assert!(stored.contains(name), "{name} not in Prometheus: {stored:?}");
    }
    // Failed calls are timed under their error_type, successful ones without it, so the
    // dashboards' "successful calls only" latency is a plain matcher.
    let count = |matcher: &str| -> anyhow::Result<f64> {
        let query = format!("sum(gen_ai_client_operation_duration_seconds_count{{{selector}{matcher}}})");
        Ok(prometheus.query(&query)?.first().map_or(0.0, |r| r.1))
    };
    let (all, succeeded, failed) = (count("")?, count(",error_type=\"\"")?, count(",error_type!=\"\"")?);
    assert!(succeeded > 0.0 && failed > 0.0, "successes {succeeded} and failures {failed} both timed");
    assert_eq!(succeeded + failed, all, "every call timed once");
    // Over the cumulative buckets, not rate(): the series first appear already filled when a
    // burst is consumed between two scrapes, and a rate over samples that never changed is empty.
    let p95 = prometheus.query(&format!(
        "histogram_quantile(0.95, sum by (le) (gen_ai_client_operation_duration_seconds_bucket{{{selector},error_type=\"\"}}))"
    ))?;
    assert!(p95.first().is_some_and(|r| r.1.is_finite() && r.1 > 0.0), "p95 of successful calls: {p95:?}");
    let resident = prometheus.query(&format!("process_resident_memory_bytes{{{selector}}}"))?;
    assert!(resident.first().is_some_and(|r| r.1 > 1e6), "resident memory in Prometheus: {resident:?}");
    // The test config leaves flush.max_buffered_bytes at its default, 512 MiB.
    let budget = prometheus.query(&format!("driftwatch_buffered_bytes_limit{{{selector}}}"))?;
    assert_eq!(budget.first().map(|r| r.1), Some(512.0 * 1024.0 * 1024.0), "buffer budget in Prometheus");
    daemon.stop(Duration::from_secs(60))?;
    Ok(())
}
