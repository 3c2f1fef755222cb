//! The built-in workflow tasks, each a `weir:` resource a Task state can name.
//!
//! Every task takes the job's JSON state, does one thing with the ports, and returns the state
//! with its own fields added. Each is safe to run again for the same job (a redelivered
//! message re-runs the workflow): outputs go to deterministic keys and moves tolerate having
//! already happened.

mod archive;
mod image;
mod move_to_failed;
mod notify;
mod transform;
mod validate_schema;
mod warehouse;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use weir_core::key_template::{KeyTemplate, SourceFacts};
use weir_core::output_layout::{job_date, OutputTemplates};
use weir_core::{Config, PipelineConfig};
use weir_ports::PortError;
use weir_process::Plan;
use weir_workflow::{Task, TaskError, TaskResolver};

pub use image::thumbnail_role;
pub use notify::{holds_lease, publish_once, Published};
pub use transform::{error_report, run_transform, TransformOutput};
pub use warehouse::{LOAD_REFUSED, WAREHOUSE_UNAVAILABLE};

use crate::state::JobInput;
use crate::Ports;

/// Error names tasks raise; the default workflow catches `Weir.InvalidInput`.
pub mod errors {
    /// The file itself is bad (undecodable, unterminated quote, ...): reject it.
    pub const INVALID_INPUT: &str = "Weir.InvalidInput";
    /// The source object is gone (deleted between the event and processing).
    pub const SOURCE_MISSING: &str = "Weir.SourceMissing";
    /// The object now has other content than the event announced: a newer upload replaced it,
    /// and the job ends `superseded` (the newer version's own job writes the outputs).
    pub const SUPERSEDED: &str = "Weir.Superseded";
    /// A backend failed; the message is retried.
    pub const UNAVAILABLE: &str = "Weir.Unavailable";
    /// A request that can never succeed (bad key).
    pub const INVALID_REQUEST: &str = "Weir.InvalidRequest";
}

/// What every task of one pipeline shares.
pub struct TaskContext {
    pub ports: Ports,
    pub config: Arc<Config>,
    pub pipeline: Arc<PipelineConfig>,
    pub plan: Arc<Plan>,
    /// Local folder for spooled outputs (on the object store's file system when embedded, so
    /// storing a result is a rename).
    pub scratch: PathBuf,
    /// Slots for streaming passes over large files, one per core, shared by every pipeline of
    /// the engine: many jobs may be in flight, but only this many keep a core busy at once.
    pub passes: Arc<tokio::sync::Semaphore>,
}

/// The `weir:` tasks of one pipeline.
pub struct PipelineTasks {
    validate_schema: validate_schema::ValidateSchema,
    transform: transform::Transform,
    move_to_failed: move_to_failed::MoveToFailed,
    archive: archive::Archive,
    notify: notify::Notify,
    process_image: image::ProcessImage,
}

impl PipelineTasks {
    pub fn new(ctx: Arc<TaskContext>) -> Self {
        PipelineTasks {
            validate_schema: validate_schema::ValidateSchema(ctx.clone()),
            transform: transform::Transform(ctx.clone()),
            move_to_failed: move_to_failed::MoveToFailed(ctx.clone()),
            archive: archive::Archive(ctx.clone()),
            notify: notify::Notify(ctx.clone()),
            process_image: image::ProcessImage(ctx),
        }
    }

    /// The resource names these tasks answer to.
    pub const RESOURCES: [&'static str; 6] = [
        "weir:validate-schema",
        "weir:transform",
        "weir:move-to-failed",
        "weir:archive",
        "weir:notify",
        "weir:process-image",
    ];
}

impl TaskResolver for PipelineTasks {
    fn resolve(&self, resource: &str) -> Option<&dyn Task> {
        Some(match resource {
            "weir:validate-schema" => &self.validate_schema,
            "weir:transform" => &self.transform,
            "weir:move-to-failed" => &self.move_to_failed,
            "weir:archive" => &self.archive,
            "weir:notify" => &self.notify,
            "weir:process-image" => &self.process_image,
            _ => return None,
        })
    }
}

/// The pipeline's output key templates (`weir check` has refused bad ones; a config that
/// was not checked fails its jobs with the same sentences).
fn templates(ctx: &TaskContext) -> Result<OutputTemplates, TaskError> {
    OutputTemplates::of(&ctx.pipeline).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        TaskError::permanent("States.Runtime", format!("output key templates: {}", list.join("; ")))
    })
}

/// What fills the templates for this job: its source, its id and its creation date.
fn source_facts(input: &JobInput) -> SourceFacts<'_> {
    SourceFacts {
        bucket: &input.source_bucket,
        key: &input.source_key,
        job_id: &input.job_id,
        date: job_date(&input.created_at),
    }
}

/// Where the job's source goes (archived or failed), from the pipeline's template `which`; a
/// key S3 would refuse fails the job for good, naming the file.
fn source_destination(
    ctx: &TaskContext,
    input: &JobInput,
    which: impl Fn(&OutputTemplates) -> &KeyTemplate,
) -> Result<String, TaskError> {
    let templates = templates(ctx)?;
    let template = which(&templates);
    template.render(&source_facts(input)).map_err(|e| {
        TaskError::permanent(
            errors::INVALID_INPUT,
            format!(
                "{}/{}: no key can be made for it from {:?}: {e}",
                input.source_bucket,
                input.source_key,
                template.as_str()
            ),
        )
    })
}

fn job_input(state: &Value) -> Result<JobInput, TaskError> {
    serde_json::from_value(state.clone())
        .map_err(|e| TaskError::permanent("States.Runtime", format!("task input lacks the job fields: {e}")))
}

/// Adds `fields` (an object) to `state`.
fn merge(mut state: Value, fields: Value) -> Value {
    if let (Some(s), Value::Object(f)) = (state.as_object_mut(), fields) {
        s.extend(f);
    }
    state
}

/// A port's failure as the workflow sees it. Only a missing object is the data's fault; a
/// missing bucket, a lost lease or an unavailable backend is retried.
fn port_error(e: PortError, doing: &str) -> TaskError {
    let cause = format!("{doing}: {e}");
    match e {
        PortError::NotFound(_) => TaskError::permanent(errors::SOURCE_MISSING, cause),
        PortError::Invalid(_) => TaskError::permanent(errors::INVALID_REQUEST, cause),
        PortError::NoSuchBucket(_) | PortError::Conflict(_) | PortError::Unavailable { .. } => {
            TaskError::transient(errors::UNAVAILABLE, cause)
        }
    }
}

fn io_error(e: std::io::Error, doing: &str) -> TaskError {
    TaskError::transient(errors::UNAVAILABLE, format!("{doing}: {e}"))
}

/// Puts the job's source at `to_bucket`/`to_key` as its pipeline says (`source.archive`):
/// moved out of the input (the default), or copied with the input object left in place.
async fn settle_source(
    ctx: &TaskContext,
    input: &JobInput,
    to_bucket: &str,
    to_key: &str,
    metadata: weir_ports::Metadata,
) -> Result<(), TaskError> {
    if ctx.pipeline.source.keeps_input() {
        copy_source(ctx, input, to_bucket, to_key, metadata).await
    } else {
        move_object(ctx, input, to_bucket, to_key, metadata).await
    }
}

/// Copies the job's source (the version the job is about) to `to_bucket`/`to_key`, leaving it
/// in place. A source replaced by a newer upload supersedes the job, and a copy made of that
/// newer version is taken back (the newer version's job makes its own). Safe to repeat.
async fn copy_source(
    ctx: &TaskContext,
    input: &JobInput,
    to_bucket: &str,
    to_key: &str,
    metadata: weir_ports::Metadata,
) -> Result<(), TaskError> {
    let objects = &ctx.ports.objects;
    let (bucket, key) = (&input.source_bucket, &input.source_key);
    match objects.head(bucket, key).await {
        Ok(now) if !input.source_etag.is_empty() && now.etag.trim_matches('"') != input.source_etag => {
            return Err(superseded(input, &now.etag))
        }
        Ok(_) => {}
        Err(PortError::NotFound(_)) => return source_gone_or_copied(ctx, input, to_bucket, to_key).await,
        Err(e) => return Err(port_error(e, &format!("looking for {bucket}/{key}"))),
    }
    let copied = match objects.copy(bucket, key, to_bucket, to_key, Some(metadata)).await {
        Ok(copied) => copied,
        Err(PortError::NotFound(_)) => return source_gone_or_copied(ctx, input, to_bucket, to_key).await,
        Err(e) => return Err(port_error(e, &format!("copying to {to_bucket}/{to_key}"))),
    };
    let etag = copied.etag.trim_matches('"');
    if !input.source_etag.is_empty() && etag != input.source_etag {
        // Replaced between the look and the copy: the copy is of the newer version.
        objects.delete_version(to_bucket, to_key, etag).await.map_err(|e| {
            port_error(e, &format!("removing a copy of a newer upload at {to_bucket}/{to_key}"))
        })?;
        return Err(superseded(input, etag));
    }
    Ok(())
}

/// The source is not there for [`copy_source`]: done already if the destination holds this
/// version (an earlier attempt copied it, and the input was removed since), else why it is gone.
async fn source_gone_or_copied(
    ctx: &TaskContext,
    input: &JobInput,
    to_bucket: &str,
    to_key: &str,
) -> Result<(), TaskError> {
    match ctx.ports.objects.head(to_bucket, to_key).await {
        Ok(o) if o.etag.trim_matches('"') == input.source_etag => Ok(()),
        Ok(_) | Err(PortError::NotFound(_)) => Err(source_gone(ctx, input).await),
        Err(e) => Err(port_error(e, &format!("looking for {to_bucket}/{to_key}"))),
    }
}

/// Moves the job's source within or across buckets (a rename where the store can). Only the
/// version the job is about moves, and only it leaves the source key: a newer upload under the
/// same key stays, and this job is then superseded by it. Safe to repeat: if the source is
/// already gone but the destination holds this version, the move is done.
async fn move_object(
    ctx: &TaskContext,
    input: &JobInput,
    to_bucket: &str,
    to_key: &str,
    metadata: weir_ports::Metadata,
) -> Result<(), TaskError> {
    let objects = &ctx.ports.objects;
    let etag = (!input.source_etag.is_empty()).then_some(input.source_etag.as_str());
    let moved = objects
        .move_object(&input.source_bucket, &input.source_key, to_bucket, to_key, Some(metadata), etag)
        .await;
    match moved {
        Ok(_) => Ok(()),
        Err(PortError::NotFound(_)) => {
            // Moved already (by an attempt whose answer was lost)? A store that cannot say is a
            // transient failure, not a missing source.
            match objects.head(to_bucket, to_key).await {
                Ok(o) if o.etag.trim_matches('"') == input.source_etag => return Ok(()),
                Ok(_) | Err(PortError::NotFound(_)) => {}
                Err(e) => return Err(port_error(e, &format!("looking for {to_bucket}/{to_key}"))),
            }
            Err(source_gone(ctx, input).await)
        }
        Err(e) => Err(port_error(e, &format!("moving to {to_bucket}/{to_key}"))),
    }
}

/// Why the job's version of its source is not under its key: replaced by a newer upload
/// (superseded), deleted, or a store that cannot say now (retried).
async fn source_gone(ctx: &TaskContext, input: &JobInput) -> TaskError {
    let (bucket, key) = (&input.source_bucket, &input.source_key);
    match ctx.ports.objects.head(bucket, key).await {
        Ok(now) if now.etag.trim_matches('"') != input.source_etag => superseded(input, &now.etag),
        Ok(_) => TaskError::transient(
            errors::UNAVAILABLE,
            format!("{bucket}/{key} could not be moved although it is there; will retry"),
        ),
        Err(PortError::NotFound(_)) => TaskError::permanent(
            errors::SOURCE_MISSING,
            format!("{bucket}/{key} no longer exists (deleted before it was processed)"),
        ),
        Err(e) => port_error(e, &format!("looking for {bucket}/{key}")),
    }
}

/// Fails with `Weir.Superseded` if a newer upload replaced the source while this job was
/// processing it: the newer version's job writes the outputs (it waits for this one's lease),
/// so this one must not write over them, nor leave its own behind to be mistaken for the newest.
async fn check_still_newest(ctx: &TaskContext, input: &JobInput) -> Result<(), TaskError> {
    match ctx.ports.objects.head(&input.source_bucket, &input.source_key).await {
        Ok(now) if now.etag.trim_matches('"') != input.source_etag && !input.source_etag.is_empty() => {
            Err(superseded(input, &now.etag))
        }
        Ok(_) | Err(PortError::NotFound(_)) => Ok(()),
        Err(e) => Err(port_error(e, "checking the source before storing the outputs")),
    }
}

/// The job's version was replaced by a newer upload with ETag `now`.
fn superseded(input: &JobInput, now: &str) -> TaskError {
    TaskError::permanent(
        errors::SUPERSEDED,
        format!(
            "{}/{} was replaced by a newer upload (ETag {} now {}); the newer version's job writes the outputs",
            input.source_bucket,
            input.source_key,
            input.source_etag,
            now.trim_matches('"')
        ),
    )
}

/// Why a file was rejected, from a final workflow state.
pub fn rejection_reason_of(state: &Value) -> String {
    move_to_failed::rejection_reason(state)
}
