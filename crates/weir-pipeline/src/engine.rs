//! Running one queue message to its end.
//!
//! The engine turns a message into a job outcome and tells the worker what to do with the
//! message: delete it (done, for good or ill), or let it come back later (a transient failure,
//! retried with exponential backoff and jitter until the queue dead-letters it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_core::event::{QueueEvent, S3EventRecord};
use weir_core::job::{sequencer_order, WarehouseLoad};
use weir_core::keys::validate_key;
use weir_core::{Backoff, Config, ErrorClass, Job, JobId, JobStatus, PipelineConfig, Summary};
use weir_ports::{Begin, JobMetrics, Message, PortError};
use weir_process::Plan;
use weir_workflow::{MappedResolver, Outcome, RunOptions, StateMachine};

use crate::checkpoint::JobCheckpoints;

use crate::state::{fields, JobInput};
use crate::tasks::{PipelineTasks, TaskContext};
use crate::workflow::WorkflowError;
use crate::Ports;

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
    /// The message can never be processed (not an S3 event): move it to the DLQ now.
    DeadLetter,
}

struct CompiledPipeline {
    machine: StateMachine,
    tasks: MappedResolver<PipelineTasks>,
}

/// Everything needed to run jobs: config, ports, and each pipeline compiled once.
pub struct Engine {
    config: Arc<Config>,
    ports: Ports,
    pipelines: HashMap<String, CompiledPipeline>,
    /// Names this engine: process and a random part. Each run's name starts with it.
    owner: String,
    /// Runs in progress by run name, so a shutdown can give their leases up.
    runs: Mutex<HashMap<String, Job>>,
    /// Told of each file taken in and each job finished (CloudWatch on AWS); none embedded.
    metrics: Option<Arc<dyn JobMetrics>>,
}

/// How long a message whose key another run holds waits for it, at most, before it is put back
/// on the queue: this many visibility timeouts.
const BUSY_WAIT_TIMEOUTS: u32 = 10;

impl Engine {
    /// Compiles every pipeline (schema plan and workflow); `scratch` is where outputs are
    /// spooled before they are stored, unless the object store has a local scratch folder of its
    /// own (the embedded store: spooled files are then moved into place, and cleaned up after a
    /// crash).
    pub fn new(config: Config, ports: Ports, scratch: PathBuf) -> Result<Engine, EngineError> {
        let scratch = ports.objects.local_scratch().unwrap_or(scratch);
        std::fs::create_dir_all(&scratch)
            .map_err(|source| EngineError::Scratch { path: scratch.clone(), source })?;
        let config = Arc::new(config);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let passes = Arc::new(tokio::sync::Semaphore::new(cores));
        let mut pipelines = HashMap::new();
        for p in &config.pipelines {
            let plan = Plan::compile(p)
                .map_err(|e| EngineError::Pipeline { pipeline: p.name.clone(), problem: e.to_string() })?;
            let (machine, aliases) = crate::workflow::load(p).map_err(|e| match e {
                WorkflowError::Definition { source, .. } => {
                    EngineError::Workflow { pipeline: p.name.clone(), source }
                }
                other => EngineError::Pipeline { pipeline: p.name.clone(), problem: other.to_string() },
            })?;
            let ctx = TaskContext {
                ports: ports.clone(),
                config: config.clone(),
                pipeline: Arc::new(p.clone()),
                plan: Arc::new(plan),
                scratch: scratch.clone(),
                passes: passes.clone(),
            };
            pipelines.insert(
                p.name.clone(),
                CompiledPipeline {
                    machine,
                    tasks: MappedResolver::with_aliases(PipelineTasks::new(Arc::new(ctx)), aliases),
                },
            );
        }
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Ok(Engine { config, ports, pipelines, owner, runs: Mutex::default(), metrics: None })
    }

    /// Reports each file taken in and each finished job to `metrics` as well.
    pub fn with_metrics(mut self, metrics: Arc<dyn JobMetrics>) -> Engine {
        self.metrics = Some(metrics);
        self
    }

    /// Logs a finished job and reports it to the metrics (with its receipt, for a job that
    /// never started: refused, skipped or a duplicate upload).
    fn finished(&self, job: &Job, started: bool) {
        log_finished(job);
        if let Some(m) = &self.metrics {
            if !started {
                m.received(job);
            }
            m.finished(job);
        }
    }

    /// How long a received message stays hidden, and a job lease lasts, between heartbeats.
    fn visibility(&self) -> Duration {
        Duration::from_secs(self.config.queue.visibility_timeout_secs.max(1))
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
                tracing::error!(message_id = %message.message_id, error = %e, body = %body, "message is not an S3 event: dead-lettering it");
                return Disposition::DeadLetter;
            }
        };
        // A message with several records is settled by its worst outcome: any retry keeps it.
        let mut disposition = Disposition::Delete;
        for record in &event.records {
            match self.handle_record(record, message).await {
                Disposition::Delete => {}
                Disposition::DeadLetter => {
                    if disposition == Disposition::Delete {
                        disposition = Disposition::DeadLetter;
                    }
                }
                retry => disposition = retry,
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
                tracing::error!(message_id = %message.message_id, error = %e, "event with an undecodable key: dead-lettering it");
                return Disposition::DeadLetter;
            }
        };
        if key.ends_with('/') && record.s3.object.size == 0 {
            // A folder marker (S3 sends its event too, on AWS): no file, no job.
            tracing::info!(bucket = %bucket, key = %key, "a folder marker: nothing to do");
            return Disposition::Delete;
        }
        let pipeline = self.config.pipeline_for(bucket, &key);
        let mut job =
            Job::queued(bucket, &key, etag, record.s3.object.size, pipeline.map(|p| p.name.as_str()));
        job.sequencer = sequencer_order(&record.s3.object.sequencer);
        let pipeline = match (validate_key(&key), pipeline) {
            (Err(e), _) => {
                let why = format!("refused object key: {e}");
                return self.refuse(job, message, JobStatus::Rejected, why).await;
            }
            (Ok(()), None) => {
                let why = format!("no pipeline's source matches {bucket}/{key}");
                return self.refuse(job, message, JobStatus::Skipped, why).await;
            }
            (Ok(()), Some(p)) => p,
        };
        // One run at a time per source key: a second delivery, or another version of the key,
        // waits for the lease.
        let run = format!("{}-{}", self.owner, uuid::Uuid::new_v4().simple());
        let job = match self.begin(&job, pipeline, &run, message).await {
            Ok(Begin::Started(job)) => job,
            Ok(Begin::Finished(job)) => {
                tracing::info!(job_id = %job.job_id, status = %job.status, "duplicate delivery of a finished job");
                return Disposition::Delete;
            }
            Ok(Begin::Superseded(job)) => {
                tracing::info!(job_id = %job.job_id, key = %job.source_key, "an older version of the key: superseded");
                return Disposition::Delete;
            }
            Ok(Begin::Duplicate(done)) if pipeline.source.keeps_input() => {
                // The upload is the input object the job kept (`archive = "copy"`): a client
                // that uploads again what it sees missing or changed, or checks by re-uploading,
                // has nothing new here. It stays where it is, and no record is made.
                tracing::info!(job_id = %done.job_id, key = %job.source_key, "an unchanged re-upload of a kept input: nothing to do");
                return Disposition::Delete;
            }
            Ok(Begin::Duplicate(done)) => return self.duplicate(done, &job, message).await,
            Ok(Begin::Busy) => return Disposition::Retry { after: self.visibility() },
            Err(disposition) => return disposition,
        };
        tracing::info!(job_id = %job.job_id, key = %job.source_key, attempt = job.attempts, "job started");
        if let (Some(m), 1) = (&self.metrics, job.attempts) {
            m.received(&job);
        }
        self.runs.lock().unwrap().insert(run.clone(), job.clone());
        let heartbeat = self.heartbeat(message, &job, &run);
        let disposition = tokio::select! {
            disposition = self.run_workflow(job.clone(), pipeline, message, &run) => disposition,
            () = heartbeat => {
                tracing::warn!(job_id = %job.job_id, "this run lost its lease on the key (another run took the job over): stopping it");
                Disposition::Retry { after: self.visibility() }
            }
        };
        self.runs.lock().unwrap().remove(&run);
        disposition
    }

    /// Begins the run, waiting while another run holds the key (keeping the message hidden
    /// meanwhile), up to [`BUSY_WAIT_TIMEOUTS`] visibility timeouts.
    async fn begin(
        &self,
        job: &Job,
        pipeline: &PipelineConfig,
        run: &str,
        message: &Message,
    ) -> Result<Begin, Disposition> {
        let deadline = Instant::now() + self.visibility() * BUSY_WAIT_TIMEOUTS;
        let wait = async {
            let mut pause = Duration::from_millis(20);
            loop {
                match self.ports.jobs.begin(job, &pipeline.name, run, self.visibility()).await {
                    Ok(Begin::Busy) if Instant::now() < deadline => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                    Ok(Begin::Busy) => {
                        tracing::info!(job_id = %job.job_id, "another run still holds the key; trying again later");
                        return Ok(Begin::Busy);
                    }
                    Ok(begun) => return Ok(begun),
                    Err(e) => return Err(self.retry_later(message, &format!("job store: {e}"))),
                }
            }
        };
        tokio::select! {
            begun = wait => begun,
            never = self.keep_hidden(message) => match never {},
        }
    }

    /// Ends a job that is not work for any pipeline (a refused key, no matching source) with
    /// `status`, unless its record says it already ended.
    async fn refuse(&self, mut job: Job, message: &Message, status: JobStatus, why: String) -> Disposition {
        match self.ports.jobs.get(&job.job_id).await {
            Ok(Some(existing)) if existing.is_done() => {
                tracing::info!(job_id = %existing.job_id, status = %existing.status, "duplicate delivery of a finished job");
                return Disposition::Delete;
            }
            Ok(existing) => job = existing.unwrap_or(job),
            Err(e) => return self.retry_later(message, &format!("job store: {e}")),
        }
        job.finish(status, Some(why));
        match self.ports.jobs.save(&job).await {
            Ok(()) => {
                self.finished(&job, false);
                Disposition::Delete
            }
            Err(e) => self.retry_later(message, &format!("recording the job's outcome: {e}")),
        }
    }

    /// A new upload of the content the key's newest job (`done`) already processed: it goes
    /// where that job's source went (the archive, or `failed/`), and a `skipped` record says so.
    async fn duplicate(&self, done: Job, upload: &Job, message: &Message) -> Disposition {
        let seq = upload.sequencer.as_deref().unwrap_or_default();
        let mut record = upload.clone();
        record.job_id = JobId::for_duplicate(&done.job_id, seq);
        let destination = done
            .output_keys
            .get("archive")
            .or_else(|| done.output_keys.get("failed"))
            .and_then(|bk| bk.split_once('/').map(|(b, k)| (b.to_owned(), k.to_owned())));
        let mut why = format!(
            "a re-upload of the content job {} already processed ({}): nothing to do",
            done.job_id, done.status
        );
        if let Some((bucket, key)) = destination {
            let source = crate::provenance::Provenance {
                bucket: upload.source_bucket.clone(),
                key: upload.source_key.clone(),
                etag: upload.source_etag.trim_matches('"').to_owned(),
                job_id: record.job_id.to_string(),
            };
            let metadata = source.metadata([("duplicate_of", done.job_id.to_string())]);
            let moved = self
                .ports
                .objects
                .move_object(
                    &upload.source_bucket,
                    &upload.source_key,
                    &bucket,
                    &key,
                    Some(metadata),
                    Some(&upload.source_etag),
                )
                .await;
            match moved {
                Ok(_) => {
                    why = format!(
                        "a re-upload of the content job {} already processed ({}): moved to {bucket}/{key} as a duplicate",
                        done.job_id, done.status
                    );
                    record.output_keys.insert("duplicate".into(), format!("{bucket}/{key}"));
                }
                // Not in the input any more (moved by an earlier delivery of this event, or
                // replaced by a newer upload, which is a job of its own).
                Err(PortError::NotFound(_)) => {}
                Err(e) => return self.retry_later(message, &format!("moving a duplicate upload: {e}")),
            }
        }
        record.finish(JobStatus::Skipped, Some(why));
        match self.ports.jobs.create(&record).await {
            Ok(_) => {
                self.finished(&record, false);
                Disposition::Delete
            }
            Err(e) => self.retry_later(message, &format!("recording a duplicate upload: {e}")),
        }
    }

    /// Keeps a message hidden, extending its visibility every third of the timeout. Never
    /// returns.
    async fn keep_hidden(&self, message: &Message) -> std::convert::Infallible {
        let period = self.visibility() / 3;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            if let Err(e) =
                self.ports.queue.change_visibility(&message.receipt_handle, self.visibility()).await
            {
                tracing::warn!(message_id = %message.message_id, error = %e, "could not extend the message's visibility");
            }
        }
    }

    /// Extends the message's visibility and the run's lease every third of the timeout, so a
    /// long file is never handed to a second worker. Returns when the lease is lost.
    async fn heartbeat(&self, message: &Message, job: &Job, run: &str) {
        let period = self.visibility() / 3;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            if let Err(e) =
                self.ports.queue.change_visibility(&message.receipt_handle, self.visibility()).await
            {
                tracing::warn!(job_id = %job.job_id, error = %e, "heartbeat: could not extend the message's visibility");
            }
            match self.ports.jobs.renew(&job.source_bucket, &job.source_key, run, self.visibility()).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(job_id = %job.job_id, error = %e, "heartbeat: could not renew the job lease")
                }
            }
        }
    }

    /// Gives up the leases of every run in progress (their jobs back to `queued`), for a
    /// shutdown that will not wait for them: released means released, so the next run need not
    /// wait for the leases to lapse. Returns how many were given up.
    pub async fn abandon_runs(&self) -> usize {
        let runs: Vec<(String, Job)> = self.runs.lock().unwrap().drain().collect();
        for (run, job) in &runs {
            if let Err(e) = self.ports.jobs.abandon_run(job, run).await {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not release the job's lease; it lapses by itself");
            }
        }
        runs.len()
    }

    async fn run_workflow(
        &self,
        mut job: Job,
        pipeline: &PipelineConfig,
        message: &Message,
        run: &str,
    ) -> Disposition {
        let compiled = &self.pipelines[&pipeline.name];
        let input = JobInput {
            job_id: job.job_id.to_string(),
            pipeline: pipeline.name.clone(),
            source_bucket: job.source_bucket.clone(),
            source_key: job.source_key.clone(),
            source_etag: job.source_etag.clone(),
            source_size: job.source_size,
            created_at: job.created_at.to_rfc3339(),
            run: run.to_owned(),
        };
        let checkpoints =
            Arc::new(JobCheckpoints::new(self.ports.jobs.clone(), job.clone(), &compiled.machine, run));
        let mut options = RunOptions::new(job.job_id.to_string()).checkpoint(checkpoints.clone());
        let mut steps = Vec::new();
        if let Some(cp) = &job.checkpoint {
            tracing::info!(job_id = %job.job_id, state = %cp.next_state, "resuming the workflow where the last attempt stopped");
            // The state carries the run that made it; this run goes on under its own name.
            let mut data = cp.data.clone();
            if let Some(fields) = data.as_object_mut() {
                fields.insert("run".into(), json!(run));
            }
            options = options.resume_from(cp.next_state.clone(), data);
            steps = cp.steps.clone();
        }

        let execution =
            weir_workflow::run_with(&compiled.machine, &compiled.tasks, json!(input), options).await;
        steps.extend(execution.steps);
        job.steps = steps;
        job.checkpoint = checkpoints.latest();

        record_outputs(&mut job, &execution.output);
        if let Outcome::Failed { error, cause, .. } = &execution.outcome {
            self.record_load_failure(&mut job, pipeline, error, cause);
        }
        match execution.outcome {
            Outcome::Succeeded => self.finish(job, JobStatus::Succeeded, None, run, message).await,
            Outcome::Failed { error, cause, class: ErrorClass::Permanent } => {
                if error == crate::tasks::errors::SUPERSEDED {
                    self.finish(job, JobStatus::Superseded, Some(cause), run, message).await
                } else if execution.output.get(fields::FAILED_KEY).is_some() {
                    let reason = crate::tasks::rejection_reason_of(&execution.output);
                    self.finish(job, JobStatus::Rejected, Some(reason), run, message).await
                } else {
                    self.finish(job, JobStatus::Failed, Some(format!("{error}: {cause}")), run, message).await
                }
            }
            Outcome::Failed { error, cause, class: ErrorClass::Transient } => {
                let max = self.config.queue.max_receive_count;
                let why = format!("{error}: {cause}");
                if message.receive_count >= max {
                    // The queue dead-letters the message on its next receive; make that prompt.
                    job.give_up(format!(
                        "retries exhausted after {} receives; last error: {why}",
                        message.receive_count
                    ));
                    self.notify_failed(&job, run, true).await;
                    match self.ports.jobs.finish_run(&job, run).await {
                        Ok(()) => self.finished(&job, true),
                        Err(e) => {
                            tracing::error!(job_id = %job.job_id, error = %e, "could not record the failed job")
                        }
                    }
                    tracing::error!(job_id = %job.job_id, error = %why, "job failed; message goes to the dead-letter queue");
                    Disposition::Retry { after: Duration::ZERO }
                } else {
                    job.status = JobStatus::Queued;
                    job.error = Some(format!("attempt {} failed, will retry: {why}", job.attempts));
                    if let Err(e) = self.ports.jobs.finish_run(&job, run).await {
                        tracing::warn!(job_id = %job.job_id, error = %e, "could not record the retry");
                    }
                    self.retry_later(message, &why)
                }
            }
        }
    }

    /// Records the job's outcome as this run's last write (which gives the key's lease up).
    /// A failed job's alert goes out first: a run that dies between the two sends it again on
    /// its retry, under the same id, rather than never.
    async fn finish(
        &self,
        mut job: Job,
        status: JobStatus,
        error: Option<String>,
        run: &str,
        message: &Message,
    ) -> Disposition {
        job.finish(status, error);
        if status == JobStatus::Failed {
            self.notify_failed(&job, run, false).await;
        }
        match self.ports.jobs.finish_run(&job, run).await {
            Ok(()) => {
                self.finished(&job, true);
                Disposition::Delete
            }
            Err(PortError::Conflict(why)) => {
                // Another run holds the job now and records its outcome itself.
                tracing::warn!(job_id = %job.job_id, why, "lost the lease before recording the outcome; the other run finishes the job");
                Disposition::Retry { after: self.visibility() }
            }
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %e, "could not record the job's outcome; retrying");
                Disposition::Retry { after: self.backoff(message.receive_count) }
            }
        }
    }

    /// Sends the failed job's alert (once per job, see [`crate::tasks::publish_once`]) if this
    /// run still speaks for the job.
    async fn notify_failed(&self, job: &Job, run: &str, dead_lettered: bool) {
        match self.ports.jobs.renew(&job.source_bucket, &job.source_key, run, self.visibility()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not check the lease before alerting")
            }
        }
        let alert = crate::messages::failed(job, dead_lettered);
        if let Err(e) = crate::tasks::publish_once(&self.ports, &alert).await {
            tracing::error!(job_id = %job.job_id, error = %e, "could not send the failure alert");
        }
    }

    /// Records in the job that its warehouse load failed, when that is why the run failed.
    fn record_load_failure(&self, job: &mut Job, pipeline: &PipelineConfig, error: &str, cause: &str) {
        use crate::tasks::{LOAD_REFUSED, WAREHOUSE_UNAVAILABLE};
        let Some(warehouse) = self.ports.warehouses.get(&pipeline.name) else { return };
        if error != LOAD_REFUSED && error != WAREHOUSE_UNAVAILABLE {
            return;
        }
        let info = warehouse.info();
        job.warehouse = Some(WarehouseLoad {
            sink: info.sink,
            target: info.target,
            table: info.table,
            rows: 0,
            mode: info.mode,
            error: Some(cause.to_string()),
        });
    }

    /// Exponential backoff with jitter for the n-th attempt.
    fn backoff(&self, attempt: u32) -> Duration {
        let w = &self.config.worker;
        Backoff::new(Duration::from_millis(w.retry_base_ms), Duration::from_secs(w.retry_max_secs))
            .delay(attempt)
    }

    fn retry_later(&self, message: &Message, why: &str) -> Disposition {
        let after = self.backoff(message.receive_count);
        tracing::warn!(message_id = %message.message_id, receive_count = message.receive_count, retry_in_ms = after.as_millis() as u64, error = %why, "transient failure; will retry");
        Disposition::Retry { after }
    }
}

fn log_finished(job: &Job) {
    tracing::info!(
        job_id = %job.job_id, status = %job.status, key = %job.source_key,
        valid_rows = job.valid_rows, invalid_rows = job.invalid_rows,
        duration_ms = job.duration_ms.unwrap_or_default(), error = job.error.as_deref().unwrap_or(""),
        "job finished"
    );
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
    if let Some(image) = state.get(fields::IMAGE).and_then(|s| serde_json::from_value(s.clone()).ok()) {
        job.image = Some(image);
    }
    if let Some(keys) = state.get(fields::OUTPUT_KEYS).and_then(Value::as_object) {
        for (role, key) in keys {
            if let Some(k) = key.as_str() {
                job.output_keys.insert(role.clone(), k.to_owned());
            }
        }
    }
    if let Some(load) =
        state.get(fields::WAREHOUSE).and_then(|w| serde_json::from_value::<WarehouseLoad>(w.clone()).ok())
    {
        job.warehouse = Some(load);
    }
    if let Some(k) = state.get(fields::ARCHIVE_KEY).and_then(Value::as_str) {
        job.output_keys.insert("archive".into(), k.to_owned());
    }
    if let Some(k) = state.get(fields::FAILED_KEY).and_then(Value::as_str) {
        job.output_keys.insert("failed".into(), format!("{}/{k}", job.source_bucket));
    }
}
