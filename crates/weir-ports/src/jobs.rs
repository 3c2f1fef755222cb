//! The job store port: one record per job, keyed by the job id, and one record per source key
//! that orders the key's versions and says which run holds the key.
//!
//! Two promises rest on the source-key record:
//!
//! - **One run per key at a time.** A run (one attempt by one worker, named by a run id that is
//!   unique per attempt, not per process) takes the key's lease in [`JobStore::begin`]; every
//!   later write of the run is fenced on that lease ([`JobStore::save_run`],
//!   [`JobStore::finish_run`]), so a worker that lost its lease (paused past the lease's expiry,
//!   and another run took over) cannot write the record any more. Two messages for one job, two
//!   versions of one key, or two processes never run side by side.
//! - **The newest version wins.** Each upload's S3 event carries a `sequencer` that orders the
//!   events of one key. The key's record keeps the newest sequencer seen; a job of an older
//!   version that was not done is recorded [`JobStatus::Superseded`] instead of running, so it
//!   can never write over the outputs of a newer one. A new upload of the content the key's
//!   newest job already processed is a [`Begin::Duplicate`].
//!
//! What `begin` decides is [`plan_begin`], a pure function every store runs inside its own
//! atomic step (a SQLite transaction, a DynamoDB conditional write), so the stores cannot drift.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use weir_core::stats::{JobTotals, Series};
use weir_core::{Job, JobId, JobStatus};

use crate::PortError;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    /// At most this many (0 means 100).
    pub limit: usize,
}

/// One page of [`JobStore::list_created`]: the jobs, and the token of the next page (`None`
/// on the last page).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Opaque to the caller; only the store that gave it out reads it.
    pub next: Option<String>,
}

/// A schedule's durable record: how its due times are counted and which one last fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleMark {
    /// When the schedule was first seen (ms since the Unix epoch): a `rate()` that never fired
    /// counts its intervals from here, so a restart does not move them.
    pub anchor_ms: i64,
    /// The due time it last fired for (ms), if it ever did: the next one is counted from here.
    pub last_due_ms: Option<i64>,
    /// When that firing was claimed (ms).
    pub fired_at_ms: Option<i64>,
}

/// Retention's view of job records: the finished ones that may go.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredJobs {
    /// At most the limit asked for, in job id order.
    pub jobs: Vec<JobId>,
    /// Whether more may follow (ask again after the last id).
    pub more: bool,
}

/// What [`JobStore::begin`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// The key's lease is this run's and the record says running: the attempt is on.
    Started(Job),
    /// Another run holds the key's lease (this job's, or another version's of the same key).
    Busy,
    /// The job already ended for good ([`Job::is_done`]) and this event is not a new upload:
    /// a redelivery, or an older version's late event. No lease was taken.
    Finished(Job),
    /// The event is older than one already seen for the key and the job had not finished: it
    /// is now recorded [`JobStatus::Superseded`] (the returned record). No lease was taken.
    Superseded(Job),
    /// A new upload whose content is the content the key's newest job (the returned one)
    /// already processed. No lease was taken; the job is unchanged.
    Duplicate(Job),
}

/// A run's hold on a source key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The run that holds it (unique per attempt).
    pub run: String,
    /// The job the run is running.
    pub job: JobId,
    /// When it lapses unless renewed, in ms since the Unix epoch.
    pub expires_ms: i64,
}

/// The job store's record of one source key (bucket and key).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceKey {
    /// The newest event sequencer seen for the key ([`weir_core::job::sequencer_order`] form).
    pub newest_sequencer: Option<String>,
    /// The job of that event.
    pub newest_job: Option<JobId>,
    pub lease: Option<Lease>,
}

/// What [`plan_begin`] decided: the answer, and what to store with it.
#[derive(Debug, Clone, PartialEq)]
pub struct BeginPlan {
    pub outcome: Begin,
    /// The source key's record after the decision.
    pub key: SourceKey,
    /// The job record to write, if it changes (started, re-run, superseded).
    pub save: Option<Job>,
}

/// Decides a [`JobStore::begin`] for the job `candidate` (built from the event, with its
/// sequencer) given what the store holds: the job's record if any, and the key's record.
/// `run` is the run asking; `ttl` and `now_ms` set the lease's expiry.
pub fn plan_begin(
    stored: Option<Job>,
    candidate: &Job,
    pipeline: &str,
    mut key: SourceKey,
    run: &str,
    ttl: Duration,
    now_ms: i64,
) -> BeginPlan {
    let mut job = stored.unwrap_or_else(|| candidate.clone());
    let sequencer = candidate.sequencer.clone();
    let held_by_other = key.lease.as_ref().filter(|l| l.expires_ms > now_ms && l.run != run).cloned();
    // An older event for the content that is the key's newest (an identical re-upload came
    // first) is not older content: it runs or finishes as that content's job.
    let newest_is_this = key.newest_job.as_ref() == Some(&job.job_id);
    let older = !newest_is_this && matches!((&sequencer, &key.newest_sequencer), (Some(s), Some(n)) if s < n);
    let newer = match (&sequencer, &key.newest_sequencer) {
        (Some(s), Some(n)) => s > n,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if older {
        if job.is_done() {
            return BeginPlan { outcome: Begin::Finished(job), key, save: None };
        }
        if held_by_other.as_ref().is_some_and(|l| l.job == job.job_id) {
            // The job's own run is still going: let it end (its outputs, if any, are
            // replaced by the newer version's run, which waits for the key).
            return BeginPlan { outcome: Begin::Busy, key, save: None };
        }
        let newest = key.newest_job.as_ref().map_or_else(|| "a newer upload".to_string(), |j| j.to_string());
        job.finish(
            JobStatus::Superseded,
            Some(format!(
                "a newer version of {}/{} arrived first ({newest})",
                job.source_bucket, job.source_key
            )),
        );
        return BeginPlan { outcome: Begin::Superseded(job.clone()), key, save: Some(job) };
    }
    if newer {
        let previous = key.newest_job.replace(job.job_id.clone());
        key.newest_sequencer = sequencer.clone();
        if job.is_done() {
            if previous.is_none() || previous.as_ref() == Some(&job.job_id) {
                return BeginPlan { outcome: Begin::Duplicate(job), key, save: None };
            }
            // Content processed before, then replaced by other content, and now uploaded
            // again: the newest version of the key, so it runs again.
            job.checkpoint = None;
        }
    } else if job.is_done() {
        // The key's newest event, for a job that ran for an earlier one: the duplicate's event
        // delivered again.
        let duplicate = sequencer.is_some()
            && sequencer == key.newest_sequencer
            && job.sequencer != sequencer
            && key.newest_job.as_ref() == Some(&job.job_id);
        let outcome = if duplicate { Begin::Duplicate(job) } else { Begin::Finished(job) };
        return BeginPlan { outcome, key, save: None };
    }
    if held_by_other.is_some() {
        // Whatever this event taught about the key's versions is kept.
        return BeginPlan { outcome: Begin::Busy, key, save: None };
    }
    key.lease = Some(Lease {
        run: run.to_owned(),
        job: job.job_id.clone(),
        expires_ms: now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    });
    if sequencer.is_some() {
        job.sequencer = sequencer;
    }
    job.start_attempt(pipeline);
    BeginPlan { outcome: Begin::Started(job.clone()), key, save: Some(job) }
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts the job unless a job with its id exists. Returns whether it was inserted.
    async fn create(&self, job: &Job) -> Result<bool, PortError>;

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError>;

    /// Writes the whole record, inserting it if needed, outside any run (ingest, `weir
    /// reprocess`, the DLQ scanner). A run writes with [`JobStore::save_run`].
    async fn save(&self, job: &Job) -> Result<(), PortError>;

    /// Newest first (by creation time).
    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, PortError>;

    /// The jobs created in `[from, to)`, oldest first, at most `limit` (0 means 100) per page,
    /// the page after `page_token` (a [`JobPage::next`] of this store). Each page is one
    /// indexed read, so walking a day of jobs costs what the day holds, not what the store
    /// holds; jobs created meanwhile may or may not show up, none shows up twice.
    async fn list_created(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<JobPage, PortError>;

    /// How many jobs are in each status. Stores whose records expire behind weir's back
    /// (DynamoDB's TTL) may still count expired done jobs; queued and running counts are exact.
    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError>;

    /// Everything counted since the store began, and each status's count now: kept as jobs
    /// are written ([`weir_core::stats::change`]), so reading it does not grow with history.
    async fn totals(&self) -> Result<JobTotals, PortError>;

    /// The per-minute counters of minutes `[from, to)` (minutes since the Unix epoch).
    async fn series(&self, from: i64, to: i64) -> Result<Series, PortError>;

    /// Begins run `run` of `job` (built from an event, with the event's sequencer): creates the
    /// record if it is missing, orders the event among the key's versions, and takes the key's
    /// lease for `ttl` — all as one atomic step deciding as [`plan_begin`] does.
    async fn begin(&self, job: &Job, pipeline: &str, run: &str, ttl: Duration) -> Result<Begin, PortError>;

    /// Extends the run's lease on the source key `bucket`/`key` by `ttl`. False if the run no
    /// longer holds it (it lapsed and another run took it): the run must stop.
    async fn renew(&self, bucket: &str, key: &str, run: &str, ttl: Duration) -> Result<bool, PortError>;

    /// Writes the record if `run` still holds the lease on its source key; otherwise
    /// [`PortError::Conflict`] and nothing is written.
    async fn save_run(&self, job: &Job, run: &str) -> Result<(), PortError>;

    /// [`JobStore::save_run`], and gives the key's lease up in the same step: the run is over
    /// (the job finished, or it will be retried by a later run).
    async fn finish_run(&self, job: &Job, run: &str) -> Result<(), PortError>;

    /// The run stops without an outcome (shutdown): if it still holds the key, the job goes
    /// back to `queued` and the lease is given up, so the next run need not wait for it to lapse.
    async fn abandon_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        let mut current = self.get(&job.job_id).await?.unwrap_or_else(|| job.clone());
        if current.status == JobStatus::Running {
            current.status = JobStatus::Queued;
            current.error = Some(format!("attempt {} was interrupted by a shutdown", current.attempts));
        }
        match self.finish_run(&current, run).await {
            Err(PortError::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    /// The key's record (versions and lease), if the key was ever begun.
    async fn source_key(&self, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError>;

    /// Records `key` as done. Returns true the first time only: for side effects that must
    /// happen once (one alert per dead letter), even across processes and restarts.
    async fn claim_once(&self, key: &str) -> Result<bool, PortError>;

    /// The schedule's record, created with `anchor_ms` if it has none (the first to create it
    /// wins, so every process counts a rate from the same anchor).
    async fn schedule_mark(&self, name: &str, anchor_ms: i64) -> Result<ScheduleMark, PortError>;

    /// Claims the schedule's firing for due time `due_ms`: true, in one atomic step, only if
    /// `due_ms` is later than the due time it last fired for (which becomes `due_ms`). So each
    /// due time fires once across processes and restarts, and never one older than the last.
    async fn claim_schedule(&self, name: &str, due_ms: i64) -> Result<bool, PortError>;

    /// Finished jobs (done: [`Job::is_done`]) that finished before `before_ms`, with ids after
    /// `after` (in id order), at most `limit`.
    async fn finished_before(
        &self,
        before_ms: i64,
        after: Option<&JobId>,
        limit: usize,
    ) -> Result<ExpiredJobs, PortError>;

    /// Deletes those of `ids` that are still done and finished before `before_ms` (a job run
    /// again meanwhile stays), with the key records whose newest job they were and that no run
    /// holds. Returns how many job records went. The lifetime counters ([`JobStore::totals`]'s
    /// outcomes and received files, the series) do not change; the count of jobs in each
    /// status now does.
    async fn delete_finished(&self, ids: &[JobId], before_ms: i64) -> Result<u64, PortError>;

    /// Adds `by` to the lifetime counter `name` (e.g. objects expired by retention).
    async fn add_to_counter(&self, name: &str, by: u64) -> Result<(), PortError>;

    /// Every lifetime counter [`JobStore::add_to_counter`] kept.
    async fn counters(&self) -> Result<BTreeMap<String, u64>, PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn job(etag: &str, seq: &str) -> Job {
        let mut j = Job::queued("in", "raw/a.csv", etag, 1, Some("sales"));
        j.sequencer = weir_core::job::sequencer_order(seq);
        j
    }

    fn done(mut j: Job) -> Job {
        j.finish(JobStatus::Succeeded, None);
        j
    }

    #[test]
    fn a_first_event_starts_and_takes_the_key() {
        let a = job("e1", "10");
        let plan = plan_begin(None, &a, "sales", SourceKey::default(), "r1", TTL, 1000);
        let Begin::Started(started) = &plan.outcome else { panic!("{plan:?}") };
        assert_eq!((started.attempts, started.status), (1, JobStatus::Running));
        assert_eq!(plan.key.newest_job.as_ref(), Some(&a.job_id));
        assert_eq!(plan.key.lease.as_ref().map(|l| (l.run.as_str(), l.expires_ms)), Some(("r1", 31_000)));
    }

    #[test]
    fn another_run_waits_for_the_key_even_of_the_same_job() {
        let a = job("e1", "10");
        let key = plan_begin(None, &a, "sales", SourceKey::default(), "r1", TTL, 0).key;
        let stored = Some(a.clone());
        assert_eq!(plan_begin(stored.clone(), &a, "sales", key.clone(), "r2", TTL, 1).outcome, Begin::Busy);
        // A newer version waits too, but the key learns of it.
        let b = job("e2", "11");
        let plan = plan_begin(None, &b, "sales", key.clone(), "r3", TTL, 1);
        assert_eq!(plan.outcome, Begin::Busy);
        assert_eq!(plan.key.newest_job.as_ref(), Some(&b.job_id));
        // Once the lease lapses, the next run takes it.
        assert!(matches!(plan_begin(stored, &a, "sales", key, "r2", TTL, 40_000).outcome, Begin::Started(_)));
    }

    #[test]
    fn an_older_version_is_superseded_unless_done_or_running() {
        let (a, b) = (job("e1", "10"), job("e2", "11"));
        let key = plan_begin(None, &b, "sales", SourceKey::default(), "r1", TTL, 0).key;
        let plan = plan_begin(None, &a, "sales", key.clone(), "r2", TTL, 1);
        let Begin::Superseded(sup) = &plan.outcome else { panic!("{plan:?}") };
        assert_eq!(sup.status, JobStatus::Superseded);
        assert_eq!(plan.save.as_ref(), Some(sup));
        assert_eq!(plan.key, key, "nothing about the key changes");
        assert!(matches!(
            plan_begin(Some(done(a.clone())), &a, "sales", key, "r2", TTL, 1).outcome,
            Begin::Finished(_)
        ));
    }

    #[test]
    fn the_same_content_again_is_a_duplicate_but_after_other_content_it_runs_again() {
        let a = job("e1", "10");
        let key = plan_begin(None, &a, "sales", SourceKey::default(), "r1", TTL, 0).key;
        let key = SourceKey { lease: None, ..key };
        let a_again = job("e1", "12");
        let plan = plan_begin(Some(done(a.clone())), &a_again, "sales", key.clone(), "r2", TTL, 1);
        assert!(matches!(plan.outcome, Begin::Duplicate(_)), "{plan:?}");
        assert_eq!(plan.key.newest_sequencer, a_again.sequencer);
        // A redelivery of the first event is only that.
        assert!(matches!(
            plan_begin(Some(done(a.clone())), &a, "sales", key.clone(), "r2", TTL, 1).outcome,
            Begin::Finished(_)
        ));
        // b replaces a, then a's content is uploaded once more: the newest version, so it runs.
        let b = job("e2", "11");
        let key = plan_begin(None, &b, "sales", key, "r3", TTL, 2).key;
        let key = SourceKey { lease: None, ..key };
        let plan = plan_begin(Some(done(a.clone())), &a_again, "sales", key, "r4", TTL, 3);
        let Begin::Started(rerun) = plan.outcome else { panic!("a runs again") };
        assert_eq!((rerun.attempts, rerun.sequencer), (1, a_again.sequencer));
    }

    /// The chaos run found this: an identical re-upload's event arrived while the first
    /// upload's run was going; that run died, and its own event, older than the re-upload's,
    /// came back. It is the newest content's job: it runs, it is not superseded by itself.
    #[test]
    fn an_older_event_of_the_newest_content_runs_rather_than_supersede_itself() {
        let (first, again) = (job("e1", "10"), job("e1", "12"));
        let key = plan_begin(None, &first, "sales", SourceKey::default(), "r1", TTL, 0).key;
        let plan = plan_begin(Some(first.clone()), &again, "sales", key, "r2", TTL, 1);
        assert_eq!(plan.outcome, Begin::Busy, "r1 holds the key");
        let key = SourceKey { lease: None, ..plan.key };
        let plan = plan_begin(Some(first.clone()), &first, "sales", key.clone(), "r3", TTL, 40_000);
        assert!(matches!(plan.outcome, Begin::Started(_)), "{plan:?}");
        // Once it is done, that older event again is only a redelivery, not a duplicate upload.
        let plan = plan_begin(Some(done(first.clone())), &first, "sales", key, "r4", TTL, 40_001);
        assert!(matches!(plan.outcome, Begin::Finished(_)), "{plan:?}");
    }

    #[test]
    fn events_without_a_sequencer_do_not_reorder_versions() {
        let a = job("e1", "");
        let plan = plan_begin(None, &a, "sales", SourceKey::default(), "r1", TTL, 0);
        assert!(matches!(plan.outcome, Begin::Started(_)));
        assert_eq!(plan.key.newest_sequencer, None);
        assert!(matches!(
            plan_begin(Some(done(a.clone())), &a, "sales", SourceKey::default(), "r1", TTL, 0).outcome,
            Begin::Finished(_)
        ));
    }
}
