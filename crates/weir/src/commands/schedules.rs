//! `weir schedules`: each `[[schedule]]` with its work, time zone, next run and last run (in
//! its zone), from the job store's records (shared by every process that runs them).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use weir_core::schedule::Tz;

use crate::cli::{Global, SchedulesArgs};
use crate::config;

pub async fn run(global: &Global, args: SchedulesArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let planned = weir_pipeline::schedule::planned(&loaded.config)
        .context("a schedule's expression does not parse (weir check says which)")?;
    if planned.is_empty() {
        if !args.json {
            outln!("no [[schedule]] in {} (weir init's weir.toml has a commented example)", loaded.source)?;
        }
        return Ok(0);
    }
    let jobs = if loaded.config.aws.is_some() {
        crate::backend::job_store(&loaded).await?
    } else {
        std::fs::create_dir_all(&loaded.data_dir)?;
        let db = weir_backends::state_db(&loaded.data_dir);
        std::sync::Arc::new(weir_backends::SqliteJobStore::open(&db)?)
            as std::sync::Arc<dyn weir_ports::JobStore>
    };
    let status = weir_pipeline::schedule::status(jobs.as_ref(), &planned, Utc::now()).await?;
    // Times in each schedule's own zone, with its abbreviation (CET, EDT, UTC).
    let local = |t: Option<DateTime<Utc>>, zone: Tz| {
        t.map_or("-".to_string(), |t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z").to_string())
    };
    let rfc3339 = |t: Option<DateTime<Utc>>, zone: Tz| t.map(|t| t.with_timezone(&zone).to_rfc3339());
    if args.json {
        for s in &status {
            let row = serde_json::json!({
                    "name": s.name, "expression": s.expression, "work": s.work,
                    "time_zone": s.zone.name(),
                    "next": s.next.map(|t| t.to_rfc3339()),
                    "next_local": rfc3339(s.next, s.zone),
                    "last_due": s.last_due.map(|t| t.to_rfc3339()),
                    "last_due_local": rfc3339(s.last_due, s.zone),
                    "last_fired_at": s.fired_at.map(|t| t.to_rfc3339()),
            });
            outln!("{row}")?;
        }
        return Ok(0);
    }
    outln!(
        "{:<20} {:<24} {:<20} {:<16} {:<28} LAST RUN (DUE)",
        "SCHEDULE",
        "EXPRESSION",
        "TIME ZONE",
        "WORK",
        "NEXT"
    )?;
    for s in &status {
        outln!(
            "{:<20} {:<24} {:<20} {:<16} {:<28} {}",
            s.name,
            s.expression,
            s.zone.name(),
            s.work,
            local(s.next, s.zone),
            local(s.last_due, s.zone)
        )?;
    }
    Ok(0)
}
