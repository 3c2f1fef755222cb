//! The warehouse port: a pipeline's valid rows loaded into a typed table, exactly once per
//! source version.
//!
//! A load is one transaction per file: [`Warehouse::begin`] opens it and removes the rows the
//! load replaces (the source version's own, or with `mode = "replace"` every row of the source
//! key), [`WarehouseTx::write`] streams batches of rows into it, and [`WarehouseTx::commit`]
//! makes them visible together. Dropping a transaction without committing it rolls it back, so
//! a failed pass, a crash or a retry never leaves half a file behind, and a redelivered file
//! replaces its own rows instead of adding them again.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use weir_core::rows::RowBatch;

use crate::PortError;

/// The source version a load is for: its rows are identified by the job and their line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTarget {
    /// One version of one source object (`JobId::for_object`).
    pub job_id: String,
    pub source_bucket: String,
    pub source_key: String,
}

/// Where a warehouse puts rows, without credentials: for job records and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseInfo {
    /// The kind of sink: `postgres`.
    pub sink: String,
    /// The database: `db.internal:5432/analytics`.
    pub target: String,
    /// The table as configured: `sales`, `analytics.sales`.
    pub table: String,
    /// `replace` or `append`.
    pub mode: String,
}

/// Why a load did not commit.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database refused a row (a value out of range for its column, a constraint): the
    /// file's data is at fault, retrying cannot help, and nothing of the file was committed.
    /// `row` is the refused row's position among the rows written (1-based), when the database
    /// said which.
    #[error("{reason}")]
    Refused { row: Option<u64>, reason: String },
    /// The load cannot happen now (the database is unreachable or refuses the credentials, the
    /// table is missing or disagrees with the schema, the connection broke): retried later.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// A typed table the valid rows of one pipeline go to.
#[async_trait]
pub trait Warehouse: Send + Sync {
    fn info(&self) -> WarehouseInfo;

    /// Opens the load of one file: a transaction in which the rows this load replaces are
    /// already removed.
    async fn begin(&self, target: &LoadTarget) -> Result<Box<dyn WarehouseTx>, LoadError>;
}

/// One file's load in progress. Dropped without [`WarehouseTx::commit`], it rolls back.
#[async_trait]
pub trait WarehouseTx: Send {
    /// Adds the rows of `batch` (in file order) to the load.
    async fn write(&mut self, batch: &RowBatch) -> Result<(), LoadError>;

    /// Commits the load; returns the number of rows it loaded.
    async fn commit(self: Box<Self>) -> Result<u64, LoadError>;
}

/// The warehouse of each pipeline that has one, by pipeline name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Warehouses(Arc<BTreeMap<String, Arc<dyn Warehouse>>>);

impl Warehouses {
    pub fn new(by_pipeline: BTreeMap<String, Arc<dyn Warehouse>>) -> Self {
        Warehouses(Arc::new(by_pipeline))
    }

    /// The warehouse of the pipeline `name`, if it has one.
    pub fn get(&self, pipeline: &str) -> Option<&Arc<dyn Warehouse>> {
        self.0.get(pipeline)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Warehouses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, w)| (k, w.info()))).finish()
    }
}
