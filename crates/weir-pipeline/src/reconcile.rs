//! Events for objects that are already in a bucket.
//!
//! Two users of the same mechanism: on start, `weir run` queues every object waiting under a
//! source prefix that has no job yet (an upload whose event was lost when the process died
//! between storing it and queueing its event); and `weir reprocess` backfills a prefix, or
//! re-runs finished jobs with `--force` (after a schema change). The usual idempotency holds:
//! an object with a job in flight is left alone, and outputs go to the same keys. Both list
//! their prefix a page at a time ([`ObjectPages`]), so a prefix of any size is never held whole.

use std::path::PathBuf;
use std::time::Duration;

use weir_core::{Job, JobId, JobStatus};
use weir_ports::{ObjectInfo, ObjectPages, PortError};

use crate::provenance::Provenance;
use crate::{ingest, Engine};

/// What to reprocess.
#[derive(Debug, Clone)]
pub struct Reprocess {
    pub bucket: String,
    pub prefix: String,
    /// Only objects whose job is in this status (objects without a job count as `queued`).
    pub status: Option<JobStatus>,
    /// Re-run jobs that already finished.
    pub force: bool,
    /// Events per second at most.
    pub rate: u32,
    /// Remembers the last key sent, so an interrupted run continues where it stopped.
    pub checkpoint: Option<PathBuf>,
}

/// How old an object must be before reconcile takes its missing event for lost.
pub const SETTLE: Duration = Duration::from_secs(5);

/// What happened to each object considered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    pub skipped_in_flight: u64,
    pub skipped_finished: u64,
    pub skipped_status: u64,
    pub skipped_no_pipeline: u64,
}

/// Queues events for source objects that wait for no reason: those with no job record (an
/// upload whose event was lost when the process died between storing it and queueing it), and
/// copies left in the input of content their key's newest job already processed and moved
/// (a re-upload whose event was lost): their event makes them duplicates, moved where the job's
/// source went. Nothing is sent for a version whose event is still on the queue. Returns how
/// many were sent.
///
/// Only objects written at least `settled` ago are considered: an upload's own event is sent
/// just after its object is stored, and announcing an object in that moment would make a
/// second event for one upload (a spurious duplicate). `weir run` looks once at start and
/// once more [`SETTLE`] later for what was too fresh the first time.
pub async fn on_start(engine: &Engine, settled: Duration) -> Result<u64, PortError> {
    let newest = chrono::Utc::now() - chrono::Duration::from_std(settled).unwrap_or(chrono::Duration::MAX);
    let config = engine.config();
    let ports = engine.ports();
    let mut sent = 0;
    for p in &config.pipelines {
        let bucket = p.source.bucket.as_deref().unwrap_or(&config.buckets.input);
        let mut pages = ObjectPages::new(ports.objects.as_ref(), bucket, &p.source.prefix, PAGE_KEYS);
        while let Some(page) = pages.next().await? {
            for obj in page {
                if !p.source.matches(&obj.key) || obj.last_modified > newest {
                    continue;
                }
                let id = JobId::for_object(&obj.bucket, &obj.key, &obj.etag);
                let waiting = match ports.jobs.get(&id).await? {
                    None => true,
                    Some(job) => {
                        // With `archive = "copy"` the source stays: it is the job's own input.
                        let moved_its_source = !p.source.keeps_input()
                            && (job.output_keys.contains_key("archive")
                                || job.output_keys.contains_key("failed"));
                        let newest = ports
                            .jobs
                            .source_key(&obj.bucket, &obj.key)
                            .await?
                            .is_some_and(|k| k.newest_job.as_ref() == Some(&id));
                        // A copy left after its job moved the source is an identical re-upload, to
                        // be moved as a duplicate. The listing may predate the move: the job is
                        // written done only after its move, so the object seen now (after reading
                        // the job) is a copy that came later, or nothing.
                        job.is_done() && moved_its_source && newest && still_there(ports, &obj).await?
                    }
                };
                if waiting && ingest::object_found(ports, config, &obj).await? {
                    tracing::info!(key = %obj.key, "found an object waiting with no event: queued it");
                    sent += 1;
                }
            }
        }
    }
    Ok(sent)
}

/// Whether the listed version of `obj` is still in its bucket.
async fn still_there(ports: &crate::Ports, obj: &ObjectInfo) -> Result<bool, PortError> {
    match ports.objects.head(&obj.bucket, &obj.key).await {
        Ok(now) => Ok(now.etag == obj.etag),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Objects listed a page at a time: a prefix of any size is never in memory at once.
const PAGE_KEYS: usize = 500;

/// The key a reprocess run continues after: its checkpoint's, if it has one.
fn checkpoint_key(r: &Reprocess) -> Option<String> {
    let last = std::fs::read_to_string(r.checkpoint.as_ref()?).ok()?;
    Some(last.trim().to_owned()).filter(|k| !k.is_empty())
}

/// How many objects a reprocess run will consider (those after its checkpoint), counted a page
/// at a time: for a progress bar.
pub async fn count(engine: &Engine, r: &Reprocess) -> Result<u64, PortError> {
    let mut pages =
        ObjectPages::new(engine.ports().objects.as_ref(), &r.bucket, &r.prefix, weir_ports::MAX_PAGE_KEYS)
            .starting_after(checkpoint_key(r));
    let mut n = 0;
    while let Some(page) = pages.next().await? {
        n += page.len() as u64;
    }
    Ok(n)
}

/// Sends events for the objects under `r`'s prefix after its checkpoint, in key order, listed a
/// page at a time and paced at `r.rate`, calling `progress` after each.
pub async fn run(
    engine: &Engine,
    r: &Reprocess,
    mut progress: impl FnMut(&ObjectInfo),
) -> Result<Tally, PortError> {
    let config = engine.config();
    let mut tally = Tally::default();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(r.rate.max(1))));
    let mut pages = ObjectPages::new(engine.ports().objects.as_ref(), &r.bucket, &r.prefix, PAGE_KEYS)
        .starting_after(checkpoint_key(r));
    while let Some(page) = pages.next().await? {
        for obj in page {
            // An archived (or `failed/`) copy goes back to its source key and runs from there.
            let restore = restored_source(engine, &obj).await?;
            let (bucket, key) = match &restore {
                Some((bucket, key)) => (bucket.as_str(), key.as_str()),
                None => (obj.bucket.as_str(), obj.key.as_str()),
            };
            if config.pipeline_for(bucket, key).is_none() {
                tally.skipped_no_pipeline += 1;
            } else {
                let id = JobId::for_object(bucket, key, &obj.etag);
                let job = engine.ports().jobs.get(&id).await?;
                let status = job.as_ref().map_or(JobStatus::Queued, |j| j.status);
                if r.status.is_some_and(|s| s != status) {
                    tally.skipped_status += 1;
                } else if job.as_ref().is_some_and(|j| !j.status.is_terminal()) {
                    tally.skipped_in_flight += 1;
                } else if status.is_terminal() && status != JobStatus::Failed && !r.force {
                    tally.skipped_finished += 1;
                } else {
                    pace.tick().await;
                    send(engine, &obj, restore.as_ref(), job).await?;
                    tally.sent += 1;
                }
            }
            if let Some(path) = &r.checkpoint {
                if let Err(e) = std::fs::write(path, &obj.key) {
                    tracing::warn!(path = %path.display(), error = %e, "could not write the reprocess checkpoint");
                }
            }
            progress(&obj);
        }
    }
    if let Some(path) = &r.checkpoint {
        let _ = std::fs::remove_file(path);
    }
    Ok(tally)
}

/// Where a listed object goes back to before it runs again: for a copy of a source at another
/// key (archived, or rejected to `failed/`), the source (bucket, key) recorded in its metadata
/// ([`Provenance`]), whatever the output key templates made of its key; `None` for an object
/// that runs where it is (a source, or anything that is no copy of one). An archived object from
/// before weir recorded its source goes back to the input bucket under its own key (the default
/// archive layout).
pub async fn restored_source(
    engine: &Engine,
    obj: &ObjectInfo,
) -> Result<Option<(String, String)>, PortError> {
    let config = engine.config();
    if config.pipeline_for(&obj.bucket, &obj.key).is_some() {
        return Ok(None);
    }
    match Provenance::of_object(engine.ports().objects.as_ref(), obj).await? {
        Some(source) if source.is_copy_elsewhere(obj) => Ok(Some((source.bucket, source.key))),
        Some(_) => Ok(None),
        None => {
            let archived = obj.bucket == config.buckets.archive
                && !config.pipelines.iter().any(|p| {
                    p.source.bucket.as_deref().unwrap_or(&config.buckets.input) == config.buckets.archive
                });
            Ok(archived.then(|| (config.buckets.input.clone(), obj.key.clone())))
        }
    }
}

async fn send(
    engine: &Engine,
    obj: &ObjectInfo,
    restore: Option<&(String, String)>,
    job: Option<Job>,
) -> Result<(), PortError> {
    let ports = engine.ports();
    let config = engine.config();
    if let Some(mut job) = job {
        // A finished job runs again: back to queued, keeping its attempts and history.
        job.status = JobStatus::Queued;
        job.error = None;
        job.finished_at = None;
        job.checkpoint = None;
        ports.jobs.save(&job).await?;
    }
    match restore {
        Some((bucket, key)) => {
            let restored = ports.objects.copy(&obj.bucket, &obj.key, bucket, key, None).await?;
            ingest::object_created(ports, config, &restored, "Copy").await?;
        }
        None => {
            ingest::object_created(ports, config, obj, "Put").await?;
        }
    }
    Ok(())
}
