//! Whether the lake takes writes, probed on a timer so that a lake that breaks while nothing
//! is being committed still turns `/readyz` to 503.

use std::time::{Duration, Instant};

/// How often the lake is probed while it refuses writes, and while it takes them: a lake that
/// breaks while every partition is quiet (no commit to fail) still turns `/readyz` to 503.
const LAKE_PROBE_WHILE_UNWRITABLE: Duration = Duration::from_secs(5);
const LAKE_PROBE_WHILE_WRITABLE: Duration = Duration::from_secs(30);
/// A probe that has not answered by then counts as a failed one (and is left to finish).
const LAKE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the lake takes writes, from a small put and delete. Probes run on tasks of their
/// own, so a store that hangs never stalls the pipeline's loop. While the daemon runs a probe
/// is not cancelled (that could leave its file behind): one that takes longer than
/// [`LAKE_PROBE_TIMEOUT`] counts as failed and is left to finish, and each further
/// [`LAKE_PROBE_TIMEOUT`] it stays unanswered counts as another failed probe (the one that
/// would have started had it answered), so a store that hangs, whose client may retry for
/// minutes, is called unwritable as soon as one that refuses connections. At shutdown a probe under way
/// is aborted rather than waited for, since during a store outage it may retry for minutes; its
/// small `_checkpoints/_probe-*` object may then stay. The lake turns unwritable after two
/// failures in a row, so one slow answer does not flap readiness, and writable again after one
/// success.
pub(super) struct LakeProbe {
    pub(super) writable: bool,
    /// Failed probes since the last success.
    failures: u32,
    last: Option<Instant>,
    /// The probe under way, when it started, and how many [`LAKE_PROBE_TIMEOUT`]s of its
    /// lateness were counted as failures.
    running: Option<(ProbeTask, Instant, u32)>,
}

/// A probe's task: `Err` says why the lake refused the write.
type ProbeTask = tokio::task::JoinHandle<std::result::Result<(), String>>;

/// Failed probes in a row that make a writable lake unwritable.
const LAKE_PROBE_FAILURES: u32 = 2;

impl LakeProbe {
    pub(super) fn new() -> Self {
        Self { writable: false, failures: 0, last: None, running: None }
    }

    /// The first check, at start: waited for (up to the timeout), and a failure counts fully.
    pub(super) async fn check_now(&mut self, store: &driftwatch_lake::store::LakeStore) {
        self.start(store);
        let Some((handle, _, _)) = self.running.as_mut() else { return };
        match tokio::time::timeout(LAKE_PROBE_TIMEOUT, handle).await {
            Ok(joined) => {
                // Taken here: a finished JoinHandle must not be awaited again.
                self.running = None;
                self.settle(answer(joined));
            }
            Err(_) => self.count_late(),
        }
    }

    /// Take a finished probe's answer, count a late one as failed, and start the next one
    /// when it is due: every 30 s while the lake takes writes, every 5 s while it does not or
    /// a probe has just failed.
    pub(super) async fn poll(&mut self, store: &driftwatch_lake::store::LakeStore) {
        if let Some((handle, _, late)) = self.running.take_if(|(handle, _, _)| handle.is_finished()) {
            let result = answer(handle.await);
            // A late probe was counted as failed when it ran late; its own failure is the same one.
            if !(late > 0 && result.is_err()) {
                self.settle(result);
            }
        }
        self.count_lateness();
        let every =
            if self.writable && self.failures == 0 { LAKE_PROBE_WHILE_WRITABLE } else { LAKE_PROBE_WHILE_UNWRITABLE };
        if self.running.is_none() && self.last.is_none_or(|at| at.elapsed() >= every) {
            self.start(store);
        }
    }

    /// Count the probe under way as failed once more for each [`LAKE_PROBE_TIMEOUT`] it has
    /// been unanswered since the last one counted.
    fn count_lateness(&mut self) {
        if self
            .running
            .as_ref()
            .is_some_and(|(_, started, counted)| started.elapsed() >= LAKE_PROBE_TIMEOUT * (counted + 1))
        {
            self.count_late();
        }
    }

    /// Count the probe under way as failed once more: it has not answered within another
    /// [`LAKE_PROBE_TIMEOUT`].
    fn count_late(&mut self) {
        let Some((_, started, counted)) = self.running.as_mut() else { return };
        *counted += 1;
        let waited = started.elapsed().as_secs();
        self.settle(Err(format!("no answer after {waited} s")));
    }

    fn start(&mut self, store: &driftwatch_lake::store::LakeStore) {
        let store = store.clone();
        self.start_task(async move { store.check_writable().await.map_err(|error| error.to_string()) });
    }

    fn start_task(&mut self, probe: impl Future<Output = std::result::Result<(), String>> + Send + 'static) {
        let now = Instant::now();
        self.last = Some(now);
        self.running = Some((tokio::spawn(probe), now, 0));
    }

    fn settle(&mut self, result: std::result::Result<(), String>) {
        match result {
            Ok(()) => {
                if !self.writable && self.failures > 0 {
                    tracing::info!("The lake is writable.");
                }
                self.writable = true;
                self.failures = 0;
            }
            Err(error) => {
                self.failures += 1;
                let first_check = self.failures == 1 && !self.writable;
                if first_check {
                    self.failures = LAKE_PROBE_FAILURES;
                }
                if self.failures == LAKE_PROBE_FAILURES {
                    tracing::warn!(%error, "The lake is not writable; not ready until it is.");
                    self.writable = false;
                } else if self.writable {
                    tracing::info!(%error, "A lake probe failed; probing again before calling the lake unwritable.");
                } else {
                    tracing::debug!(%error, "The lake is still not writable.");
                }
            }
        }
    }
}

/// What a finished probe task says: its own answer, or why the task itself failed.
fn answer(
    joined: std::result::Result<std::result::Result<(), String>, tokio::task::JoinError>,
) -> std::result::Result<(), String> {
    joined.unwrap_or_else(|error| Err(format!("the probe task failed: {error}")))
}

impl Drop for LakeProbe {
    fn drop(&mut self) {
        if let Some((handle, _, _)) = &self.running {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Poll `probe` with every probe due at once until `done` holds (at most 5 s).
    async fn probe_until(
        probe: &mut LakeProbe,
        store: &driftwatch_lake::store::LakeStore,
        done: impl Fn(&LakeProbe) -> bool,
    ) -> bool {
        for _ in 0..500 {
            probe.last = Instant::now().checked_sub(LAKE_PROBE_WHILE_WRITABLE);
            probe.poll(store).await;
            if done(probe) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// A lake that breaks while nothing is being committed is noticed by the timed probe after
    /// two failures in a row (one alone does not flap readiness), and so is its return.
    #[tokio::test]
    async fn the_lake_probe_notices_a_lake_that_breaks_and_comes_back_while_idle() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("lake");
        std::fs::create_dir_all(&root)?;
        let store =
            driftwatch_lake::store::LakeStore::open(&root.display().to_string(), &std::collections::HashMap::new())
                .await?;
        let mut probe = LakeProbe::new();
        probe.check_now(&store).await;
        assert!(probe.writable);

        let break_lake = || -> std::io::Result<()> {
            std::fs::remove_dir_all(&root)?;
            std::fs::write(&root, b"not a directory")
        };
        let mend_lake = || -> std::io::Result<()> {
            std::fs::remove_file(&root)?;
            std::fs::create_dir_all(&root)
        };
        break_lake()?;
        assert!(probe_until(&mut probe, &store, |p| p.failures == 1).await);
        assert!(probe.writable, "one failed probe does not make the lake unwritable");
        mend_lake()?;
        assert!(probe_until(&mut probe, &store, |p| p.failures == 0).await);
        assert!(probe.writable);

        break_lake()?;
        assert!(probe_until(&mut probe, &store, |p| !p.writable).await, "two failures in a row do");
        mend_lake()?;
        assert!(probe_until(&mut probe, &store, |p| p.writable).await, "the lake is back");
        Ok(())
    }

    /// A store that hangs (its client retrying for minutes) is called unwritable after two
    /// probe timeouts, as one that refuses connections is after two failed probes, not when
    /// the hung probe finally gives up; and one late answer alone does not flap readiness.
    #[tokio::test]
    async fn a_probe_that_hangs_counts_a_failure_per_timeout() {
        let mut probe = LakeProbe { writable: true, failures: 0, last: None, running: None };
        probe.start_task(std::future::pending());
        let started_ago = |probe: &mut LakeProbe, ago: Duration| {
            if let Some((_, started, _)) = probe.running.as_mut()
                && let Some(earlier) = Instant::now().checked_sub(ago)
            {
                *started = earlier;
            }
        };
        started_ago(&mut probe, LAKE_PROBE_TIMEOUT);
        probe.count_lateness();
        assert_eq!((probe.failures, probe.writable), (1, true), "one timeout is one failed probe");
        probe.count_lateness();
        assert_eq!(probe.failures, 1, "the same timeout is not counted twice");
        started_ago(&mut probe, LAKE_PROBE_TIMEOUT * 2);
        probe.count_lateness();
        assert_eq!((probe.failures, probe.writable), (2, false), "a second timeout makes the lake unwritable");
    }
}
