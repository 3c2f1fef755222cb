//! Fills a data dir's job store with finished jobs, for `bench/observe.sh`: how the cost of
//! `/metrics`, the overview and `weir jobs` grows (or does not) with history.
//!
//! The jobs go through the store's own writes (`JobStore::save`), so its counters are kept as
//! weir keeps them; they are spread over the last seven days, with the statuses, row counts,
//! durations and workflow steps of real ones.
//!
//! Usage: cargo run --release -p weir-backends --example seed_jobs -- DATA_DIR JOBS

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use weir_backends::{SqliteFile, SqliteJobStore};
use weir_core::job::StepRecord;
use weir_core::{Job, JobStatus};
use weir_ports::JobStore;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: seed_jobs DATA_DIR JOBS");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    let file = SqliteFile::open(&weir_backends::state_db(&dir)).expect("weir.db");
    let store = Arc::new(SqliteJobStore::in_file(&file).expect("job store"));
    let have: u64 = store.counts().await.expect("counts").values().sum();
    let start = Instant::now();
    let now = Utc::now();
    let week_ms = 7 * 24 * 3600 * 1000;
    // Writers in parallel: the store's group commit makes each transaction hold many.
    let writers: Vec<_> = (0..64u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut i = have + w;
                while i < n {
                    store.save(&job(i, n, now, week_ms)).await.expect("save");
                    i += 64;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let total: u64 = store.counts().await.expect("counts").values().sum();
    eprintln!(
        "seeded {} jobs in {:.1} s; the store holds {total}",
        n.saturating_sub(have),
        start.elapsed().as_secs_f64()
    );
}

/// The `i`-th of `n` jobs: created at a time spread evenly over the last week.
fn job(i: u64, n: u64, now: chrono::DateTime<Utc>, week_ms: i64) -> Job {
    let created = now - Duration::milliseconds(week_ms - (week_ms as u64 * i / n.max(1)) as i64);
    let mut j =
        Job::queued("weir-input", &format!("raw/seed/{i:08}.csv"), &format!("{i:032x}"), 1000, Some("sales"));
    j.created_at = created;
    j.started_at = Some(created);
    j.attempts = 1;
    let status = match i % 50 {
        0 => JobStatus::Rejected,
        1 => JobStatus::Failed,
        2 => JobStatus::Skipped,
        _ => JobStatus::Succeeded,
    };
    (j.total_rows, j.valid_rows, j.invalid_rows) = (20, 19, 1);
    j.steps =
        ["ValidateSchema", "CheckValidation", "TransformData", "ArchiveSource", "SendSuccessNotification"]
            .iter()
            .map(|s| StepRecord {
                state: s.to_string(),
                entered_at: created,
                duration_ms: 1,
                outcome: "ok".into(),
                ..Default::default()
            })
            .collect();
    j.finish(status, (status != JobStatus::Succeeded).then(|| "a reason".to_string()));
    let ms = 2 + (i % 97) as i64;
    j.finished_at = Some(created + Duration::milliseconds(ms));
    j.duration_ms = Some(ms as u64);
    j
}
