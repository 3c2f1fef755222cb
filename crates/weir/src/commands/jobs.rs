//! `weir jobs` and `weir jobs show ID`: what happened to each file.

use anyhow::{Context, Result};
use weir_core::{Job, JobId, JobStatus};
use weir_ports::JobFilter;

use crate::cli::{Global, JobsArgs, JobsCommand};
use crate::config;

pub async fn run(global: &Global, args: JobsArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let store = crate::backend::job_store(&loaded).await?;
    match args.show {
        Some(JobsCommand::Show { job_id, json }) => {
            let job = store.get(&JobId(job_id.clone())).await?.with_context(|| format!("no job {job_id}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                print!("{}", describe(&job));
            }
        }
        None => {
            let status = match &args.status {
                Some(s) => Some(JobStatus::parse(s).with_context(|| {
                    let all: Vec<_> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    format!("unknown status {s:?}; use one of {}", all.join(", "))
                })?),
                None => None,
            };
            let jobs = store.list(&JobFilter { status, limit: args.limit }).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                print!("{}", table(&jobs));
            }
        }
    }
    Ok(0)
}

/// A fixed-width table: job, status, file, rows, outputs, error.
pub fn table(jobs: &[Job]) -> String {
    let mut rows = vec![[
        "JOB".to_string(),
        "STATUS".into(),
        "FILE".into(),
        "VALID".into(),
        "INVALID".into(),
        "OUTPUT / ERROR".into(),
    ]];
    for j in jobs {
        let detail = match (&j.error, j.output_keys.get("results")) {
            (Some(e), _) => e.chars().take(100).collect(),
            (None, Some(r)) => r.clone(),
            (None, None) => String::new(),
        };
        rows.push([
            j.job_id.to_string(),
            j.status.to_string(),
            j.source_key.clone(),
            j.valid_rows.to_string(),
            j.invalid_rows.to_string(),
            detail,
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, (w, c)) in widths.iter().zip(r).enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// One job, readable: facts, outputs, and the workflow trace.
pub fn describe(j: &Job) -> String {
    let mut s = format!(
        "job       {}\nstatus    {}\nsource    {}/{} ({} bytes, etag {})\npipeline  {}\nrows      {} total, {} valid, {} invalid\nattempts  {}\ncreated   {}\n",
        j.job_id,
        j.status,
        j.source_bucket,
        j.source_key,
        j.source_size,
        j.source_etag,
        j.pipeline.as_deref().unwrap_or("-"),
        j.total_rows,
        j.valid_rows,
        j.invalid_rows,
        j.attempts,
        j.created_at.to_rfc3339(),
    );
    if let Some(f) = j.finished_at {
        s.push_str(&format!("finished  {} ({} ms)\n", f.to_rfc3339(), j.duration_ms.unwrap_or_default()));
    }
    if let Some(e) = &j.error {
        s.push_str(&format!("error     {e}\n"));
    }
    if !j.output_keys.is_empty() {
        s.push_str("outputs\n");
        for (role, key) in &j.output_keys {
            s.push_str(&format!("  {role:<9} {key}\n"));
        }
    }
    if !j.steps.is_empty() {
        s.push_str("workflow\n");
        for step in &j.steps {
            let mark = if step.outcome == "ok" { "✓" } else { "✗" };
            let error = step.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default();
            s.push_str(&format!(
                "  {mark} {:<26} {:>6} ms  {}{error}\n",
                step.state, step.duration_ms, step.outcome
            ));
        }
    }
    s
}
