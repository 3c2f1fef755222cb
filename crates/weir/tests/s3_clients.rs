//! Clients that check what they uploaded, against a real `weir run`'s S3 endpoint: rclone
//! (`copy` and `sync`, S3 provider `Other`, SigV4 with the data dir's keys) and the AWS CLI's
//! `aws s3 sync`, each run twice over a folder of good and bad files. With
//! `source.archive = "copy"` the input objects stay where they were uploaded, so the clients'
//! own checks pass, the second runs upload nothing, and every file makes exactly one job.
//!
//! rclone is Debian's `rclone` (installed by `scripts/test`); the AWS CLI comes from the test
//! venv (`WEIR_TEST_AWS`). A missing tool fails the test and says how to install it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{default_config, json_lines, ok, samples, until, weir_in, WeirRun};
use serde_json::Value;

/// What the tests do with a `weir run` (given a config).
impl WeirRun {
    fn config_file(&self) -> &Path {
        self.config.as_deref().expect("started with a config")
    }

    /// Every job, from `weir jobs --json` (one object per line).
    fn jobs(&self) -> Vec<Value> {
        json_lines(
            &weir_in(self.data())
                .arg("--config")
                .arg(self.config_file())
                .args(["jobs", "--json", "--limit", "1000"])
                .output()
                .unwrap(),
        )
    }

    /// The jobs of sources under `prefix`, once all of `want` of them are done.
    fn wait_jobs(&self, prefix: &str, want: usize) -> Vec<Value> {
        until(&format!("{want} finished jobs under {prefix}"), Duration::from_secs(60), || {
            let jobs: Vec<Value> = self
                .jobs()
                .into_iter()
                .filter(|j| j["source_key"].as_str().is_some_and(|k| k.starts_with(prefix)))
                .collect();
            let done =
                jobs.iter().filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running"))).count();
            (done >= want && done == jobs.len()).then_some(jobs)
        })
    }

    /// rclone with a remote `weir:` (S3, provider Other, this instance's keys) and no config
    /// file of the caller's.
    fn rclone(&self) -> Command {
        let bin = rclone_bin();
        let mut c = Command::new(bin);
        // The AWS SDK inside rclone reads the caller's AWS variables (a CA bundle, a profile).
        for (var, _) in std::env::vars().filter(|(v, _)| v.starts_with("AWS_") || v.starts_with("RCLONE_")) {
            c.env_remove(var);
        }
        c.env("RCLONE_CONFIG_WEIR_TYPE", "s3")
            .env("RCLONE_CONFIG_WEIR_PROVIDER", "Other")
            .env("RCLONE_CONFIG_WEIR_ACCESS_KEY_ID", &self.access_key_id)
            .env("RCLONE_CONFIG_WEIR_SECRET_ACCESS_KEY", &self.secret)
            .env("RCLONE_CONFIG_WEIR_ENDPOINT", &self.s3)
            .env("RCLONE_CONFIG_WEIR_REGION", "us-east-1")
            .args(["--config", "/dev/null", "-v", "--stats", "1h"]);
        c
    }

    /// The keys under `prefix` in `bucket`.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self
            .aws()
            .args(["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--output", "json"])
            .output()
            .unwrap();
        let listed: Value = serde_json::from_str(&ok(&out)).unwrap_or(Value::Null);
        let mut keys: Vec<String> = listed["Contents"]
            .as_array()
            .map(|a| a.iter().map(|o| o["Key"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

fn rclone_bin() -> PathBuf {
    let found = std::env::var_os("WEIR_TEST_RCLONE").map(PathBuf::from).unwrap_or_else(|| "rclone".into());
    assert!(
        Command::new(&found).arg("version").output().is_ok_and(|o| o.status.success()),
        "rclone is needed for this test: run scripts/test (it installs Debian's rclone) or set WEIR_TEST_RCLONE"
    );
    found
}

/// The bundled config with the sales pipeline's sources archived by copy.
fn copy_config() -> String {
    let config = default_config();
    let at = config.find("[pipeline.source]\n").expect("the bundled config has a source section");
    let at = at + "[pipeline.source]\n".len();
    format!("{}archive = \"copy\"\n{}", &config[..at], &config[at..])
}

/// A folder of two good files and two bad ones (a missing column; every row invalid).
fn files(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let sales = std::fs::read_to_string(samples().join("sales.csv")).unwrap();
    std::fs::write(dir.join("good-1.csv"), &sales).unwrap();
    let mut second = sales.lines().take(3).collect::<Vec<_>>().join("\n");
    second.push('\n');
    std::fs::write(dir.join("good-2.csv"), second).unwrap();
    std::fs::copy(samples().join("bad_schema.csv"), dir.join("bad-schema.csv")).unwrap();
    std::fs::write(
        dir.join("bad-rows.csv"),
        "order_id,customer_name,product,quantity,price,date\nX,a,b,not-a-number,also-not,never\n",
    )
    .unwrap();
    // Files to sync were written before the upload (a sync compares times, to the second).
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = std::fs::File::options().write(true).open(entry.unwrap().path()).unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).unwrap();
    }
    dir
}

/// The number of files rclone's closing stats say it transferred.
fn rclone_transferred(out: &Output) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Transferred:"))
        .filter(|rest| !rest.contains('B'))
        .filter_map(|rest| rest.split('/').next()?.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// Runs rclone and checks it exited 0 with no error in its output.
fn run_rclone(weir: &WeirRun, args: &[&str]) -> Output {
    let out = weir.rclone().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rclone {args:?} exited {:?}:\n{stderr}", out.status);
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("Failed to copy") && !stderr.contains("not found"),
        "rclone {args:?} reported errors:\n{stderr}"
    );
    out
}

fn statuses(jobs: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j["source_key"].as_str().unwrap().to_owned(), j["status"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

/// Waits for the job of one new file, uploaded after everything else: every event before it
/// has been handled by then, so a count taken now has no job still to come.
fn settle(weir: &WeirRun, key: &str) {
    let scratch = weir.data().join("sentinel.csv");
    std::fs::copy(samples().join("sales.csv"), &scratch).unwrap();
    ok(&weir
        .aws()
        .args(["s3", "cp", "--no-progress"])
        .arg(&scratch)
        .arg(format!("s3://weir-input/{key}"))
        .output()
        .unwrap());
    weir.wait_jobs(key, 1);
}

#[test]
fn rclone_copy_and_sync_twice_make_one_job_per_file_and_upload_nothing_the_second_time() {
    let weir = WeirRun::start(Some(&copy_config()));
    let local = files(weir.data(), "local");
    let local = local.to_str().unwrap();

    for (verb, prefix) in [("copy", "raw/rclone-copy/"), ("sync", "raw/rclone-sync/")] {
        let dest = format!("weir:weir-input/{prefix}");
        let first = run_rclone(&weir, &[verb, local, &dest]);
        assert_eq!(
            rclone_transferred(&first),
            4,
            "first rclone {verb}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let jobs = weir.wait_jobs(prefix, 4);
        let expected: Vec<(String, String)> = [
            ("bad-rows.csv", "rejected"),
            ("bad-schema.csv", "rejected"),
            ("good-1.csv", "succeeded"),
            ("good-2.csv", "succeeded"),
        ]
        .iter()
        .map(|(name, status)| (format!("{prefix}{name}"), status.to_string()))
        .collect();
        assert_eq!(statuses(&jobs), expected, "one job per file after rclone {verb}");
        // The inputs stay where rclone put them; copies are in the archive and failed/.
        let names: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(weir.keys("weir-input", prefix), names);
        assert_eq!(weir.keys("weir-archive", prefix).len(), 2, "the good files' archive copies");

        let second = run_rclone(&weir, &[verb, local, &dest]);
        assert_eq!(
            rclone_transferred(&second),
            0,
            "the second rclone {verb} uploads nothing: {}",
            String::from_utf8_lossy(&second.stderr)
        );
        settle(&weir, &format!("raw/settle-{verb}.csv"));
        assert_eq!(statuses(&weir.wait_jobs(prefix, 4)), expected, "no job from the second rclone {verb}");
    }
    // rclone check agrees the remote holds what was uploaded.
    run_rclone(&weir, &["check", local, "weir:weir-input/raw/rclone-sync/"]);
}

#[test]
fn aws_s3_sync_twice_and_re_uploads_make_a_job_only_for_changed_content() {
    let weir = WeirRun::start(Some(&copy_config()));
    let local = files(weir.data(), "local");
    let prefix = "raw/aws-sync/";
    let dest = format!("s3://weir-input/{prefix}");
    let first =
        ok(&weir.aws().args(["s3", "sync", "--no-progress"]).arg(&local).arg(&dest).output().unwrap());
    assert_eq!(first.lines().filter(|l| l.starts_with("upload:")).count(), 4, "first sync: {first}");
    let jobs = weir.wait_jobs(prefix, 4);
    assert_eq!(jobs.len(), 4);

    let second =
        ok(&weir.aws().args(["s3", "sync", "--no-progress"]).arg(&local).arg(&dest).output().unwrap());
    assert!(second.trim().is_empty(), "the second aws s3 sync uploads nothing, but printed: {second}");

    // The same content again under the same key (a client that re-uploads to check): no job.
    let key = format!("{dest}good-1.csv");
    ok(&weir
        .aws()
        .args(["s3", "cp", "--no-progress"])
        .arg(local.join("good-1.csv"))
        .arg(&key)
        .output()
        .unwrap());
    settle(&weir, "raw/settle-1.csv");
    assert_eq!(weir.wait_jobs(prefix, 4).len(), 4, "an unchanged re-upload makes no job");
    assert_eq!(weir.keys("weir-input", &format!("{prefix}good-1.csv")).len(), 1, "the re-upload stays");

    // Changed content under the same key is a new version: one job more.
    std::fs::write(
        local.join("good-1.csv"),
        "order_id,customer_name,product,quantity,price,date\nORD-9,Zoe,Widget,1,1.00,2024-02-01\n",
    )
    .unwrap();
    let third =
        ok(&weir.aws().args(["s3", "sync", "--no-progress"]).arg(&local).arg(&dest).output().unwrap());
    assert_eq!(
        third.lines().filter(|l| l.starts_with("upload:")).count(),
        1,
        "only the changed file: {third}"
    );
    let jobs = weir.wait_jobs(prefix, 5);
    let of_key: Vec<&Value> =
        jobs.iter().filter(|j| j["source_key"] == format!("{prefix}good-1.csv")).collect();
    assert_eq!(of_key.len(), 2, "the changed file's new version makes a job: {of_key:?}");
    assert!(of_key.iter().all(|j| j["status"] == "succeeded"), "{of_key:?}");
}

/// `eval "$(weir credentials)"` points the shell's S3 calls at weir; `weir setup aws` run next
/// must not create its buckets inside weir's data dir: it says why and creates nothing.
#[test]
fn weir_setup_aws_refuses_a_weir_endpoint_and_creates_nothing() {
    let weir = WeirRun::start(Some(&default_config()));
    let config = weir.data().join("aws.toml");
    std::fs::write(
        &config,
        "[buckets]\ninput = \"setup-in\"\noutput = \"setup-out\"\narchive = \"setup-archive\"\n[aws]\nregion = \"us-east-1\"\n",
    )
    .unwrap();
    let setup = |env: (&str, &str), args: &[&str]| {
        let mut c = weir_in(&weir.data().join("elsewhere"));
        for (var, _) in std::env::vars().filter(|(v, _)| v.starts_with("AWS_")) {
            c.env_remove(var);
        }
        c.env(env.0, env.1)
            .env("AWS_ACCESS_KEY_ID", &weir.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &weir.secret)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("--config")
            .arg(&config)
            .args(["setup", "aws"])
            .args(args)
            .output()
            .unwrap()
    };
    for (env, args) in [
        (("AWS_ENDPOINT_URL_S3", weir.s3.as_str()), &[][..]),
        (("AWS_ENDPOINT_URL", weir.s3.as_str()), &["--dry-run"][..]),
        (("WEIR_UNUSED", ""), &["--endpoint-url", weir.s3.as_str()][..]),
    ] {
        let out = setup(env, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "setup aws with {env:?} {args:?} must fail:\n{stderr}");
        assert!(
            stderr.contains(&format!("{} is weir's own S3 endpoint (a `weir run`), not AWS", weir.s3))
                && stderr.contains("nothing was created"),
            "setup aws with {env:?} {args:?} says why: {stderr}"
        );
        assert!(!stderr.contains("{") && stderr.lines().count() <= 3, "a sentence, not a dump: {stderr}");
    }
    for bucket in ["setup-in", "setup-out", "setup-archive"] {
        assert!(!weir.data().join(bucket).exists(), "{bucket} was created inside weir's data dir");
    }
    // Weir's answers say who they are.
    let out = Command::new("curl").args(["-s", "-D", "-", "-o", "/dev/null", &weir.s3]).output().unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.lines().any(|l| l.trim() == "server: weir"), "{head}");
}

/// The seeds' setup scripts make folder markers (`aws s3api put-object --key csv/`, no body),
/// which S3 accepts as empty objects: weir stores them, lists them as S3 does, and makes no job
/// of them, even under a source's prefix.
#[test]
fn folder_markers_are_empty_objects_listed_as_on_s3_and_make_no_job() {
    let weir = WeirRun::start(Some(&default_config()));
    let api = |args: &[&str]| -> Value {
        let out = weir.aws().args(["s3api", "--output", "json"]).args(args).output().unwrap();
        let text = ok(&out);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    };
    for key in ["csv/", "raw/", "raw/2024/"] {
        let put = api(&["put-object", "--bucket", "weir-input", "--key", key]);
        assert_eq!(put["ETag"], "\"d41d8cd98f00b204e9800998ecf8427e\"", "{key}: {put}");
    }
    let head = api(&["head-object", "--bucket", "weir-input", "--key", "csv/"]);
    assert_eq!(head["ContentLength"], 0, "{head}");
    let one = weir.data().join("one.csv");
    std::fs::copy(samples().join("sales.csv"), &one).unwrap();
    ok(&weir
        .aws()
        .args(["s3", "cp", "--no-progress"])
        .arg(&one)
        .arg("s3://weir-input/csv/one.csv")
        .output()
        .unwrap());

    // Without a delimiter the markers are keys of their own; with one, `csv/` is a prefix.
    assert_eq!(weir.keys("weir-input", "csv"), ["csv/", "csv/one.csv"]);
    assert_eq!(weir.keys("weir-input", "raw/"), ["raw/", "raw/2024/"]);
    let top = api(&["list-objects-v2", "--bucket", "weir-input", "--delimiter", "/"]);
    let prefixes: Vec<&str> =
        top["CommonPrefixes"].as_array().unwrap().iter().map(|p| p["Prefix"].as_str().unwrap()).collect();
    assert!(prefixes.contains(&"csv/") && prefixes.contains(&"raw/"), "{top}");
    let inside = api(&["list-objects-v2", "--bucket", "weir-input", "--prefix", "csv/", "--delimiter", "/"]);
    let sizes: Vec<(String, u64)> = inside["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["Key"].as_str().unwrap().to_owned(), o["Size"].as_u64().unwrap()))
        .collect();
    let size = std::fs::metadata(&one).unwrap().len();
    assert_eq!(sizes, [("csv/".to_string(), 0), ("csv/one.csv".to_string(), size)], "{inside}");

    // A marker with content is refused; deleting a marker leaves the folder's objects.
    let mut refused = weir.aws();
    refused.args(["s3api", "put-object", "--bucket", "weir-input", "--key", "csv/", "--body"]).arg(&one);
    let out = refused.output().unwrap();
    assert!(!out.status.success(), "a non-empty folder marker is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidArgument"), "{out:?}");
    api(&["delete-object", "--bucket", "weir-input", "--key", "csv/"]);
    assert_eq!(weir.keys("weir-input", "csv"), ["csv/one.csv"]);

    // No job for a marker, even under the source prefix `raw/`.
    settle(&weir, "raw/settle.csv");
    let jobs = weir.jobs();
    assert!(jobs.iter().all(|j| !j["source_key"].as_str().unwrap().ends_with('/')), "{jobs:?}");
}
