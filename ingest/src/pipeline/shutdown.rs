//! Shutdown as the sources see it: the request (SIGTERM or SIGINT, one cancellation token) and
//! the deadline the process gives the work after it (`--shutdown-deadline`, after which the
//! binary exits with 124 whatever is still running).
//!
//! A source that is asked to stop flushes what it has buffered. When the lake refuses commits,
//! those flushes retry, and waiting for them would run into the deadline's exit. So flushes are
//! abandoned at the final flush's budget, a little before the deadline, and the source ends by
//! itself with an error that says its rows were left unwritten (their position was never
//! committed, so the next run or the partition's next owner reads them again). The margin is
//! what a source needs after giving up: the Kafka daemon's last commit and leaving its group.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// A shutdown request and the deadline that follows it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    requested: CancellationToken,
    deadline: Duration,
    /// When the request came, as [`Shutdown::abandon_flushes_at_budget`] saw it: a source's loop
    /// may see it only later (it can be waiting on the lake), and reports its shutdown's
    /// duration from the request.
    requested_at: Arc<OnceLock<Instant>>,
}

impl Shutdown {
    /// Shutdown when `requested` is cancelled, with `deadline` to finish after it.
    pub fn new(requested: CancellationToken, deadline: Duration) -> Self {
        Self { requested, deadline, requested_at: Arc::default() }
    }

    /// When shutdown was asked for, if it was and a [`Shutdown::abandon_flushes_at_budget`]
    /// was watching.
    pub fn requested_at(&self) -> Option<Instant> {
        self.requested_at.get().copied()
    }

    /// Cancelled once shutdown has been asked for.
    pub fn requested(&self) -> &CancellationToken {
        &self.requested
    }

    /// How much of the deadline the final flush may take.
    pub fn final_flush_budget(&self) -> Duration {
        final_flush_budget(self.deadline)
    }

    /// Cancel `abandon` (the flusher's token) once the final flush's budget has passed since the
    /// request. Returns early, doing nothing, if `abandon` is cancelled first: the source is done.
    pub async fn abandon_flushes_at_budget(self, abandon: CancellationToken) {
        let budget = self.final_flush_budget();
        tokio::select! {
            () = abandon.cancelled() => {}
            () = async {
                self.requested.cancelled().await;
                // Tokio's clock, which tests can pause; the same instant as std's otherwise.
                let _ = self.requested_at.set(tokio::time::Instant::now().into_std());
                tokio::time::sleep(budget).await;
            } => {
                tracing::warn!(
                    budget_secs = budget.as_secs_f64(),
                    "The lake did not take the shutdown flush within its budget; giving up the flushes still retrying."
                );
                abandon.cancel();
            }
        }
    }
}

/// How much of the shutdown deadline the final flush may take: all but the last quarter, and at
/// most 10 s are kept back. The rest is for what comes after the lake: the Kafka daemon's last
/// offset commit and leaving the group, which need the brokers, not the lake. A flush stuck
/// behind a lake outage must not use up the deadline, or the process is ended still in the
/// group and its partitions wait out the session timeout (on some brokers the whole rebalance
/// timeout) before anyone else reads them.
pub fn final_flush_budget(shutdown_deadline: Duration) -> Duration {
    shutdown_deadline.saturating_sub((shutdown_deadline / 4).min(Duration::from_secs(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_flush_keeps_a_quarter_of_the_deadline_and_at_most_ten_seconds() {
        assert_eq!(final_flush_budget(Duration::from_secs(30)), Duration::from_millis(22_500));
        assert_eq!(final_flush_budget(Duration::from_secs(120)), Duration::from_secs(110), "at most 10 s kept");
        assert_eq!(final_flush_budget(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_are_abandoned_at_the_budget_counted_from_the_request() {
        let requested = CancellationToken::new();
        let abandon = CancellationToken::new();
        let shutdown = Shutdown::new(requested.clone(), Duration::from_secs(8));
        let shutdown_seen = shutdown.clone();
        let watcher = tokio::spawn(shutdown.abandon_flushes_at_budget(abandon.clone()));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(shutdown_seen.requested_at(), None);
        assert!(!abandon.is_cancelled(), "no shutdown asked for: nothing is abandoned");
        let asked = tokio::time::Instant::now();
        requested.cancel();
        tokio::time::sleep(Duration::from_millis(5_900)).await;
        assert_eq!(shutdown_seen.requested_at(), Some(asked.into_std()), "the request's time is kept");
        assert!(!abandon.is_cancelled(), "abandoned before the budget (6 s of an 8 s deadline)");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(abandon.is_cancelled(), "not abandoned at the budget");
        assert!(watcher.await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_is_done_ends_the_watch() {
        let abandon = CancellationToken::new();
        let watcher = tokio::spawn(
            Shutdown::new(CancellationToken::new(), Duration::from_secs(8)).abandon_flushes_at_budget(abandon.clone()),
        );
        abandon.cancel();
        assert!(watcher.await.is_ok(), "the watch ended with the source");
    }
}
