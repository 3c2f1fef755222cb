//! Chaos: `weir run` killed with kill -9 over and over while boto3 uploads a mix of files through
//! the S3 endpoint (good files, bad rows, bad headers, gzip, multi-MB multipart uploads,
//! back-to-back versions of one key, identical re-uploads). Then every promise is checked from
//! the uploader's record of what weir acknowledged and from the files in the data dir, not from
//! weir's own bookkeeping:
//!
//! - each key's outputs (results, summary, error report) and archived source are its newest
//!   acknowledged version's, with exact row counts; a rejected newest version is in `failed/`;
//! - every acknowledged upload's job succeeded (or was rejected) once, or is superseded by a
//!   newer version of its key; identical re-uploads are duplicates;
//! - nothing is left in the input, no staged or spooled file anywhere, queue and DLQ empty;
//! - one notification per job outcome (told apart by the message id weir sends with it).
//!
//! The sizes come from the environment so that `bench/chaos.sh` can run the long version:
//! `WEIR_CHAOS_CYCLES` (kills, default 12), `WEIR_CHAOS_UPLOADS` (default 120),
//! `WEIR_CHAOS_BIG_MB` (multipart files, default 6), `WEIR_CHAOS_SEED`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ok, until, weir_in, Proc};
use serde_json::Value;
use weir_core::JobId;
use weir_ports::{Queue, QueueSettings};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn python() -> PathBuf {
    match std::env::var("WEIR_TEST_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => {
            let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
            assert!(p.exists(), "boto3 is needed: run scripts/test, which installs it into .venv");
            p
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A webhook receiver: keeps every JSON body POSTed to it.
fn webhook_sink() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let bodies = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut length = None;
                    let mut line = String::new();
                    // The request line and headers.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = l.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse::<usize>().ok();
                            }
                        }
                    }
                    let mut body = vec![0; length.unwrap_or(0)];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if let Ok(v) = serde_json::from_slice(&body) {
                        bodies.lock().unwrap().push(v);
                    }
                    if out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, got)
}

fn config(hook: &str) -> String {
    let mut text = common::default_config()
        .replace("visibility_timeout_secs = 30", "visibility_timeout_secs = 3")
        .replace("retry_base_ms = 1000", "retry_base_ms = 50")
        .replace("retry_max_secs = 300", "retry_max_secs = 2")
        .replace("dlq_scan_secs = 5", "dlq_scan_secs = 1")
        .replace("shutdown_grace_secs = 30", "shutdown_grace_secs = 5");
    for topic in ["success", "alerts"] {
        text.push_str(&format!(
            "\n[[notify.subscriptions]]\ntopic = \"{topic}\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        ));
    }
    text.push_str("\n[notify]\nretry_initial_ms = 50\nretry_max_ms = 500\n");
    text
}

fn start(data: &Path, port: u16) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("weir.log")).unwrap();
    Proc::spawn(
        weir_in(data)
            .args(["run", "--s3-listen", &format!("127.0.0.1:{port}"), "--api-listen", ""])
            .stdout(Stdio::null())
            .stderr(log),
    )
}

fn jobs(data: &Path) -> Vec<Value> {
    let out = weir_in(data).args(["jobs", "--json", "--limit", "1000000"]).output().unwrap();
    ok(&out).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect()
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn md5_of(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(hex::encode(<md5::Md5 as md5::Digest>::digest(&bytes)))
}

#[derive(Debug, Clone)]
struct Upload {
    seq: u64,
    key: String,
    kind: String,
    tag: String,
    md5: String,
    etag: String,
    valid: u64,
    total: u64,
}

fn manifest(path: &Path) -> Vec<Upload> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            Upload {
                seq: v["seq"].as_u64().unwrap(),
                key: s("key"),
                kind: s("kind"),
                tag: s("tag"),
                md5: s("md5"),
                etag: s("etag"),
                valid: v["valid"].as_u64().unwrap(),
                total: v["total"].as_u64().unwrap(),
            }
        })
        .collect()
}

/// Waits until nothing is queued, in flight or unfinished.
fn quiet(data: &Path, queue: &weir_backends::SqliteQueue, rt: &tokio::runtime::Runtime) {
    until("the queue to drain and every job to end", Duration::from_secs(300), || {
        let s = rt.block_on(queue.stats()).unwrap();
        let busy = jobs(data).iter().any(|j| matches!(j["status"].as_str(), Some("queued" | "running")));
        (s.visible + s.in_flight + s.delayed == 0 && !busy).then_some(())
    });
}

#[test]
fn kill_9_while_boto3_uploads_a_mix_loses_nothing_and_the_newest_version_wins() {
    let cycles = env_or("WEIR_CHAOS_CYCLES", 12);
    let uploads = env_or("WEIR_CHAOS_UPLOADS", 120);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (hook, delivered) = webhook_sink();
    std::fs::write(data.join("weir.toml"), config(&hook)).unwrap();
    // It names a webhook URL, which weir holds to the rule of secrets: private to its user.
    std::fs::set_permissions(data.join("weir.toml"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();
    let port = free_port();
    let mut run = start(&data, port);
    until("weir run to write its credentials", Duration::from_secs(30), || {
        data.join("endpoints.json").exists().then_some(())
    });
    let creds = std::fs::read_to_string(data.join("credentials.toml")).unwrap();
    let field = |name: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
            .unwrap()
            .trim_end_matches('"')
            .to_owned()
    };
    let manifest_path = dir.path().join("manifest.ndjson");
    let uploader_out = dir.path().join("uploader.out");
    let mut uploader = Proc::spawn(
        Command::new(python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chaos_uploader.py"))
            .arg(&manifest_path)
            .env("WEIR_S3_ENDPOINT", format!("http://127.0.0.1:{port}"))
            .env("AWS_ACCESS_KEY_ID", field("access_key_id"))
            .env("AWS_SECRET_ACCESS_KEY", field("secret_access_key"))
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_ENDPOINT_URL")
            .env("CHAOS_UPLOADS", uploads.to_string())
            .env("CHAOS_SEED", env_or("WEIR_CHAOS_SEED", 7).to_string())
            .env("CHAOS_BIG_MB", env_or("WEIR_CHAOS_BIG_MB", 6).to_string())
            .env("CHAOS_SPREAD_SECS", (cycles * 850 / 1000).to_string())
            .stdout(std::fs::File::create(&uploader_out).unwrap())
            .stderr(Stdio::inherit()),
    );

    // Kill at random moments while the uploads go on.
    let mut seed: u64 = env_or("WEIR_CHAOS_SEED", 7) | 1;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let started = Instant::now();
    let mut kills = 0;
    while kills < cycles || uploader.running() {
        std::thread::sleep(Duration::from_millis(200 + next() % 1300));
        run.kill9();
        kills += 1;
        std::thread::sleep(Duration::from_millis(next() % 150));
        run = start(&data, port);
        assert!(started.elapsed() < Duration::from_secs(1800), "the uploads did not end");
    }
    let cycles = kills;
    let status = uploader.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "the uploader failed (see its stderr above)");
    let summary = std::fs::read_to_string(&uploader_out).unwrap();

    // Let it finish; replay what killed processes left in the DLQ; finish again.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let settings = QueueSettings::from(&weir_core::config::QueueConfig::default());
    let queue = weir_backends::SqliteQueue::open(&data.join("weir.db"), settings).unwrap();
    quiet(&data, &queue, &rt);
    let dead_lettered = rt.block_on(queue.dlq_list(0)).unwrap().len();
    if dead_lettered > 0 {
        ok(&weir_in(&data).args(["dlq", "replay", "--all"]).output().unwrap());
        quiet(&data, &queue, &rt);
    }
    // Notifications still on their way are delivered before the last stop.
    let notify = weir_core::Config::from_toml(&std::fs::read_to_string(data.join("weir.toml")).unwrap())
        .unwrap()
        .notify;
    let outbox = weir_backends::OutboxNotifier::open(
        &data.join("outbox.db"),
        &notify,
        weir_backends::local_secrets(std::time::Duration::from_secs(300)),
    )
    .unwrap();
    until("the outbox to deliver everything", Duration::from_secs(120), || {
        (rt.block_on(outbox.stats()).unwrap().pending == 0).then_some(())
    });
    let status = run.terminate(Duration::from_secs(60));
    assert!(status.success(), "weir run stops cleanly: {status:?}");
    let elapsed = started.elapsed();

    let acked = manifest(&manifest_path);
    assert_eq!(acked.len() as u64, uploads, "every planned upload was acknowledged");
    let all_jobs = jobs(&data);
    let by_id: BTreeMap<String, &Value> =
        all_jobs.iter().map(|j| (j["job_id"].as_str().unwrap().to_owned(), j)).collect();
    let mut violations: Vec<String> = Vec::new();
    let mut v = |what: String| violations.push(what);

    // Per key: the newest acknowledged version is what the buckets hold.
    let mut keys: BTreeMap<&str, Vec<&Upload>> = BTreeMap::new();
    for u in &acked {
        keys.entry(u.key.as_str()).or_default().push(u);
    }
    let failed_dir = data.join("weir-input/failed");
    let failed_files = files(&failed_dir);
    for (key, versions) in &keys {
        let newest = versions.iter().max_by_key(|u| u.seq).unwrap();
        if data.join("weir-input").join(key).exists() {
            v(format!("{key}: still in the input"));
        }
        if newest.kind == "bad_header" {
            let found = failed_files.iter().any(|f| {
                f.ends_with(key) && md5_of(&failed_dir.join(f)).as_deref() == Some(newest.md5.as_str())
            });
            if !found {
                v(format!("{key}: the rejected file is not in failed/"));
            }
            continue;
        }
        if md5_of(&data.join("weir-archive").join(key)).as_deref() != Some(newest.md5.as_str()) {
            v(format!("{key}: the archive does not hold the newest version ({})", newest.tag));
        }
        let results = std::fs::read_to_string(
            data.join("weir-output/processed/weir-input").join(format!("{key}.ndjson")),
        )
        .unwrap_or_default();
        let rows: Vec<Value> = results.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if rows.len() as u64 != newest.valid {
            v(format!("{key}: {} result rows, the newest version has {} valid", rows.len(), newest.valid));
        }
        let prefix = format!("{}-", newest.tag);
        if let Some(r) =
            rows.iter().find(|r| !r["order_id"].as_str().unwrap_or_default().starts_with(&prefix))
        {
            v(format!("{key}: a result row of another version: {r}"));
        }
        let summary: Value =
            std::fs::read(data.join("weir-output/reports/weir-input").join(format!("{key}.summary.json")))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        if summary["valid_rows"] != newest.valid || summary["total_rows"] != newest.total {
            v(format!(
                "{key}: summary {} / {} rows, expected {} / {}",
                summary["valid_rows"], summary["total_rows"], newest.valid, newest.total
            ));
        }
        let errors = data.join("weir-output/errors/weir-input").join(format!("{key}.errors.json"));
        if errors.exists() != (newest.valid < newest.total) {
            v(format!(
                "{key}: an error report where there should {}be one",
                if errors.exists() { "not " } else { "" }
            ));
        }
    }

    // Per acknowledged upload: its job ended as its place among the key's versions says.
    let (mut superseded, mut duplicates, mut resumed) = (0, 0, 0);
    for u in &acked {
        let id = JobId::for_object("weir-input", &u.key, &u.etag).0;
        let Some(job) = by_id.get(&id) else {
            v(format!("{} ({}): no job", u.key, u.tag));
            continue;
        };
        let newest = keys[u.key.as_str()].iter().map(|x| x.seq).max() == Some(u.seq);
        let newest_etag = keys[u.key.as_str()].iter().max_by_key(|x| x.seq).unwrap().etag == u.etag;
        let status = job["status"].as_str().unwrap();
        let expected: &[&str] = match (u.kind.as_str(), newest || newest_etag) {
            ("bad_header", _) => &["rejected"],
            (_, true) => &["succeeded"],
            (_, false) => &["succeeded", "superseded"],
        };
        if !expected.contains(&status) {
            v(format!(
                "{} ({}): job {id} is {status}, expected {expected:?}: {}",
                u.key, u.tag, job["error"]
            ));
        }
        superseded += usize::from(status == "superseded");
        resumed += usize::from(job["attempts"].as_u64().unwrap_or(0) > 1);
    }
    for j in &all_jobs {
        let status = j["status"].as_str().unwrap();
        match status {
            "skipped" => duplicates += 1,
            "failed" | "queued" | "running" => v(format!("job {} is {status}: {}", j["job_id"], j["error"])),
            _ => {}
        }
        if !keys.contains_key(j["source_key"].as_str().unwrap()) {
            v(format!("job {} for a key nobody uploaded: {}", j["job_id"], j["source_key"]));
        }
    }

    // Nothing stray: the input holds only failed/, the output only the keys' outputs, no
    // staged or scratch file anywhere.
    for f in files(&data.join("weir-input")) {
        if !f.starts_with("failed/") {
            v(format!("weir-input/{f}: left in the input"));
        }
    }
    for f in files(&data.join("weir-output")) {
        let known = keys.keys().any(|k| {
            f == format!("processed/weir-input/{k}.ndjson")
                || f == format!("reports/weir-input/{k}.summary.json")
                || f == format!("errors/weir-input/{k}.errors.json")
        });
        if !known {
            v(format!("weir-output/{f}: not an output of an uploaded key"));
        }
    }
    for bucket in ["weir-input", "weir-output", "weir-archive"] {
        for f in files(&data.join(bucket)) {
            if f.contains('#') {
                v(format!("{bucket}/{f}: a staged file"));
            }
        }
    }
    let scratch = files(&data.join(".tmp"));
    if !scratch.is_empty() {
        v(format!("scratch files left: {scratch:?}"));
    }
    let stats = rt.block_on(queue.stats()).unwrap();
    if stats.visible + stats.in_flight + stats.delayed + stats.dead_letters > 0 {
        v(format!("queue not empty: {stats:?}"));
    }

    // One notification per job outcome: the final one exactly once (by message id), none for
    // an outcome the job never had.
    let delivered = delivered.lock().unwrap().clone();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for n in &delivered {
        *ids.entry(n["attributes"]["id"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    let repeated = ids.values().filter(|&&n| n > 1).count();
    let mut told: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in ids.keys() {
        if let Some((job, status)) = id.strip_prefix("notify:").and_then(|r| r.rsplit_once(':')) {
            told.entry(job.to_owned()).or_default().insert(status.to_owned());
        } else {
            v(format!("a notification without a job's id: {id}"));
        }
    }
    for j in &all_jobs {
        let (id, status) = (j["job_id"].as_str().unwrap(), j["status"].as_str().unwrap());
        let got = told.remove(id).unwrap_or_default();
        let wanted = matches!(status, "succeeded" | "rejected");
        if wanted && !got.contains(status) {
            v(format!("job {id} ({status}): no {status} notification; got {got:?}"));
        }
        if got.iter().any(|s| !matches!(s.as_str(), "succeeded" | "rejected" | "failed")) {
            v(format!("job {id}: notified {got:?}"));
        }
    }
    for (job, got) in told {
        v(format!("notifications for {job}, which is not a job: {got:?}"));
    }

    eprintln!(
        "chaos: {cycles} kill -9 cycles in {:.0?}, {} acknowledged uploads ({} keys), uploader {}; {} jobs, {resumed} interrupted and resumed, {superseded} superseded, {duplicates} duplicates, {dead_lettered} dead-lettered then replayed; {} notifications delivered ({} repeated deliveries of one id); {} violations",
        elapsed,
        acked.len(),
        keys.len(),
        summary.trim(),
        all_jobs.len(),
        delivered.len(),
        repeated,
        violations.len()
    );
    assert!(violations.is_empty(), "{} violations:\n{}", violations.len(), violations.join("\n"));
}
