//! The job store's counters ([`weir_core::stats`]) in SQLite: kept in the same savepoint as
//! the job write that changes them, so they are exact and survive a crash with the record.
//!
//! - `stats_finished`: per (minute, pipeline, status) the outcomes that finished in the minute;
//! - `stats_total`: the same, since the store began (one row per pipeline and status, so
//!   `/metrics` never sums a year of minutes);
//! - `stats_received`: files received (jobs created) per minute, and `received_total`;
//! - `status_counts`: jobs in each status now.
//!
//! The migration fills them from the jobs already there, so an upgraded data dir starts exact.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rusqlite::{params, Connection, OptionalExtension};
use weir_core::stats::{
    self, Counted, JobTotals, MinuteReceived, MinuteTally, Series, Tally, DURATION_BUCKETS_MS,
};
use weir_core::JobStatus;
use weir_ports::PortError;

use super::sql;

/// Columns of a tally, after its key columns.
const TALLY: [&str; 6] = ["files", "rows_valid", "rows_invalid", "bytes", "timed", "duration_ms_sum"];

fn bucket_columns() -> Vec<String> {
    (0..=DURATION_BUCKETS_MS.len()).map(|i| format!("d{i}")).collect()
}

/// The count columns the tally tables were made with ([`MIGRATION`]).
fn first_columns() -> Vec<String> {
    TALLY.iter().map(|c| c.to_string()).chain(bucket_columns()).collect()
}

/// Columns added later ([`LOAD_MIGRATION`]): the warehouse loads.
const LOADS: [&str; 2] = ["rows_loaded", "load_failures"];

/// Every count column of a tally table, in order.
fn count_columns() -> Vec<String> {
    first_columns().into_iter().chain(LOADS.iter().map(|c| c.to_string())).collect()
}

/// The migration that adds the warehouse loads' counters (no earlier job loaded any).
pub(crate) const LOAD_MIGRATION: &str = "
    ALTER TABLE stats_finished ADD COLUMN rows_loaded INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE stats_finished ADD COLUMN load_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE stats_total ADD COLUMN rows_loaded INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE stats_total ADD COLUMN load_failures INTEGER NOT NULL DEFAULT 0;
";

/// The migration that creates the tables and fills them from the jobs there are.
pub(crate) static MIGRATION: LazyLock<String> = LazyLock::new(|| {
    let counts = first_columns()
        .iter()
        .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
        .collect::<Vec<_>>()
        .join(", ");
    let names = first_columns().join(", ");
    let duration = "CAST(json_extract(job, '$.duration_ms') AS INTEGER)";
    let timed = format!("(status NOT IN ('skipped', 'superseded') AND {duration} IS NOT NULL)");
    let mut sums = vec![
        "COUNT(*)".to_string(),
        "SUM(CAST(json_extract(job, '$.valid_rows') AS INTEGER))".into(),
        "SUM(CAST(json_extract(job, '$.invalid_rows') AS INTEGER))".into(),
        "SUM(CAST(json_extract(job, '$.source_size') AS INTEGER))".into(),
        format!("SUM({timed})"),
        format!("SUM(CASE WHEN {timed} THEN {duration} ELSE 0 END)"),
    ];
    for i in 0..=DURATION_BUCKETS_MS.len() {
        let low = if i == 0 { "-1".to_string() } else { DURATION_BUCKETS_MS[i - 1].to_string() };
        let high = DURATION_BUCKETS_MS.get(i).map_or("9223372036854775807".to_string(), |b| b.to_string());
        sums.push(format!("SUM({timed} AND {duration} > {low} AND {duration} <= {high})"));
    }
    let sums = sums.join(", ");
    let finished_ms =
        "CAST(ROUND((julianday(json_extract(job, '$.finished_at')) - 2440587.5) * 86400000) AS INTEGER)";
    format!(
        "
        ALTER TABLE jobs ADD COLUMN finished_ms INTEGER;
        UPDATE jobs SET finished_ms = {finished_ms}
            WHERE status NOT IN ('queued', 'running') AND json_extract(job, '$.finished_at') IS NOT NULL;
        CREATE TABLE stats_finished (minute INTEGER NOT NULL, pipeline TEXT NOT NULL, status TEXT NOT NULL, {counts},
            PRIMARY KEY (minute, pipeline, status)) WITHOUT ROWID;
        CREATE TABLE stats_total (pipeline TEXT NOT NULL, status TEXT NOT NULL, {counts},
            PRIMARY KEY (pipeline, status)) WITHOUT ROWID;
        CREATE TABLE stats_received (minute INTEGER PRIMARY KEY, files INTEGER NOT NULL, bytes INTEGER NOT NULL);
        CREATE TABLE status_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO stats_finished (minute, pipeline, status, {names})
            SELECT finished_ms / 60000, COALESCE(json_extract(job, '$.pipeline'), ''), status, {sums}
            FROM jobs WHERE finished_ms IS NOT NULL GROUP BY 1, 2, 3;
        INSERT INTO stats_total (pipeline, status, {names})
            SELECT COALESCE(json_extract(job, '$.pipeline'), ''), status, {sums}
            FROM jobs WHERE finished_ms IS NOT NULL GROUP BY 1, 2;
        INSERT INTO stats_received (minute, files, bytes)
            SELECT created_at / 60000000, COUNT(*), SUM(CAST(json_extract(job, '$.source_size') AS INTEGER))
            FROM jobs GROUP BY 1;
        INSERT INTO status_counts (status, n) SELECT status, COUNT(*) FROM jobs GROUP BY status;
    "
    )
});

/// What a job write changes in the counters, given the row it replaces (status and finished
/// time in ms, if there was a row).
pub(crate) fn record(
    c: &Connection,
    old: Option<(String, Option<i64>)>,
    new: &Counted,
) -> Result<(), PortError> {
    let before = old.as_ref().map(|(status, finished_ms)| {
        (
            JobStatus::parse(status).unwrap_or(JobStatus::Queued),
            finished_ms.and_then(chrono::DateTime::from_timestamp_millis),
        )
    });
    let (finished, received) = stats::change_from(before, new);
    if received {
        c.prepare_cached(
            "INSERT INTO stats_received (minute, files, bytes) VALUES (?1, 1, ?2)
             ON CONFLICT (minute) DO UPDATE SET files = files + 1, bytes = bytes + excluded.bytes",
        )
        .and_then(|mut st| st.execute(params![stats::minute_of(new.created_at), new.source_size as i64]))
        .map_err(sql("counting a received file"))?;
    }
    let old_status = old.as_ref().map(|(s, _)| s.as_str());
    if old_status != Some(new.status.as_str()) {
        if let Some(s) = old_status {
            bump_status(c, s, -1)?;
        }
        bump_status(c, new.status.as_str(), 1)?;
    }
    if let Some(m) = finished {
        add_tally(c, "stats_finished", Some(m.minute), &m.pipeline, m.status, &m.tally)?;
        add_tally(c, "stats_total", None, &m.pipeline, m.status, &m.tally)?;
    }
    Ok(())
}

fn bump_status(c: &Connection, status: &str, by: i64) -> Result<(), PortError> {
    c.prepare_cached(
        "INSERT INTO status_counts (status, n) VALUES (?1, ?2) ON CONFLICT (status) DO UPDATE SET n = n + ?2",
    )
    .and_then(|mut st| st.execute(params![status, by]))
    .map(drop)
    .map_err(sql("counting a status"))
}

/// The upsert that adds a tally to `table` (with a minute column or without).
fn add_sql(table: &str, minute: bool) -> String {
    let cols = count_columns();
    let key = if minute { "minute, pipeline, status" } else { "pipeline, status" };
    let first = if minute { 4 } else { 3 };
    let values: Vec<String> = (0..cols.len()).map(|i| format!("?{}", first + i)).collect();
    let updates: Vec<String> = cols.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect();
    let keys = if minute { "?1, ?2, ?3" } else { "?1, ?2" };
    format!(
        "INSERT INTO {table} ({key}, {}) VALUES ({keys}, {}) ON CONFLICT ({key}) DO UPDATE SET {}",
        cols.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

static ADD_MINUTE: LazyLock<String> = LazyLock::new(|| add_sql("stats_finished", true));
static ADD_TOTAL: LazyLock<String> = LazyLock::new(|| add_sql("stats_total", false));

fn add_tally(
    c: &Connection,
    table: &str,
    minute: Option<i64>,
    pipeline: &str,
    status: JobStatus,
    t: &Tally,
) -> Result<(), PortError> {
    let mut values: Vec<i64> = vec![
        t.files as i64,
        t.rows_valid as i64,
        t.rows_invalid as i64,
        t.bytes as i64,
        t.timed as i64,
        t.duration_ms_sum as i64,
    ];
    values.extend(
        (0..=DURATION_BUCKETS_MS.len()).map(|i| t.duration_buckets.get(i).copied().unwrap_or(0) as i64),
    );
    values.extend([t.rows_loaded as i64, t.load_failures as i64]);
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(values.len() + 3);
    if let Some(m) = &minute {
        args.push(m);
    }
    let status = status.as_str();
    args.push(&pipeline);
    args.push(&status);
    args.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
    let text = if table == "stats_total" { ADD_TOTAL.as_str() } else { ADD_MINUTE.as_str() };
    c.prepare_cached(text)
        .and_then(|mut st| st.execute(args.as_slice()))
        .map(drop)
        .map_err(sql("counting a finished job"))
}

/// A tally from a row whose count columns start at `first`.
fn tally_of(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Tally> {
    let n = |i: usize| r.get::<_, i64>(first + i).map(|v| v.max(0) as u64);
    Ok(Tally {
        files: n(0)?,
        rows_valid: n(1)?,
        rows_invalid: n(2)?,
        bytes: n(3)?,
        timed: n(4)?,
        duration_ms_sum: n(5)?,
        duration_buckets: (0..=DURATION_BUCKETS_MS.len())
            .map(|i| n(6 + i))
            .collect::<rusqlite::Result<_>>()?,
        rows_loaded: n(7 + DURATION_BUCKETS_MS.len())?,
        load_failures: n(8 + DURATION_BUCKETS_MS.len())?,
    })
}

pub(crate) fn totals(c: &Connection) -> Result<JobTotals, PortError> {
    let cols = count_columns().join(", ");
    let mut out = JobTotals::default();
    let mut st = c
        .prepare_cached(&format!("SELECT pipeline, status, {cols} FROM stats_total"))
        .map_err(sql("reading totals"))?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, tally_of(r, 2)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql("reading totals"))?;
    for (pipeline, status, tally) in rows {
        if let Some(s) = JobStatus::parse(&status) {
            out.finished.insert((pipeline, s), tally);
        }
    }
    let (files, bytes): (Option<i64>, Option<i64>) = c
        .prepare_cached("SELECT SUM(files), SUM(bytes) FROM stats_received")
        .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(sql("reading totals"))?;
    out.received_files = files.unwrap_or(0).max(0) as u64;
    out.received_bytes = bytes.unwrap_or(0).max(0) as u64;
    out.current = status_counts(c)?;
    Ok(out)
}

pub(crate) fn status_counts(c: &Connection) -> Result<BTreeMap<JobStatus, u64>, PortError> {
    let mut st =
        c.prepare_cached("SELECT status, n FROM status_counts WHERE n > 0").map_err(sql("counting jobs"))?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql("counting jobs"))?;
    Ok(rows.into_iter().filter_map(|(s, n)| Some((JobStatus::parse(&s)?, n.max(0) as u64))).collect())
}

pub(crate) fn series(c: &Connection, from: i64, to: i64) -> Result<Series, PortError> {
    let cols = count_columns().join(", ");
    let mut st = c
        .prepare_cached(&format!(
            "SELECT minute, pipeline, status, {cols} FROM stats_finished WHERE minute >= ?1 AND minute < ?2 ORDER BY minute"
        ))
        .map_err(sql("reading the series"))?;
    let rows = st
        .query_map(params![from, to], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, tally_of(r, 3)?))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql("reading the series"))?;
    let finished = rows
        .into_iter()
        .filter_map(|(minute, pipeline, status, tally)| {
            Some(MinuteTally { minute, pipeline, status: JobStatus::parse(&status)?, tally })
        })
        .collect();
    let mut st = c
        .prepare_cached("SELECT minute, files, bytes FROM stats_received WHERE minute >= ?1 AND minute < ?2 ORDER BY minute")
        .map_err(sql("reading the series"))?;
    let received = st
        .query_map(params![from, to], |r| {
            Ok(MinuteReceived {
                minute: r.get(0)?,
                files: r.get::<_, i64>(1)?.max(0) as u64,
                bytes: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql("reading the series"))?;
    Ok(Series { finished, received })
}

/// The status and finished time (ms) of a job's row, if it has one.
pub(crate) fn old_row(c: &Connection, id: &str) -> Result<Option<(String, Option<i64>)>, PortError> {
    c.prepare_cached("SELECT status, finished_ms FROM jobs WHERE job_id = ?1")
        .and_then(|mut st| st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql("reading a job's status"))
}
