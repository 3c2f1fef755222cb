//! Retention: objects and weir's own records that are old enough go, in small batches.
//!
//! One [`sweep`] applies the `[retention]` section once: each `[[retention.rule]]` lists its
//! bucket's prefix a page of `batch_size` keys at a time (never the whole prefix at once) and
//! deletes the objects older than `expire_after_days`; finished job records
//! older than `retention.jobs.retention_days` and delivered notifications older than
//! `retention.notifications.retention_days` go too. Work is done `batch_size` items at a time
//! with a yield between batches, so uploads and jobs go on while it runs; an object is removed
//! only as the version that was listed ([`weir_ports::ObjectStore::delete_version`]), so an
//! upload that replaces it meanwhile is never lost.
//!
//! What a rule never removes ([`in_use`]):
//! - the source of a job that has not finished (no job yet, queued, running, or failed and
//!   waiting in the DLQ for a replay): an object under a pipeline's source filter goes only once
//!   the job of that very version is done;
//! - anything a run holds or will write: an archived source, a `failed/` copy and every output
//!   of a source key (`processed/`, `reports/`, `errors/`, `thumbnails/`, `metadata/`, or
//!   wherever the output key templates put them) stay while a run holds the key or its newest
//!   job is not done. Which source key an object belongs to is in its metadata
//!   ([`crate::provenance`]); objects written before weir recorded it are read by the default
//!   key layout.
//!
//! The input objects that pipelines with `source.archive = "copy"` keep go once they are
//! `source.keep_input_minutes` old and their job is done ([`expire_kept_inputs`]).
//!
//! Daily reports older than `retention.reports.retention_days` go with their JSON twin
//! ([`crate::report::expire_history`]).
//!
//! What went is counted in the job store's lifetime counters `expired_objects`, `expired_jobs`
//! and `expired_notifications` (`weir_expired_total{kind}` on `/metrics`); removing job records
//! leaves the job counters (#15) as they were.

use std::time::Duration;

use chrono::{DateTime, Utc};
use weir_core::{Config, JobId};
use weir_ports::{ObjectInfo, ObjectPages, PortError, Ports};

use crate::provenance::Provenance;

/// Whether a sweep removes or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Apply,
}

/// One thing a sweep removed (or, dry, would remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expired {
    Object {
        bucket: String,
        key: String,
        last_modified: DateTime<Utc>,
    },
    Job(JobId),
    /// A count of notifications (the outbox does not name them one by one).
    Notifications(u64),
}

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expired::Object { bucket, key, last_modified } => {
                write!(f, "object {bucket}/{key} (modified {})", last_modified.format("%Y-%m-%d %H:%M"))
            }
            Expired::Job(id) => write!(f, "job record {id}"),
            Expired::Notifications(n) => write!(f, "{n} delivered notifications"),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub objects: u64,
    pub jobs: u64,
    pub notifications: u64,
    /// Old enough, but kept: a job still needs them.
    pub kept_in_use: u64,
}

/// Names of the job store's lifetime counters of what retention removed.
pub const EXPIRED_OBJECTS: &str = "expired_objects";
pub const EXPIRED_JOBS: &str = "expired_jobs";
pub const EXPIRED_NOTIFICATIONS: &str = "expired_notifications";

/// The pause between two batches: lets uploads and jobs have the store.
const BETWEEN_BATCHES: Duration = Duration::from_millis(5);

/// Deletes of one batch in flight at once.
const DELETES_AT_ONCE: usize = 128;

/// Applies (or, with [`Mode::DryRun`], only reports) the retention rules of `config` as of
/// `now`, calling `each` for every item that goes.
pub async fn sweep(
    config: &Config,
    ports: &Ports,
    now: DateTime<Utc>,
    mode: Mode,
    mut each: impl FnMut(&Expired),
) -> Result<SweepReport, PortError> {
    let retention = &config.retention;
    let batch = retention.batch_size.clamp(1, 1000);
    let mut report = SweepReport::default();

    for rule in &retention.rules {
        let Some(days) = rule.expire_after_days.filter(|d| *d > 0) else { continue };
        let cutoff = now - chrono::Duration::days(days);
        // A page of the prefix at a time: a year of archived files is never in memory at once.
        // Removing the page's objects does not disturb the listing, which goes on after its
        // last key.
        let mut pages = ObjectPages::new(ports.objects.as_ref(), &rule.bucket, &rule.prefix, batch);
        loop {
            let page = match pages.next().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
            };
            let mut old = Vec::new();
            for obj in page.into_iter().filter(|o| o.last_modified < cutoff) {
                if in_use(config, ports, &obj, now).await? {
                    report.kept_in_use += 1;
                } else {
                    old.push(obj);
                }
            }
            if old.is_empty() {
                continue;
            }
            // The batch's deletes run together, so a store that makes them durable in groups
            // does it a few times a batch rather than once an object.
            let gone: Vec<bool> = match mode {
                Mode::DryRun => vec![true; old.len()],
                Mode::Apply => {
                    let mut gone = Vec::with_capacity(old.len());
                    for group in old.chunks(DELETES_AT_ONCE) {
                        let mut deletes = Vec::with_capacity(group.len());
                        for obj in group {
                            deletes.push(ports.objects.delete_version(&obj.bucket, &obj.key, &obj.etag));
                        }
                        gone.extend(futures::future::try_join_all(deletes).await?);
                    }
                    gone
                }
            };
            let mut removed = 0;
            for (obj, gone) in old.iter().zip(gone) {
                if gone {
                    removed += 1;
                    each(&Expired::of(obj));
                }
            }
            report.objects += removed;
            count_expired(ports, mode, removed).await?;
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
    }

    let kept = expire_kept_inputs(config, ports, now, mode, &mut each).await?;
    report.objects += kept.objects;
    report.kept_in_use += kept.kept_in_use;

    if let Some(days) = retention.jobs.retention_days.filter(|d| *d > 0) {
        let cutoff = (now - chrono::Duration::days(days)).timestamp_millis();
        let mut after: Option<JobId> = None;
        loop {
            let page = ports.jobs.finished_before(cutoff, after.as_ref(), batch).await?;
            let removed = match mode {
                Mode::DryRun => page.jobs.len() as u64,
                Mode::Apply => ports.jobs.delete_finished(&page.jobs, cutoff).await?,
            };
            for id in &page.jobs {
                each(&Expired::Job(id.clone()));
            }
            report.jobs += removed;
            if mode == Mode::Apply && removed > 0 {
                ports.jobs.add_to_counter(EXPIRED_JOBS, removed).await?;
            }
            after = page.jobs.last().cloned();
            if !page.more || after.is_none() {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
    }

    if let Some(days) = retention.notifications.retention_days.filter(|d| *d > 0) {
        let cutoff = (now - chrono::Duration::days(days)).timestamp_millis();
        loop {
            let n = ports.notifier.expire_delivered(cutoff, batch, mode == Mode::DryRun).await?;
            if n > 0 {
                each(&Expired::Notifications(n));
            }
            report.notifications += n;
            if mode == Mode::Apply && n > 0 {
                ports.jobs.add_to_counter(EXPIRED_NOTIFICATIONS, n).await?;
            }
            if mode == Mode::DryRun || n < batch as u64 {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
    }

    if let Some(days) = retention.reports.retention_days.filter(|d| *d > 0) {
        let cutoff = (now - chrono::Duration::days(days)).date_naive();
        let gone = crate::report::expire_history(ports, config, cutoff, mode == Mode::DryRun).await.map_err(
            |e| match e {
                crate::report::ReportRunError::Store { source, .. } => source,
                other => PortError::Invalid(other.to_string()),
            },
        )?;
        for r in &gone {
            for key in [&r.html_key, &r.json_key] {
                each(&Expired::Object {
                    bucket: r.bucket.clone(),
                    key: key.clone(),
                    last_modified: r.written_at,
                });
            }
        }
        let n = 2 * gone.len() as u64;
        report.objects += n;
        count_expired(ports, mode, n).await?;
    }
    Ok(report)
}

impl Expired {
    /// An expired object, as listed.
    fn of(obj: &ObjectInfo) -> Self {
        Expired::Object { bucket: obj.bucket.clone(), key: obj.key.clone(), last_modified: obj.last_modified }
    }
}

/// Adds what a batch removed to the lifetime counter of expired objects (a dry run counts nothing).
async fn count_expired(ports: &Ports, mode: Mode, removed: u64) -> Result<(), PortError> {
    if mode == Mode::Apply && removed > 0 {
        ports.jobs.add_to_counter(EXPIRED_OBJECTS, removed).await?;
    }
    Ok(())
}

/// Removes the input objects that pipelines with `archive = "copy"` kept, once they are
/// `keep_input_minutes` old (by upload time) and the job of that very version is done: each
/// only as the version listed, so an upload that replaces it meanwhile stays. `weir run` calls
/// this every [`kept_inputs_interval`]; a sweep ([`sweep`], `weir gc`) does it too.
pub async fn expire_kept_inputs(
    config: &Config,
    ports: &Ports,
    now: DateTime<Utc>,
    mode: Mode,
    mut each: impl FnMut(&Expired),
) -> Result<SweepReport, PortError> {
    let batch = config.retention.batch_size.clamp(1, 1000);
    let mut report = SweepReport::default();
    for p in &config.pipelines {
        let Some(minutes) = p.source.keep_input_minutes.filter(|_| p.source.keeps_input()) else { continue };
        let bucket = p.source.bucket.as_deref().unwrap_or(&config.buckets.input);
        let cutoff = now - chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60_000));
        let listed = match ports.objects.list(bucket, &p.source.prefix).await {
            Ok(listed) => listed,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let old: Vec<ObjectInfo> =
            listed.into_iter().filter(|o| o.last_modified < cutoff && p.source.matches(&o.key)).collect();
        for chunk in old.chunks(batch) {
            let mut removed = 0;
            for obj in chunk {
                // Only this pipeline's own objects (another pipeline's source filter may come first).
                if config.pipeline_for(&obj.bucket, &obj.key).map(|q| &q.name) != Some(&p.name) {
                    continue;
                }
                if in_use(config, ports, obj, now).await? {
                    report.kept_in_use += 1;
                    continue;
                }
                let gone = match mode {
                    Mode::DryRun => true,
                    Mode::Apply => ports.objects.delete_version(&obj.bucket, &obj.key, &obj.etag).await?,
                };
                if gone {
                    removed += 1;
                    each(&Expired::of(obj));
                }
            }
            report.objects += removed;
            count_expired(ports, mode, removed).await?;
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
    }
    Ok(report)
}

/// How often `weir run` looks for kept inputs to remove: a quarter of the shortest
/// `keep_input_minutes`, between 15 seconds and 5 minutes; `None` when no pipeline sets one.
pub fn kept_inputs_interval(config: &Config) -> Option<Duration> {
    config
        .pipelines
        .iter()
        .filter(|p| p.source.keeps_input())
        .filter_map(|p| p.source.keep_input_minutes)
        .min()
        .map(|m| {
            Duration::from_secs(m.saturating_mul(15)).clamp(Duration::from_secs(15), Duration::from_secs(300))
        })
}

/// Whether a job still needs `obj`: it is the source of a job that is not done, or something a
/// run of its source key holds or will write (see the module's docs).
pub async fn in_use(
    config: &Config,
    ports: &Ports,
    obj: &ObjectInfo,
    now: DateTime<Utc>,
) -> Result<bool, PortError> {
    let is_source = config.pipeline_for(&obj.bucket, &obj.key).is_some();
    if is_source {
        let id = JobId::for_object(&obj.bucket, &obj.key, &obj.etag);
        match ports.jobs.get(&id).await? {
            Some(job) if job.is_done() => {}
            _ => return Ok(true),
        }
    }
    // What the object says it was written for (a source is its own source).
    let recorded = match is_source {
        true => None,
        false => Provenance::of_object(ports.objects.as_ref(), obj).await?,
    };
    let now_ms = now.timestamp_millis().max(Utc::now().timestamp_millis());
    for (bucket, key) in source_keys_of(config, &obj.bucket, &obj.key, recorded.as_ref()) {
        let Some(record) = ports.jobs.source_key(&bucket, &key).await? else { continue };
        if record.lease.as_ref().is_some_and(|l| l.expires_ms > now_ms) {
            return Ok(true);
        }
        if let Some(newest) = &record.newest_job {
            match ports.jobs.get(newest).await? {
                Some(job) if !job.is_done() => return Ok(true),
                _ => {}
            }
        }
    }
    Ok(false)
}

/// The buckets events come from: the input bucket and every pipeline's own.
fn input_buckets(config: &Config) -> Vec<String> {
    let mut out = vec![config.buckets.input.clone()];
    for p in &config.pipelines {
        if let Some(b) = &p.source.bucket {
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
    }
    out
}

/// The source keys (bucket, key) an object may belong to: itself in an input bucket, and the
/// source it `recorded` in its metadata ([`Provenance`]: any output or copy weir wrote, whatever
/// the key templates). An object written before weir recorded it is read by the default key
/// layout: the key a `failed/YYYY/MM/DD/` copy was made from, an archived source's key in each
/// input bucket, and the source an output was written for.
pub fn source_keys_of(
    config: &Config,
    bucket: &str,
    key: &str,
    recorded: Option<&Provenance>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let inputs = input_buckets(config);
    if inputs.iter().any(|b| b == bucket) {
        out.push((bucket.to_owned(), key.to_owned()));
    }
    if let Some(source) = recorded {
        if !out.iter().any(|(b, k)| *b == source.bucket && *k == source.key) {
            out.push((source.bucket.clone(), source.key.clone()));
        }
        return out;
    }
    if inputs.iter().any(|b| b == bucket) {
        if let Some(rest) = key.strip_prefix("failed/") {
            let parts: Vec<&str> = rest.splitn(4, '/').collect();
            if let [_, _, _, source] = parts[..] {
                out.push((bucket.to_owned(), source.to_owned()));
            }
        }
    }
    if bucket == config.buckets.archive {
        out.extend(inputs.iter().map(|b| (b.clone(), key.to_owned())));
    }
    if bucket == config.buckets.output {
        let source = |rest: &str, strip: &dyn Fn(&str) -> Option<String>| {
            let (b, k) = rest.split_once('/')?;
            Some((b.to_owned(), strip(k)?))
        };
        let found = if let Some(rest) = key.strip_prefix("processed/") {
            source(rest, &|k| {
                [".ndjson", ".json", ".parquet"].iter().find_map(|s| k.strip_suffix(s)).map(str::to_owned)
            })
        } else if let Some(rest) = key.strip_prefix("reports/") {
            source(rest, &|k| k.strip_suffix(".summary.json").map(str::to_owned))
        } else if let Some(rest) = key.strip_prefix("errors/") {
            source(rest, &|k| k.strip_suffix(".errors.json").map(str::to_owned))
        } else if let Some(rest) = key.strip_prefix("metadata/") {
            source(rest, &|k| k.strip_suffix(".json").map(str::to_owned))
        } else if let Some(rest) = key.strip_prefix("thumbnails/") {
            rest.split_once('/').and_then(|(size, rest)| {
                let marker = format!("_{size}.");
                source(rest, &|k| k.rfind(&marker).map(|at| k[..at].to_owned()))
            })
        } else {
            None
        };
        out.extend(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_map_back_to_the_source_keys_they_belong_to() {
        let config = Config::bundled();
        let keys = |b: &str, k: &str| source_keys_of(&config, b, k, None);
        let src = |k: &str| ("weir-input".to_string(), k.to_string());
        assert_eq!(keys("weir-input", "raw/a.csv"), [src("raw/a.csv")]);
        assert_eq!(
            keys("weir-input", "failed/2026/01/02/raw/a.csv"),
            [src("failed/2026/01/02/raw/a.csv"), src("raw/a.csv")]
        );
        assert_eq!(keys("weir-archive", "raw/a.csv"), [src("raw/a.csv")]);
        for out in [
            "processed/weir-input/raw/a.csv.ndjson",
            "reports/weir-input/raw/a.csv.summary.json",
            "errors/weir-input/raw/a.csv.errors.json",
        ] {
            assert_eq!(keys("weir-output", out), [src("raw/a.csv")], "{out}");
        }
        assert_eq!(
            keys("weir-output", "thumbnails/small/weir-input/images/x_small.jpg_small.jpg"),
            [src("images/x_small.jpg")]
        );
        assert_eq!(keys("weir-output", "metadata/weir-input/images/x.jpg.json"), [src("images/x.jpg")]);
        assert!(keys("weir-output", "elsewhere/x").is_empty());
    }

    #[test]
    fn a_recorded_source_is_the_source_whatever_the_key() {
        let config = Config::bundled();
        let source = Provenance {
            bucket: "weir-input".into(),
            key: "raw/a.csv".into(),
            etag: "e".into(),
            job_id: "j-1".into(),
        };
        let src = |k: &str| ("weir-input".to_string(), k.to_string());
        assert_eq!(
            source_keys_of(&config, "weir-output", "results/raw/a.csv.ndjson", Some(&source)),
            [src("raw/a.csv")]
        );
        assert_eq!(
            source_keys_of(&config, "weir-input", "failed-data/2026-01-02/raw/a.csv", Some(&source)),
            [src("failed-data/2026-01-02/raw/a.csv"), src("raw/a.csv")]
        );
    }
}
