//! The S3 endpoint and the HTTP API of a real `weir run`, driven by real clients: the AWS CLI,
//! boto3 (a script in `fixtures/`), curl and schemathesis.
//!
//! The Python tools come from the venv `scripts/test` creates (`WEIR_TEST_PYTHON`,
//! `WEIR_TEST_AWS`, `WEIR_TEST_ST`, else `.venv/bin/...` in the repo). A test whose tool is
//! missing fails and says how to install it; it never passes without running.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok_doing, repo, tool, WeirRun};
use serde_json::Value;

fn curl_bin() -> &'static str {
    assert!(
        Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success()),
        "curl is needed for this test"
    );
    "curl"
}

/// The clients of a `weir run` (started by [`WeirRun::start`]).
impl WeirRun {
    fn boto3(&self, scenario: &str) -> Value {
        let scratch = self.data().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let out = Command::new(tool("WEIR_TEST_PYTHON", "python"))
            .arg(repo().join("crates/weir/tests/fixtures/s3_boto3.py"))
            .arg(scenario)
            .env("WEIR_S3_ENDPOINT", &self.s3)
            .env("WEIR_SAMPLES", repo().join("samples"))
            .env("WEIR_SCRATCH", &scratch)
            .env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap();
        let stdout = ok_doing(&out, &format!("boto3 scenario {scenario}"));
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
    }

    /// An HTTP API call with curl: (status, body).
    fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> (u16, String) {
        let mut c = Command::new(curl_bin());
        c.args(["-s", "-g", "--path-as-is", "-X", method, "-w", "\n%{http_code}"]);
        if let Some(t) = token {
            c.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let body_file = self.data().join(format!("body-{}", uuid_ish()));
        if let Some(b) = body {
            std::fs::write(&body_file, b).unwrap();
            c.arg("--data-binary").arg(format!("@{}", body_file.display()));
            c.args(["-H", "Content-Type: application/json"]);
        }
        let out = c.arg(format!("{}{path}", self.api)).output().unwrap();
        let text = ok_doing(&out, "curl");
        let _ = std::fs::remove_file(&body_file);
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_owned())
    }

    fn json(&self, path: &str) -> Value {
        let (code, body) = self.api("GET", path, Some(&self.token), None);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until every key has a job in a terminal state; returns the jobs by key.
    fn wait_jobs(&self, keys: &[String], timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let page = self.json("/v1/jobs?limit=1000");
            let jobs: Vec<Value> = keys
                .iter()
                .filter_map(|k| {
                    page["jobs"].as_array().unwrap().iter().find(|j| j["source_key"] == **k).cloned()
                })
                .collect();
            let done =
                jobs.iter().filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running"))).count();
            if jobs.len() == keys.len() && done == keys.len() {
                return jobs;
            }
            assert!(
                start.elapsed() < timeout,
                "jobs for {keys:?} not finished after {timeout:?}: {page}\nlog: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_succeeded(&self, keys: &[String], timeout: Duration) {
        for job in self.wait_jobs(keys, timeout) {
            assert_eq!(job["status"], "succeeded", "{job}");
        }
    }
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// A sales CSV of at least `bytes` bytes that the bundled pipeline accepts.
fn sales_csv(path: &Path, bytes: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "order_id,customer_name,product,quantity,price,date").unwrap();
    let (mut written, mut i) = (0, 0);
    while written < bytes {
        i += 1;
        let line = format!(
            "ORD{i},Customer {i},Widget{},{},{}.99,2024-01-{:02}\n",
            i % 7,
            i % 9 + 1,
            i % 50,
            i % 28 + 1
        );
        written += line.len();
        f.write_all(line.as_bytes()).unwrap();
    }
}

#[test]
fn aws_cli_uploads_become_jobs_that_succeed() {
    let weir = WeirRun::start(None);
    let files = weir.data().join("upload");
    std::fs::create_dir_all(files.join("sync/sub")).unwrap();
    std::fs::copy(repo().join("samples/sales.csv"), files.join("small.csv")).unwrap();
    sales_csv(&files.join("big.csv"), 100 << 20);
    std::fs::copy(repo().join("samples/sales.csv"), files.join("sync/a.csv")).unwrap();
    std::fs::copy(repo().join("samples/bad_rows.csv"), files.join("sync/sub/b.csv")).unwrap();

    let ls = ok_doing(&weir.aws().args(["s3", "ls"]).output().unwrap(), "aws s3 ls");
    for bucket in ["weir-input", "weir-output", "weir-archive"] {
        assert!(ls.contains(bucket), "{ls}");
    }
    let small = files.join("small.csv");
    ok_doing(
        &weir.aws().args(["s3", "cp"]).arg(&small).arg("s3://weir-input/raw/cli/small.csv").output().unwrap(),
        "cp",
    );
    // 100 MB: the CLI switches to a multipart upload (8 MiB parts).
    let big = files.join("big.csv");
    let mut cp = weir.aws();
    cp.args(["s3", "cp", "--only-show-errors"]).arg(&big).arg("s3://weir-input/raw/cli/big.csv");
    ok_doing(&cp.output().unwrap(), "cp 100 MB");
    ok_doing(
        &weir
            .aws()
            .args(["s3", "sync"])
            .arg(files.join("sync"))
            .arg("s3://weir-input/raw/cli/synced/")
            .output()
            .unwrap(),
        "sync",
    );

    let keys: Vec<String> =
        ["raw/cli/small.csv", "raw/cli/big.csv", "raw/cli/synced/a.csv", "raw/cli/synced/sub/b.csv"]
            .map(String::from)
            .to_vec();
    weir.assert_succeeded(&keys, Duration::from_secs(240));
    // The 100 MB file went up in parts: S3's multipart ETag, kept when the source is archived.
    let head = ok_doing(
        &weir
            .aws()
            .args(["s3api", "head-object", "--bucket", "weir-archive", "--key", "raw/cli/big.csv"])
            .output()
            .unwrap(),
        "head-object",
    );
    let head: Value = serde_json::from_str(&head).unwrap();
    assert_eq!(head["ContentLength"].as_u64(), Some(std::fs::metadata(&big).unwrap().len()));
    assert!(head["ETag"].as_str().unwrap().contains('-'), "a multipart ETag: {head}");

    // Outputs are listed through the endpoint; sources moved to the archive.
    let out = ok_doing(
        &weir.aws().args(["s3", "ls", "--recursive", "s3://weir-output/"]).output().unwrap(),
        "ls output",
    );
    assert!(out.contains("processed/weir-input/raw/cli/big.csv.ndjson"), "{out}");
    assert!(out.contains("reports/weir-input/raw/cli/synced/sub/b.csv.summary.json"), "{out}");
    // A second sync uploads nothing: sizes and times match what the listing says.
    let again = ok_doing(
        &weir
            .aws()
            .args(["s3", "sync"])
            .arg(files.join("sync"))
            .arg("s3://weir-archive/raw/cli/synced/")
            .output()
            .unwrap(),
        "sync again",
    );
    assert!(!again.contains("upload:"), "{again}");

    // A presigned URL works with a plain HTTP client, and only unmodified.
    let url = ok_doing(
        &weir.aws().args(["s3", "presign", "s3://weir-archive/raw/cli/small.csv"]).output().unwrap(),
        "presign",
    );
    let url = url.trim();
    let got = Command::new(curl_bin()).args(["-s", "-f", url]).output().unwrap();
    assert_eq!(ok_doing(&got, "curl presigned").as_bytes(), std::fs::read(&small).unwrap());
    let tampered = url.replace("small.csv", "big.csv");
    let out = Command::new(curl_bin())
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &tampered])
        .output()
        .unwrap();
    assert_eq!(ok_doing(&out, "curl tampered"), "403");
    // Without any signature: refused.
    let plain = format!("{}/weir-archive/raw/cli/small.csv", weir.s3);
    let out = Command::new(curl_bin()).args(["-s", "-w", "\n%{http_code}", &plain]).output().unwrap();
    let text = ok_doing(&out, "curl unsigned");
    assert!(text.ends_with("403") && text.contains("AccessDenied"), "{text}");
}

#[test]
fn boto3_covers_the_operations_and_its_uploads_succeed() {
    let weir = WeirRun::start(None);
    let report = weir.boto3("roundtrip");
    let keys: Vec<String> =
        report["uploaded"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert_eq!(keys.len(), 5, "{report}");
    weir.assert_succeeded(&keys, Duration::from_secs(120));
    // Objects outside every source's filter make no job.
    let page = weir.json("/v1/jobs?limit=1000");
    assert!(page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["source_key"].as_str().unwrap().starts_with("raw/")));
    // Nothing is left in the staging areas: the multipart parts, and this process's spool.
    let left: Vec<_> = std::fs::read_dir(weir.data().join(".multipart")).unwrap().collect();
    assert!(left.is_empty(), ".multipart: {left:?}");
    for process in std::fs::read_dir(weir.data().join(".tmp")).unwrap().flatten() {
        let spool = process.path().join("incoming");
        let left: Vec<_> = std::fs::read_dir(&spool).map(|d| d.flatten().collect()).unwrap_or_default();
        assert!(left.is_empty(), "{}: {left:?}", spool.display());
    }
}

#[test]
fn wrong_keys_unsigned_requests_skew_and_escaping_keys_are_refused() {
    let weir = WeirRun::start(None);
    weir.boto3("refusals");
    // Nothing escaped: no file appeared outside the buckets' folders.
    for name in ["escape.csv", "copied.csv", "x.csv"] {
        assert!(!weir.data().join(name).exists(), "{name} was written outside a bucket");
    }
    assert!(weir.data().join("credentials.toml").exists(), "DeleteObjects must not reach outside the bucket");
    // Raw traversal through the HTTP path (no client normalising it): refused before the signature.
    let out = Command::new(curl_bin())
        .args(["-s", "--path-as-is", "-X", "PUT", "--data-binary", "x", "-w", "\n%{http_code}"])
        .arg(format!("{}/weir-input/raw/../../escape.csv", weir.s3))
        .output()
        .unwrap();
    let text = ok_doing(&out, "curl traversal");
    assert!(text.ends_with("400") || text.ends_with("403"), "{text}");
    assert!(!weir.data().join("escape.csv").exists());
    // A key that is not UTF-8.
    let out = Command::new(curl_bin())
        .args(["-s", "-X", "PUT", "--data-binary", "x", "-w", "\n%{http_code}"])
        .arg(format!("{}/weir-input/raw/%FF%FE.csv", weir.s3))
        .output()
        .unwrap();
    let text = ok_doing(&out, "curl invalid UTF-8");
    assert!(text.contains("InvalidURI") && text.ends_with("400"), "{text}");
    let raw = weir.data().join("weir-input/raw");
    assert!(raw.read_dir().map_or(true, |d| d.count() == 0), "something was written under raw/");
}

#[test]
fn bodies_over_the_limits_are_refused() {
    let config = format!(
        "{}\n",
        std::fs::read_to_string(repo().join("crates/weir-core/src/default_weir.toml"))
            .unwrap()
            .replace("max_object_bytes = 5368709120", "max_object_bytes = 1048576")
            .replace("max_api_body_bytes = 67108864", "max_api_body_bytes = 4096")
    );
    assert!(config.contains("max_object_bytes = 1048576"), "the default config's [server] section changed");
    let weir = WeirRun::start(Some(&config));
    weir.boto3("oversized");
    let (code, body) = weir.api("PUT", "/v1/files/raw/big.csv", Some(&weir.token), Some(&vec![b'x'; 10_000]));
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    assert!(weir.data().join("weir-input/raw").read_dir().map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn http_api_needs_its_token_and_does_what_it_documents() {
    let weir = WeirRun::start(None);
    // Health needs no token; the rest does: 401 without, 403 with a wrong one, JSON either way.
    assert_eq!(weir.api("GET", "/healthz", None, None).0, 200);
    assert_eq!(weir.api("GET", "/readyz", None, None).0, 200);
    let (code, body) = weir.api("GET", "/v1/jobs", None, None);
    assert_eq!(code, 401, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "unauthorized");
    let (code, body) = weir.api("GET", "/v1/jobs", Some("weir_not-the-token"), None);
    assert_eq!(code, 403, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "forbidden");

    // Ingest the seed's direct-invocation payload: stored as CSV for the sales pipeline.
    let payload = serde_json::json!({"data": [
        {"order_id": "A1", "customer_name": "Ann", "product": "Widget", "quantity": 2, "price": 9.5, "date": "2024-01-05"},
        {"order_id": "A2", "customer_name": "Bob", "product": "Gadget", "quantity": 1, "price": 20, "date": "2024-01-06"}
    ]});
    let (code, body) =
        weir.api("POST", "/v1/ingest", Some(&weir.token), Some(payload.to_string().as_bytes()));
    assert_eq!(code, 202, "{body}");
    let ingested: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ingested["stored_as"], "csv");
    let ndjson = b"{\"order_id\":\"B1\",\"customer_name\":\"Cy\",\"product\":\"Widget\",\"quantity\":3,\"price\":1.5,\"date\":\"2024-02-01\"}\n";
    let (code, body) = weir.api("POST", "/v1/ingest", Some(&weir.token), Some(ndjson));
    assert_eq!(code, 202, "{body}");
    let ingested2: Value = serde_json::from_str(&body).unwrap();
    let (code, body) = weir.api("POST", "/v1/ingest", Some(&weir.token), Some(b"{\"data\": 5}"));
    assert_eq!((code, body.contains("invalid_payload")), (400, true), "{body}");
    // The seed's own payload (004) fits the bundled records pipeline, and so does a JSON array.
    let (code, body) =
        weir.api("POST", "/v1/ingest", Some(&weir.token), Some(br#"{"data": [{"id": 1, "value": "test"}]}"#));
    assert_eq!(code, 202, "{body}");
    let seed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (seed["pipeline"].as_str(), seed["stored_as"].as_str()),
        (Some("records"), Some("ndjson")),
        "{seed}"
    );
    let (code, body) = weir.api(
        "POST",
        "/v1/ingest",
        Some(&weir.token),
        Some(br#"[{"id": 2, "value": "a", "extra": true}, {"id": 3}]"#),
    );
    assert_eq!(code, 202, "{body}");
    let array: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (array["pipeline"].as_str(), array["records"].as_u64()),
        (Some("records"), Some(2)),
        "{array}"
    );

    // Upload a file; traversal keys are refused.
    let sales = std::fs::read(repo().join("samples/sales.csv")).unwrap();
    let (code, body) = weir.api("PUT", "/v1/files/raw/api/sales.csv", Some(&weir.token), Some(&sales));
    assert_eq!(code, 201, "{body}");
    for bad in
        ["/v1/files/raw/../../escape.csv", "/v1/files/raw/..%2F..%2Fescape.csv", "/v1/files/%2Fabs.csv"]
    {
        let (code, body) = weir.api("PUT", bad, Some(&weir.token), Some(b"x"));
        assert!(code == 400 || code == 404, "{bad}: {code} {body}");
    }
    assert!(!weir.data().join("escape.csv").exists());

    let keys = vec![
        ingested["key"].as_str().unwrap().to_owned(),
        ingested2["key"].as_str().unwrap().to_owned(),
        seed["key"].as_str().unwrap().to_owned(),
        array["key"].as_str().unwrap().to_owned(),
        "raw/api/sales.csv".to_owned(),
    ];
    weir.assert_succeeded(&keys, Duration::from_secs(60));
    let job = weir.json(&format!("/v1/jobs/{}", ingested["job_id"].as_str().unwrap()));
    assert_eq!((job["status"].as_str(), job["valid_rows"].as_u64()), (Some("succeeded"), Some(2)), "{job}");
    let job = weir.json(&format!("/v1/jobs/{}", array["job_id"].as_str().unwrap()));
    assert_eq!((job["valid_rows"].as_u64(), job["invalid_rows"].as_u64()), (Some(2), Some(0)), "{job}");
    assert_eq!(weir.api("GET", "/v1/jobs/j-nope", Some(&weir.token), None).0, 404);

    // Pages follow the cursor without gaps or repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/jobs?limit=1&cursor={c}"),
            None => "/v1/jobs?limit=1".to_string(),
        };
        let page = weir.json(&path);
        seen.extend(
            page["jobs"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let all: Vec<String> = weir.json("/v1/jobs").as_object().unwrap()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, all);
    assert_eq!(weir.json("/v1/jobs?status=succeeded&limit=2")["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(weir.api("GET", "/v1/jobs?status=bogus", Some(&weir.token), None).0, 400);

    // The DLQ is empty here; replay says how many moved.
    assert_eq!(weir.json("/v1/dlq")["dead_letters"].as_array().unwrap().len(), 0);
    let (code, body) = weir.api("POST", "/v1/dlq/replay", Some(&weir.token), Some(b"{\"all\": true}"));
    assert_eq!((code, body.as_str()), (200, "{\"replayed\":0}"));

    // The OpenAPI document describes every route.
    let doc = weir.json("/openapi.json");
    for path in [
        "/v1/ingest",
        "/v1/files/{key}",
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/dlq",
        "/v1/dlq/replay",
        "/healthz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from /openapi.json");
    }
}

#[test]
fn schemathesis_finds_no_server_errors() {
    let weir = WeirRun::start(None);
    let st = tool("WEIR_TEST_ST", "st");
    // Bounded: few examples per operation, a fixed seed, one worker; the whole run is killed if
    // it takes longer than a few minutes. The checks are every check schemathesis has except the
    // two that demand the schema be as strict as the server (weir's key rules and cursors are
    // checked by the server and cannot be written as JSON Schema).
    let mut child = Command::new(st)
        .args(["run", &format!("{}/openapi.json", weir.api)])
        .args(["-H", &format!("Authorization: Bearer {}", weir.token)])
        .args(["--max-examples", "25", "--seed", "7", "--workers", "1", "--request-timeout", "30"])
        .args(["--exclude-checks", "positive_data_acceptance,negative_data_rejection"])
        .args(["--no-color"])
        .current_dir(weir.data())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("schemathesis did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems:\n{text}\nweir log:\n{}", weir.log());
    assert!(text.contains("passed") && !text.contains("Server error"), "{text}");
}

/// A second `weir run` on a data dir another one is using is refused with a sentence that
/// names the first one's pid, and an upload in flight to the first is not disturbed (the
/// second's start used to remove the first's upload spool: a 500 for the client).
#[test]
fn a_second_weir_run_on_the_same_data_dir_is_refused_and_disturbs_nothing() {
    let weir = WeirRun::start(None);
    let file = weir.data().join("upload-big.csv");
    sales_csv(&file, 40 << 20);
    let mut upload = weir
        .aws()
        .args(["s3", "cp"])
        .arg(&file)
        .arg("s3://weir-input/raw/big-while-second-starts.csv")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The second start while parts are arriving (a spool file exists).
    let start = Instant::now();
    let spooling = || {
        let Ok(processes) = std::fs::read_dir(weir.data().join(".tmp")) else { return false };
        processes
            .flatten()
            .any(|p| std::fs::read_dir(p.path().join("incoming")).is_ok_and(|mut d| d.next().is_some()))
    };
    while !spooling() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = Command::new(env!("CARGO_BIN_EXE_weir"))
        .env_remove("WEIR_CONFIG")
        .env("WEIR_LOG", "warn")
        .arg("--data-dir")
        .arg(weir.data())
        .args(["run", "--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second weir run must not start: {stderr}");
    let first_pid = weir.proc.id().to_string();
    assert!(
        stderr.contains("another `weir run`") && stderr.contains(&first_pid),
        "the refusal names the running one ({first_pid}): {stderr}"
    );
    let status = upload.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(upload.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "the upload in flight succeeds: {err}");
    weir.assert_succeeded(&["raw/big-while-second-starts.csv".to_string()], Duration::from_secs(120));
}
