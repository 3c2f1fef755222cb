//! Reliability through the CLI: the DLQ commands, reprocessing, and kill -9 at random moments.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json_lines, ok, until, Proc};
use serde_json::Value;
use weir_ports::{Queue, QueueSettings};

fn weir(data: &Path) -> Command {
    let mut c = common::weir_in(data);
    // No S3 endpoint or API: these tests drive weir through the CLI, and run side by side.
    c.env("WEIR_S3_LISTEN", "").env("WEIR_API_LISTEN", "");
    c
}

/// `weir dlq list --json`: the dead letters, oldest first.
fn dead_letters(data: &Path) -> Vec<Value> {
    json_lines(&weir(data).args(["dlq", "list", "--json"]).output().unwrap())
}

/// A config with test-speed timings (and optionally without reconcile-on-start).
fn write_config(data: &Path, reconcile: bool) {
    let text = common::default_config()
        .replace("visibility_timeout_secs = 30", "visibility_timeout_secs = 2")
        .replace("retry_base_ms = 1000", "retry_base_ms = 50")
        .replace("dlq_scan_secs = 5", "dlq_scan_secs = 1")
        .replace("reconcile_on_start = true", &format!("reconcile_on_start = {reconcile}"));
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(data.join("weir.toml"), text).unwrap();
}

fn start_run(data: &Path) -> Proc {
    Proc::spawn(weir(data).arg("run").stdout(Stdio::null()).stderr(Stdio::null()))
}

/// SIGTERM, and the process exits by itself.
fn stop(mut run: Proc) {
    run.terminate(Duration::from_secs(30));
}

fn jobs(data: &Path) -> Vec<Value> {
    ok(&weir(data).args(["jobs", "--json", "--limit", "10000"]).output().unwrap())
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

/// Like [`until`] with two minutes, but shows the jobs that are not done when it gives up.
fn until_or_dump<T>(data: &Path, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let stuck: Vec<_> = jobs(data).into_iter().filter(|j| j["status"] != "succeeded").collect();
            let dlq = String::from_utf8_lossy(&weir(data).args(["dlq", "list"]).output().unwrap().stdout)
                .into_owned();
            panic!("timed out waiting for {what}; not succeeded: {stuck:#?}\nDLQ: {dlq}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sales(rows: usize, seed: usize) -> String {
    let mut s = String::from("order_id,customer_name,product,quantity,price,date\n");
    for r in 0..rows {
        s.push_str(&format!(
            "O-{seed}-{r},Name {r},P{},{},{}.25,2024-03-{:02}\n",
            r % 5,
            r % 7 + 1,
            r % 40,
            r % 28 + 1
        ));
    }
    s
}

#[test]
fn dlq_commands_list_show_replay_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_config(data, true);
    // A message that is not an S3 event, as if some other producer wrote to the queue.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let settings = QueueSettings::from(&weir_core::config::QueueConfig::default());
    let queue = weir_backends::SqliteQueue::open(&data.join("weir.db"), settings).unwrap();
    let id = rt.block_on(queue.send("this is not an event")).unwrap();

    let run = start_run(data);
    let dead = until("the dead letter", Duration::from_secs(20), || {
        let v = dead_letters(data);
        (v.len() == 1).then_some(v)
    });
    assert_eq!(dead[0]["message_id"], id.as_str());
    assert!(dead[0]["object"].as_str().unwrap().contains("not an S3 event"), "{dead:?}");
    let show = ok(&weir(data).args(["dlq", "show", &id]).output().unwrap());
    assert!(show.contains("this is not an event"), "{show}");
    let table = ok(&weir(data).args(["dlq", "list"]).output().unwrap());
    assert!(table.contains(&id), "{table}");

    // Replay puts it back; it is still not an event, so it comes straight back to the DLQ.
    let replay = ok(&weir(data).args(["dlq", "replay", &id]).output().unwrap());
    assert!(replay.contains("replayed 1"), "{replay}");
    until("the dead letter again", Duration::from_secs(20), || (dead_letters(data).len() == 1).then_some(()));
    assert!(
        !weir(data).args(["dlq", "replay"]).output().unwrap().status.success(),
        "replay needs ids or --all"
    );
    assert!(!weir(data).args(["dlq", "purge"]).output().unwrap().status.success(), "purge needs --yes");
    let purged = ok(&weir(data).args(["dlq", "purge", "--yes"]).output().unwrap());
    assert!(purged.contains("purged 1"), "{purged}");
    assert_eq!(dead_letters(data), Vec::<Value>::new());
    stop(run);
}

#[test]
fn reprocess_backfills_files_that_arrived_before_weir_and_reruns_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_config(data, false);
    // Files dropped straight into the bucket folder: no events were ever sent for them.
    let raw = data.join("weir-input/raw");
    std::fs::create_dir_all(&raw).unwrap();
    for i in 0..5 {
        std::fs::write(raw.join(format!("old-{i}.csv")), sales(20, i)).unwrap();
    }
    std::fs::write(raw.join("notes.txt"), "not a csv").unwrap();
    let run = start_run(data);
    std::thread::sleep(Duration::from_millis(500));
    assert!(jobs(data).is_empty(), "without reconcile, nothing happens by itself");

    let out = ok(&weir(data).args(["reprocess", "--prefix", "raw/", "--rate", "50"]).output().unwrap());
    assert!(out.contains("sent 5 event(s)") && out.contains("1 with no pipeline"), "{out}");
    let all = until("5 succeeded jobs", Duration::from_secs(30), || {
        let j = jobs(data);
        (j.len() == 5 && j.iter().all(|j| j["status"] == "succeeded")).then_some(j)
    });
    assert!(all.iter().all(|j| j["attempts"] == 1));

    // Again without --force: everything is finished, nothing is sent.
    let out = ok(&weir(data).args(["reprocess", "--prefix", "raw/"]).output().unwrap());
    assert!(out.contains("sent 0 event(s)"), "{out}");

    // After a schema change: restore from the archive and re-run the finished jobs.
    let out = ok(&weir(data)
        .args(["reprocess", "--prefix", "raw/old-", "--bucket", "weir-archive", "--force"])
        .output()
        .unwrap());
    assert!(out.contains("sent 5 event(s)"), "{out}");
    let rerun = until("5 re-run jobs", Duration::from_secs(30), || {
        let j = jobs(data);
        (j.len() == 5 && j.iter().all(|j| j["status"] == "succeeded" && j["attempts"] == 2)).then_some(j)
    });
    assert_eq!(rerun.len(), 5, "the same jobs, not new ones");
    stop(run);
}

/// `source.archive = "copy"` with `keep_input_minutes = 1`, through `weir put --wait` and
/// `weir run`: after its job the input object stays where it was uploaded (with a copy in the
/// archive), and `weir run`'s own clock removes it once a minute has passed since the upload,
/// not before; the archived copy stays. A minute is the setting's finest grain, so the test
/// waits for it (with a deadline), as a user would.
#[test]
fn archive_by_copy_keeps_the_input_until_keep_input_minutes_have_passed() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_config(data, true);
    let config = std::fs::read_to_string(data.join("weir.toml")).unwrap();
    let kept = config.replacen("# archive = \"copy\"    # keep", "archive = \"copy\"    # keep", 1).replacen(
        "# keep_input_minutes = 60",
        "keep_input_minutes = 1",
        1,
    );
    assert_ne!(kept, config, "the bundled config's commented archive settings moved");
    std::fs::write(data.join("weir.toml"), kept).unwrap();
    let run = start_run(data);
    let file = files.path().join("kept.csv");
    std::fs::write(&file, sales(20, 7)).unwrap();
    let uploaded = Instant::now();
    ok(&weir(data).args(["put", "--wait", "--timeout", "60"]).arg(&file).output().unwrap());
    let input = data.join("weir-input/raw/kept.csv");
    let archived = data.join("weir-archive/raw/kept.csv");
    assert!(input.exists(), "the input went with its job, although archive = \"copy\"");
    assert!(archived.exists(), "no copy in the archive");
    assert_eq!(jobs(data).iter().map(|j| j["status"].clone()).collect::<Vec<_>>(), ["succeeded"]);

    // weir run looks every 15 s (a quarter of the minute): gone between 60 and about 75 s.
    until("the kept input to go", Duration::from_secs(150), || (!input.exists()).then_some(()));
    let after = uploaded.elapsed();
    assert!(after >= Duration::from_secs(60), "the input went {after:?} after its upload, before its minute");
    assert!(archived.exists(), "the archived copy went too");
    assert_eq!(jobs(data).len(), 1, "removing the input made a job");
    stop(run);
}

/// kill -9 of `weir run` at random moments while uploads keep arriving, many times over; then
/// every upload ends in exactly one terminal state with complete outputs.
#[test]
fn kill_9_at_random_moments_while_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let files_dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_config(data, true);
    let mut seed: u64 = 0x5eed_1234;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let iterations = 20;
    let per_batch = 4;
    // Files big enough that a kill often lands while their jobs run.
    let rows = 30_000;
    let mut expected = Vec::new();
    for it in 0..iterations {
        let mut batch = Vec::new();
        for f in 0..per_batch {
            let name = format!("i{it:02}-f{f}.csv");
            let path = files_dir.path().join(&name);
            std::fs::write(&path, sales(rows, it * 10 + f)).unwrap();
            batch.push(path);
            expected.push(format!("raw/{name}"));
        }
        let mut put =
            Proc::spawn(weir(data).arg("put").args(&batch).stdout(Stdio::null()).stderr(Stdio::null()));
        let mut run = start_run(data);
        std::thread::sleep(Duration::from_millis(50 + next() % 600));
        run.kill9();
        let status = put.wait_exit(Duration::from_secs(60));
        assert!(status.success(), "weir put failed in iteration {it}");
    }
    let run = start_run(data);
    let terminal = until_or_dump(data, "every upload to reach a terminal state", || {
        let j = jobs(data);
        (j.len() == expected.len()
            && j.iter().all(|j| !matches!(j["status"].as_str(), Some("queued" | "running"))))
        .then_some(j)
    });
    // A message received by three processes that all died is dead-lettered, as SQS would do
    // (max_receive_count = 3). Those jobs are `failed`, their messages are in the DLQ, and a
    // replay finishes them.
    // The dead letters and the failed jobs are the same set, one message each: two dead letters
    // of one job would be a second message for it (reconcile queueing what the queue held), a
    // dead letter of a job that is not failed a job in the wrong state.
    let failed: std::collections::BTreeSet<String> = terminal
        .iter()
        .filter(|j| j["status"] == "failed")
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    // A dead letter of a job that finished (its receivers died after the job's end, before the
    // delete) goes back to the queue at the next DLQ scan and is acknowledged there.
    let dead_jobs = || {
        let mut ids: Vec<String> =
            dead_letters(data).iter().map(|d| d["job_id"].as_str().unwrap_or("-").to_owned()).collect();
        ids.sort();
        ids
    };
    let dead_jobs = until_or_dump(data, "the DLQ to hold exactly the failed jobs' messages", || {
        let ids = dead_jobs();
        (ids.iter().cloned().collect::<std::collections::BTreeSet<_>>() == failed).then_some(ids)
    });
    let distinct: std::collections::BTreeSet<String> = dead_jobs.iter().cloned().collect();
    assert_eq!(distinct.len(), dead_jobs.len(), "a job with two messages in the DLQ: {dead_jobs:?}");
    if !failed.is_empty() {
        eprintln!(
            "kill -9 loop: {} job(s) dead-lettered after three receives by killed processes; replaying",
            failed.len()
        );
        ok(&weir(data).args(["dlq", "replay", "--all"]).output().unwrap());
    }
    let all = until_or_dump(data, "every upload to succeed", || {
        let j = jobs(data);
        (j.len() == expected.len() && j.iter().all(|j| j["status"] == "succeeded")).then_some(j)
    });
    stop(run);
    let mut keys: Vec<String> = all.iter().map(|j| j["source_key"].as_str().unwrap().to_owned()).collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected, "one job per upload, no more, no less");
    let retried = all.iter().filter(|j| j["attempts"].as_u64().unwrap() > 1).count();
    eprintln!(
        "kill -9 loop: {iterations} kills, {} uploads, {retried} jobs interrupted and resumed",
        expected.len()
    );
    assert!(retried > 0, "some kill must land while a job runs");
    for j in &all {
        assert_eq!(j["valid_rows"], rows, "{j}");
        let results = std::fs::read_to_string(
            data.join("weir-output").join(j["output_keys"]["results"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(results.lines().count(), rows);
    }
    let input_left: Vec<_> = std::fs::read_dir(data.join("weir-input/raw")).unwrap().collect();
    assert!(input_left.is_empty(), "every source archived");
    assert_eq!(dead_letters(data), Vec::<Value>::new());
}

/// A tmpfs mounted for one test (the tests run as root, where `chmod` restricts nothing, so a
/// real full or read-only file system is the only honest way to get ENOSPC and EROFS).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        let out = out.expect("running mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it and make it read-only, which needs root (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_owned())
    }

    fn remount(&self, mode: &str) {
        let out =
            Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(&self.0).output().unwrap();
        assert!(out.status.success(), "remount {mode}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system under `dir` with ballast files until a write fails for lack of space.
fn fill(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut chunk = 1 << 20;
    let mut i = 0;
    while chunk >= 512 {
        i += 1;
        match std::fs::write(dir.join(format!("b{i}")), vec![7u8; chunk]) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => chunk /= 2, // ENOSPC
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
}

/// Files a failed write may have left: staging names (`#`) and spooled job outputs.
fn leftovers(data: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![data.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains('#') || p.starts_with(data.join(".tmp")) {
                found.push(p.to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn a_full_or_read_only_data_dir_loses_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mount = Mount::tmpfs(&data, "32m");
    write_config(&data, false);
    // Keep retrying while the disk is full, rather than dead-lettering after three receives.
    let config = data.join("weir.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_receive_count = 3", "max_receive_count = 1000");
    std::fs::write(&config, text).unwrap();
    let file = dir.path().join("a.csv");
    std::fs::write(&file, sales(3000, 1)).unwrap(); // ~150 KB in, ~500 KB of NDJSON out

    let log = dir.path().join("run.log");
    let mut run = Proc::spawn(
        weir(&data)
            .arg("run")
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    ok(&weir(&data).args(["put", "--wait", "--key", "raw/warm.csv"]).arg(&file).output().unwrap());

    // Full: an upload fails with a clear error and leaves nothing behind.
    let ballast = data.join("ballast");
    std::fs::create_dir_all(&ballast).unwrap();
    std::fs::write(ballast.join("reserve"), vec![0u8; 256 << 10]).unwrap();
    fill(&ballast);
    let put = weir(&data).args(["put", "--key", "raw/full.csv"]).arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&put.stderr);
    assert!(!put.status.success(), "an upload to a full disk must fail");
    assert!(err.contains("No space left on device") || err.contains("is full"), "a clear error: {err}");
    assert_eq!(leftovers(&data), Vec::<String>::new());

    // Room for the upload (150 KB) but not for its outputs (400 KB): the job is retried, and
    // weir run stays up.
    std::fs::remove_file(ballast.join("reserve")).unwrap();
    ok(&weir(&data).args(["put", "--key", "raw/a.csv"]).arg(&file).output().unwrap());
    std::thread::sleep(Duration::from_secs(3));
    assert!(run.running(), "weir run stays up on a full disk");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("No space left on device"), "the log says why: {logged}");
    let a = jobs(&data).into_iter().find(|j| j["source_key"] == "raw/a.csv").expect("a job for raw/a.csv");
    assert_ne!(a["status"], "succeeded", "{a}");

    // Room again: the file goes through, and nothing half-done is left behind.
    std::fs::remove_dir_all(&ballast).unwrap();
    let a = until_or_dump(&data, "raw/a.csv after the disk was freed", || {
        jobs(&data).into_iter().find(|j| j["source_key"] == "raw/a.csv" && j["status"] == "succeeded")
    });
    assert!(a["attempts"].as_u64().unwrap() >= 2, "it failed before it succeeded: {a}");
    assert_eq!(leftovers(&data), Vec::<String>::new());
    assert!(jobs(&data).iter().all(|j| j["source_key"] != "raw/full.csv"), "the failed upload made no job");

    // Read-only (the kernel refuses to remount while weir run holds files open for writing, so
    // it is stopped first): uploads and the start fail with a clear error; writable again, all
    // goes on.
    stop(run);
    mount.remount("ro");
    let put = weir(&data).args(["put", "--key", "raw/b.csv"]).arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&put.stderr);
    assert!(!put.status.success() && err.contains("Read-only file system"), "a clear error: {err}");
    let start = weir(&data).arg("run").output().unwrap();
    let err = String::from_utf8_lossy(&start.stderr);
    assert!(!start.status.success() && err.contains("Read-only file system"), "a clear error: {err}");
    mount.remount("rw");
    let run = start_run(&data);
    ok(&weir(&data).args(["put", "--key", "raw/b.csv"]).arg(&file).output().unwrap());
    until_or_dump(&data, "raw/b.csv once writable", || {
        jobs(&data).into_iter().find(|j| j["source_key"] == "raw/b.csv" && j["status"] == "succeeded")
    });
    assert_eq!(leftovers(&data), Vec::<String>::new());
    stop(run);
}

/// SIGTERM with `shutdown_grace_secs = 0`: the jobs in flight are released with their leases
/// (back to `queued`), so the next start resumes them at once rather than after the visibility
/// timeout (it used to log "released" and leave the job `running`, its lease held).
#[test]
fn a_shutdown_without_grace_releases_the_leases_with_the_messages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_config(data, true);
    let config = data.join("weir.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("visibility_timeout_secs = 2", "visibility_timeout_secs = 300")
        .replace("shutdown_grace_secs = 30", "shutdown_grace_secs = 0");
    std::fs::write(&config, text).unwrap();
    let file = dir.path().join("big.csv");
    std::fs::write(&file, sales(1_000_000, 7)).unwrap();
    let run = start_run(data);
    ok(&weir(data).args(["put", "--key", "raw/big.csv"]).arg(&file).output().unwrap());
    until("the job to run", Duration::from_secs(60), || {
        jobs(data).into_iter().find(|j| j["status"] == "running")
    });
    let mut run = run;
    let status = run.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir run exits cleanly on SIGTERM: {status:?}");
    let job = jobs(data).into_iter().next().unwrap();
    assert_eq!(job["status"], "queued", "released means released: {job}");
    // The next start takes it at once: well within the 300 s visibility timeout.
    let started = Instant::now();
    let run = start_run(data);
    let done = until_or_dump(data, "the released job to run again and succeed", || {
        jobs(data).into_iter().find(|j| j["status"] == "succeeded")
    });
    assert!(started.elapsed() < Duration::from_secs(120), "it waited for the lease: {:?}", started.elapsed());
    eprintln!(
        "released and resumed in {:?} (the job itself took {} ms)",
        started.elapsed(),
        done["duration_ms"]
    );
    stop(run);
}
