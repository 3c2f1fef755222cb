//! `weir:transform`: the one streaming pass over the file, and storing what it produced.
//!
//! The object is streamed from the store into the synchronous processing core on a blocking
//! thread; results and invalid-row descriptions are spooled to local files and stored under the
//! source's deterministic output keys, summary last.

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
use weir_ports::{Metadata, RecordItem};
use weir_process::{Options, Plan, ProcessError};
use weir_workflow::{Task, TaskError};

use super::{errors, io_error, job_input, merge, port_error, TaskContext};
use crate::state::{fields, JobInput};

/// Rows per records-sink batch.
const RECORDS_BATCH: usize = 500;

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
    let mut entries = Vec::new();
    let spooled = match File::open(errors_ndjson) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    for line in spooled.into_iter().flat_map(|f| BufReader::new(f).lines()) {
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

/// A blocking reader over the source object, checked to be the version the event announced.
pub(super) async fn open_source(
    ctx: &TaskContext,
    input: &JobInput,
) -> Result<impl Read + Send + 'static, TaskError> {
    let (info, stream) = ctx
        .ports
        .objects
        .get(&input.source_bucket, &input.source_key)
        .await
        .map_err(|e| port_error(e, &format!("reading {}/{}", input.source_bucket, input.source_key)))?;
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
    if !input.source_etag.is_empty() && info.etag.trim_matches('"') != input.source_etag {
        return Err(TaskError::permanent(
            errors::SOURCE_CHANGED,
            format!(
                "{}/{} was replaced since the event (ETag {} now {}); the new upload is its own job",
                input.source_bucket, input.source_key, input.source_etag, info.etag
            ),
        ));
    }
    let reader = StreamReader::new(stream.map_err(std::io::Error::other));
    Ok(SyncIoBridge::new(reader))
}

/// A processing failure as the workflow sees it, naming the file.
pub(super) fn process_error(e: ProcessError, input: &JobInput) -> TaskError {
    let cause = format!("{}/{}: {e}", input.source_bucket, input.source_key);
    match e.class() {
        ErrorClass::Permanent => TaskError::permanent(errors::INVALID_INPUT, cause),
        ErrorClass::Transient => TaskError::transient(errors::UNAVAILABLE, cause),
    }
}

#[async_trait]
impl Task for Transform {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let ctx = &self.0;
        let input = job_input(&state)?;
        let reader = open_source(ctx, &input).await?;
        let (plan, scratch, stem) = (
            ctx.plan.clone(),
            ctx.scratch.clone(),
            format!("{}-{}", input.job_id, uuid::Uuid::new_v4().simple()),
        );
        let name = input.source_key.clone();
        let output = tokio::task::spawn_blocking(move || {
            let options = Options { source_name: Some(&name), progress: None };
            run_transform(&plan, reader, &scratch, &stem, &options)
        })
        .await
        .map_err(|e| TaskError::transient(errors::UNAVAILABLE, format!("transform crashed: {e}")))?
        .map_err(|e| process_error(e, &input));
        let mut output = output?;
        let result = self.store(&input, &mut output).await;
        let _ = std::fs::remove_file(&output.results);
        let _ = std::fs::remove_file(&output.errors);
        let keys = result?;
        Ok(merge(state, json!({ fields::SUMMARY: output.summary, fields::OUTPUT_KEYS: keys })))
    }
}

impl Transform {
    /// Stores results, error report and summary (last), and loads the records sink.
    async fn store(&self, input: &JobInput, output: &mut TransformOutput) -> Result<Value, TaskError> {
        let ctx = &self.0;
        let out_bucket = &ctx.config.buckets.output;
        let keys = OutputKeys::for_source(
            &input.source_bucket,
            &input.source_key,
            ctx.pipeline.output.format.extension(),
        );
        output.summary.source = Some(SourceRef {
            bucket: Some(input.source_bucket.clone()),
            key: input.source_key.clone(),
            job_id: Some(input.job_id.clone()),
            pipeline: Some(input.pipeline.clone()),
        });
        let metadata = Metadata::from([("job_id".to_string(), input.job_id.clone())]);

        if let Some(sink) = &ctx.ports.records {
            load_records(sink.as_ref(), input, &output.results).await?;
        }
        ctx.ports
            .objects
            .put_file(out_bucket, &keys.results, &output.results, metadata.clone())
            .await
            .map_err(|e| port_error(e, &format!("storing {out_bucket}/{}", keys.results)))?;

        let mut stored = json!({ "results": keys.results, "summary": keys.summary });
        if output.summary.invalid_rows > 0 {
            let report = error_report(&output.summary, &output.errors)
                .map_err(|e| io_error(e, "reading spooled errors"))?;
            ctx.ports
                .objects
                .put(out_bucket, &keys.errors, Bytes::from(report), metadata.clone())
                .await
                .map_err(|e| port_error(e, &format!("storing {out_bucket}/{}", keys.errors)))?;
            stored["errors"] = json!(keys.errors);
        } else {
            // A report left by an earlier version of this source would now be wrong.
            ctx.ports
                .objects
                .delete(out_bucket, &keys.errors)
                .await
                .map_err(|e| port_error(e, "removing a stale error report"))?;
        }
        let summary = serde_json::to_vec_pretty(&output.summary).expect("summary serializes");
        ctx.ports
            .objects
            .put(out_bucket, &keys.summary, Bytes::from(summary), metadata)
            .await
            .map_err(|e| port_error(e, &format!("storing {out_bucket}/{}", keys.summary)))?;
        Ok(stored)
    }
}

/// Upserts every valid row as a `pk`/`sk` item, as the seeds' DynamoDB loader did.
async fn load_records(
    sink: &dyn weir_ports::RecordsSink,
    input: &JobInput,
    results: &Path,
) -> Result<(), TaskError> {
    let file = File::open(results).map_err(|e| io_error(e, "reading spooled results"))?;
    let pk = format!("CSV#{}/{}", input.source_bucket, input.source_key);
    let mut batch = Vec::with_capacity(RECORDS_BATCH);
    for (i, line) in BufReader::new(file).lines().enumerate() {
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
