//! driftwatch alerting: findings become alerts.
