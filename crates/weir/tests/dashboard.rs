//! The dashboard of a real `weir run`: its sign-in contract over HTTP (curl), and the page itself
//! in headless Chromium (Debian's `/usr/bin/chromium` driven by `playwright-core` from
//! `tests/browser/`, a Node script): it loads with no console errors, shows the uploaded jobs and
//! their failures, draws its charts, and shows a job that finishes later without a reload.
//!
//! `scripts/test` installs Chromium and runs `npm ci` in `tests/browser`. When node, Chromium or
//! the npm packages are missing the test fails and says so; it never passes without a browser.
//! Screenshots go to `<target>/tmp/dashboard/` (printed by the test). The Chromium test's
//! pipeline loads a PostgreSQL table too (a server the test starts), which the job page shows.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{browser_tools, header, ok_doing, repo, weir, WeirRun};
use serde_json::{json, Value};
use weir_postgres::testing::TestServer;

/// A `weir run` of the bundled pipelines; with `pg`, the sales pipeline loads its rows into it too
/// (its table set up first).
fn start(pg: Option<&TestServer>) -> WeirRun {
    let Some(pg) = pg else { return WeirRun::start(None) };
    // The sales pipeline's commented sink, switched on (the end of the file is the other
    // pipelines').
    let toml = common::default_config().replacen(
        "# [pipeline.sinks.postgres]\n# url = { secret = \"arn:aws:secretsmanager:...\", key = \"url\" }   # or a string, url_env, url_file\n# table = \"sales\"",
        "[pipeline.sinks.postgres]\ntable = \"sales\"",
        1,
    );
    assert!(toml.contains("\n[pipeline.sinks.postgres]\n"), "default_weir.toml's sink changed");
    WeirRun::start_with(Some(&toml), |data, run| {
        let setup = weir()
            .arg("--config")
            .arg(data.join("weir.toml"))
            .args(["setup", "postgres"])
            .env("WEIR_POSTGRES_URL", pg.url())
            .output()
            .unwrap();
        ok_doing(&setup, "weir setup postgres");
        run.env("WEIR_POSTGRES_URL", pg.url());
    })
}

/// What the tests do with a `weir run`.
impl WeirRun {
    /// curl with extra arguments; (status, headers, body).
    fn curl(&self, args: &[&str], path: &str) -> (u16, String, String) {
        let out = Command::new("curl")
            .args(["-s", "-i", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.api))
            .output()
            .expect("curl is needed for this test");
        let text = ok_doing(&out, "curl");
        let (rest, code) = text.rsplit_once('\n').unwrap();
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        (code.parse().unwrap(), head.to_owned(), body.to_owned())
    }

    /// Uploads a sample through the HTTP API.
    fn upload(&self, sample: &str, key: &str) {
        let auth = format!("Authorization: Bearer {}", self.token);
        let file = repo().join("samples").join(sample);
        let (code, _, body) =
            self.curl(&["-H", &auth, "-T", file.to_str().unwrap()], &format!("/v1/files/{key}"));
        assert_eq!(code, 201, "upload {key}: {body}");
    }

    /// Waits until every key has a job in a terminal state.
    fn wait_finished(&self, keys: &[&str]) -> Vec<Value> {
        let auth = format!("Authorization: Bearer {}", self.token);
        let start = Instant::now();
        loop {
            let (code, _, body) = self.curl(&["-H", &auth], "/v1/jobs?limit=1000");
            assert_eq!(code, 200, "{body}");
            let page: Value = serde_json::from_str(&body).unwrap();
            let jobs: Vec<Value> = keys
                .iter()
                .filter_map(|k| {
                    page["jobs"].as_array().unwrap().iter().find(|j| j["source_key"] == *k).cloned()
                })
                .filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
                .collect();
            if jobs.len() == keys.len() {
                return jobs;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "jobs not finished: {page}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_session_cookie_comes_from_the_token_and_authorizes_reads_only() {
    let weir = start(None);
    // The page is public and strict about what it loads.
    let (code, head, body) = weir.curl(&[], "/");
    assert_eq!(code, 200);
    assert!(body.contains("<script type=\"module\" src=\"/assets/app.js\">"), "{body}");
    assert!(
        header(&head, "content-security-policy").is_some_and(|c| c.contains("default-src 'none'")),
        "{head}"
    );
    let (code, head, _) = weir.curl(&[], "/assets/app.js");
    assert_eq!(code, 200);
    assert!(header(&head, "content-type").is_some_and(|c| c.starts_with("text/javascript")), "{head}");
    assert_eq!(weir.curl(&[], "/assets/nope.js").0, 404);

    // A wrong token: back to the form, no cookie.
    let (code, head, _) = weir.curl(&[], "/?token=weir_wrong");
    assert_eq!(code, 303);
    assert_eq!(header(&head, "location"), Some("/?login=failed"));
    assert!(header(&head, "set-cookie").is_none(), "{head}");

    // The token: a redirect to the bare page with an HttpOnly, SameSite=Strict cookie.
    let (code, head, _) = weir.curl(&[], &format!("/?token={}", weir.token));
    assert_eq!(code, 303);
    assert_eq!(header(&head, "location"), Some("/"));
    let set = header(&head, "set-cookie").expect("a session cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("weir_session=") && !cookie.contains(&weir.token), "{cookie}");
    assert!(set.contains("Max-Age=43200"), "a session lasts session_ttl_secs: {set}");
    // The form does the same (a session of its own, as valid).
    let (code, head, _) = weir.curl(&["--data-urlencode", &format!("token={}", weir.token)], "/session");
    assert_eq!(code, 303);
    let form_cookie =
        header(&head, "set-cookie").expect("a session cookie").split(';').next().unwrap().to_owned();
    assert_eq!(weir.curl(&["-b", &form_cookie], "/v1/jobs").0, 200);

    // The cookie reads the API; a wrong cookie is refused; no cookie is 401.
    let (code, _, body) = weir.curl(&["-b", &cookie], "/v1/overview");
    assert_eq!(code, 200, "{body}");
    let overview: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(overview["series"].as_array().unwrap().len(), 60);
    assert_eq!(weir.curl(&["-b", &cookie], "/v1/jobs").0, 200);
    assert_eq!(weir.curl(&["-b", &cookie], "/metrics").0, 200);
    assert_eq!(weir.curl(&["-b", "weir_session=0000"], "/v1/overview").0, 403);
    assert_eq!(weir.curl(&[], "/v1/overview").0, 401);
    let (_, _, body) = weir.curl(&["-b", &cookie], "/session");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"authenticated": true}));
    let (_, _, body) = weir.curl(&[], "/session");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"authenticated": false}));

    // Writes need the bearer token: a browser sends cookies on its own.
    let (code, _, body) = weir.curl(&["-b", &cookie, "-X", "POST", "-d", "{\"all\":true}"], "/v1/dlq/replay");
    assert_eq!(code, 401, "{body}");
    let (code, _, _) =
        weir.curl(&["-b", &cookie, "-X", "PUT", "--data-binary", "a,b\n"], "/v1/files/raw/x.csv");
    assert_eq!(code, 401);

    // `weir credentials` prints the sign-in link of the running instance.
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--data-dir")
        .arg(weir.data())
        .arg("credentials")
        .env_remove("WEIR_API_TOKEN")
        .output()
        .unwrap();
    let printed = ok_doing(&out, "weir credentials");
    let link = format!("# the dashboard: {}/?token={}", weir.api, weir.token);
    assert!(printed.lines().any(|l| l == link), "{printed}");

    // Signing out clears the cookie.
    let (code, head, _) = weir.curl(&["-b", &cookie, "-X", "POST"], "/logout");
    assert_eq!(code, 303);
    assert!(header(&head, "set-cookie")
        .is_some_and(|s| s.starts_with("weir_session=;") && s.contains("Max-Age=0")));
}

#[test]
fn the_job_page_endpoints_preview_the_error_report_and_the_summary() {
    let weir = start(None);
    weir.upload("bad_rows.csv", "raw/bad_rows.csv");
    weir.upload("sales.csv", "raw/sales.csv");
    let jobs = weir.wait_finished(&["raw/bad_rows.csv", "raw/sales.csv"]);
    let auth = format!("Authorization: Bearer {}", weir.token);
    let preview = |id: &Value, q: &str| {
        let (code, _, body) =
            weir.curl(&["-H", &auth], &format!("/v1/jobs/{}/errors{q}", id.as_str().unwrap()));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let p = preview(&jobs[0]["job_id"], "");
    assert_eq!(p["complete"], true, "{p}");
    assert_eq!(p["key"], "errors/weir-input/raw/bad_rows.csv.errors.json");
    let lines: Vec<u64> =
        p["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [3, 4, 6, 7]);
    assert_eq!(p["errors"][0]["values"]["quantity"], "two");
    let p = preview(&jobs[0]["job_id"], "?limit=2");
    assert_eq!((p["errors"].as_array().unwrap().len(), &p["complete"]), (2, &json!(false)));
    // A job without invalid rows has no report.
    let p = preview(&jobs[1]["job_id"], "");
    assert_eq!((&p["key"], p["errors"].as_array().unwrap().len()), (&Value::Null, 0));
    let (code, _, _) = weir.curl(&["-H", &auth], "/v1/jobs/j-nope/errors");
    assert_eq!(code, 404);
    let (code, _, _) = weir
        .curl(&["-H", &auth], &format!("/v1/jobs/{}/errors?limit=0", jobs[0]["job_id"].as_str().unwrap()));
    assert_eq!(code, 400);

    // The summary, for the job page.
    let (code, _, body) =
        weir.curl(&["-H", &auth], &format!("/v1/jobs/{}/summary", jobs[0]["job_id"].as_str().unwrap()));
    assert_eq!(code, 200, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["key"], "reports/weir-input/raw/bad_rows.csv.summary.json");
    assert_eq!((&s["summary"]["total_rows"], &s["summary"]["valid_rows"]), (&json!(9), &json!(5)), "{s}");
    assert_eq!(weir.curl(&["-H", &auth], "/v1/jobs/j-nope/summary").0, 404);

    // A picture's thumbnail: the smallest by default, any size by name; not for a data job.
    weir.upload("photo.jpg", "images/photo.jpg");
    let photo = weir.wait_finished(&["images/photo.jpg"]).remove(0);
    let id = photo["job_id"].as_str().unwrap();
    assert_eq!(photo["image"]["display_width"], 1200, "{photo}");
    let thumbnail = |q: &str| {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-H", &auth])
            .arg(format!("{}/v1/jobs/{id}/thumbnail{q}", weir.api))
            .output()
            .unwrap();
        let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (String::from_utf8_lossy(&out.stdout[..split]).into_owned(), out.stdout[split + 4..].to_vec())
    };
    let (head, body) = thumbnail("");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("image/jpeg"));
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    let small_key = photo["output_keys"]["thumbnail_small"].as_str().unwrap();
    assert_eq!(body, std::fs::read(weir.data().join("weir-output").join(small_key)).unwrap());
    let (_, large) = thumbnail("?size=large");
    assert!(large.starts_with(&[0xFF, 0xD8]) && large.len() > body.len());
    assert!(thumbnail("?size=huge").0.starts_with("HTTP/1.1 404"));
    let data_job = jobs[1]["job_id"].as_str().unwrap();
    assert_eq!(weir.curl(&["-H", &auth], &format!("/v1/jobs/{data_job}/thumbnail")).0, 404);
    assert_eq!(weir.curl(&[], &format!("/v1/jobs/{id}/thumbnail")).0, 401);

    // The overview counts them.
    let (_, _, body) = weir.curl(&["-H", &auth], "/v1/overview?minutes=15");
    let o: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(o["totals"]["succeeded"], 3, "{o}");
    let finished: u64 =
        o["series"].as_array().unwrap().iter().map(|p| p["succeeded"].as_u64().unwrap()).sum();
    let invalid: u64 =
        o["series"].as_array().unwrap().iter().map(|p| p["rows_invalid"].as_u64().unwrap()).sum();
    assert_eq!((finished, invalid), (3, 4), "{o}");
    assert_eq!(o["latency"]["samples"], 3);
    assert_eq!(o["recent_jobs"].as_array().unwrap().len(), 3);
    assert_eq!(weir.curl(&["-H", &auth], "/v1/overview?minutes=2").0, 400);
}

#[test]
fn the_dashboard_in_chromium_shows_the_jobs_and_updates_live() {
    let (chromium, script_dir) = browser_tools();
    let pg = TestServer::start();
    let weir = start(Some(&pg));
    weir.upload("sales.csv", "raw/sales.csv");
    weir.upload("bad_rows.csv", "raw/bad_rows.csv");
    weir.upload("bad_schema.csv", "raw/bad_schema.csv");
    weir.upload("photo.jpg", "images/photo.jpg");
    let jobs =
        weir.wait_finished(&["raw/sales.csv", "raw/bad_rows.csv", "raw/bad_schema.csv", "images/photo.jpg"]);
    let statuses: Vec<&str> = jobs.iter().map(|j| j["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "rejected", "succeeded"]);
    // The job page says where the valid rows went: as many as the table holds.
    let loaded = &jobs[1]["warehouse"]["rows"];
    assert_eq!(loaded, &jobs[1]["valid_rows"]);
    let in_table = pg.psql("SELECT count(*) FROM sales WHERE weir_source_key = 'raw/bad_rows.csv'");
    assert_eq!(in_table, loaded.to_string());
    let expect = json!([
        {"key": "raw/sales.csv", "status": "succeeded"},
        {"key": "raw/bad_rows.csv", "status": "succeeded", "invalid_rows": 4, "loaded": format!("{loaded} rows into sales")},
        {"key": "raw/bad_schema.csv", "status": "rejected", "reason": "missing required columns: order_id"},
        {"key": "images/photo.jpg", "status": "succeeded", "thumbnail": {"width": 150, "height": 113}},
    ]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    for old in [
        "signin.png",
        "overview.png",
        "overview-live.png",
        "overview-dark.png",
        "job.png",
        "image-job.png",
        "failure.png",
    ] {
        let _ = std::fs::remove_file(shots.join(old));
    }

    let mut node = Command::new("node")
        .arg(script_dir.join("dashboard.mjs"))
        .current_dir(&script_dir)
        .env("WEIR_API", &weir.api)
        .env("WEIR_TOKEN", &weir.token)
        .env("WEIR_EXPECT", expect.to_string())
        .env("WEIR_SHOTS", &shots)
        .env("WEIR_CHROMIUM", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = node.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = node.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut said = Vec::new();
    let mut verdict = None;
    while verdict.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line == "ready" => {
                // The page is up and shows the first jobs: now a new file arrives and finishes.
                weir.upload("sales.csv", "raw/late/sales.csv");
                weir.wait_finished(&["raw/late/sales.csv"]);
                writeln!(node.stdin.as_mut().unwrap(), "uploaded raw/late/sales.csv").unwrap();
            }
            Ok(line) if line.starts_with("ok ") => verdict = Some(line),
            Ok(line) => said.push(line),
            Err(_) => {
                let _ = node.kill();
                break;
            }
        }
    }
    let status = node.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        status.success() && verdict.is_some(),
        "the browser test failed ({status}):\n{}\n{stderr}\nscreenshots: {}\nweir log:\n{}",
        said.join("\n"),
        shots.display(),
        weir.log()
    );
    let report: Value = serde_json::from_str(verdict.unwrap().trim_start_matches("ok ")).unwrap();
    assert!(report["renders"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["steps"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["thumbnail"], json!([150, 113]), "{report}");
    for shot in
        ["signin.png", "overview.png", "overview-live.png", "overview-dark.png", "job.png", "image-job.png"]
    {
        let bytes = std::fs::read(shots.join(shot)).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{shot} is not a screenshot"
        );
    }
    println!("dashboard screenshots: {}", shots.display());
}
