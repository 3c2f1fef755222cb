//! The job: one source object's trip through a pipeline.
//!
//! A job's id is derived from the object it processes (bucket, key, ETag), so every delivery of
//! the same object names the same job: redelivery updates one record instead of creating a
//! second, and a new upload of the same key with new content is a new job.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// The id of the job for one version of one object.
    pub fn for_object(bucket: &str, key: &str, etag: &str) -> JobId {
        let mut h = Sha256::new();
        for part in [bucket, key, etag.trim_matches('"')] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        JobId(format!("j-{}", &hex::encode(h.finalize())[..24]))
    }

    /// The id of the record that says one upload (event `sequencer`) was a duplicate of the
    /// content the job `of` processed.
    pub fn for_duplicate(of: &JobId, sequencer: &str) -> JobId {
        let mut h = Sha256::new();
        for part in [of.0.as_str(), sequencer] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        JobId(format!("j-{}", &hex::encode(h.finalize())[..24]))
    }
}

/// An S3 event `sequencer` in a form that compares as the events happened: S3's are hex
/// strings of varying length, compared after padding the shorter with zeros on the left.
/// Returns `None` for an empty sequencer (an event that does not say).
pub fn sequencer_order(sequencer: &str) -> Option<String> {
    let s = sequencer.trim();
    if s.is_empty() {
        return None;
    }
    let s = s.to_ascii_uppercase();
    Some(format!("{s:0>40}"))
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `queued → running → succeeded | rejected | failed`, or `skipped`. Ordered as declared (so it
/// can key the `BTreeMap` of `JobStore::counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    /// Processed; outputs written, source archived.
    Succeeded,
    /// The input was refused for good (schema mismatch, undecodable, ...); source in `failed/`.
    Rejected,
    /// Could not be processed: retries exhausted (message dead-lettered) or the source vanished.
    Failed,
    /// An event that is not work (no matching source, test event), or a re-upload of content
    /// that was just processed (a duplicate).
    Skipped,
    /// An older version of a key whose newer version arrived first: nothing written over the
    /// newer version's outputs (see [`Job::sequencer`]).
    Superseded,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Rejected,
        JobStatus::Failed,
        JobStatus::Skipped,
        JobStatus::Superseded,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Rejected => "rejected",
            JobStatus::Failed => "failed",
            JobStatus::Skipped => "skipped",
            JobStatus::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workflow state as the job went through it (entered at `entered_at`, exited
/// `duration_ms` later).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub state: String,
    pub entered_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// `ok`, or the error name (`Weir.SchemaMismatch`, `States.TaskFailed`, ...).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The state's input as JSON text, truncated (a few KiB at most). Recorded for the first
    /// state of a run only: every later state's input is the output of the state before it (in
    /// the same branch, for the states of a Parallel or Map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The state's output as JSON text, truncated; absent if the state failed, or if it passed
    /// its input on unchanged (outcome `ok`, as a Choice or a Succeed state does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// How many times the state was retried (its `Retry` policy) before this outcome.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The job record kept in the job store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    pub pipeline: Option<String>,
    pub status: JobStatus,
    pub source_bucket: String,
    pub source_key: String,
    pub source_etag: String,
    pub source_size: u64,
    pub total_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    /// Output objects by role: `results`, `summary`, `errors`, `archive`, `failed`.
    pub output_keys: std::collections::BTreeMap<String, String>,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// The S3 event `sequencer` of the upload this job last ran for, in [`sequencer_order`]
    /// form: how the versions of one key are ordered (the newest version's outputs win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    /// Where an interrupted execution resumes: set after each completed side-effecting state,
    /// cleared when the job finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// An image job's picture: dimensions, format, EXIF summary, thumbnails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::image::ImageSummary>,
    /// The warehouse table the valid rows went to, how many, or why they did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<WarehouseLoad>,
}

/// A job's load into a warehouse table (`[pipeline.sinks.postgres]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarehouseLoad {
    /// The kind of sink: `postgres`.
    pub sink: String,
    /// The database, without credentials: `db.internal:5432/analytics`.
    pub target: String,
    /// The table, schema-qualified: `public.sales`.
    pub table: String,
    /// Rows of this job in the table (committed in one transaction with the removal of the
    /// rows it replaced); 0 when the load failed.
    pub rows: u64,
    /// `replace` or `append`.
    pub mode: String,
    /// Why the load failed (the row's line and the database's message for a refused row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl WarehouseLoad {
    /// `1,234 rows into public.sales at db.internal:5432/analytics (postgres, replace)`.
    pub fn describe(&self) -> String {
        match &self.error {
            None => format!(
                "{} rows into {} at {} ({}, {})",
                self.rows, self.table, self.target, self.sink, self.mode
            ),
            Some(e) => format!("nothing loaded into {} at {} ({}): {e}", self.table, self.target, self.sink),
        }
    }
}

/// The state to run next and the data it gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub next_state: String,
    pub data: serde_json::Value,
    /// The states completed before the interruption, so the history stays whole.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
}

impl Job {
    pub fn queued(bucket: &str, key: &str, etag: &str, size: u64, pipeline: Option<&str>) -> Job {
        Job {
            job_id: JobId::for_object(bucket, key, etag),
            pipeline: pipeline.map(str::to_owned),
            status: JobStatus::Queued,
            source_bucket: bucket.into(),
            source_key: key.into(),
            source_etag: etag.trim_matches('"').into(),
            source_size: size,
            total_rows: 0,
            valid_rows: 0,
            invalid_rows: 0,
            output_keys: Default::default(),
            attempts: 0,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            error: None,
            steps: Vec::new(),
            sequencer: None,
            checkpoint: None,
            image: None,
            warehouse: None,
        }
    }

    /// Starts a new attempt: running `pipeline` from now, one attempt more, no error.
    pub fn start_attempt(&mut self, pipeline: &str) {
        self.pipeline = Some(pipeline.to_owned());
        self.status = JobStatus::Running;
        self.attempts += 1;
        self.started_at = Some(Utc::now());
        self.error = None;
        // What this attempt loads is recorded from its own workflow state (a resumed workflow
        // carries the load its first attempt made in its checkpoint).
        self.warehouse = None;
    }

    /// Whether the job ended for good: terminal, and not `failed` (retries exhausted), which a
    /// replayed dead letter runs again.
    pub fn is_done(&self) -> bool {
        self.status.is_terminal() && self.status != JobStatus::Failed
    }

    /// Marks the job failed for running out of receives, keeping its checkpoint: a replay from
    /// the dead-letter queue resumes where the last attempt stopped (whose source may be
    /// archived already), not at the start.
    pub fn give_up(&mut self, error: String) {
        let checkpoint = self.checkpoint.take();
        self.finish(JobStatus::Failed, Some(error));
        self.checkpoint = checkpoint;
    }

    /// Marks the job terminal now, computing its duration from its start.
    pub fn finish(&mut self, status: JobStatus, error: Option<String>) {
        let now = Utc::now();
        self.status = status;
        self.error = error;
        self.finished_at = Some(now);
        self.checkpoint = None;
        let start = self.started_at.unwrap_or(self.created_at);
        self.duration_ms = Some((now - start).num_milliseconds().max(0) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that ran out of receives keeps where it stopped, so a replay resumes there; a job
    /// that finished otherwise has nothing to resume.
    #[test]
    fn giving_up_keeps_the_checkpoint_and_finishing_clears_it() {
        let mut job = Job::queued("b", "k", "e", 1, None);
        let at = Checkpoint { next_state: "ArchiveSource".into(), ..Checkpoint::default() };
        job.checkpoint = Some(at.clone());
        job.give_up("retries exhausted".into());
        assert_eq!((job.status, job.error.as_deref()), (JobStatus::Failed, Some("retries exhausted")));
        assert_eq!(job.checkpoint, Some(at));
        job.finish(JobStatus::Failed, None);
        assert_eq!(job.checkpoint, None);
    }

    #[test]
    fn job_ids_are_stable_per_object_version() {
        let a = JobId::for_object("b", "raw/x.csv", "\"etag1\"");
        assert_eq!(a, JobId::for_object("b", "raw/x.csv", "etag1"));
        assert_ne!(a, JobId::for_object("b", "raw/x.csv", "etag2"));
        assert_ne!(a, JobId::for_object("b2", "raw/x.csv", "etag1"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(JobId::for_object("ab", "c", "e"), JobId::for_object("a", "bc", "e"));
    }

    #[test]
    fn statuses_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert!(JobStatus::Rejected.is_terminal() && !JobStatus::Running.is_terminal());
    }
}
