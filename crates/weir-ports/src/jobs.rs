//! The job store port: one record per job, keyed by the job id.

use std::collections::BTreeMap;

use async_trait::async_trait;
use weir_core::{Job, JobId, JobStatus};

use crate::PortError;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    /// At most this many (0 means 100).
    pub limit: usize,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts the job unless a job with its id exists. Returns whether it was inserted.
    async fn create(&self, job: &Job) -> Result<bool, PortError>;

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError>;

    /// Writes the whole record, inserting it if needed.
    async fn save(&self, job: &Job) -> Result<(), PortError>;

    /// Newest first (by creation time).
    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, PortError>;

    /// How many jobs are in each status.
    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError>;
}
