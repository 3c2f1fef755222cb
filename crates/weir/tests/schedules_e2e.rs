//! Schedules on the real binary: `weir check` names a bad time zone by its path, and a
//! `weir run` started by the test fires a schedule that fell due while weir was stopped, once,
//! at start (its effect: the daily report written), and not again after a restart.
//!
//! The shortest schedule is a minute, so rather than wait for one the test records the
//! schedule as first seen three days ago in the data dir's job store (what an earlier
//! `weir run` would have left there): three of its daily times were missed, and the start
//! catches up the latest of them only.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{default_config, json_lines, ok, until, weir, weir_in, Proc};
use serde_json::Value;
use weir_core::schedule::Tz;
use weir_ports::JobStore;

const SCHEDULE: &str = "morning-report";

fn config_with_schedule(zone: &str) -> String {
    format!(
        "{}\n[[schedule]]\nname = \"{SCHEDULE}\"\nexpression = \"cron(0 3 * * ? *)\"\ntime_zone = \"{zone}\"\nwork = \"daily_report\"\n",
        default_config()
    )
}

#[test]
fn weir_check_names_an_unknown_time_zone_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, config_with_schedule("America/New_Yrok")).unwrap();
    let out = weir().arg("--config").arg(&config).arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "\n  schedule[0] ({SCHEDULE}).time_zone: \"America/New_Yrok\" is not a time zone of the IANA tz database"
        )),
        "{stdout}"
    );
    std::fs::write(&config, config_with_schedule("America/New_York")).unwrap();
    let check = ok(&weir().arg("--config").arg(&config).arg("check").output().unwrap());
    assert!(check.contains("ok"), "{check}");
}

/// `weir run` with its log (JSON lines, info) in `log`.
fn start(data: &Path, config: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc::spawn(
        weir_in(data)
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// The log line where the scheduler says its first look (the catch-up) is done.
fn first_look(log: &Path) -> Option<Value> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "schedules: first look at the clock done")
}

fn schedule_status(data: &Path, config: &Path) -> Value {
    let mut rows = json_lines(
        &weir_in(data).arg("--config").arg(config).args(["schedules", "--json"]).output().unwrap(),
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

#[test]
fn a_schedule_missed_while_stopped_fires_once_at_start_and_not_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, config_with_schedule("America/New_York")).unwrap();

    // First seen three days ago: 03:00 New York time has come at least twice since.
    let store = weir_backends::SqliteJobStore::open(&weir_backends::state_db(&data)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let seen = Utc::now() - chrono::Duration::days(3);
    let mark = runtime.block_on(store.schedule_mark(SCHEDULE, seen.timestamp_millis())).unwrap();
    assert_eq!((mark.anchor_ms, mark.last_due_ms), (seen.timestamp_millis(), None));
    drop(store);

    let log = dir.path().join("run-1.log");
    let mut run = start(&data, &config, &log);
    let look = until("the scheduler's first look", Duration::from_secs(60), || first_look(&log));
    assert_eq!(look["fired"], 1, "missed times are caught up once, not once each: {look}");
    let status = schedule_status(&data, &config);
    let (due, fired_at) = (time(&status["last_due"]), time(&status["last_fired_at"]));

    // The due time that fired is the latest 03:00 in New York before the firing.
    let zone: Tz = "America/New_York".parse().unwrap();
    let local_day = fired_at.with_timezone(&zone).date_naive();
    let latest = [local_day, local_day.pred_opt().unwrap()]
        .into_iter()
        .filter_map(|d| zone.from_local_datetime(&d.and_hms_opt(3, 0, 0).unwrap()).earliest())
        .map(|t| t.with_timezone(&Utc))
        .find(|t| *t <= fired_at)
        .unwrap();
    assert_eq!(due, latest, "{status}");
    assert_eq!(status["time_zone"], "America/New_York");
    let next = time(&status["next"]);
    assert!(next > fired_at && next - due <= chrono::Duration::hours(25), "the next 03:00: {status}");
    assert!(status["next_local"].as_str().unwrap().contains("T03:00:00-0"), "{status}");

    // Its work: the report of the (UTC) day before the due time, in the output bucket.
    let day = due.date_naive().pred_opt().unwrap();
    let html = data.join(format!("weir-output/reports/{day}/daily_report.html"));
    until("the scheduled daily report", Duration::from_secs(60), || html.exists().then_some(()));
    let reports = json_lines(
        &weir_in(&data).arg("--config").arg(&config).args(["report", "list", "--json"]).output().unwrap(),
    );
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["date"], day.to_string(), "{reports:?}");

    // The table shows the zone and the times in it.
    let table = ok(&weir_in(&data).arg("--config").arg(&config).arg("schedules").output().unwrap());
    let row = table.lines().find(|l| l.starts_with(SCHEDULE)).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("America/New_York") && row.contains(" 03:00:00 E"), "{table}");

    // A restart: the scheduler looks again and fires nothing; the record is as it was.
    run.terminate(Duration::from_secs(30));
    let log = dir.path().join("run-2.log");
    let _run = start(&data, &config, &log);
    let look =
        until("the scheduler's first look after the restart", Duration::from_secs(60), || first_look(&log));
    assert_eq!(look["fired"], 0, "{look}");
    let again = schedule_status(&data, &config);
    assert_eq!(
        (&again["last_due"], &again["last_fired_at"]),
        (&status["last_due"], &status["last_fired_at"])
    );
}
