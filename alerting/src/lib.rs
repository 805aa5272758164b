//! driftwatch alerting: findings become alerts for on-call, with Prometheus-style identity and
//! lifecycle (DESIGN §8).
//!
//! # Layout
//!
//! - [`alert`]: the alert model (labels, annotations, `startsAt`/`endsAt`), the alert names
//!   and label keys of the contract, and the label fingerprint that identifies an alert across
//!   re-sends, resolves and restarts (the same FNV-1a fingerprint Alertmanager computes).
//! - [`alertmanager`]: the Alertmanager v2 `POST /api/v2/alerts` payload.
//!
//! Data enters as alerts built from analysis findings and leaves as sink payloads; delivery,
//! retries and persisted state belong to the alerting issue that adds the sinks.

pub mod alert;
pub mod alertmanager;
