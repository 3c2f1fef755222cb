//! The AWS acceptance test, offline against a moto server this test starts: `weir setup aws`
//! twice (idempotent), then the AWS CLI uploads the samples to S3 → S3's bucket notification →
//! SQS → two `weir worker` processes → outputs in S3, jobs in DynamoDB, the success
//! notification received through an SNS → SQS subscription, the bad-schema file rejected, and a
//! poison file (stored in GLACIER, so every read fails with InvalidObjectState) retried until SQS
//! moves its message to the DLQ after 3 receives, which raises an alert on the alerts topic; then
//! `weir reprocess` backfills a file that arrived while the bucket notification was off. The
//! example's image pipeline takes a photo (thumbnails in S3, the picture on the DynamoDB
//! record) and a decompression bomb (rejected with its reason, not retried).
//!
//! The Python tools come from `WEIR_TEST_PYTHON` / `WEIR_TEST_AWS` (set by `scripts/test`), else
//! the repo's `.venv`; without them the test fails and says how to get them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{repo, tool};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> (Killed, String) {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let python = tool("WEIR_TEST_PYTHON", "python");
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting moto with {}: {e}", python.display()));
    let mut moto = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.0.try_wait() {
            panic!("moto exited ({status}): is moto[server] installed for {}?", python.display());
        }
        assert!(Instant::now() < deadline, "moto did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (moto, format!("http://127.0.0.1:{port}"))
}

const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

struct Env {
    endpoint: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Env {
    fn aws(&self, args: &[&str]) -> Value {
        let out = Command::new(tool("WEIR_TEST_AWS", "aws"))
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .args(args)
            .envs(AWS_ENV)
            .output()
            .expect("run the AWS CLI");
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("aws {args:?} printed no JSON: {e}"))
        }
    }

    fn weir(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["--config", &self.config.display().to_string()])
            .args(args)
            .envs(AWS_ENV)
            .output()
            .expect("run weir")
    }

    fn worker(&self, name: &str) -> Killed {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["--config", &self.config.display().to_string()])
            .args(["--data-dir", &self.dir.path().join(name).display().to_string()])
            .args(["worker", "--endpoint-url", &self.endpoint, "--concurrency", "2"])
            .envs(AWS_ENV)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start weir worker");
        Killed(child)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    fn upload(&self, file: &Path, key: &str, extra: &[&str]) {
        let mut args = vec!["s3", "cp", file.to_str().expect("utf-8 path")];
        let dest = format!("s3://example-weir-input/{key}");
        args.push(&dest);
        args.extend_from_slice(extra);
        let out = Command::new(tool("WEIR_TEST_AWS", "aws"))
            .args(["--endpoint-url", &self.endpoint])
            .args(&args)
            .envs(AWS_ENV)
            .output()
            .expect("aws s3 cp");
        assert!(out.status.success(), "aws s3 cp: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Job items by source key (from a DynamoDB scan through the AWS CLI).
    fn jobs(&self) -> Vec<Value> {
        let scan = self.aws(&["dynamodb", "scan", "--table-name", "weir-jobs"]);
        scan["Items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["job"]["S"].as_str())
            .map(|j| {
                serde_json::from_str(j).unwrap_or_else(|e| {
                    std::fs::write("/tmp/scan-raw.json", scan.to_string()).ok();
                    panic!("job JSON {e}: {j}")
                })
            })
            .collect()
    }

    fn queue_url(&self, name: &str) -> String {
        self.aws(&["sqs", "get-queue-url", "--queue-name", name])["QueueUrl"]
            .as_str()
            .expect("url")
            .to_string()
    }

    /// Receives (and deletes) what a queue holds now.
    fn drain(&self, queue: &str) -> Vec<Value> {
        let url = self.queue_url(queue);
        let mut out = Vec::new();
        loop {
            let got = self.aws(&[
                "sqs",
                "receive-message",
                "--queue-url",
                &url,
                "--max-number-of-messages",
                "10",
                "--message-attribute-names",
                "All",
                "--attribute-names",
                "All",
            ]);
            let Some(messages) = got["Messages"].as_array().filter(|m| !m.is_empty()).cloned() else {
                return out;
            };
            for m in messages {
                self.aws(&[
                    "sqs",
                    "delete-message",
                    "--queue-url",
                    &url,
                    "--receipt-handle",
                    m["ReceiptHandle"].as_str().expect("handle"),
                ]);
                out.push(m);
            }
        }
    }
}

fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn status_of(jobs: &[Value], key: &str) -> Option<String> {
    jobs.iter().find(|j| j["source_key"] == key).and_then(|j| j["status"].as_str()).map(str::to_string)
}

#[test]
fn the_pipeline_runs_on_aws_services_with_two_workers() {
    let (_moto, endpoint) = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    // The example config, with quicker retries and DLQ scans so the test does not wait long.
    let example = std::fs::read_to_string(repo().join("deploy/aws/weir.toml")).expect("example config");
    let config_text = example
        .replace("retry_base_ms = 1000", "retry_base_ms = 200")
        .replace("dlq_scan_secs = 5", "dlq_scan_secs = 1");
    assert_ne!(config_text, example, "the example's worker settings changed; update this test");
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, config_text).expect("write config");
    let env = Env { endpoint: endpoint.clone(), config, dir };

    // Setup, twice.
    let first = env.weir(&["setup", "aws", "--endpoint-url", &endpoint]);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "setup: {}{}", text, String::from_utf8_lossy(&first.stderr));
    assert!(text.contains("18 created, 0 already there"), "{text}");
    let second = env.weir(&["setup", "aws", "--endpoint-url", &endpoint]);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success() && text.contains("0 created, 18 already there"), "{text}");

    // Someone listens on both topics through SQS subscriptions.
    for topic in ["weir-success", "weir-alerts"] {
        let inbox = format!("{topic}-inbox");
        env.aws(&["sqs", "create-queue", "--queue-name", &inbox]);
        let q_arn = env.aws(&[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            &env.queue_url(&inbox),
            "--attribute-names",
            "QueueArn",
        ])["Attributes"]["QueueArn"]
            .as_str()
            .expect("arn")
            .to_string();
        let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{topic}");
        env.aws(&[
            "sns",
            "subscribe",
            "--topic-arn",
            &topic_arn,
            "--protocol",
            "sqs",
            "--notification-endpoint",
            &q_arn,
            "--attributes",
            "RawMessageDelivery=true",
        ]);
    }

    let _w1 = env.worker("w1");
    let _w2 = env.worker("w2");

    // Uploads: the samples, and a file S3 keeps in GLACIER (unreadable until restored).
    let samples = repo().join("samples");
    for name in ["sales.csv", "bad_schema.csv", "bad_rows.csv"] {
        env.upload(&samples.join(name), &format!("raw/{name}"), &[]);
    }
    let frozen = env.dir.path().join("frozen.csv");
    std::fs::write(&frozen, std::fs::read(samples.join("sales.csv")).expect("sample")).expect("write");
    std::fs::write(&frozen, format!("{}\n", std::fs::read_to_string(&frozen).expect("read").trim_end()))
        .expect("write");
    env.upload(&frozen, "raw/frozen.csv", &["--storage-class", "GLACIER"]);
    env.upload(&samples.join("photo.jpg"), "images/photo.jpg", &[]);
    let bomb = env.dir.path().join("bomb.png");
    std::fs::write(&bomb, weir_image::fixtures::bomb_png(100_000, 100_000)).expect("write");
    env.upload(&bomb, "images/bomb.png", &[]);

    let jobs = wait_for("the three samples' jobs to finish", Duration::from_secs(90), || {
        let jobs = env.jobs();
        let done = [
            "raw/sales.csv",
            "raw/bad_schema.csv",
            "raw/bad_rows.csv",
            "images/photo.jpg",
            "images/bomb.png",
        ]
        .iter()
        .all(|k| status_of(&jobs, k).is_some_and(|s| s != "queued" && s != "running"));
        done.then_some(jobs)
    });
    assert_eq!(status_of(&jobs, "raw/sales.csv").as_deref(), Some("succeeded"));
    assert_eq!(status_of(&jobs, "raw/bad_rows.csv").as_deref(), Some("succeeded"));
    assert_eq!(status_of(&jobs, "raw/bad_schema.csv").as_deref(), Some("rejected"));
    let sales = jobs.iter().find(|j| j["source_key"] == "raw/sales.csv").expect("sales job");
    assert_eq!((sales["total_rows"].as_u64(), sales["valid_rows"].as_u64()), (Some(8), Some(8)), "{sales}");

    // Outputs in S3, the source archived, the rejected file under failed/ with its reason.
    let listed = env.aws(&["s3api", "list-objects-v2", "--bucket", "example-weir-output"]);
    let outputs: Vec<&str> =
        listed["Contents"].as_array().expect("outputs").iter().filter_map(|o| o["Key"].as_str()).collect();
    for role in ["processed/", "reports/"] {
        assert!(
            outputs.iter().any(|k| k.starts_with(role) && k.contains("raw/sales.csv")),
            "no {role} output for sales.csv in {outputs:?}"
        );
    }
    let summary_key = outputs.iter().find(|k| k.ends_with("sales.csv.summary.json")).expect("summary");
    let summary_file = env.dir.path().join("summary.json");
    env.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "example-weir-output",
        "--key",
        summary_key,
        summary_file.to_str().expect("path"),
    ]);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(&summary_file).expect("summary")).expect("JSON");
    assert_eq!(summary["valid_rows"], 8, "{summary}");
    env.aws(&["s3api", "head-object", "--bucket", "example-weir-archive", "--key", "raw/sales.csv"]);
    let input =
        env.aws(&["s3api", "list-objects-v2", "--bucket", "example-weir-input", "--prefix", "failed/"]);
    let failed: Vec<&str> = input["Contents"]
        .as_array()
        .expect("failed/ copies")
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    let failed_key =
        failed.iter().find(|k| k.ends_with("raw/bad_schema.csv")).expect("bad_schema in failed/");
    assert!(failed.iter().any(|k| k.ends_with("images/bomb.png")), "{failed:?}");
    let head = env.aws(&["s3api", "head-object", "--bucket", "example-weir-input", "--key", failed_key]);
    assert!(head["Metadata"].to_string().contains("order_id"), "the reason is in the metadata: {head}");

    // The photo's thumbnails and metadata in S3, its picture on the job in DynamoDB; the bomb
    // rejected from its header.
    let photo = jobs.iter().find(|j| j["source_key"] == "images/photo.jpg").expect("photo job");
    assert_eq!(photo["status"], "succeeded", "{photo}");
    assert_eq!(
        (photo["image"]["display_width"].as_u64(), photo["image"]["exif"]["make"].as_str()),
        (Some(1200), Some("Weirphone"))
    );
    for size in ["small", "medium", "large"] {
        let key = format!("thumbnails/{size}/example-weir-input/images/photo.jpg_{size}.jpg");
        assert!(outputs.contains(&key.as_str()), "no {key} in {outputs:?}");
    }
    assert!(outputs.contains(&"metadata/example-weir-input/images/photo.jpg.json"), "{outputs:?}");
    let bomb = jobs.iter().find(|j| j["source_key"] == "images/bomb.png").expect("bomb job");
    assert_eq!(bomb["status"], "rejected", "{bomb}");
    assert!(bomb["error"].as_str().is_some_and(|e| e.contains("100000 x 100000 pixels")), "{bomb}");
    assert_eq!(bomb["attempts"], 1, "a bad picture is not retried: {bomb}");

    // Valid records loaded into DynamoDB in the seed's shape.
    let rows = env.aws(&[
        "dynamodb",
        "query",
        "--table-name",
        "weir-records",
        "--key-condition-expression",
        "pk = :pk",
        "--expression-attribute-values",
        r#"{":pk": {"S": "CSV#example-weir-input/raw/sales.csv"}}"#,
    ]);
    assert_eq!(rows["Count"], 8, "{rows}");
    assert_eq!(rows["Items"][0]["sk"]["S"], "ROW#000001");

    // The success notification, through SNS → SQS, with its attributes.
    let notes = wait_for("the success notification", Duration::from_secs(30), || {
        let got = env.drain("weir-success-inbox");
        (!got.is_empty()).then_some(got)
    });
    let sales_note = notes
        .iter()
        .find(|m| m["Body"].as_str().is_some_and(|b| b.contains("raw/sales.csv")))
        .unwrap_or_else(|| panic!("no notification names sales.csv: {notes:?}"));
    assert_eq!(sales_note["MessageAttributes"]["status"]["StringValue"], "succeeded", "{sales_note}");

    // The poison file: three receives, then SQS moves the message to the DLQ, and an alert goes out.
    let dlq_url = env.queue_url("weir-events-dlq");
    wait_for("the poison message in the DLQ", Duration::from_secs(120), || {
        let attrs = env.aws(&[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            &dlq_url,
            "--attribute-names",
            "ApproximateNumberOfMessages",
        ]);
        (attrs["Attributes"]["ApproximateNumberOfMessages"] == "1").then_some(())
    });
    let jobs = env.jobs();
    let frozen_job = jobs.iter().find(|j| j["source_key"] == "raw/frozen.csv").expect("frozen job");
    assert_eq!(frozen_job["status"], "failed", "{frozen_job}");
    assert!(
        frozen_job["error"].as_str().is_some_and(|e| e.contains("after 3 receives")),
        "the job says why: {frozen_job}"
    );
    let alerts = wait_for("the dead-letter alert", Duration::from_secs(30), || {
        let got = env.drain("weir-alerts-inbox");
        let hit = got.iter().any(|m| m["Body"].as_str().is_some_and(|b| b.contains("raw/frozen.csv")));
        hit.then_some(got)
    });
    assert!(!alerts.is_empty());

    // A backfill: with the bucket notification off, a new file waits until `weir reprocess`
    // lists the prefix in S3 and sends its event to SQS.
    env.aws(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        "example-weir-input",
        "--notification-configuration",
        "{}",
    ]);
    env.upload(&samples.join("sales.csv"), "raw/backfill.csv", &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(status_of(&env.jobs(), "raw/backfill.csv"), None, "no event without the notification");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--config", &env.config.display().to_string()])
        .args(["--data-dir", &env.dir.path().join("reprocess").display().to_string()])
        .args(["reprocess", "--prefix", "raw/"])
        .envs(AWS_ENV)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .expect("weir reprocess");
    assert!(out.status.success(), "weir reprocess: {}", String::from_utf8_lossy(&out.stderr));
    wait_for("the backfilled file's job", Duration::from_secs(60), || {
        (status_of(&env.jobs(), "raw/backfill.csv").as_deref() == Some("succeeded")).then_some(())
    });

    // The operator's view through weir itself: jobs from DynamoDB, dead letters from the SQS DLQ.
    let with_endpoint = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["--config", &env.config.display().to_string()])
            .args(args)
            .envs(AWS_ENV)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .output()
            .expect("run weir");
        assert!(out.status.success(), "weir {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = with_endpoint(&["jobs"]);
    assert!(listed.contains("raw/bad_schema.csv") && listed.contains("rejected"), "{listed}");
    let dead = with_endpoint(&["dlq", "list", "--json"]);
    assert!(dead.contains("frozen.csv"), "{dead}");

    // The daily report of today by the same code path as embedded: written to S3 (the jobs
    // read from DynamoDB's date index, summaries from S3, dead letters from SQS), published to
    // the alerts topic through SNS.
    // The workers stop first: their DLQ scanners hide the dead letter for a moment each
    // second, and SQS lists only what is visible.
    let (started_w1, started_w2) = (env.log("w1"), env.log("w2"));
    drop((_w1, _w2));
    wait_for("the dead letter visible", Duration::from_secs(60), || {
        let attrs = env.aws(&[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            &dlq_url,
            "--attribute-names",
            "ApproximateNumberOfMessages",
        ]);
        (attrs["Attributes"]["ApproximateNumberOfMessages"] == "1").then_some(())
    });
    let today = chrono::Utc::now().date_naive().to_string();
    let record: Value =
        serde_json::from_str(&with_endpoint(&["report", "daily", "--date", &today, "--json"]))
            .expect("a record");
    assert_eq!(record["bucket"], "example-weir-output", "{record}");
    assert_eq!(record["published_to"], serde_json::json!(["alerts"]), "{record}");
    let report_file = env.dir.path().join("daily_report.json");
    env.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "example-weir-output",
        "--key",
        &format!("reports/{today}/daily_report.json"),
        report_file.to_str().expect("path"),
    ]);
    env.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "example-weir-output",
        "--key",
        &format!("reports/{today}/daily_report.html"),
    ]);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_file).expect("report")).expect("JSON");
    // frozen.csv failed, then `weir reprocess --prefix raw/` sent it again: stopped mid-retry,
    // it may be in progress.
    let files = &report["day"]["files"];
    assert_eq!(
        (files["received"].as_u64(), files["succeeded"].as_u64(), files["rejected"].as_u64()),
        (Some(7), Some(4), Some(2)),
        "{report}"
    );
    assert_eq!(files["failed"].as_u64().unwrap() + files["in_progress"].as_u64().unwrap(), 1, "{report}");
    assert_eq!(report["day"]["dead_letters"], 1, "the frozen file's message: {report}");
    assert_eq!(report["day"]["aggregates"][0]["files"], 3, "sales, bad_rows and backfill: {report}");
    assert!(report["notes"].to_string().contains("Alarm changes are not recorded"), "{report}");
    let listed = with_endpoint(&["report", "list"]);
    assert!(listed.contains(&format!("example-weir-output/reports/{today}/daily_report.html")), "{listed}");
    wait_for("the report on the alerts topic", Duration::from_secs(30), || {
        let got = env.drain("weir-alerts-inbox");
        got.iter()
            .any(|m| m["Body"].as_str().is_some_and(|b| b.contains("weir daily report for")))
            .then_some(())
    });

    let started = |log: &str| log.matches("\"job started\"").count();
    eprintln!("jobs started: worker 1 {}, worker 2 {}", started(&started_w1), started(&started_w2));
    assert!(started(&started_w1) + started(&started_w2) >= 9, "7 files, the poison one 3 times");
}

/// `source.archive = "copy"` on AWS: `aws s3 sync` twice against the input bucket (S3 sends the
/// events, a `weir worker` runs the jobs): each file makes one job, the inputs stay where they
/// were uploaded with copies in the archive and `failed/`, the second sync uploads nothing, and
/// an unchanged re-upload makes no job.
#[test]
fn archive_by_copy_keeps_the_inputs_on_aws_and_a_second_sync_makes_no_job() {
    let (_moto, endpoint) = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let example = std::fs::read_to_string(repo().join("deploy/aws/weir.toml")).expect("example config");
    let marker = "[pipeline.source]\nprefix = \"raw/\"";
    assert!(example.contains(marker), "the example's source section changed; update this test");
    let config_text = example.replacen(marker, &format!("{marker}\narchive = \"copy\""), 1);
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, config_text).expect("write config");
    let env = Env { endpoint: endpoint.clone(), config, dir };
    let check = env.weir(&["check"]);
    assert!(check.status.success(), "weir check: {}", String::from_utf8_lossy(&check.stdout));
    let setup = env.weir(&["setup", "aws", "--endpoint-url", &endpoint]);
    assert!(setup.status.success(), "setup: {}", String::from_utf8_lossy(&setup.stderr));
    let _worker = env.worker("w1");

    let local = env.dir.path().join("local");
    std::fs::create_dir_all(&local).expect("mkdir");
    let samples = repo().join("samples");
    for name in ["sales.csv", "bad_schema.csv"] {
        std::fs::copy(samples.join(name), local.join(name)).expect("copy sample");
        // Older than the upload by more than S3's one-second LastModified (as files to sync are).
        let file = std::fs::File::options().write(true).open(local.join(name)).expect("open");
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).expect("set mtime");
    }
    let sync = || {
        let out = Command::new(tool("WEIR_TEST_AWS", "aws"))
            .args(["--endpoint-url", &endpoint, "s3", "sync", "--no-progress"])
            .arg(&local)
            .arg("s3://example-weir-input/raw/")
            .envs(AWS_ENV)
            .output()
            .expect("aws s3 sync");
        assert!(out.status.success(), "aws s3 sync: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("upload:")).count()
    };
    assert_eq!(sync(), 2);
    let done = |jobs: &[Value], key: &str| status_of(jobs, key).filter(|s| s != "queued" && s != "running");
    let jobs = wait_for("both jobs to finish", Duration::from_secs(90), || {
        let jobs = env.jobs();
        (done(&jobs, "raw/sales.csv").is_some() && done(&jobs, "raw/bad_schema.csv").is_some())
            .then_some(jobs)
    });
    assert_eq!(status_of(&jobs, "raw/sales.csv").as_deref(), Some("succeeded"));
    assert_eq!(status_of(&jobs, "raw/bad_schema.csv").as_deref(), Some("rejected"));
    for key in ["raw/sales.csv", "raw/bad_schema.csv"] {
        env.aws(&["s3api", "head-object", "--bucket", "example-weir-input", "--key", key]);
    }
    env.aws(&["s3api", "head-object", "--bucket", "example-weir-archive", "--key", "raw/sales.csv"]);
    let failed =
        env.aws(&["s3api", "list-objects-v2", "--bucket", "example-weir-input", "--prefix", "failed/"]);
    assert!(failed.to_string().contains("raw/bad_schema.csv"), "the rejected file's copy: {failed}");

    assert_eq!(sync(), 0, "the second sync uploads nothing");
    env.upload(&local.join("sales.csv"), "raw/sales.csv", &[]);
    // A file uploaded after the re-upload: once its job is done, the re-upload's event is too.
    env.upload(&samples.join("bad_rows.csv"), "raw/later.csv", &[]);
    let jobs = wait_for("the later file's job", Duration::from_secs(90), || {
        let jobs = env.jobs();
        done(&jobs, "raw/later.csv").is_some().then_some(jobs)
    });
    let of_sales: Vec<&Value> = jobs.iter().filter(|j| j["source_key"] == "raw/sales.csv").collect();
    assert_eq!(of_sales.len(), 1, "an unchanged re-upload makes no job: {of_sales:?}");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
}
