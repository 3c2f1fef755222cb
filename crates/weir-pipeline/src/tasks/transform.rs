//! `weir:transform`: the one streaming pass over the file, and storing what it produced.
//!
//! The object is streamed from the store into the synchronous processing core on a blocking
//! thread; results and invalid-row descriptions are spooled to local files and stored under the
//! source's deterministic output keys, summary last. A small object (up to [`SMALL_SOURCE`]) is
//! read whole and processed on the task's own thread with its outputs in memory: for a file of
//! a few kilobytes, the thread handoffs and scratch files of the streaming path cost many times
//! the processing itself.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{json, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};
use weir_core::config::OutputFormat;
use weir_core::config::SummaryConfig;
use weir_core::output_layout::RenderedKeys;
use weir_core::rows::RowBatch;
use weir_core::summary::{ResultObject, SourceRef};
use weir_core::{ErrorClass, Summary};
use weir_ports::{LoadError, PortError, PutBody, PutItem, RecordItem, WarehouseInfo};
use weir_process::{EmitRows, Options, Plan, ProcessError};
use weir_workflow::{Task, TaskError};

use super::warehouse::{self, Load};
use super::{errors, io_error, job_input, merge, port_error, TaskContext};
use crate::provenance::Provenance;
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
    /// The valid rows in each of the plan's output formats, in [`Plan::output_formats`] order.
    pub results: Vec<(OutputFormat, PathBuf)>,
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
    let results: Vec<(OutputFormat, PathBuf)> = plan
        .output_formats()
        .iter()
        .map(|f| (*f, dir.join(format!("{stem}.results.{}", f.extension()))))
        .collect();
    let errors = dir.join(format!("{stem}.errors.ndjson"));
    let run = || -> Result<Summary, ProcessError> {
        // One writer per format; with several, each gets a smaller buffer (memory stays flat).
        let capacity = (1 << 20) / results.len();
        let mut outs = Vec::with_capacity(results.len());
        for (_, path) in &results {
            outs.push(BufWriter::with_capacity(capacity, File::create(path)?));
        }
        let mut errs = CreateOnWrite { path: &errors, file: None };
        let summary = weir_process::process_many(
            plan,
            BufReader::with_capacity(1 << 20, input),
            outs.iter_mut().collect(),
            &mut errs,
            options,
        )?;
        for out in &mut outs {
            out.flush()?;
        }
        errs.flush()?;
        Ok(summary)
    };
    match run() {
        Ok(summary) => Ok(TransformOutput { summary, results, errors }),
        Err(e) => {
            for (_, path) in &results {
                let _ = std::fs::remove_file(path);
            }
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

/// Writes the error report document to `out`: the source, the counts, whether (and why) it
/// leaves rows out, and the described invalid rows. The spooled descriptions (one NDJSON line
/// each, as `weir-process` wrote them; no file when none was written) are copied line by line,
/// never held whole: a report is as large as `summary.max_error_report_bytes` lets it be, and
/// costs a line of memory to write.
pub fn error_report(
    summary: &Summary,
    errors_ndjson: &Path,
    limits: &SummaryConfig,
    out: impl Write,
) -> std::io::Result<()> {
    let open = || match File::open(errors_ndjson) {
        Ok(f) => Ok(Box::new(BufReader::new(f)) as Box<dyn BufRead>),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Box::new(&b""[..]) as Box<dyn BufRead>),
        Err(e) => Err(e),
    };
    error_report_from(summary, open, limits, out)
}

/// [`error_report`] from the invalid-row descriptions that `open` reads (twice: once to count
/// them, once to copy them).
fn error_report_from<R: BufRead>(
    summary: &Summary,
    open: impl Fn() -> std::io::Result<R>,
    limits: &SummaryConfig,
    mut out: impl Write,
) -> std::io::Result<()> {
    let mut reported = 0u64;
    for line in open()?.split(b'\n') {
        reported += u64::from(!line?.is_empty());
    }
    let truncated = reported < summary.invalid_rows;
    let mut head = vec![
        ("source", json!(summary.source)),
        ("total_rows", json!(summary.total_rows)),
        ("invalid_rows", json!(summary.invalid_rows)),
        ("errors_reported", json!(reported)),
        ("truncated", json!(truncated)),
    ];
    if truncated {
        let why = if reported >= limits.max_errors_in_report as u64 {
            format!(
                "only the first {} invalid rows are described (summary.max_errors_in_report)",
                limits.max_errors_in_report
            )
        } else {
            format!(
                "descriptions stop at {} bytes (summary.max_error_report_bytes)",
                limits.max_error_report_bytes
            )
        };
        head.push(("truncated_because", json!(why)));
    }
    out.write_all(b"{\n")?;
    for (k, v) in &head {
        writeln!(out, "  {}: {},", json!(k), v)?;
    }
    out.write_all(b"  \"errors\": [")?;
    let mut first = true;
    for line in open()?.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        out.write_all(if first { b"\n    " } else { b",\n    " })?;
        out.write_all(&line)?;
        first = false;
    }
    out.write_all(if first { b"]\n}\n" } else { b"\n  ]\n}\n" })?;
    out.flush()
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
    Memory { summary: Summary, results: Vec<(OutputFormat, Vec<u8>)>, errors: Vec<u8> },
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
            for (_, path) in &o.results {
                let _ = std::fs::remove_file(path);
            }
            let _ = std::fs::remove_file(&o.errors);
        }
    }
}

#[async_trait]
impl Task for Transform {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let ctx = &self.0;
        let input = job_input(&state)?;
        // The keys first: a source whose keys cannot be made fails before any work.
        let keys = output_keys(ctx, &input)?;
        let source = open_source(ctx, &input).await?;
        let mut load = warehouse::begin(ctx, &input).await?;
        let mut produced = match source {
            Source::Small(body) => self.pass_in_memory(&input, &body, &mut load).await?,
            Source::Stream(reader) => self.pass_streamed(&input, reader, &mut load).await?,
        };
        let result = self.store(&input, &keys, &mut produced, load).await;
        produced.discard_files();
        let (keys, loaded) = result?;
        let mut fields = json!({ fields::SUMMARY: produced.into_summary(), fields::OUTPUT_KEYS: keys });
        if let Some(loaded) = loaded {
            fields[fields::WAREHOUSE] = loaded;
        }
        Ok(merge(state, fields))
    }
}

impl Transform {
    /// The pass over a small source, on this task's thread, outputs in memory; its rows (a few
    /// batches at most) go to the load afterwards.
    async fn pass_in_memory(
        &self,
        input: &JobInput,
        body: &Bytes,
        load: &mut Option<Load>,
    ) -> Result<Produced, TaskError> {
        let ctx = &self.0;
        let (summary, results, errors, batches) = {
            let batches = RefCell::new(Vec::new());
            let emit = |batch: RowBatch| {
                batches.borrow_mut().push(batch);
                Ok(None)
            };
            let options = Options {
                source_name: Some(&input.source_key),
                size_hint: Some(body.len() as u64),
                rows: load.is_some().then_some(&emit as EmitRows<'_>),
                ..Options::default()
            };
            let formats = ctx.plan.output_formats();
            let mut results: Vec<Vec<u8>> =
                formats.iter().map(|_| Vec::with_capacity(body.len() * 2)).collect();
            let mut errors = Vec::new();
            let summary = weir_process::process_many(
                &ctx.plan,
                &body[..],
                results.iter_mut().collect(),
                &mut errors,
                &options,
            )
            .map_err(|e| process_error(e, input))?;
            let results = formats.iter().copied().zip(results).collect();
            (summary, results, errors, batches.into_inner())
        };
        if let Some(load) = load {
            for batch in batches {
                if let Err(e) = load.tx.write(&batch).await {
                    let info = load.info.clone();
                    return Err(self.load_failed(e, &info, input).await);
                }
            }
        }
        Ok(Produced::Memory { summary, results, errors })
    }

    /// The streaming pass on a blocking thread, outputs spooled to files. With a load, the pass
    /// hands its batches to this task through a small channel: a slow database slows the pass,
    /// rows never pile up.
    async fn pass_streamed(
        &self,
        input: &JobInput,
        reader: Box<dyn Read + Send>,
        load: &mut Option<Load>,
    ) -> Result<Produced, TaskError> {
        let ctx = &self.0;
        let _pass = ctx.passes.acquire().await.expect("the semaphore is never closed");
        let (plan, scratch, stem) = (
            ctx.plan.clone(),
            ctx.scratch.clone(),
            format!("{}-{}", input.job_id, uuid::Uuid::new_v4().simple()),
        );
        let (name, size) = (input.source_key.clone(), input.source_size);
        let (batches, receiver) = tokio::sync::mpsc::channel::<RowBatch>(2);
        // Written batches go back to the pass to be filled again (see `warehouse::feed`).
        let (spent, spent_batches) = std::sync::mpsc::sync_channel::<RowBatch>(2);
        let loading = load.is_some();
        let pass = tokio::task::spawn_blocking(move || {
            let emit = move |batch: RowBatch| {
                batches.blocking_send(batch).map_err(|_| std::io::Error::other(warehouse::LOAD_STOPPED))?;
                Ok(spent_batches.try_recv().ok())
            };
            let options = Options {
                source_name: Some(&name),
                size_hint: Some(size),
                rows: loading.then_some(&emit as EmitRows<'_>),
                ..Options::default()
            };
            run_transform(&plan, reader, &scratch, &stem, &options)
        });
        let (output, fed) = match load.as_mut() {
            Some(load) => tokio::join!(pass, warehouse::feed(load.tx.as_mut(), receiver, spent)),
            None => {
                drop(receiver);
                (pass.await, Ok(()))
            }
        };
        let output = output
            .map_err(|e| TaskError::transient(errors::UNAVAILABLE, format!("transform crashed: {e}")))?;
        if let Err(e) = fed {
            // The load stopped the pass: its error is the one that counts.
            if let Ok(o) = output {
                Produced::Files(o).discard_files();
            }
            let info = load.take().map(|l| l.info).expect("fed by a load");
            return Err(self.load_failed(e, &info, input).await);
        }
        Ok(Produced::Files(output.map_err(|e| process_error(e, input))?))
    }

    /// A failed load as the workflow sees it; a refused row is named by its line in the source.
    async fn load_failed(&self, e: LoadError, info: &WarehouseInfo, input: &JobInput) -> TaskError {
        let line = match &e {
            LoadError::Refused { row: Some(n), .. } => self.line_of_row(input, *n).await,
            _ => None,
        };
        warehouse::unavailable_or_refused(e, info, input, line)
    }

    /// The source line of the `n`-th valid row, reading the source again (see
    /// [`warehouse::line_of_row`]).
    async fn line_of_row(&self, input: &JobInput, n: u64) -> Option<u64> {
        let ctx = &self.0;
        let source = open_source(ctx, input).await.ok()?;
        let (plan, name) = (ctx.plan.clone(), input.source_key.clone());
        match source {
            Source::Small(body) => warehouse::line_of_row(&plan, &body[..], &name, n),
            Source::Stream(reader) => {
                tokio::task::spawn_blocking(move || warehouse::line_of_row(&plan, reader, &name, n))
                    .await
                    .ok()?
            }
        }
    }

    /// Commits the warehouse load, then stores results, error report and summary (last), and
    /// loads the records sink. Returns the output keys and the load's record.
    async fn store(
        &self,
        input: &JobInput,
        keys: &RenderedKeys,
        produced: &mut Produced,
        load: Option<Load>,
    ) -> Result<(Value, Option<Value>), TaskError> {
        let ctx = &self.0;
        let out_bucket = &ctx.config.buckets.output;
        produced.summary_mut().results = keys
            .results
            .iter()
            .map(|(format, key)| ResultObject {
                format: format.extension().to_owned(),
                bucket: out_bucket.clone(),
                key: key.clone(),
            })
            .collect();
        produced.summary_mut().source = Some(SourceRef {
            bucket: Some(input.source_bucket.clone()),
            key: input.source_key.clone(),
            job_id: Some(input.job_id.clone()),
            pipeline: Some(input.pipeline.clone()),
        });
        let metadata = Provenance::of_job(input).metadata([]);
        let objects = &ctx.ports.objects;
        super::check_still_newest(ctx, input).await?;
        // The load commits before the outputs are stored: if storing fails, the retry loads
        // the file again, replacing these rows.
        let loaded = match load {
            Some(Load { tx, info }) => match tx.commit().await {
                Ok(rows) => Some(warehouse::record(&info, rows)),
                Err(e) => return Err(self.load_failed(e, &info, input).await),
            },
            None => None,
        };

        if let Some(sink) = &ctx.ports.records {
            // From the NDJSON results (`weir check` refuses a records sink without them).
            match produced {
                Produced::Files(o) => {
                    let Some((_, path)) = o.results.iter().find(|r| r.0 == OutputFormat::Ndjson) else {
                        return Err(no_ndjson_for_records());
                    };
                    let file = File::open(path).map_err(|e| io_error(e, "reading spooled results"))?;
                    load_records(sink.as_ref(), input, BufReader::new(file)).await?
                }
                Produced::Memory { results, .. } => {
                    let Some((_, rows)) = results.iter().find(|r| r.0 == OutputFormat::Ndjson) else {
                        return Err(no_ndjson_for_records());
                    };
                    load_records(sink.as_ref(), input, &rows[..]).await?
                }
            }
        }
        let (results, report) = match produced {
            Produced::Files(o) => {
                let report = match o.summary.invalid_rows {
                    0 => None,
                    _ => {
                        let path = o.errors.with_extension("report.json");
                        let file = BufWriter::new(
                            File::create(&path).map_err(|e| io_error(e, "writing the error report"))?,
                        );
                        error_report(&o.summary, &o.errors, &ctx.pipeline.summary, file)
                            .map_err(|e| io_error(e, "writing the error report"))?;
                        Some(PutBody::File(path))
                    }
                };
                let results = o.results.iter().map(|(_, path)| PutBody::File(path.clone())).collect();
                (results, report)
            }
            Produced::Memory { summary, results, errors } => {
                let report = match summary.invalid_rows {
                    0 => None,
                    _ => {
                        let mut report = Vec::new();
                        error_report_from(summary, || Ok(&errors[..]), &ctx.pipeline.summary, &mut report)
                            .map_err(|e| io_error(e, "writing the error report"))?;
                        Some(PutBody::Bytes(Bytes::from(report)))
                    }
                };
                let results = results
                    .iter_mut()
                    .map(|(_, bytes)| PutBody::Bytes(Bytes::from(std::mem::take(bytes))))
                    .collect::<Vec<_>>();
                (results, report)
            }
        };
        // The job's output keys: `results` is the first format's, `results.<ext>` each other's.
        let mut stored = json!({ "results": keys.results[0].1, "summary": keys.summary });
        for (format, key) in &keys.results[1..] {
            stored[format!("results.{}", format.extension())] = json!(key);
        }
        let mut items: Vec<PutItem> = keys
            .results
            .iter()
            .zip(results)
            .map(|((_, key), body)| PutItem { key: key.clone(), body, metadata: metadata.clone() })
            .collect();
        let report_file = match &report {
            Some(PutBody::File(path)) => Some(path.clone()),
            _ => None,
        };
        if let Some(body) = report {
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
        let put = objects.put_all(out_bucket, items).await;
        if let Some(path) = report_file {
            let _ = std::fs::remove_file(path);
        }
        put.map_err(|e| {
            port_error(
                e,
                &format!(
                    "storing the outputs of {}/{} in {out_bucket}",
                    input.source_bucket, input.source_key
                ),
            )
        })?;
        Ok((stored, loaded))
    }
}

/// The keys of the job's data outputs, from the pipeline's templates; a key S3 would refuse
/// (longer than 1024 bytes, ...) fails the job for good, naming the file and the template.
fn output_keys(ctx: &TaskContext, input: &JobInput) -> Result<RenderedKeys, TaskError> {
    super::templates(ctx)?.render(&super::source_facts(input)).map_err(|e| {
        TaskError::permanent(
            errors::INVALID_INPUT,
            format!(
                "{}/{}: no output key can be made for this file from the pipeline's templates: {e}",
                input.source_bucket, input.source_key
            ),
        )
    })
}

fn no_ndjson_for_records() -> TaskError {
    TaskError::permanent(
        "States.Runtime",
        "the records sink loads NDJSON results and the pipeline writes none (output.format or output.also)",
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(summary: &Summary, errors: &[u8], limits: &SummaryConfig) -> Value {
        let mut out = Vec::new();
        error_report_from(summary, || Ok(errors), limits, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn the_report_copies_the_descriptions_and_says_what_it_left_out() {
        let summary = Summary { total_rows: 10, invalid_rows: 3, ..Default::default() };
        let lines = b"{\"line\":2,\"field\":\"a\"}\n{\"line\":5,\"field\":\"b\"}\n";
        let limits = SummaryConfig { max_errors_in_report: 2, ..Default::default() };
        let r = report(&summary, lines, &limits);
        assert_eq!(r["errors"], json!([{"line": 2, "field": "a"}, {"line": 5, "field": "b"}]));
        assert_eq!((r["errors_reported"].as_u64(), r["truncated"].as_bool()), (Some(2), Some(true)));
        assert!(r["truncated_because"].as_str().unwrap().contains("max_errors_in_report"), "{r}");
        // Fewer rows than the count allows: the byte limit stopped them.
        let r = report(&summary, lines, &SummaryConfig::default());
        assert!(r["truncated_because"].as_str().unwrap().contains("max_error_report_bytes"), "{r}");
        // Everything described: nothing to explain; no descriptions at all is an empty list.
        let all = Summary { invalid_rows: 2, ..summary.clone() };
        assert!(report(&all, lines, &limits).get("truncated_because").is_none());
        assert_eq!(report(&all, b"", &limits)["errors"], json!([]));
    }
}
