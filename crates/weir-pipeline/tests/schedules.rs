//! Schedules fire once per due time: across a restart (a time missed while stopped fires once
//! at start), across two engines sharing one job store, and on the anchor's grid after a
//! restart. The store is the real embedded one (SQLite in a temporary data dir), opened anew
//! for each "process"; the clock is passed in, so the tests cover hours in milliseconds.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use weir_backends::{LocalObjectStore, SqliteFile, SqliteJobStore, SqliteQueue};
use weir_core::schedule_config::{ScheduleConfig, WorkKind};
use weir_core::Config;
use weir_pipeline::schedule::{Fired, Scheduler};
use weir_pipeline::{Engine, Ports};
use weir_ports::QueueSettings;

fn schedule(name: &str, expression: &str, work: WorkKind) -> ScheduleConfig {
    ScheduleConfig {
        name: name.into(),
        expression: expression.into(),
        time_zone: None,
        work,
        pipeline: None,
        prefix: None,
        bucket: None,
    }
}

fn config() -> Config {
    let mut c = Config::bundled();
    c.schedules = vec![
        schedule("hourly-sweep", "rate(1 hour)", WorkKind::RetentionSweep),
        schedule("daily-report", "cron(0 8 * * ? *)", WorkKind::DailyReport),
    ];
    c
}

/// An engine over the data dir, as one `weir run` process opens it.
async fn open(dir: &std::path::Path, config: &Config) -> Scheduler {
    let state = SqliteFile::open(&dir.join("weir.db")).unwrap();
    let ports = Ports {
        objects: Arc::new(LocalObjectStore::open(dir).unwrap()),
        queue: Arc::new(SqliteQueue::in_file(&state, QueueSettings::from(&config.queue)).unwrap()),
        jobs: Arc::new(SqliteJobStore::in_file(&state).unwrap()),
        records: None,
        notifier: Arc::new(common::Recorder::default()),
        warehouses: Default::default(),
    };
    let engine = Arc::new(Engine::new(config.clone(), ports, dir.join(".tmp")).unwrap());
    engine.ensure_buckets().await.unwrap();
    Scheduler::new(engine).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn names(fired: &[Fired]) -> Vec<(String, DateTime<Utc>)> {
    fired.iter().map(|f| (f.name.clone(), f.due)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_due_while_weir_was_stopped_fires_exactly_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = config();
    let start = t("2026-03-02T07:10:00Z");
    {
        let first = open(dir.path(), &config).await;
        assert!(first.tick(start).await.unwrap().is_empty(), "nothing is due when first seen");
        let fired = first.tick(start + Duration::minutes(55)).await.unwrap();
        assert_eq!(names(&fired), [("daily-report".into(), t("2026-03-02T08:00:00Z"))]);
        // The 08:00 firing reports on the day before, into the output bucket.
        let key = "weir-output/reports/2026-03-01/daily_report.html";
        assert!(
            fired[0].outcome.starts_with(&format!("daily report of 2026-03-01: {key}")),
            "{}",
            fired[0].outcome
        );
        let html = std::fs::read_to_string(dir.path().join(key)).expect("the report is written");
        assert!(html.contains("2026-03-01"), "the report names its day");
        assert!(dir.path().join("weir-output/reports/2026-03-01/daily_report.json").exists());
    }
    // Stopped for two days and a half: five hourly sweeps and two reports were due meanwhile.
    let restarted = open(dir.path(), &config).await;
    let back = t("2026-03-04T19:40:00Z");
    let fired = restarted.tick(back).await.unwrap();
    assert_eq!(
        names(&fired),
        [
            // The rate counts from when it was first seen (07:10), not from the restart.
            ("hourly-sweep".into(), t("2026-03-04T19:10:00Z")),
            ("daily-report".into(), t("2026-03-04T08:00:00Z")),
        ],
        "each missed schedule fires once, for its latest time"
    );
    assert!(fired[0].outcome.starts_with("retention: 0 objects"), "{}", fired[0].outcome);
    // Looking again, or restarting again, fires nothing more until the next due time.
    assert!(restarted.tick(back + Duration::minutes(29)).await.unwrap().is_empty());
    drop(restarted);
    let again = open(dir.path(), &config).await;
    assert!(again.tick(back + Duration::minutes(29)).await.unwrap().is_empty());
    assert_eq!(
        names(&again.tick(back + Duration::minutes(30)).await.unwrap()),
        [("hourly-sweep".into(), t("2026-03-04T20:10:00Z"))]
    );

    // `weir schedules`' view: the last run and the next, from the store.
    let jobs = SqliteJobStore::open(&dir.path().join("weir.db")).unwrap();
    let planned = weir_pipeline::schedule::planned(&config).unwrap();
    let status =
        weir_pipeline::schedule::status(&jobs, &planned, back + Duration::minutes(31)).await.unwrap();
    let sweep = &status[0];
    assert_eq!(
        (sweep.last_due, sweep.next),
        (Some(t("2026-03-04T20:10:00Z")), Some(t("2026-03-04T21:10:00Z")))
    );
    let report = &status[1];
    assert_eq!(
        (report.last_due, report.next),
        (Some(t("2026-03-04T08:00:00Z")), Some(t("2026-03-05T08:00:00Z")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sharing_one_store_fire_each_due_time_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config();
    let (a, b) = (open(dir.path(), &config).await, open(dir.path(), &config).await);
    let start = t("2026-03-02T00:30:00Z");
    a.tick(start).await.unwrap();
    let mut fired = Vec::new();
    // Both look at the clock at the same moments, every 10 minutes for two days.
    for step in 1..=(2 * 24 * 6) {
        let now = start + Duration::minutes(10 * step);
        let (x, y) = tokio::join!(a.tick(now), b.tick(now));
        fired.extend(names(&x.unwrap()));
        fired.extend(names(&y.unwrap()));
    }
    let sweeps = fired.iter().filter(|(n, _)| n == "hourly-sweep").count();
    let reports: Vec<_> = fired.iter().filter(|(n, _)| n == "daily-report").map(|(_, d)| *d).collect();
    assert_eq!(sweeps, 48, "one sweep per hour over two days, not one per engine");
    assert_eq!(reports, [t("2026-03-02T08:00:00Z"), t("2026-03-03T08:00:00Z")]);
    let mut dues: Vec<_> = fired.iter().map(|(n, d)| (n.clone(), *d)).collect();
    dues.sort();
    dues.dedup();
    assert_eq!(dues.len(), fired.len(), "a due time fired twice");
}
