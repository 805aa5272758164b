//! The claims a [`LakeWriter`] holds and the sweeps they schedule: after recovering a partition
//! the writer remembers its claim, binds flushes to it, and sweeps the partition for files that
//! fenced writers put late, every [`SWEEP_INTERVAL`] in the [`SWEEP_WINDOW`], then every
//! [`LATE_SWEEP_INTERVAL`] until [`LATE_SWEEP_UNTIL`].

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::Instant;

use tracing::{debug, warn};

use super::{LATE_SWEEP_INTERVAL, LATE_SWEEP_UNTIL, LakeWriter, MAX_SWEEPS_PER_ROUND, SWEEP_INTERVAL, SWEEP_WINDOW};
use crate::checkpoint;
use crate::error::{LakeError, Result};

/// A claim this writer holds, and when to sweep for fenced writers' files next.
#[derive(Debug, Clone)]
pub(super) struct HeldClaim {
    pub(super) owner: String,
    pub(super) claimed_at: Instant,
    pub(super) next_sweep: Instant,
}

impl HeldClaim {
    pub(super) fn new(owner: String) -> Self {
        let now = Instant::now();
        Self { owner, claimed_at: now, next_sweep: now }
    }

    /// Whether a sweep is due at `now`; if so, when the next one is: [`SWEEP_INTERVAL`] later in
    /// the [`SWEEP_WINDOW`], [`LATE_SWEEP_INTERVAL`] later after it, none after [`LATE_SWEEP_UNTIL`].
    pub(super) fn take_sweep(&mut self, now: Instant) -> bool {
        if !self.is_due(now) {
            return false;
        }
        let age = now.saturating_duration_since(self.claimed_at);
        self.next_sweep = now + if age < SWEEP_WINDOW { SWEEP_INTERVAL } else { LATE_SWEEP_INTERVAL };
        true
    }

    pub(super) fn is_due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.claimed_at) < LATE_SWEEP_UNTIL && now >= self.next_sweep
    }
}

/// Take up to `max` due sweeps from `claims`, the most overdue first: (stream, partition) and
/// the owner to sweep for.
pub(super) fn take_due_sweeps(
    claims: &mut HashMap<(String, i32), HeldClaim>,
    now: Instant,
    max: usize,
) -> Vec<((String, i32), String)> {
    let mut due: Vec<(Instant, &(String, i32))> =
        claims.iter().filter(|(_, claim)| claim.is_due(now)).map(|(key, claim)| (claim.next_sweep, key)).collect();
    if due.len() > max {
        due.select_nth_unstable_by_key(max, |(at, _)| *at);
        due.truncate(max);
    }
    let keys: Vec<(String, i32)> = due.into_iter().map(|(_, key)| key.clone()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let claim = claims.get_mut(&key)?;
            claim.take_sweep(now).then(|| (key, claim.owner.clone()))
        })
        .collect()
}

impl LakeWriter {
    /// The claim this writer holds on (stream, partition), taking one if it has none.
    pub(super) async fn owner(&self, stream: &str, partition: i32) -> Result<String> {
        if let Some(owner) = self.held_claim(stream, partition) {
            return Ok(owner);
        }
        self.recover(stream, partition).await?;
        self.owner_held(stream, partition)
    }

    /// The claim this writer holds on (stream, partition), if it has recovered it: sources
    /// bind their flushes to it (see [`FlushBatch::claim`](super::FlushBatch::claim)).
    pub fn held_claim(&self, stream: &str, partition: i32) -> Option<String> {
        let claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.get(&(stream.to_owned(), partition)).map(|claim| claim.owner.clone())
    }

    pub(super) fn hold(&self, stream: &str, partition: i32, owner: String) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.insert((stream.to_owned(), partition), HeldClaim::new(owner));
    }

    /// After a commit, early in the claim: remove files fenced writers put late. The commit
    /// stands whatever happens here; a failed sweep is retried by the next one.
    pub(super) async fn sweep_after_commit(&self, stream: &str, partition: i32, owner: &str) {
        let due = {
            let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            claims.get_mut(&(stream.to_owned(), partition)).is_some_and(|claim| claim.take_sweep(Instant::now()))
        };
        if due {
            self.sweep(stream, partition, owner).await;
        }
    }

    /// Sweep the partitions whose next sweep is due (every [`SWEEP_INTERVAL`] in a claim's
    /// [`SWEEP_WINDOW`], then every [`LATE_SWEEP_INTERVAL`] up to [`LATE_SWEEP_UNTIL`]), at most
    /// [`MAX_SWEEPS_PER_ROUND`] of them, the most overdue first, commit or no commit: a
    /// partition that goes quiet after its claim would otherwise keep a fenced writer's late
    /// files until its next recovery. Returns the fenced flushes found. Costs nothing when no
    /// sweep is due; call it between commits (the flusher runs it on a timer), since a
    /// partition's commits are sequential.
    pub async fn sweep_claims(&self) -> usize {
        let due = {
            let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            take_due_sweeps(&mut claims, Instant::now(), MAX_SWEEPS_PER_ROUND)
        };
        let mut found = 0;
        for ((stream, partition), owner) in due {
            found += self.sweep(&stream, partition, &owner).await;
        }
        found
    }

    /// One sweep of (stream, partition) for `owner`; errors are logged, the next sweep retries.
    pub(super) async fn sweep(&self, stream: &str, partition: i32, owner: &str) -> usize {
        match checkpoint::sweep_fenced(&self.store, stream, partition, owner).await {
            Ok(0) => 0,
            Ok(manifests) => {
                debug!(stream, partition, manifests, "Swept the files of fenced flushes again.");
                manifests
            }
            Err(error) => {
                warn!(stream, partition, %error, "Sweeping fenced flushes failed; the next sweep retries.");
                0
            }
        }
    }

    pub(crate) fn owner_held(&self, stream: &str, partition: i32) -> Result<String> {
        self.held_claim(stream, partition).ok_or_else(|| LakeError::InvalidBatch {
            stream: stream.to_owned(),
            partition,
            reason: "no claim after recovery".to_owned(),
        })
    }
}
