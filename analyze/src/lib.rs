//! driftwatch analyze: DataFusion over the lake.
