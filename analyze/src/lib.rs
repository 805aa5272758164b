//! driftwatch analyze: questions answered over the Parquet lake with DataFusion
//! (DESIGN §7). All heavy lifting happens in SQL over the lake's files, with
//! UDFs for the parts SQL lacks (histogram merge); only small, aggregated
//! results come back into Rust.
//!
//! # Layout
//!
//! Data enters as a lake location and its object store, flows through SQL,
//! and leaves as typed summaries for the CLI (`analyze summary` and the demo's report).
//!
//! - [`lake`]: [`LakeSession::open`] registers the lake folders (`events`,
//!   `feedback`, `rollups`, `dead_letter`, `findings`) as DataFusion tables,
//!   partitioned by `date`, hiding the writer's temporary files.
//! - [`udf`]: `hdr_merge`, `hdr_quantile`, `hdr_quantile_of`, `hdr_count`:
//!   exact percentile maths over the rollups' serialized HdrHistograms.
//! - [`summary`]: the fleet summary ([`app_summary`], [`lake_totals`]) from the
//!   queries in `src/sql/`, and its text rendering.
//! - [`error`]: the crate's error type.

mod batches;
pub mod error;
pub mod lake;
pub mod summary;
pub mod udf;

pub use error::{Error, Result};
pub use lake::LakeSession;
pub use summary::{AppSummary, LakeTotals, app_summary, lake_totals, render_summary_notes, render_summary_table};
pub use udf::register_udfs;
