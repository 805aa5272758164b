//! Opening the lake as DataFusion tables.
//!
//! Data enters as a lake location (a local path, `s3://...`, `memory://...`)
//! plus the object store that serves it. [`LakeSession::open`] registers one
//! listing table per lake folder (DESIGN §5) with the `date=` folder level as a
//! partition column, installs the histogram UDFs, and hands back a session
//! whose SQL reads the Parquet files directly: nothing is loaded into Rust
//! vectors here.
//!
//! Events sit one folder deeper (`date=/app=/`). DataFusion pairs path
//! segments with the declared partition columns in order and stops at the
//! shorter list, so declaring only `date` reads the `app=` level as an ordinary
//! folder; the files carry `app` as a column anyway.

pub mod hidden;
pub mod schema;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use driftwatch_lake::layout::{CHECKPOINTS_DIR, FileKind};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::error::{Error, Result};
use crate::udf::register_udfs;
use hidden::HideTempFiles;

/// Builds the schema a lake folder is read with.
type SchemaFn = fn() -> SchemaRef;

/// Lake folders that always exist as tables, with the schema each is read with.
const TABLES: [(FileKind, SchemaFn); 4] = [
    (FileKind::Events, schema::events),
    (FileKind::Feedback, schema::feedback),
    (FileKind::Rollups, schema::rollups),
    (FileKind::DeadLetter, schema::dead_letter),
];

/// Analyze's findings folder, reserved for the analysis job (nothing writes it yet): registered
/// only once something has written it, with the schema of the files found.
const FINDINGS: FileKind = FileKind::Findings;

/// The partition column every lake table has, from the `date=YYYY-MM-DD` folder.
const DATE_PARTITION: &str = "date";

/// A DataFusion session over one lake: tables `events`, `feedback`, `rollups`,
/// `dead_letter` (and `findings` when present), plus the `hdr_*` UDFs.
pub struct LakeSession {
    ctx: SessionContext,
    /// The lake root as given, without a trailing slash; table URLs hang off it.
    location: String,
}

impl std::fmt::Debug for LakeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SessionContext is not Debug; the session id and location identify it.
        f.debug_struct("LakeSession")
            .field("session_id", &self.ctx.session_id())
            .field("location", &self.location)
            .finish()
    }
}

impl LakeSession {
    /// Register events, feedback, rollups, dead_letter (and findings when present)
    /// as tables over the lake at `location` (local path, `s3://`, `memory://`),
    /// served by `store`; `None` means the local filesystem. Tables whose folder
    /// does not exist yet are registered empty with their schema, so a lake that
    /// holds only checkpoints so far opens and answers queries with no rows.
    ///
    /// Fails with [`Error::NotALake`] when the root holds none of the lake's folders:
    /// a mistyped location would otherwise read as a lake with nothing in it.
    pub async fn open(location: &str, store: Option<Arc<dyn ObjectStore>>) -> Result<Self> {
        let location = normalise_location(location)?;
        let root = table_url(&location, "")?;
        let store = match store {
            Some(store) => store,
            None if root.scheme() == "file" => Arc::new(LocalFileSystem::new()) as Arc<dyn ObjectStore>,
            None => return Err(Error::NoStore { location }),
        };
        let store: Arc<dyn ObjectStore> = Arc::new(HideTempFiles::new(store));
        match has_lake_folder(store.as_ref(), &root).await {
            Ok(true) => {}
            Ok(false) => return Err(Error::NotALake { location }),
            Err(source) => return Err(Error::Unreadable { location, source }),
        }

        // The list-files cache never expires by default; a long-running analyze
        // service must see files flushed after it started, so listings are not cached.
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()
            .map_err(|source| Error::Location { location: location.clone(), source: Box::new(source) })?;
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new().with_information_schema(true), runtime);
        ctx.register_object_store(root.as_ref(), Arc::clone(&store));
        register_udfs(&ctx);

        let session = Self { ctx, location };
        for (table, schema) in TABLES {
            session.register(table.as_str(), Some(schema())).await?;
        }
        let findings = table_url(&session.location, FINDINGS.as_str())?;
        if has_files(store.as_ref(), &findings).await? {
            session.register(FINDINGS.as_str(), None).await?;
        }
        tracing::debug!(location = %session.location, "Lake tables registered.");
        Ok(session)
    }

    /// The underlying DataFusion context, for queries and further registrations.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The lake root this session reads, as given to [`LakeSession::open`] (local paths made absolute).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Plan and run one SQL statement, collecting its result.
    pub async fn sql_to_batches(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.run(sql, sql).await
    }

    /// Run `sql`, naming failures after `query` (a file name for the crate's own queries).
    pub(crate) async fn run(&self, query: &str, sql: &str) -> Result<Vec<RecordBatch>> {
        let frame = self.ctx.sql(sql).await.map_err(|source| Error::query(query, source))?;
        frame.collect().await.map_err(|source| Error::query(query, source))
    }

    /// Register one lake folder as a Parquet listing table, with `schema` or,
    /// when `None`, the schema inferred from its files.
    async fn register(&self, table: &'static str, schema: Option<SchemaRef>) -> Result<()> {
        let wrap = |source: DataFusionError| Error::Register { table, source: Box::new(source) };
        let url = table_url(&self.location, table)?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(DATE_PARTITION.to_owned(), DataType::Utf8)]);
        let config = ListingTableConfig::new(url).with_listing_options(options);
        let config = match schema {
            Some(schema) => config.with_schema(schema),
            None => config.infer_schema(&self.ctx.state()).await.map_err(wrap)?,
        };
        let provider = ListingTable::try_new(config).map_err(wrap)?;
        self.ctx.register_table(table, Arc::new(provider)).map_err(wrap)?;
        Ok(())
    }
}

/// Local paths become absolute (DataFusion resolves relative ones against the
/// working directory at parse time, which may differ from a later query's);
/// URLs are kept. Trailing slashes are dropped so table URLs join cleanly.
fn normalise_location(location: &str) -> Result<String> {
    let trimmed = location.trim_end_matches('/');
    if trimmed.contains("://") {
        return Ok(trimmed.to_owned());
    }
    let path = if trimmed.is_empty() { "/" } else { trimmed };
    let absolute = std::path::absolute(path).map_err(|error| Error::Location {
        location: location.to_owned(),
        source: Box::new(DataFusionError::IoError(error)),
    })?;
    Ok(absolute.to_string_lossy().trim_end_matches('/').to_owned())
}

/// The folder URL of `table` under the lake root (the root itself for an empty name).
/// The trailing slash makes DataFusion treat it as a folder even before it exists.
fn table_url(location: &str, table: &str) -> Result<ListingTableUrl> {
    let folder = if table.is_empty() { format!("{location}/") } else { format!("{location}/{table}/") };
    let error = |source| Error::Location { location: location.to_owned(), source: Box::new(source) };
    if folder.contains("://") {
        return ListingTableUrl::parse(&folder).map_err(error);
    }
    // A local path is a name, not a pattern: DataFusion would take `[`, `*` or `?` in it for a
    // glob and look for a folder that does not exist.
    let url = url::Url::from_directory_path(&folder)
        .map_err(|()| error(DataFusionError::Plan(format!("{folder} is not an absolute path"))))?;
    // Parsed again so that `..` segments are resolved, as object_store's paths refuse them.
    let url = url::Url::parse(url.as_str()).map_err(|source| error(DataFusionError::External(Box::new(source))))?;
    ListingTableUrl::try_new(url, None).map_err(error)
}

/// True when the lake root holds one of the lake's folders (a table's, the findings', or the
/// checkpoints', which exist as soon as the daemon has committed anything). One listing level
/// below the root: object stores report a folder once an object sits below it, the local
/// filesystem also reports an empty one. A root that does not exist lists as empty.
async fn has_lake_folder(store: &dyn ObjectStore, root: &ListingTableUrl) -> object_store::Result<bool> {
    let is_lake_folder = |name: &str| {
        name == FINDINGS.as_str() || name == CHECKPOINTS_DIR || TABLES.iter().any(|(table, _)| table.as_str() == name)
    };
    let listing = store.list_with_delimiter(Some(root.prefix())).await?;
    Ok(listing.common_prefixes.iter().filter_map(|folder| folder.filename()).any(is_lake_folder))
}

/// True when at least one visible object exists under the table's folder.
async fn has_files(store: &dyn ObjectStore, url: &ListingTableUrl) -> Result<bool> {
    match store.list(Some(url.prefix())).next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(error)) => Err(Error::Register {
            table: FINDINGS.as_str(),
            source: Box::new(DataFusionError::ObjectStore(Box::new(error))),
        }),
    }
}
