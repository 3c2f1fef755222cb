//! `weir put`: upload files into the input bucket, as `aws s3 cp` would.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use weir_core::{Job, JobStatus};
use weir_pipeline::ingest;
use weir_ports::{JobStore, Metadata};

use crate::cli::{Global, PutArgs};
use crate::{backend, config};

pub async fn run(global: &Global, args: PutArgs) -> Result<u8> {
    if args.key.is_some() && args.files.len() > 1 {
        bail!(
            "--key names one object; give one file, or leave --key out to upload each as <prefix><file name>"
        );
    }
    let loaded = config::load(global)?;
    let ports = backend::ports(&loaded, None).await?;
    let bucket = args.bucket.clone().unwrap_or_else(|| loaded.config.buckets.input.clone());
    ports.objects.create_bucket(&bucket).await?;
    let mut jobs = Vec::new();
    let mut without_job = 0;
    for file in &args.files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("a file to upload needs a name")?;
        let key = match (&args.key, &args.prefix) {
            (Some(key), _) => key.clone(),
            (None, Some(prefix)) => format!("{prefix}{name}"),
            (None, None) => format!("{}{name}", default_prefix(&loaded.config, &bucket, &name)),
        };
        let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let uploading = || format!("uploading {} to {bucket}/{key}", file.display());
        let (info, job) = if loaded.config.aws.is_some() {
            // On AWS, S3 sends the event itself (the notification `weir setup aws` made).
            let info = ports
                .objects
                .put(&bucket, &key, Bytes::from(data), Metadata::new())
                .await
                .with_context(uploading)?;
            let job = loaded
                .config
                .pipeline_for(&bucket, &key)
                .map(|p| Job::queued(&bucket, &key, &info.etag, info.size, Some(&p.name)));
            (info, job)
        } else {
            ingest::put_object(&ports, &loaded.config, &bucket, &key, Bytes::from(data), Metadata::new())
                .await
                .with_context(uploading)?
        };
        match job {
            Some(job) => {
                outln!("{}\t{bucket}/{key}\t{} bytes", job.job_id, info.size)?;
                jobs.push(job);
            }
            None => {
                without_job += 1;
                outln!("-\t{bucket}/{key}\t{} bytes\t(no pipeline takes this key: no job)", info.size)?;
            }
        }
    }
    if !args.wait {
        return Ok(0);
    }
    if without_job > 0 {
        eprintln!(
            "{without_job} file(s) made no job: no pipeline's source (prefix and suffix) takes their key; `weir check` lists the pipelines, --key/--prefix choose the key"
        );
    }
    let finished = wait_for(ports.jobs.as_ref(), &jobs, Duration::from_secs(args.timeout)).await?;
    let mut all_ok = true;
    for job in &finished {
        all_ok &= job.status == JobStatus::Succeeded;
        let error = job.error.as_deref().map(|e| format!("\t{e}")).unwrap_or_default();
        outln!("{}\t{}\t{}{error}", job.job_id, job.status, job.source_key)?;
    }
    Ok(if all_ok && without_job == 0 { 0 } else { 1 })
}

/// The prefix a file named `name` goes under when neither --key nor --prefix is given: that of
/// the first pipeline on `bucket` (in the config's order) whose source takes `<prefix><name>`,
/// else that of the bucket's first pipeline (its job-less upload is then reported), else none.
fn default_prefix<'c>(config: &'c weir_core::Config, bucket: &str, name: &str) -> &'c str {
    let on_bucket = || {
        config
            .pipelines
            .iter()
            .filter(|p| p.source.bucket.as_deref().unwrap_or(&config.buckets.input) == bucket)
    };
    on_bucket()
        .find(|p| p.source.matches(&format!("{}{name}", p.source.prefix)))
        .or_else(|| on_bucket().next())
        .map_or("", |p| p.source.prefix.as_str())
}

/// Polls the job store until every job is terminal, or the timeout passes.
async fn wait_for(store: &dyn JobStore, jobs: &[Job], timeout: Duration) -> Result<Vec<Job>> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut current = Vec::new();
        for job in jobs {
            current.push(store.get(&job.job_id).await?.unwrap_or_else(|| job.clone()));
        }
        if current.iter().all(|j| j.status.is_terminal()) {
            return Ok(current);
        }
        if Instant::now() >= deadline {
            let waiting: Vec<_> =
                current.iter().filter(|j| !j.status.is_terminal()).map(|j| j.job_id.to_string()).collect();
            bail!(
                "timed out after {}s waiting for {} (is `weir run` running on this data dir?)",
                timeout.as_secs(),
                waiting.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
