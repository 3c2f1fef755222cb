//! Watching the dead-letter queue: one alert per message that lands there.
//!
//! Messages reach the DLQ by the queue's own redrive (on SQS, by SQS itself), often after the
//! worker that last held them died, so no worker can be relied on to see the moment. Instead
//! the DLQ is scanned; each dead letter's job is marked `failed` and its failure alert sent
//! (the same message, under the same id, as the worker's that gave up: one alert per failed
//! job). A dead letter without a job (not an S3 event) is claimed once in the job store for a
//! dead-letter alert of its own.
//!
//! A dead letter whose job *finished* is not a failure: its last receiver finished the job and
//! died before deleting the message, which then ran out of receives. Nothing is lost and nobody
//! is alerted; the message goes back to the queue, where a worker sees the job done and deletes
//! it, so the DLQ holds only what needs a person.

use chrono::SecondsFormat;
use weir_core::event::QueueEvent;
use weir_core::JobId;
use weir_ports::{DeadLetter, PortError};

use crate::{messages, Engine};

/// Dead letters looked at per scan.
const SCAN_LIMIT: usize = 1000;

/// Alerts on every dead letter not alerted on before. Returns how many alerts were sent.
pub async fn scan_once(engine: &Engine) -> Result<usize, PortError> {
    let ports = engine.ports();
    let mut alerted = 0;
    for dead in ports.queue.dlq_list(SCAN_LIMIT).await? {
        // Marking the job is idempotent and comes first: a scanner that dies after claiming
        // must not leave the job looking as if it were still on its way.
        let Dead { bucket, key, last_error, failed: job, finished, running } =
            mark_job_failed(engine, &dead).await?;
        if running {
            // A later scan decides, once the run has ended.
            continue;
        }
        if finished {
            tracing::info!(message_id = %dead.message_id, key = key.as_deref().unwrap_or("-"), "a dead letter of a job that finished: back to the queue to be acknowledged");
            ports.queue.dlq_replay(Some(std::slice::from_ref(&dead.message_id))).await?;
            continue;
        }
        let claim = format!("dlq-alert:{}:{}", dead.message_id, dead.dead_lettered_at.timestamp_millis());
        if !ports.jobs.claim_once(&claim).await? {
            continue;
        }
        tracing::error!(message_id = %dead.message_id, key = key.as_deref().unwrap_or("-"), error = %last_error, "message dead-lettered");
        if let Some(job) = job {
            // The job's own failure alert, under the id its last run used when it gave up:
            // one alert per failed job, whichever of the two sends it first.
            let alert = messages::failed(&job, true);
            match crate::tasks::publish_once(ports, &alert).await {
                Ok(crate::tasks::Published::AlreadySent) => {}
                Ok(_) => alerted += 1,
                Err(e) => {
                    tracing::error!(job_id = %job.job_id, error = %e, "could not send the failure alert")
                }
            }
            continue;
        }
        let mut alert = messages::dead_letter(
            &dead.message_id,
            bucket.as_deref(),
            key.as_deref(),
            &last_error,
            dead.receive_count,
            &dead.dead_lettered_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        alert.attributes.insert("id".into(), claim);
        // At most once, even with an idempotent notifier: publishing on every scan until a
        // claim is recorded would repeat the alert's log line at every scan.
        if let Err(e) = ports.notifier.publish(&alert).await {
            tracing::error!(message_id = %dead.message_id, error = %e, "could not deliver the dead-letter alert");
        }
        alerted += 1;
    }
    Ok(alerted)
}

/// What a dead letter was about.
struct Dead {
    bucket: Option<String>,
    key: Option<String>,
    last_error: String,
    /// Its job, once marked failed.
    failed: Option<weir_core::Job>,
    /// Its job finished otherwise (succeeded, rejected, skipped, superseded).
    finished: bool,
    /// A run still holds its job.
    running: bool,
}

impl Dead {
    fn about(bucket: Option<String>, key: Option<String>, last_error: impl Into<String>) -> Dead {
        Dead { bucket, key, last_error: last_error.into(), failed: None, finished: false, running: false }
    }
}

/// Finds the dead letter's job, marks it failed, and returns what it was about.
async fn mark_job_failed(engine: &Engine, dead: &DeadLetter) -> Result<Dead, PortError> {
    let record = match QueueEvent::parse(&dead.body) {
        Ok(QueueEvent::Records(e)) => e.records.into_iter().next(),
        Ok(QueueEvent::TestEvent) => None,
        Err(e) => return Ok(Dead::about(None, None, format!("not an S3 event: {}", e.reason))),
    };
    let Some(record) = record else { return Ok(Dead::about(None, None, "an event with no records")) };
    let Ok(key) = record.key() else {
        return Ok(Dead::about(Some(record.s3.bucket.name), None, "undecodable key"));
    };
    let bucket = record.s3.bucket.name.clone();
    let id = JobId::for_object(&bucket, &key, &record.s3.object.e_tag);
    let jobs = &engine.ports().jobs;
    let mut last_error = "no job record (the worker never got to it)".to_string();
    let (mut failed, mut finished, mut running) = (None, false, false);
    if let Some(mut job) = jobs.get(&id).await? {
        last_error = match &job.error {
            Some(e) => e.clone(),
            // Every attempt failed before it could record why (the job store was failing too).
            None => format!("the job never recorded an error ({} attempts started)", job.attempts),
        };
        // A run may still hold the job (its message waited for the key too long and ran out of
        // receives while that run went on): its outcome is the run's to record.
        running = !job.status.is_terminal()
            && jobs
                .source_key(&bucket, &key)
                .await?
                .and_then(|k| k.lease)
                .is_some_and(|l| l.job == id && l.expires_ms > chrono::Utc::now().timestamp_millis());
        if !job.status.is_terminal() && !running {
            job.give_up(format!(
                "dead-lettered after {} receives; last error: {last_error}",
                dead.receive_count
            ));
            jobs.save(&job).await?;
        }
        if job.status == weir_core::JobStatus::Failed {
            failed = Some(job);
        } else {
            finished = job.status.is_terminal();
        }
    }
    Ok(Dead { bucket: Some(bucket), key: Some(key), last_error, failed, finished, running })
}
