//! SIGTERM and SIGINT become one cancellation token; a second signal or the deadline ends the
//! process without waiting further (the lake stays consistent either way: an unfinished flush
//! is simply not checkpointed and is replayed).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The shutdown deadline of a command that has no `--shutdown-deadline` (the demo), the same
/// as `driftwatch ingest`'s default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Cancel `token` on the first SIGTERM or SIGINT.
pub fn on_signal(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "Shutdown requested; flushing and checkpointing."),
            _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "Shutdown requested; flushing and checkpointing."),
        }
        token.cancel();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("Second signal: exiting without waiting for pending flushes.");
        std::process::exit(130);
    });
    Ok(())
}

/// After shutdown starts, give the work `deadline` to finish before the process exits anyway.
pub fn arm_deadline(token: CancellationToken, deadline: Duration) {
    tokio::spawn(async move {
        token.cancelled().await;
        tokio::time::sleep(deadline).await;
        tracing::error!(deadline_secs = deadline.as_secs_f64(), "Shutdown deadline passed; exiting with work pending.");
        std::process::exit(124);
    });
}
