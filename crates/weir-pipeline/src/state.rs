//! The JSON state a job carries through its workflow.
//!
//! The engine starts an execution with [`JobInput`]; each task reads the fields it needs and
//! adds its own (`schema_valid`, `output_keys`, `summary`, `failed_key`, ...). Only keys and
//! counts travel here, never rows.

use serde::{Deserialize, Serialize};

/// The facts every task may rely on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    pub job_id: String,
    pub pipeline: String,
    pub source_bucket: String,
    pub source_key: String,
    pub source_etag: String,
    pub source_size: u64,
    /// The job's creation time, RFC 3339; dates derived from it are stable across redeliveries.
    pub created_at: String,
    /// The run (one attempt by one worker) executing the workflow: the job store's lease on
    /// the source key is held under this name, and tasks with effects outside weir (notifying)
    /// check that it still is.
    #[serde(default)]
    pub run: String,
}

/// State fields set by tasks and read back by the engine.
pub mod fields {
    pub const SCHEMA_VALID: &str = "schema_valid";
    pub const MISSING_COLUMNS: &str = "missing_columns";
    pub const REASON: &str = "reason";
    pub const ERROR: &str = "error";
    pub const SUMMARY: &str = "summary";
    pub const OUTPUT_KEYS: &str = "output_keys";
    pub const FAILED_KEY: &str = "failed_key";
    pub const ARCHIVE_KEY: &str = "archive_key";
    pub const NOTIFICATION: &str = "notification";
    /// An image job's [`weir_core::image::ImageSummary`].
    pub const IMAGE: &str = "image";
    /// The warehouse load the transform committed (`weir_core::job::WarehouseLoad`).
    pub const WAREHOUSE: &str = "warehouse";
}
