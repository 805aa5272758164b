//! Assembles the pieces every source needs from a validated [`Config`]: the model registry and
//! enricher, the metrics registry, and the lake writer. Everything that can fail because of
//! configuration fails here, before any task is spawned.

use std::sync::Arc;

use driftwatch_lake::error::LakeError;
use driftwatch_lake::store::LakeStore;
use driftwatch_lake::writer::LakeWriter;

use crate::config::Config;
use crate::enrich::{Enricher, ModelRegistry};
use crate::error::{Error, Result};
use crate::pipeline::{FlushLimits, Processor};
use crate::telemetry::Metrics;

/// The shared, long-lived parts of an ingest run.
#[derive(Debug, Clone)]
pub struct Components {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Pricing, scrubbing and fingerprinting, shared by every processor.
    pub enricher: Arc<Enricher>,
    /// Live metrics.
    pub metrics: Metrics,
    /// The lake writer (and its store).
    pub writer: Arc<LakeWriter>,
    /// Flush thresholds.
    pub limits: FlushLimits,
}

impl Components {
    /// Load the registry, open the lake, build the metrics.
    pub async fn build(config: Config) -> Result<Self> {
        let registry = load_registry(&config)?;
        let (policies, default_policy) = config.content_policies();
        let fingerprint_key = config.fingerprint.key().cloned();
        if fingerprint_key.is_some() {
            // Only that there is a key, never the key: fingerprints made with and without one
            // never match, so which kind a run writes is worth a line.
            tracing::info!("Content fingerprints are keyed with the configured `fingerprint` key.");
        }
        let enricher =
            Arc::new(Enricher::new(Arc::new(registry), policies, default_policy).with_fingerprint_key(fingerprint_key));
        let metrics = Metrics::new(&config.metrics);
        let store = open_lake(&config).await?;
        let writer = Arc::new(LakeWriter::new(store, config.lake.parquet.clone()));
        let limits = FlushLimits::from(&config.flush);
        metrics.set_buffered_bytes_limit(limits.max_buffered_bytes);
        metrics.set_flush_max_age(limits.max_age);
        Ok(Self { config: Arc::new(config), enricher, metrics, writer, limits })
    }

    /// A processor for one source loop.
    pub fn processor(&self) -> Processor {
        Processor::new(&self.config, Arc::clone(&self.enricher), self.metrics.clone())
    }
}

/// The model registry the config names, or the embedded one.
fn load_registry(config: &Config) -> Result<ModelRegistry> {
    Ok(match &config.registry.path {
        Some(path) => ModelRegistry::from_path(path).map_err(Error::RegistryFile)?,
        None => ModelRegistry::default_embedded()?,
    })
}

/// Open the configured lake, an error naming the key to fix as the daemon's does (for readers
/// of the lake such as `analyze`).
pub async fn open_lake(config: &Config) -> Result<LakeStore> {
    LakeStore::open(&config.lake.location, &config.lake.options)
        .await
        .map_err(|source| lake_error(config, "opening", source))
}

/// A lake error whose context is the key to fix when the error is about one: `lake.location`,
/// `lake.options.<key>`, or the `AWS_*` environment variable the store read.
fn lake_error(config: &Config, doing: &str, source: LakeError) -> Error {
    let context = match &source {
        LakeError::Location { .. } => "`lake.location`".to_owned(),
        LakeError::StoreConfig { key, .. } if config.lake.options.contains_key(key) => format!("`lake.options.{key}`"),
        LakeError::StoreConfig { key, .. } if key.starts_with("AWS_") => format!("environment variable {key}"),
        _ => format!("{doing} lake {}", config.lake.location),
    };
    Error::Lake { context, source }
}

/// Check what the daemon checks before it consumes, beyond the config file itself (the model
/// registry, the lake location and its options, and a Kafka consumer created from the client
/// properties) without touching the lake or a broker: `driftwatch check-config`. A consumer that
/// cannot be created is reported in the daemon's words. Returns the number of registered models.
pub async fn check(config: &Config) -> Result<usize> {
    let registry = load_registry(config)?;
    LakeStore::check(&config.lake.location, &config.lake.options)
        .await
        .map_err(|source| lake_error(config, "checking", source))?;
    if let Some(kafka) = config.kafka.clone() {
        // Creating and dropping a client starts and joins librdkafka's threads: blocking work.
        tokio::task::spawn_blocking(move || crate::source::kafka::client::check_consumer(&kafka))
            .await
            .map_err(|source| Error::Task { doing: "kafka: checking the consumer", source })?
            .map_err(|problem| crate::source::kafka::client::consumer_refused(&problem))?;
    }
    Ok(registry.entries().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    async fn check_of(text: &str) -> std::result::Result<String, Box<dyn std::error::Error>> {
        let config = Config::from_toml_str(text, "t.toml", Vec::new())?;
        Ok(check(&config).await.err().map(|e| e.to_string()).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_bad_lake_setting_is_named_by_its_config_key() -> TestResult {
        let s3 = |options: &str| format!("[lake]\nlocation = \"s3://bucket/x\"\n[lake.options]\n{options}\n");
        for (text, key) in [
            (s3("aws_endpoint = \"127.0.0.1:9000\""), "lake: `lake.options.aws_endpoint`: "),
            (s3("aws_region = \"eu west 1\""), "lake: `lake.options.aws_region`: "),
            (s3("aws_allow_http = \"maybe\""), "lake: `lake.options.aws_allow_http`: "),
            (s3("AWS_CONDITIONAL_PUT = \"disabld\""), "lake: `lake.options.AWS_CONDITIONAL_PUT`: "),
            ("[lake]\nlocation = \"s3://bucket name/x\"\n".to_owned(), "lake: `lake.location`: "),
            ("[lake]\nlocation = \"s3:/bucket/x\"\n".to_owned(), "lake: `lake.location`: "),
        ] {
            let error = check_of(&text).await?;
            assert!(error.starts_with(key), "{text}: {error}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn check_creates_the_consumer_the_daemon_would() -> TestResult {
        let kafka = "[lake]\nlocation = \"/tmp/unused-lake\"\n[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.librdkafka]\n";
        assert_eq!(check_of(kafka).await?, "");
        let error = check_of(&format!(
            "{kafka}\"security.protocol\" = \"ssl\"\n\"ssl.ca.location\" = \"/nonexistent/ca.pem\"\n"
        ))
        .await?;
        assert!(error.starts_with("kafka: creating the consumer: librdkafka refused the client properties"), "{error}");
        assert!(error.contains("ssl.ca.location"), "{error}");
        Ok(())
    }

    /// A registry file that cannot be loaded is named with the key that points at it, and a
    /// YAML error is said once (the walkthrough audit found it printed twice).
    #[tokio::test]
    async fn a_bad_registry_file_names_its_key_and_says_its_error_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let config = |path: &std::path::Path| {
            format!("[registry]\npath = {:?}\n[lake]\nlocation = \"/tmp/unused-lake\"\n", path.display().to_string())
        };
        let missing = check_of(&config(&dir.path().join("nope.yaml"))).await?;
        assert!(
            missing.starts_with("model registry (`registry.path`): ") && missing.contains("nope.yaml"),
            "{missing}"
        );
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "models: [\n")?;
        let config = Config::from_toml_str(&config(&broken), "t.toml", Vec::new())?;
        let error = check(&config).await.err().ok_or("a broken registry loaded")?;
        let mut chain: Vec<String> = Vec::new();
        let mut cause: Option<&dyn std::error::Error> = Some(&error);
        while let Some(current) = cause {
            chain.push(current.to_string());
            cause = current.source();
        }
        let parser = chain.last().ok_or("no cause")?;
        assert!(
            chain.iter().all(|text| text.ends_with(parser.as_str())),
            "each message ends with the parser's: {chain:?}"
        );
        assert_eq!(chain[0].matches(parser.as_str()).count(), 1, "{chain:?}");
        Ok(())
    }
}
