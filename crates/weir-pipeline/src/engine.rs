//! Running one queue message to its end.
//!
//! The engine turns a message into a job outcome and tells the worker what to do with the
//! message: delete it (done, for good or ill), or let it come back later (a transient failure,
//! retried with exponential backoff and jitter until the queue dead-letters it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use weir_core::event::{QueueEvent, S3EventRecord};
use weir_core::keys::validate_key;
use weir_core::{Config, ErrorClass, Job, JobId, JobStatus, PipelineConfig, Summary};
use weir_ports::{Message, PortError};
use weir_process::Plan;
use weir_workflow::{Outcome, StateMachine};

use crate::state::{fields, JobInput};
use crate::tasks::{PipelineTasks, TaskContext};
use crate::{Ports, DEFAULT_WORKFLOW};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("pipeline {pipeline:?}: {problem}")]
    Pipeline { pipeline: String, problem: String },
    #[error("workflow of pipeline {pipeline:?}: {source}")]
    Workflow {
        pipeline: String,
        #[source]
        source: weir_workflow::DefinitionError,
    },
    #[error("scratch folder {path}: {source}")]
    Scratch { path: PathBuf, source: std::io::Error },
}

/// What the worker does with a message once the engine is done with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Finished (succeeded, rejected, skipped, or failed for good): delete the message.
    Delete,
    /// A transient failure: make the message visible again after this long.
    Retry { after: Duration },
}

struct CompiledPipeline {
    machine: StateMachine,
    tasks: PipelineTasks,
}

/// Everything needed to run jobs: config, ports, and each pipeline compiled once.
pub struct Engine {
    config: Arc<Config>,
    ports: Ports,
    pipelines: HashMap<String, CompiledPipeline>,
}

impl Engine {
    /// Compiles every pipeline (schema plan and workflow); `scratch` is where outputs are
    /// spooled before they are stored.
    pub fn new(config: Config, ports: Ports, scratch: PathBuf) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&scratch)
            .map_err(|source| EngineError::Scratch { path: scratch.clone(), source })?;
        let config = Arc::new(config);
        let mut pipelines = HashMap::new();
        for p in &config.pipelines {
            let plan = Plan::compile(p)
                .map_err(|e| EngineError::Pipeline { pipeline: p.name.clone(), problem: e.to_string() })?;
            let machine = StateMachine::from_json(DEFAULT_WORKFLOW)
                .map_err(|source| EngineError::Workflow { pipeline: p.name.clone(), source })?;
            let ctx = TaskContext {
                ports: ports.clone(),
                config: config.clone(),
                pipeline: Arc::new(p.clone()),
                plan: Arc::new(plan),
                scratch: scratch.clone(),
            };
            pipelines.insert(
                p.name.clone(),
                CompiledPipeline { machine, tasks: PipelineTasks::new(Arc::new(ctx)) },
            );
        }
        Ok(Engine { config, ports, pipelines })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Creates the configured buckets if they are missing.
    pub async fn ensure_buckets(&self) -> Result<(), PortError> {
        let b = &self.config.buckets;
        for bucket in [&b.input, &b.output, &b.archive] {
            self.ports.objects.create_bucket(bucket).await?;
        }
        for p in &self.config.pipelines {
            if let Some(bucket) = &p.source.bucket {
                self.ports.objects.create_bucket(bucket).await?;
            }
        }
        Ok(())
    }

    /// Handles one received message and decides its fate. Never panics on bad input: every
    /// problem becomes a job outcome or a log line that says what was wrong.
    pub async fn handle_message(&self, message: &Message) -> Disposition {
        let event = match QueueEvent::parse(&message.body) {
            Ok(QueueEvent::TestEvent) => {
                tracing::info!(message_id = %message.message_id, "s3:TestEvent: nothing to do");
                return Disposition::Delete;
            }
            Ok(QueueEvent::Records(e)) => e,
            Err(e) => {
                let body: String = message.body.chars().take(200).collect();
                tracing::error!(message_id = %message.message_id, error = %e, body = %body, "dropping a message that is not an S3 event");
                return Disposition::Delete;
            }
        };
        let mut disposition = Disposition::Delete;
        for record in &event.records {
            if let Disposition::Retry { after } = self.handle_record(record, message).await {
                disposition = Disposition::Retry { after };
            }
        }
        disposition
    }

    async fn handle_record(&self, record: &S3EventRecord, message: &Message) -> Disposition {
        if !record.is_object_created() {
            tracing::info!(event = %record.event_name, "not an ObjectCreated event: skipped");
            return Disposition::Delete;
        }
        let bucket = &record.s3.bucket.name;
        let etag = record.s3.object.e_tag.trim_matches('"');
        let key = match record.key() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(message_id = %message.message_id, error = %e, "dropping event with an undecodable key");
                return Disposition::Delete;
            }
        };
        let pipeline = self.config.pipeline_for(bucket, &key);
        let mut job = match self.ports.jobs.get(&JobId::for_object(bucket, &key, etag)).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                Job::queued(bucket, &key, etag, record.s3.object.size, pipeline.map(|p| p.name.as_str()))
            }
            Err(e) => return self.retry_later(message, &format!("job store: {e}")),
        };
        if job.status.is_terminal() && job.status != JobStatus::Failed {
            tracing::info!(job_id = %job.job_id, status = %job.status, "duplicate delivery of a finished job");
            return Disposition::Delete;
        }
        if let Err(e) = validate_key(&key) {
            return self.finish(job, JobStatus::Rejected, Some(format!("refused object key: {e}"))).await;
        }
        let Some(pipeline) = pipeline else {
            return self
                .finish(job, JobStatus::Skipped, Some(format!("no pipeline's source matches {bucket}/{key}")))
                .await;
        };
        job.pipeline = Some(pipeline.name.clone());
        job.status = JobStatus::Running;
        job.attempts += 1;
        job.started_at = Some(Utc::now());
        job.error = None;
        if let Err(e) = self.ports.jobs.save(&job).await {
            return self.retry_later(message, &format!("job store: {e}"));
        }
        tracing::info!(job_id = %job.job_id, key = %key, attempt = job.attempts, "job started");
        self.run_workflow(job, pipeline, message).await
    }

    async fn run_workflow(&self, mut job: Job, pipeline: &PipelineConfig, message: &Message) -> Disposition {
        let compiled = &self.pipelines[&pipeline.name];
        let input = JobInput {
            job_id: job.job_id.to_string(),
            pipeline: pipeline.name.clone(),
            source_bucket: job.source_bucket.clone(),
            source_key: job.source_key.clone(),
            source_etag: job.source_etag.clone(),
            source_size: job.source_size,
            created_at: job.created_at.to_rfc3339(),
        };
        let execution = weir_workflow::run(&compiled.machine, &compiled.tasks, json!(input)).await;
        job.steps = execution.steps;
        record_outputs(&mut job, &execution.output);
        match execution.outcome {
            Outcome::Succeeded => self.finish(job, JobStatus::Succeeded, None).await,
            Outcome::Failed { error, cause, class: ErrorClass::Permanent } => {
                if execution.output.get(fields::FAILED_KEY).is_some() {
                    let reason = crate::tasks::rejection_reason_of(&execution.output);
                    self.finish(job, JobStatus::Rejected, Some(reason)).await
                } else {
                    self.finish(job, JobStatus::Failed, Some(format!("{error}: {cause}"))).await
                }
            }
            Outcome::Failed { error, cause, class: ErrorClass::Transient } => {
                let max = self.config.queue.max_receive_count;
                let why = format!("{error}: {cause}");
                if message.receive_count >= max {
                    // The queue dead-letters the message on its next receive; make that prompt.
                    job.finish(
                        JobStatus::Failed,
                        Some(format!(
                            "retries exhausted after {} receives; last error: {why}",
                            message.receive_count
                        )),
                    );
                    if let Err(e) = self.ports.jobs.save(&job).await {
                        tracing::error!(job_id = %job.job_id, error = %e, "could not record the failed job");
                    }
                    tracing::error!(job_id = %job.job_id, error = %why, "job failed; message goes to the dead-letter queue");
                    Disposition::Retry { after: Duration::ZERO }
                } else {
                    job.status = JobStatus::Queued;
                    job.error = Some(format!("attempt {} failed, will retry: {why}", job.attempts));
                    if let Err(e) = self.ports.jobs.save(&job).await {
                        tracing::error!(job_id = %job.job_id, error = %e, "could not record the retry");
                    }
                    self.retry_later(message, &why)
                }
            }
        }
    }

    async fn finish(&self, mut job: Job, status: JobStatus, error: Option<String>) -> Disposition {
        job.finish(status, error);
        match self.ports.jobs.save(&job).await {
            Ok(()) => {
                tracing::info!(
                    job_id = %job.job_id, status = %job.status, key = %job.source_key,
                    valid_rows = job.valid_rows, invalid_rows = job.invalid_rows,
                    duration_ms = job.duration_ms.unwrap_or_default(), error = job.error.as_deref().unwrap_or(""),
                    "job finished"
                );
                Disposition::Delete
            }
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %e, "could not record the job's outcome; retrying");
                Disposition::Retry { after: backoff(job.attempts) }
            }
        }
    }

    fn retry_later(&self, message: &Message, why: &str) -> Disposition {
        let after = backoff(message.receive_count);
        tracing::warn!(message_id = %message.message_id, receive_count = message.receive_count, retry_in_ms = after.as_millis() as u64, error = %why, "transient failure; will retry");
        Disposition::Retry { after }
    }
}

/// Exponential backoff with full jitter: up to 2^n seconds, capped at 5 minutes.
fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_secs(1u64 << attempt.min(8)).min(Duration::from_secs(300));
    let jitter: f64 = rand::random();
    Duration::from_millis((cap.as_millis() as f64 * (0.5 + jitter / 2.0)) as u64)
}

/// Copies counts and output keys from the final workflow state into the job record.
fn record_outputs(job: &mut Job, state: &Value) {
    if let Some(summary) =
        state.get(fields::SUMMARY).and_then(|s| serde_json::from_value::<Summary>(s.clone()).ok())
    {
        job.total_rows = summary.total_rows;
        job.valid_rows = summary.valid_rows;
        job.invalid_rows = summary.invalid_rows;
    }
    if let Some(keys) = state.get(fields::OUTPUT_KEYS).and_then(Value::as_object) {
        for (role, key) in keys {
            if let Some(k) = key.as_str() {
                job.output_keys.insert(role.clone(), k.to_owned());
            }
        }
    }
    if let Some(k) = state.get(fields::ARCHIVE_KEY).and_then(Value::as_str) {
        job.output_keys.insert("archive".into(), k.to_owned());
    }
    if let Some(k) = state.get(fields::FAILED_KEY).and_then(Value::as_str) {
        job.output_keys.insert("failed".into(), format!("{}/{k}", job.source_bucket));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 0..20 {
            let b = backoff(n);
            let cap = Duration::from_secs(1u64 << n.min(8)).min(Duration::from_secs(300));
            assert!(b <= cap && b >= cap / 2, "{n}: {b:?}");
        }
    }
}
