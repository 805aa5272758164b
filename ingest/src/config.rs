//! The daemon's configuration: one TOML file plus `DRIFTWATCH_<SECTION>__<KEY>` environment
//! overrides. The structs of this module are the documentation of every key (STYLE 3).
//!
//! Loading is three steps, all before anything is spawned: parse the file into a TOML table,
//! overlay environment overrides, deserialize with `deny_unknown_fields`, then [`Config::validate`]
//! checks the values and names the key that is wrong and what to do about it.
//!
//! # Layout
//!
//! This file holds the whole file's shape ([`Config`]) and [`ConfigError`]; each section's
//! structs live with their bounds and checks in `config/`:
//!
//! - `lake.rs`: `[lake]` and `[flush]` ([`LakeConfig`], [`FlushConfig`]) and the flush limits.
//! - `kafka.rs`: `[kafka]` ([`KafkaConfig`], [`TopicConfig`], [`StartFrom`]), the librdkafka
//!   keys driftwatch owns, and the checks of the Kafka section.
//! - `decode.rs`: `[decode]` ([`DecodeSection`]) and its event time bounds.
//! - `apps.rs`: `[registry]`, `[default_app]` and `[[apps]]`, and the content policy per app.
//! - `fingerprint.rs`: `[fingerprint]` ([`FingerprintConfig`]), the key of the content
//!   fingerprints, read from its file or the environment.
//! - `env.rs`: `DRIFTWATCH_*` overrides ([`apply_env_overrides`]).
//! - `load.rs`: [`Config::load`]: parsing, errors that name the key, secrets read from files
//!   (Kafka's and the fingerprint key).
//! - `validate.rs`: [`Config::validate`], the checks that types alone cannot do.

mod apps;
mod decode;
mod env;
mod fingerprint;
mod kafka;
mod lake;
mod load;
mod validate;

use std::path::PathBuf;

use serde::Deserialize;

use crate::aggregate::AggregateConfig;
use crate::telemetry::{HttpConfig, MetricsConfig};

pub use apps::{AppConfig, AppDefaults, RegistryConfig};
pub use decode::{DecodeSection, MAX_FUTURE_SKEW};
pub use env::{ENV_PREFIX, apply_env_overrides};
pub use fingerprint::{FingerprintConfig, KeyText};
pub use kafka::{
    DEFAULT_MAX_INFLIGHT_FLUSHES, KafkaConfig, MAX_INFLIGHT_FLUSHES, MAX_OFFSET_QUERY_TIMEOUT,
    RESERVED_LIBRDKAFKA_KEYS, StartFrom, TopicConfig,
};
pub use lake::{FlushConfig, LakeConfig, MAX_FLUSH_AGE, MAX_FLUSH_BYTES};
pub(crate) use load::secret_string;

/// Errors found while loading or validating configuration. Each says which key and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `at` is where in the file (" at line L, column C"), `message` the key it is about
    /// (`flush.max_rows`) and toml's words without its snippet of the file, which would quote
    /// the line and so any secret on it.
    #[error("config file {origin} is not valid TOML or has a wrong key{at}: {message}")]
    Parse { origin: String, at: String, message: String },
    #[error("environment override {var} cannot apply: {reason}")]
    Env { var: String, reason: String },
    #[error(
        "config file {origin} with the environment overrides {} has a wrong key or value: {message}; \
         an override that looks like a number or boolean is read as one, so quote a string \
         (e.g. DRIFTWATCH_KAFKA__GROUP_ID='\"2024\"')",
        .vars.join(", ")
    )]
    ParseWithEnv { origin: String, vars: Vec<String>, message: String },
    #[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<String> },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The whole daemon configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the Parquet lake lives and how files are written.
    #[serde(default)]
    pub lake: LakeConfig,
    /// The Kafka source; required by `driftwatch ingest` unless `--source file:` is given.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// When buffered rows become files.
    #[serde(default)]
    pub flush: FlushConfig,
    /// Limits applied while decoding input.
    #[serde(default)]
    pub decode: DecodeSection,
    /// Rollup aggregation limits.
    #[serde(default)]
    pub aggregate: AggregateConfig,
    /// Live metrics, including the label cardinality cap.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The HTTP endpoint serving /metrics, /healthz and /readyz.
    #[serde(default)]
    pub http: HttpConfig,
    /// The model registry (prices, risk levels).
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Defaults for apps that are not listed in `apps`.
    #[serde(default)]
    pub default_app: AppDefaults,
    /// The known micro apps: owners, budgets, content policy.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// The optional secret key of the content fingerprints; unset, they are unkeyed.
    #[serde(default)]
    pub fingerprint: FingerprintConfig,
}

#[cfg(test)]
mod tests;
