//! An object arrives: store it, and for every source it matches, queue the S3 event.
//!
//! This is what S3 bucket notifications do on AWS; embedded, every writer (`weir put`, the S3
//! endpoint, the HTTP API) goes through here. The event is sent before the job record is
//! written, so a crash in between leaves an event whose worker creates the job, never a job
//! that no event will run.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::Utc;
use weir_core::event::{S3Event, S3EventRecord};
use weir_core::job::sequencer_order;
use weir_core::{Config, Job};
use weir_ports::{Metadata, ObjectInfo, PortError};

use crate::Ports;

static SEQUENCER: AtomicU64 = AtomicU64::new(0);

/// S3's `sequencer`: increases with each event for a key. Time-based so it also increases
/// across processes and restarts.
fn next_sequencer() -> u64 {
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let prev = SEQUENCER.fetch_max(now, Ordering::SeqCst);
    if prev >= now {
        SEQUENCER.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        now
    }
}

/// Stores `data` as `bucket/key` and queues its event. Returns the object and the queued job,
/// if a pipeline takes the key.
pub async fn put_object(
    ports: &Ports,
    config: &Config,
    bucket: &str,
    key: &str,
    data: Bytes,
    metadata: Metadata,
) -> Result<(ObjectInfo, Option<Job>), PortError> {
    let info = ports.objects.put(bucket, key, data, metadata).await?;
    let job = object_created(ports, config, &info, "Put").await?;
    Ok((info, job))
}

/// Emits the `ObjectCreated:<event_name>` event for an object that was just written, if a
/// pipeline's source matches it, and records its job as queued.
pub async fn object_created(
    ports: &Ports,
    config: &Config,
    info: &ObjectInfo,
    event_name: &str,
) -> Result<Option<Job>, PortError> {
    Ok(announce(ports, config, info, event_name, false).await?.map(|(job, _)| job))
}

/// [`object_created`] for an object found in a bucket rather than just written (reconcile):
/// no event is sent while one for the same version is still on the queue. Returns whether an
/// event was sent.
pub async fn object_found(ports: &Ports, config: &Config, info: &ObjectInfo) -> Result<bool, PortError> {
    Ok(announce(ports, config, info, "Put", true).await?.is_some_and(|(_, sent)| sent))
}

async fn announce(
    ports: &Ports,
    config: &Config,
    info: &ObjectInfo,
    event_name: &str,
    unless_queued: bool,
) -> Result<Option<(Job, bool)>, PortError> {
    // A folder marker (`csv/`, empty) is no file to process, whatever the source filter.
    if info.key.ends_with('/') {
        return Ok(None);
    }
    let Some(pipeline) = config.pipeline_for(&info.bucket, &info.key) else {
        return Ok(None);
    };
    let record = S3EventRecord::object_created(
        event_name,
        &info.bucket,
        &info.key,
        info.size,
        &info.etag,
        next_sequencer(),
        Utc::now(),
    );
    let mut job = Job::queued(&info.bucket, &info.key, &info.etag, info.size, Some(&pipeline.name));
    job.sequencer = sequencer_order(&record.s3.object.sequencer);
    let sent =
        ports.queue.send_tagged(&S3Event::single(record).to_json(), &job.job_id.0, unless_queued).await?;
    if sent.is_none() {
        tracing::info!(job_id = %job.job_id, key = %info.key, "its event is still on the queue: not sent again");
    }
    ports.jobs.create(&job).await?;
    Ok(Some((job, sent.is_some())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_increase() {
        let a = next_sequencer();
        let b = next_sequencer();
        assert!(b > a);
    }
}
