//! `weir:transform`: the one streaming pass over the file, and storing what it produced.
//!
//! The object is streamed from the store into the synchronous processing core on a blocking
//! thread; results and invalid-row descriptions are spooled to local files and stored under the
//! source's deterministic output keys, summary last. A small object (up to [`SMALL_SOURCE`]) is
//! read whole and processed on the task's own thread with its outputs in memory: for a file of
//! a few kilobytes, the thread handoffs and scratch files of the streaming path cost many times
//! the processing itself.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{json, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};
use weir_core::keys::OutputKeys;
use weir_core::summary::SourceRef;
use weir_core::{ErrorClass, Summary};
use weir_ports::{Metadata, PortError, PutBody, PutItem, RecordItem};
use weir_process::{Options, Plan, ProcessError};
use weir_workflow::{Task, TaskError};

use super::{errors, io_error, job_input, merge, port_error, TaskContext};
use crate::state::{fields, JobInput};

/// Rows per records-sink batch.
const RECORDS_BATCH: usize = 500;

/// Sources up to this size are processed in memory on the task's thread (about a tenth of a
/// millisecond of work, short enough not to hold up the other tasks of that thread).
pub(super) const SMALL_SOURCE: u64 = 16 << 10;

pub struct Transform(pub Arc<TaskContext>);

/// What one pass produced, before anything is stored.
#[derive(Debug)]
pub struct TransformOutput {
    pub summary: Summary,
    /// NDJSON of valid rows.
    pub results: PathBuf,
    /// NDJSON of invalid-row descriptions (at most the configured number); no file when none.
    pub errors: PathBuf,
}

/// Runs the processing core over `input`, spooling to files named after `stem` in `dir`.
/// `options` carry the source's name (its `.gz`/`.zst` suffix, the JSON document's
/// `source_file`) and a progress callback. Nothing is left in `dir` when it fails.
pub fn run_transform(
    plan: &Plan,
    input: impl Read,
    dir: &Path,
    stem: &str,
    options: &Options<'_>,
) -> Result<TransformOutput, ProcessError> {
    let results = dir.join(format!("{stem}.results.{}", plan.output_format().extension()));
    let errors = dir.join(format!("{stem}.errors.ndjson"));
    let run = || -> Result<Summary, ProcessError> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&results)?);
        let mut errs = CreateOnWrite { path: &errors, file: None };
        let summary = weir_process::process_with(
            plan,
            BufReader::with_capacity(1 << 20, input),
            &mut out,
            &mut errs,
            options,
        )?;
        out.flush()?;
        errs.flush()?;
        Ok(summary)
    };
    match run() {
        Ok(summary) => Ok(TransformOutput { summary, results, errors }),
        Err(e) => {
            let _ = std::fs::remove_file(&results);
            let _ = std::fs::remove_file(&errors);
            Err(e)
        }
    }
}

/// A file writer that creates its file at the first write. Most files have no invalid rows, and
/// every file created and deleted costs: on ext4 without a journal, each new inode is found by
/// stepping over the inodes freed in the last half minute, so churn slows every later create.
struct CreateOnWrite<'a> {
    path: &'a Path,
    file: Option<BufWriter<File>>,
}

impl Write for CreateOnWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.file {
            Some(f) => f.write(buf),
            None => self.file.insert(BufWriter::new(File::create(self.path)?)).write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// The error report document: the source, the counts, and the described invalid rows. The
/// spooled descriptions may be missing: no file is made when none was written.
pub fn error_report(summary: &Summary, errors_ndjson: &Path) -> std::io::Result<Vec<u8>> {
    match File::open(errors_ndjson) {
        Ok(f) => error_report_from(summary, BufReader::new(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => error_report_from(summary, &b""[..]),
        Err(e) => Err(e),
    }
}

/// [`error_report`] from the invalid-row descriptions, one NDJSON line each.
fn error_report_from(summary: &Summary, errors_ndjson: impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut entries = Vec::new();
    for line in errors_ndjson.lines() {
        let line = line?;
        if !line.is_empty() {
            entries.push(serde_json::from_str::<Value>(&line).map_err(std::io::Error::other)?);
        }
    }
    let report = json!({
        "source": summary.source,
        "total_rows": summary.total_rows,
        "invalid_rows": summary.invalid_rows,
        "errors_reported": entries.len(),
        "truncated": (entries.len() as u64) < summary.invalid_rows,
        "errors": entries,
    });
    Ok(serde_json::to_vec_pretty(&report).expect("report serializes"))
}

/// The source object's bytes: whole when small, else a blocking reader to stream them.
pub(super) enum Source {
    Small(Bytes),
    Stream(Box<dyn Read + Send>),
}

/// The source object, checked to be the version the event announced.
pub(super) async fn open_source(ctx: &TaskContext, input: &JobInput) -> Result<Source, TaskError> {
    let (info, stream) = match ctx.ports.objects.get(&input.source_bucket, &input.source_key).await {
        Ok(found) => found,
        Err(PortError::NotFound(_)) => return Err(super::source_gone(ctx, input).await),
        Err(e) => {
            return Err(port_error(e, &format!("reading {}/{}", input.source_bucket, input.source_key)))
        }
    };
    if !input.source_etag.is_empty() && info.etag.trim_matches('"') != input.source_etag {
        return Err(super::superseded(input, &info.etag));
    }
    let limit = ctx.pipeline.source.max_size_bytes;
    if info.size > limit {
        return Err(TaskError::permanent(
            errors::INVALID_INPUT,
            format!(
                "{}/{} is {} bytes; the pipeline's limit (source.max_size_bytes) is {limit}",
                input.source_bucket, input.source_key, info.size
            ),
        ));
    }
    if info.size <= SMALL_SOURCE {
        let reading = || format!("reading {}/{}", input.source_bucket, input.source_key);
        let chunks: Vec<Bytes> = stream.try_collect().await.map_err(|e| port_error(e, &reading()))?;
        let body = match chunks.len() {
            1 => chunks.into_iter().next().expect("one chunk"),
            _ => Bytes::from(chunks.concat()),
        };
        if body.len() as u64 != info.size {
            return Err(TaskError::transient(
                errors::UNAVAILABLE,
                format!("{}: {} bytes read where {} were announced", reading(), body.len(), info.size),
            ));
        }
        return Ok(Source::Small(body));
    }
    let reader = StreamReader::new(stream.map_err(std::io::Error::other));
    Ok(Source::Stream(Box::new(SyncIoBridge::new(reader))))
}

/// A processing failure as the workflow sees it, naming the file.
pub(super) fn process_error(e: ProcessError, input: &JobInput) -> TaskError {
    let cause = format!("{}/{}: {e}", input.source_bucket, input.source_key);
    match e.class() {
        ErrorClass::Permanent => TaskError::permanent(errors::INVALID_INPUT, cause),
        ErrorClass::Transient => TaskError::transient(errors::UNAVAILABLE, cause),
    }
}

/// What one pass produced, where it is: spooled files (the streaming path) or memory.
enum Produced {
    Files(TransformOutput),
    Memory { summary: Summary, results: Vec<u8>, errors: Vec<u8> },
}

impl Produced {
    fn summary_mut(&mut self) -> &mut Summary {
        match self {
            Produced::Files(o) => &mut o.summary,
            Produced::Memory { summary, .. } => summary,
        }
    }

    fn into_summary(self) -> Summary {
        match self {
            Produced::Files(o) => o.summary,
            Produced::Memory { summary, .. } => summary,
        }
    }

    /// Removes spooled files (nothing to do for memory).
    fn discard_files(&self) {
        if let Produced::Files(o) = self {
            let _ = std::fs::remove_file(&o.results);
            let _ = std::fs::remove_file(&o.errors);
        }
    }
}

#[async_trait]
impl Task for Transform {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let ctx = &self.0;
        let input = job_input(&state)?;
        let mut produced = match open_source(ctx, &input).await? {
            Source::Small(body) => {
                let options = Options {
                    source_name: Some(&input.source_key),
                    progress: None,
                    size_hint: Some(body.len() as u64),
                };
                let (mut results, mut errors) = (Vec::with_capacity(body.len() * 2), Vec::new());
                let summary =
                    weir_process::process_with(&ctx.plan, &body[..], &mut results, &mut errors, &options)
                        .map_err(|e| process_error(e, &input))?;
                Produced::Memory { summary, results, errors }
            }
            Source::Stream(reader) => {
                let _pass = ctx.passes.acquire().await.expect("the semaphore is never closed");
                let (plan, scratch, stem) = (
                    ctx.plan.clone(),
                    ctx.scratch.clone(),
                    format!("{}-{}", input.job_id, uuid::Uuid::new_v4().simple()),
                );
                let (name, size) = (input.source_key.clone(), input.source_size);
                let output = tokio::task::spawn_blocking(move || {
                    let options = Options { source_name: Some(&name), progress: None, size_hint: Some(size) };
                    run_transform(&plan, reader, &scratch, &stem, &options)
                })
                .await
                .map_err(|e| TaskError::transient(errors::UNAVAILABLE, format!("transform crashed: {e}")))?
                .map_err(|e| process_error(e, &input))?;
                Produced::Files(output)
            }
        };
        let result = self.store(&input, &mut produced).await;
        produced.discard_files();
        let keys = result?;
        Ok(merge(state, json!({ fields::SUMMARY: produced.into_summary(), fields::OUTPUT_KEYS: keys })))
    }
}

impl Transform {
    /// Stores results, error report and summary (last), and loads the records sink.
    async fn store(&self, input: &JobInput, produced: &mut Produced) -> Result<Value, TaskError> {
        let ctx = &self.0;
        let out_bucket = &ctx.config.buckets.output;
        let keys = OutputKeys::for_source(
            &input.source_bucket,
            &input.source_key,
            ctx.pipeline.output.format.extension(),
        );
        produced.summary_mut().source = Some(SourceRef {
            bucket: Some(input.source_bucket.clone()),
            key: input.source_key.clone(),
            job_id: Some(input.job_id.clone()),
            pipeline: Some(input.pipeline.clone()),
        });
        let metadata = Metadata::from([("job_id".to_string(), input.job_id.clone())]);
        let objects = &ctx.ports.objects;
        // A newer upload that replaced the source while this one was being processed writes
        // the outputs itself (its job waits for this one's lease): this one must not write
        // over them, nor leave its own behind to be mistaken for the newest.
        match objects.head(&input.source_bucket, &input.source_key).await {
            Ok(now) if now.etag.trim_matches('"') != input.source_etag && !input.source_etag.is_empty() => {
                return Err(super::superseded(input, &now.etag));
            }
            Ok(_) | Err(PortError::NotFound(_)) => {}
            Err(e) => return Err(port_error(e, "checking the source before storing the outputs")),
        }

        if let Some(sink) = &ctx.ports.records {
            match produced {
                Produced::Files(o) => {
                    let file = File::open(&o.results).map_err(|e| io_error(e, "reading spooled results"))?;
                    load_records(sink.as_ref(), input, BufReader::new(file)).await?
                }
                Produced::Memory { results, .. } => load_records(sink.as_ref(), input, &results[..]).await?,
            }
        }
        let (results, report) = match produced {
            Produced::Files(o) => {
                let report = match o.summary.invalid_rows {
                    0 => None,
                    _ => Some(
                        error_report(&o.summary, &o.errors)
                            .map_err(|e| io_error(e, "reading spooled errors"))?,
                    ),
                };
                (PutBody::File(o.results.clone()), report)
            }
            Produced::Memory { summary, results, errors } => {
                let report = match summary.invalid_rows {
                    0 => None,
                    _ => Some(
                        error_report_from(summary, &errors[..]).map_err(|e| io_error(e, "reading errors"))?,
                    ),
                };
                (PutBody::Bytes(Bytes::from(std::mem::take(results))), report)
            }
        };
        let mut stored = json!({ "results": keys.results, "summary": keys.summary });
        let mut items =
            vec![PutItem { key: keys.results.clone(), body: results, metadata: metadata.clone() }];
        if let Some(report) = report {
            let body = PutBody::Bytes(Bytes::from(report));
            items.push(PutItem { key: keys.errors.clone(), body, metadata: metadata.clone() });
            stored["errors"] = json!(keys.errors);
        } else {
            // A report left by an earlier version of this source would now be wrong.
            objects
                .delete(out_bucket, &keys.errors)
                .await
                .map_err(|e| port_error(e, "removing a stale error report"))?;
        }
        let summary = serde_json::to_vec_pretty(produced.summary_mut()).expect("summary serializes");
        items.push(PutItem {
            key: keys.summary.clone(),
            body: PutBody::Bytes(Bytes::from(summary)),
            metadata,
        });
        objects.put_all(out_bucket, items).await.map_err(|e| {
            port_error(
                e,
                &format!(
                    "storing the outputs of {}/{} in {out_bucket}",
                    input.source_bucket, input.source_key
                ),
            )
        })?;
        Ok(stored)
    }
}

/// Upserts every valid row as a `pk`/`sk` item, as the seeds' DynamoDB loader did.
async fn load_records(
    sink: &dyn weir_ports::RecordsSink,
    input: &JobInput,
    results: impl BufRead,
) -> Result<(), TaskError> {
    let pk = format!("CSV#{}/{}", input.source_bucket, input.source_key);
    let mut batch = Vec::with_capacity(RECORDS_BATCH);
    for (i, line) in results.lines().enumerate() {
        let line = line.map_err(|e| io_error(e, "reading spooled results"))?;
        let item: Value = serde_json::from_str(&line).map_err(|e| {
            TaskError::permanent("States.Runtime", format!("results line {} is not JSON: {e}", i + 1))
        })?;
        batch.push(RecordItem { pk: pk.clone(), sk: format!("ROW#{:06}", i + 1), item });
        if batch.len() == RECORDS_BATCH {
            sink.put_batch(&batch).await.map_err(|e| port_error(e, "loading records"))?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        sink.put_batch(&batch).await.map_err(|e| port_error(e, "loading records"))?;
    }
    Ok(())
}
