//! The embedded job store: one row per job in a SQLite file.
//!
//! `weir run` writes job records while `weir jobs` and `weir put --wait` read them from other
//! processes, so the records live in SQLite (WAL: readers never wait for the writer). The whole
//! [`Job`] is stored as JSON, which keeps the store in step with the domain type without a
//! column per field; `status` and `created_at` are copied into indexed columns for listing and
//! counting.
//!
//! Each source key has a row in `sources`: the newest event sequencer seen for it and the run
//! that holds it (see [`weir_ports::jobs`]). A run's writes check that row in the same
//! savepoint, so a run that lost its lease writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use weir_core::stats::{Counted, JobTotals, Series};
use weir_core::{Job, JobId, JobStatus};
use weir_ports::{
    plan_begin, Begin, ExpiredJobs, JobFilter, JobPage, JobStore, Lease, PortError, ScheduleMark, SourceKey,
};

use super::{ms, now_ms, sql, stats, Db, Durability, SqliteFile};

/// The schema's migrations, in order (one built at start: [`stats::MIGRATION`]); the warehouse
/// loads' counters come after the retention tables, which databases already have.
fn migrations() -> [&'static str; 6] {
    [
        MIGRATIONS[0],
        MIGRATIONS[1],
        MIGRATIONS[2],
        stats::MIGRATION.as_str(),
        RETENTION_MIGRATION,
        stats::LOAD_MIGRATION,
    ]
}

/// Schedules' records, lifetime counters, and the index retention finds finished jobs by.
const RETENTION_MIGRATION: &str = "
    CREATE TABLE schedules (name TEXT PRIMARY KEY, anchor_ms INTEGER NOT NULL, last_due_ms INTEGER,
        fired_at_ms INTEGER) WITHOUT ROWID;
    CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX jobs_finished ON jobs (finished_ms);
";

/// The statuses of jobs that are done ([`Job::is_done`]): what retention may remove.
const DONE: &str = "('succeeded', 'rejected', 'skipped', 'superseded')";

const MIGRATIONS: [&str; 3] = [
    "
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        job TEXT NOT NULL
    );
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE INDEX jobs_status_created ON jobs (status, created_at);
",
    "
    ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_expires INTEGER;
    CREATE TABLE claims (key TEXT PRIMARY KEY, claimed_at INTEGER NOT NULL);
",
    // Leases move from jobs to source keys (the job's columns stay, unused).
    "
    CREATE TABLE sources (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        newest_seq TEXT,
        newest_job TEXT,
        lease_run TEXT,
        lease_job TEXT,
        lease_expires INTEGER,
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID;
",
];

/// Default and cap for [`JobFilter::limit`] 0.
const DEFAULT_LIMIT: usize = 100;

/// Job records in a SQLite file. Cheap to clone.
#[derive(Clone)]
pub struct SqliteJobStore {
    db: Db,
    /// How every write commits: synced in a file of its own, deferred in the queue's file.
    durability: Durability,
}

impl std::fmt::Debug for SqliteJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJobStore").field("path", &self.db.path()).finish()
    }
}

impl SqliteJobStore {
    /// Opens the job store at `path`, creating the file and its schema if needed.
    pub fn open(path: &Path) -> Result<SqliteJobStore, PortError> {
        Ok(SqliteJobStore { db: Db::open(path, "jobs", &migrations())?, durability: Durability::Synced })
    }

    /// The job store in the file the queue lives in (see [`SqliteFile`]). Its writes are
    /// deferred, not fsynced one by one: every job ends with a synced queue write on the same
    /// file (the delete of its message, or a send), which puts the job's record on disk first,
    /// and a record lost before that to a power cut is rebuilt by redelivery of the message —
    /// the job store is bookkeeping for a message that is still on the queue.
    pub fn in_file(file: &SqliteFile) -> Result<SqliteJobStore, PortError> {
        file.db.migrate("jobs", &migrations())?;
        Ok(SqliteJobStore { db: file.db.clone(), durability: Durability::Deferred })
    }
}

impl SqliteJobStore {
    /// A run's write of its job, only while it holds the key (and giving the key up with
    /// `release`).
    async fn write_run(&self, job: &Job, run: &str, release: bool) -> Result<(), PortError> {
        // Encoded here, not on the store's one writer thread, which every job's writes share.
        let row = JobRow::of(job)?;
        let (bucket, key, run) = (job.source_bucket.clone(), job.source_key.clone(), run.to_owned());
        self.db
            .write_with(self.durability, "saving a job", move |c| {
                let holds = c
                    .prepare_cached("SELECT 1 FROM sources WHERE bucket = ?1 AND key = ?2 AND lease_run = ?3")
                    .and_then(|mut st| st.exists(params![bucket, key, run]))
                    .map_err(sql("saving a job"))?;
                if !holds {
                    return Err(PortError::Conflict(format!(
                        "run {run} no longer holds {bucket}/{key}: job {} not saved",
                        row.id
                    )));
                }
                put_job(c, &row)?;
                if release {
                    c.prepare_cached(
                        "UPDATE sources SET lease_run = NULL, lease_job = NULL, lease_expires = NULL
                         WHERE bucket = ?1 AND key = ?2",
                    )
                    .and_then(|mut st| st.execute(params![bucket, key]))
                    .map_err(sql("releasing a lease"))?;
                }
                Ok(())
            })
            .await
    }
}

/// A job as the `jobs` table holds it, and what the counters need of it.
struct JobRow {
    id: String,
    status: &'static str,
    /// µs since the epoch.
    created_at: i64,
    json: String,
    finished_ms: Option<i64>,
    counted: Counted,
}

impl JobRow {
    fn of(job: &Job) -> Result<JobRow, PortError> {
        let json = serde_json::to_string(job)
            .map_err(|e| PortError::Invalid(format!("job {} cannot be encoded: {e}", job.job_id)))?;
        Ok(JobRow {
            id: job.job_id.0.clone(),
            status: job.status.as_str(),
            created_at: job.created_at.timestamp_micros(),
            json,
            finished_ms: job.finished_at.filter(|_| job.status.is_terminal()).map(|t| t.timestamp_millis()),
            counted: Counted::of(job),
        })
    }
}

/// Writes a job's record (inserting it if needed) and what that changes in the counters.
fn put_job(c: &Connection, row: &JobRow) -> Result<(), PortError> {
    let old = stats::old_row(c, &row.id)?;
    c.prepare_cached(
        "INSERT INTO jobs (job_id, status, created_at, job, finished_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (job_id) DO UPDATE
         SET status = excluded.status, created_at = excluded.created_at, job = excluded.job,
             finished_ms = excluded.finished_ms",
    )
    .and_then(|mut st| st.execute(params![row.id, row.status, row.created_at, row.json, row.finished_ms]))
    .map_err(sql("saving a job"))?;
    stats::record(c, old, &row.counted)
}

/// Inserts the job unless its id has a record; counts it as received if it did. Returns
/// whether it inserted.
fn insert_if_missing(c: &Connection, row: &JobRow) -> Result<bool, PortError> {
    let inserted = c
        .prepare_cached(
            "INSERT OR IGNORE INTO jobs (job_id, status, created_at, job, finished_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| st.execute(params![row.id, row.status, row.created_at, row.json, row.finished_ms]))
        .map_err(sql("creating a job"))?
        == 1;
    if inserted {
        stats::record(c, None, &row.counted)?;
    }
    Ok(inserted)
}

fn read_job(c: &Connection, id: &str) -> Result<Option<Job>, PortError> {
    let json = c
        .prepare_cached("SELECT job FROM jobs WHERE job_id = ?1")
        .and_then(|mut st| st.query_row([id], |r| r.get::<_, String>(0)).optional())
        .map_err(sql("reading a job"))?;
    json.as_deref().map(decode).transpose()
}

fn read_source(c: &Connection, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError> {
    c.prepare_cached(
        "SELECT newest_seq, newest_job, lease_run, lease_job, lease_expires FROM sources
         WHERE bucket = ?1 AND key = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![bucket, key], |r| {
            let lease = match (r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?) {
                (Some(run), Some(job)) => {
                    Some(Lease { run, job: JobId(job), expires_ms: r.get::<_, Option<i64>>(4)?.unwrap_or(0) })
                }
                _ => None,
            };
            Ok(SourceKey {
                newest_sequencer: r.get(0)?,
                newest_job: r.get::<_, Option<String>>(1)?.map(JobId),
                lease,
            })
        })
        .optional()
    })
    .map_err(sql("reading a source key"))
}

fn write_source(c: &Connection, bucket: &str, key: &str, s: &SourceKey) -> Result<(), PortError> {
    let lease = s.lease.as_ref();
    c.prepare_cached(
        "INSERT INTO sources (bucket, key, newest_seq, newest_job, lease_run, lease_job, lease_expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (bucket, key) DO UPDATE SET newest_seq = excluded.newest_seq,
             newest_job = excluded.newest_job, lease_run = excluded.lease_run,
             lease_job = excluded.lease_job, lease_expires = excluded.lease_expires",
    )
    .and_then(|mut st| {
        st.execute(params![
            bucket,
            key,
            s.newest_sequencer,
            s.newest_job.as_ref().map(|j| j.0.as_str()),
            lease.map(|l| l.run.as_str()),
            lease.map(|l| l.job.0.as_str()),
            lease.map(|l| l.expires_ms),
        ])
    })
    .map(drop)
    .map_err(sql("recording a source key"))
}

fn decode(json: &str) -> Result<Job, PortError> {
    serde_json::from_str(json).map_err(|e| PortError::unavailable("decoding a stored job", e))
}

fn query_jobs(
    c: &Connection,
    sql_text: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Job>, PortError> {
    let mut st = c.prepare_cached(sql_text).map_err(sql("listing jobs"))?;
    let rows = st
        .query_map(params, |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql("listing jobs"))?;
    rows.iter().map(|json| decode(json)).collect()
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn create(&self, job: &Job) -> Result<bool, PortError> {
        let row = JobRow::of(job)?;
        self.db.write_with(self.durability, "creating a job", move |c| insert_if_missing(c, &row)).await
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        let json = self.db.lookup("reading a job", |c| {
            c.prepare_cached("SELECT job FROM jobs WHERE job_id = ?1")
                .and_then(|mut st| st.query_row([&id.0], |r| r.get::<_, String>(0)).optional())
                .map_err(sql("reading a job"))
        })?;
        json.as_deref().map(decode).transpose()
    }

    async fn save(&self, job: &Job) -> Result<(), PortError> {
        let row = JobRow::of(job)?;
        self.db.write_with(self.durability, "saving a job", move |c| put_job(c, &row)).await
    }

    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, PortError> {
        let limit = if filter.limit == 0 { DEFAULT_LIMIT } else { filter.limit };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let status = filter.status;
        self.db
            .read("listing jobs", move |c| match status {
                // Ties on the creation time go to the later insert (rowid).
                Some(s) => query_jobs(
                    c,
                    "SELECT job FROM jobs WHERE status = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2",
                    &[&s.as_str(), &limit],
                ),
                None => query_jobs(
                    c,
                    "SELECT job FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?1",
                    &[&limit],
                ),
            })
            .await
    }

    /// A range of the `jobs_created` index (creation time, then rowid: an upsert keeps a
    /// job's rowid), read from the last page's end; the token is that `created_at:rowid`.
    async fn list_created(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<JobPage, PortError> {
        let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
        let after = match page_token {
            None => (from.timestamp_micros(), i64::MIN),
            Some(t) => t
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                .ok_or_else(|| PortError::Invalid(format!("not a page token of this store: {t:?}")))?,
        };
        let to = to.timestamp_micros();
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let rows = self
            .db
            .read("listing a day of jobs", move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT created_at, rowid, job FROM jobs INDEXED BY jobs_created
                         WHERE created_at >= ?1 AND created_at < ?3 AND (created_at > ?1 OR rowid > ?2)
                         ORDER BY created_at, rowid LIMIT ?4",
                    )
                    .map_err(sql("listing a day of jobs"))?;
                st.query_map(params![after.0, after.1, to, fetch], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(sql("listing a day of jobs"))
            })
            .await?;
        let more = rows.len() > limit;
        let rows = &rows[..rows.len().min(limit)];
        let next = if more { rows.last().map(|(t, id, _)| format!("{t}:{id}")) } else { None };
        let jobs = rows.iter().map(|(_, _, json)| decode(json)).collect::<Result<_, _>>()?;
        Ok(JobPage { jobs, next })
    }

    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError> {
        self.db.read("counting jobs", stats::status_counts).await
    }

    async fn totals(&self) -> Result<JobTotals, PortError> {
        self.db.read("reading job totals", stats::totals).await
    }

    async fn series(&self, from: i64, to: i64) -> Result<Series, PortError> {
        self.db.read("reading job series", move |c| stats::series(c, from, to)).await
    }

    /// One write: the job, the key's versions and its lease, decided by [`plan_begin`].
    async fn begin(&self, job: &Job, pipeline: &str, run: &str, ttl: Duration) -> Result<Begin, PortError> {
        let row = JobRow::of(job)?;
        let (candidate, pipeline, run) = (job.clone(), pipeline.to_owned(), run.to_owned());
        self.db
            .write_with(self.durability, "beginning a job", move |c| {
                // The record just inserted is the candidate: no need to read it back.
                let stored = match insert_if_missing(c, &row)? {
                    true => Some(candidate.clone()),
                    false => read_job(c, &candidate.job_id.0)?,
                };
                let (bucket, key) = (&candidate.source_bucket, &candidate.source_key);
                let current = read_source(c, bucket, key)?.unwrap_or_default();
                let plan = plan_begin(stored, &candidate, &pipeline, current.clone(), &run, ttl, now_ms());
                if plan.key != current {
                    write_source(c, bucket, key, &plan.key)?;
                }
                if let Some(job) = &plan.save {
                    put_job(c, &JobRow::of(job)?)?;
                }
                Ok(plan.outcome)
            })
            .await
    }

    async fn renew(&self, bucket: &str, key: &str, run: &str, ttl: Duration) -> Result<bool, PortError> {
        let (bucket, key, run) = (bucket.to_owned(), key.to_owned(), run.to_owned());
        self.db
            .write_with(self.durability, "renewing a lease", move |c| {
                c.prepare_cached(
                    "UPDATE sources SET lease_expires = ?4 WHERE bucket = ?1 AND key = ?2 AND lease_run = ?3",
                )
                .and_then(|mut st| st.execute(params![bucket, key, run, now_ms().saturating_add(ms(ttl))]))
                .map(|n| n == 1)
                .map_err(sql("renewing a lease"))
            })
            .await
    }

    async fn save_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        self.write_run(job, run, false).await
    }

    async fn finish_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        self.write_run(job, run, true).await
    }

    async fn source_key(&self, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError> {
        self.db.lookup("reading a source key", |c| read_source(c, bucket, key))
    }

    async fn claim_once(&self, key: &str) -> Result<bool, PortError> {
        let key = key.to_owned();
        self.db
            .write_with(self.durability, "claiming a key", move |c| {
                c.prepare_cached("INSERT OR IGNORE INTO claims (key, claimed_at) VALUES (?1, ?2)")
                    .and_then(|mut st| st.execute(params![key, now_ms()]))
                    .map(|n| n == 1)
                    .map_err(sql("claiming a key"))
            })
            .await
    }

    async fn schedule_mark(&self, name: &str, anchor_ms: i64) -> Result<ScheduleMark, PortError> {
        let read = |c: &Connection, name: &str| {
            c.prepare_cached("SELECT anchor_ms, last_due_ms, fired_at_ms FROM schedules WHERE name = ?1")
                .and_then(|mut st| {
                    st.query_row([name], |r| {
                        Ok(ScheduleMark {
                            anchor_ms: r.get(0)?,
                            last_due_ms: r.get(1)?,
                            fired_at_ms: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .map_err(sql("reading a schedule"))
        };
        if let Some(mark) = self.db.lookup("reading a schedule", |c| read(c, name))? {
            return Ok(mark);
        }
        let name = name.to_owned();
        self.db
            .write_with(Durability::Synced, "recording a schedule", move |c| {
                c.prepare_cached("INSERT OR IGNORE INTO schedules (name, anchor_ms) VALUES (?1, ?2)")
                    .and_then(|mut st| st.execute(params![name, anchor_ms]))
                    .map_err(sql("recording a schedule"))?;
                read(c, &name)?.ok_or_else(|| PortError::unavailable("reading a schedule", "it vanished"))
            })
            .await
    }

    /// Synced whatever the store's durability: a firing must not be forgotten and run again.
    async fn claim_schedule(&self, name: &str, due_ms: i64) -> Result<bool, PortError> {
        let name = name.to_owned();
        self.db
            .write_with(Durability::Synced, "claiming a schedule", move |c| {
                c.prepare_cached(
                    "INSERT INTO schedules (name, anchor_ms, last_due_ms, fired_at_ms) VALUES (?1, ?2, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET last_due_ms = excluded.last_due_ms,
                         fired_at_ms = excluded.fired_at_ms
                     WHERE last_due_ms IS NULL OR last_due_ms < excluded.last_due_ms",
                )
                .and_then(|mut st| st.execute(params![name, due_ms, now_ms()]))
                .map(|n| n == 1)
                .map_err(sql("claiming a schedule"))
            })
            .await
    }

    async fn finished_before(
        &self,
        before_ms: i64,
        after: Option<&JobId>,
        limit: usize,
    ) -> Result<ExpiredJobs, PortError> {
        let after = after.map(|a| a.0.clone()).unwrap_or_default();
        let take = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let mut ids: Vec<JobId> = self
            .db
            .read("finding finished jobs", move |c| {
                c.prepare_cached(&format!(
                    "SELECT job_id FROM jobs WHERE finished_ms < ?1 AND status IN {DONE} AND job_id > ?2
                     ORDER BY job_id LIMIT ?3"
                ))
                .and_then(|mut st| {
                    st.query_map(params![before_ms, after, take], |r| r.get::<_, String>(0))
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                })
                .map_err(sql("finding finished jobs"))
            })
            .await?
            .into_iter()
            .map(JobId)
            .collect();
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(ExpiredJobs { jobs: ids, more })
    }

    async fn delete_finished(&self, ids: &[JobId], before_ms: i64) -> Result<u64, PortError> {
        let ids: Vec<String> = ids.iter().map(|i| i.0.clone()).collect();
        self.db
            .write_with(self.durability, "deleting finished jobs", move |c| {
                let mut deleted = 0u64;
                for id in &ids {
                    let gone: Option<(String, String, String)> = c
                        .prepare_cached(&format!(
                            "DELETE FROM jobs WHERE job_id = ?1 AND finished_ms < ?2 AND status IN {DONE}
                             RETURNING status, json_extract(job, '$.source_bucket'), json_extract(job, '$.source_key')"
                        ))
                        .and_then(|mut st| {
                            st.query_row(params![id, before_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                                .optional()
                        })
                        .map_err(sql("deleting a finished job"))?;
                    let Some((status, bucket, key)) = gone else { continue };
                    deleted += 1;
                    // Jobs in each status now; the lifetime tallies stay as they are.
                    c.prepare_cached("UPDATE status_counts SET n = n - 1 WHERE status = ?1")
                        .and_then(|mut st| st.execute([&status]))
                        .map_err(sql("counting a deleted job"))?;
                    c.prepare_cached(
                        "DELETE FROM sources WHERE bucket = ?1 AND key = ?2 AND newest_job = ?3
                         AND (lease_run IS NULL OR lease_expires <= ?4)",
                    )
                    .and_then(|mut st| st.execute(params![bucket, key, id, now_ms()]))
                    .map_err(sql("deleting a source key"))?;
                }
                Ok(deleted)
            })
            .await
    }

    async fn add_to_counter(&self, name: &str, by: u64) -> Result<(), PortError> {
        let name = name.to_owned();
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        self.db
            .write_with(self.durability, "counting", move |c| {
                c.prepare_cached(
                    "INSERT INTO counters (name, n) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET n = n + ?2",
                )
                .and_then(|mut st| st.execute(params![name, by]))
                .map(drop)
                .map_err(sql("counting"))
            })
            .await
    }

    async fn counters(&self) -> Result<BTreeMap<String, u64>, PortError> {
        self.db
            .read("reading counters", |c| {
                c.prepare_cached("SELECT name, n FROM counters")
                    .and_then(|mut st| {
                        st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
                            .and_then(|rows| rows.collect::<Result<BTreeMap<_, _>, _>>())
                    })
                    .map_err(sql("reading counters"))
            })
            .await
    }
}
