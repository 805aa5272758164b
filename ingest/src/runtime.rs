//! Assembles the pieces every source needs from a validated [`Config`]: the model registry and
//! enricher, the metrics registry, and the lake writer. Everything that can fail because of
//! configuration fails here, before any task is spawned.

use std::sync::Arc;

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
        let enricher = Arc::new(Enricher::new(Arc::new(registry), policies, default_policy));
        let metrics = Metrics::new(&config.metrics);
        let store = LakeStore::open(&config.lake.location, &config.lake.options)
            .await
            .map_err(|source| Error::Lake { context: format!("opening lake {}", config.lake.location), source })?;
        let writer = Arc::new(LakeWriter::new(store, config.lake.parquet.clone()));
        let limits = FlushLimits::from(&config.flush);
        metrics.set_buffered_bytes_limit(limits.max_buffered_bytes);
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
        Some(path) => ModelRegistry::from_path(path)?,
        None => ModelRegistry::default_embedded()?,
    })
}

/// Check what [`Components::build`] checks beyond the config file itself (the model registry,
/// the lake location and its options) without touching the lake: `driftwatch check-config`.
/// Returns the number of registered models.
pub async fn check(config: &Config) -> Result<usize> {
    let registry = load_registry(config)?;
    LakeStore::check(&config.lake.location, &config.lake.options)
        .await
        .map_err(|source| Error::Lake { context: format!("checking lake {}", config.lake.location), source })?;
    Ok(registry.entries().count())
}
