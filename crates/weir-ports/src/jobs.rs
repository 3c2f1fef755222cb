//! The job store port: one record per job, keyed by the job id.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use weir_core::{Job, JobId, JobStatus};

use crate::PortError;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    /// At most this many (0 means 100).
    pub limit: usize,
}

/// What [`JobStore::begin`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// The lease is this owner's and the record says running: the attempt is on.
    Started(Job),
    /// Another owner holds an unexpired lease.
    Busy,
    /// The job already ended for good ([`Job::is_done`]); no lease was taken.
    Finished(Job),
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts the job unless a job with its id exists. Returns whether it was inserted.
    async fn create(&self, job: &Job) -> Result<bool, PortError>;

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError>;

    /// Writes the whole record, inserting it if needed. Saving a job in a terminal status
    /// also releases its lease (one write instead of two at the end of every job).
    async fn save(&self, job: &Job) -> Result<(), PortError>;

    /// Newest first (by creation time).
    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, PortError>;

    /// How many jobs are in each status.
    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError>;

    /// Takes (or renews) the in-progress lease on a job for `ttl`, creating the record from
    /// `job` if it is missing. Returns false while another owner holds an unexpired lease: two
    /// workers never run the same object at once (the AWS Lambda Powertools idempotency record).
    async fn acquire_lease(&self, job: &Job, owner: &str, ttl: Duration) -> Result<bool, PortError>;

    /// Begins an attempt at `job` for `owner`: takes the lease for `ttl` (creating the record
    /// from `job` if it is missing) and saves the current record as running `pipeline`
    /// ([`Job::start_attempt`]). The default takes the lease, reads and saves; stores that can
    /// do it in one write override it.
    async fn begin(&self, job: &Job, pipeline: &str, owner: &str, ttl: Duration) -> Result<Begin, PortError> {
        if !self.acquire_lease(job, owner, ttl).await? {
            return Ok(Begin::Busy);
        }
        let mut current = self.get(&job.job_id).await?.unwrap_or_else(|| job.clone());
        if current.is_done() {
            self.release_lease(&current.job_id, owner).await?;
            return Ok(Begin::Finished(current));
        }
        current.start_attempt(pipeline);
        self.save(&current).await?;
        Ok(Begin::Started(current))
    }

    /// Gives the lease up early (a no-op if `owner` does not hold it).
    async fn release_lease(&self, id: &JobId, owner: &str) -> Result<(), PortError>;

    /// Records `key` as done. Returns true the first time only: for side effects that must
    /// happen once (one alert per dead letter), even across processes and restarts.
    async fn claim_once(&self, key: &str) -> Result<bool, PortError>;
}
