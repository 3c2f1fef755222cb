//! The embedded job store: one row per job in a SQLite file.
//!
//! `weir run` writes job records while `weir jobs` and `weir put --wait` read them from other
//! processes, so the records live in SQLite (WAL: readers never wait for the writer). The whole
//! [`Job`] is stored as JSON, which keeps the store in step with the domain type without a
//! column per field; `status` and `created_at` are copied into indexed columns for listing and
//! counting.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use weir_core::{Job, JobId, JobStatus};
use weir_ports::{Begin, JobFilter, JobStore, PortError};

use super::{ms, now_ms, sql, Db, Durability, SqliteFile};

const MIGRATIONS: &[&str] = &[
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
        Ok(SqliteJobStore { db: Db::open(path, "jobs", MIGRATIONS)?, durability: Durability::Synced })
    }

    /// The job store in the file the queue lives in (see [`SqliteFile`]). Its writes are
    /// deferred, not fsynced one by one: every job ends with a synced queue write on the same
    /// file (the delete of its message, or a send), which puts the job's record on disk first,
    /// and a record lost before that to a power cut is rebuilt by redelivery of the message —
    /// the job store is bookkeeping for a message that is still on the queue.
    pub fn in_file(file: &SqliteFile) -> Result<SqliteJobStore, PortError> {
        file.db.migrate("jobs", MIGRATIONS)?;
        Ok(SqliteJobStore { db: file.db.clone(), durability: Durability::Deferred })
    }
}

/// The row for a job: (id, status, created_at in µs, JSON).
fn row(job: &Job) -> Result<(String, &'static str, i64, String), PortError> {
    let json = serde_json::to_string(job)
        .map_err(|e| PortError::Invalid(format!("job {} cannot be encoded: {e}", job.job_id)))?;
    Ok((job.job_id.0.clone(), job.status.as_str(), job.created_at.timestamp_micros(), json))
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
        let (id, status, created, json) = row(job)?;
        self.db
            .write_with(self.durability, "creating a job", move |c| {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO jobs (job_id, status, created_at, job) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| st.execute(params![id, status, created, json]))
                .map(|n| n == 1)
                .map_err(sql("creating a job"))
            })
            .await
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
        let (id, status, created, json) = row(job)?;
        let terminal = job.status.is_terminal();
        self.db
            .write_with(self.durability, "saving a job", move |c| {
                // A finished job needs no lease: saving it releases the lease in the same write.
                c.prepare_cached(
                    "INSERT INTO jobs (job_id, status, created_at, job) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (job_id) DO UPDATE
                     SET status = excluded.status, created_at = excluded.created_at, job = excluded.job,
                         lease_owner = CASE WHEN ?5 THEN NULL ELSE lease_owner END,
                         lease_expires = CASE WHEN ?5 THEN NULL ELSE lease_expires END",
                )
                .and_then(|mut st| st.execute(params![id, status, created, json, terminal]))
                .map(drop)
                .map_err(sql("saving a job"))
            })
            .await
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

    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError> {
        let rows = self
            .db
            .read("counting jobs", |c| {
                let mut st = c
                    .prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                    .map_err(sql("counting jobs"))?;
                let rows = st
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql("counting jobs"))?;
                Ok(rows)
            })
            .await?;
        let mut counts = BTreeMap::new();
        for (status, n) in rows {
            match JobStatus::parse(&status) {
                Some(s) => {
                    counts.insert(s, n.max(0) as u64);
                }
                None => tracing::warn!(status, "job store holds an unknown status; not counted"),
            }
        }
        Ok(counts)
    }

    async fn acquire_lease(&self, job: &Job, owner: &str, ttl: Duration) -> Result<bool, PortError> {
        let (id, status, created, json) = row(job)?;
        let owner = owner.to_owned();
        self.db
            .write_with(self.durability, "taking a job lease", move |c| {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO jobs (job_id, status, created_at, job) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| st.execute(params![id, status, created, json]))
                .map_err(sql("taking a job lease"))?;
                let now = now_ms();
                c.prepare_cached(
                    "UPDATE jobs SET lease_owner = ?2, lease_expires = ?3
                     WHERE job_id = ?1 AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_expires <= ?4)",
                )
                .and_then(|mut st| st.execute(params![id, owner, now.saturating_add(ms(ttl)), now]))
                .map(|n| n == 1)
                .map_err(sql("taking a job lease"))
            })
            .await
    }

    /// One write: the lease, the check and the running record together.
    async fn begin(&self, job: &Job, pipeline: &str, owner: &str, ttl: Duration) -> Result<Begin, PortError> {
        let (id, status, created, json) = row(job)?;
        let (owner, pipeline) = (owner.to_owned(), pipeline.to_owned());
        self.db
            .write_with(self.durability, "beginning a job", move |c| {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO jobs (job_id, status, created_at, job) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| st.execute(params![id, status, created, json]))
                .map_err(sql("beginning a job"))?;
                let (stored, lease_owner, lease_expires) = c
                    .prepare_cached("SELECT job, lease_owner, lease_expires FROM jobs WHERE job_id = ?1")
                    .and_then(|mut st| {
                        st.query_row([&id], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<i64>>(2)?))
                        })
                    })
                    .map_err(sql("beginning a job"))?;
                let mut current = decode(&stored)?;
                if current.is_done() {
                    return Ok(Begin::Finished(current));
                }
                let now = now_ms();
                // As `acquire_lease`: free, ours, or expired.
                let held_by_other =
                    lease_owner.is_some_and(|o| o != owner) && lease_expires.is_none_or(|e| e > now);
                if held_by_other {
                    return Ok(Begin::Busy);
                }
                current.start_attempt(&pipeline);
                let (_, status, _, json) = row(&current)?;
                c.prepare_cached(
                    "UPDATE jobs SET status = ?2, job = ?3, lease_owner = ?4, lease_expires = ?5 WHERE job_id = ?1",
                )
                .and_then(|mut st| st.execute(params![id, status, json, owner, now.saturating_add(ms(ttl))]))
                .map_err(sql("beginning a job"))?;
                Ok(Begin::Started(current))
            })
            .await
    }

    async fn release_lease(&self, id: &JobId, owner: &str) -> Result<(), PortError> {
        let (id, owner) = (id.0.clone(), owner.to_owned());
        self.db
            .write_with(self.durability, "releasing a job lease", move |c| {
                c.prepare_cached(
                    "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL WHERE job_id = ?1 AND lease_owner = ?2",
                )
                .and_then(|mut st| st.execute(params![id, owner]))
                .map(drop)
                .map_err(sql("releasing a job lease"))
            })
            .await
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
}
