//! The daily report end to end on a real `weir run`: the samples uploaded and processed,
//! `weir report daily` from another process, the history and the documents through the HTTP
//! API, and the report in headless Chromium (`tests/browser/report.mjs`): the downloaded file,
//! the served document and the dashboard's link, with no console error and no request to
//! anywhere else, light and dark. Screenshots go to `<target>/tmp/report/` (printed).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{browser_tools, header, ok, samples, until, weir_in, WeirRun};
use serde_json::{json, Value};

/// curl with the token: (status, headers, body).
fn get(w: &WeirRun, path: &str) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-s", "-o", body.to_str().unwrap(), "-D", head.to_str().unwrap(), "-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {}", w.token)])
        .arg(format!("{}{path}", w.api))
        .output()
        .expect("curl is needed for this test");
    let code = ok(&out).trim().parse().unwrap();
    (code, std::fs::read_to_string(head).unwrap(), std::fs::read(body).unwrap_or_default())
}

#[test]
fn the_daily_report_of_a_real_run_is_served_and_reads_well_in_chromium() {
    let (chromium, script_dir) = browser_tools();
    let w = WeirRun::start(None);
    let data = w.data();
    for name in ["sales.csv", "bad_rows.csv", "bad_schema.csv"] {
        ok(&weir_in(data)
            .args(["put", "--key", &format!("raw/{name}")])
            .arg(samples().join(name))
            .output()
            .unwrap());
    }
    until("the three jobs to finish", Duration::from_secs(60), || {
        let (code, _, body) = get(&w, "/v1/jobs?limit=10");
        assert_eq!(code, 200);
        let page: Value = serde_json::from_slice(&body).unwrap();
        let done = page["jobs"]
            .as_array()?
            .iter()
            .filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
            .count();
        (done == 3).then_some(())
    });
    let today = chrono::Utc::now().date_naive();

    // Before any report: an empty history, 404 for the day, 400 for a bad date.
    let (code, _, body) = get(&w, "/v1/reports");
    assert_eq!((code, serde_json::from_slice::<Value>(&body).unwrap()), (200, json!({"reports": []})));
    assert_eq!(get(&w, &format!("/v1/reports/{today}")).0, 404);
    assert_eq!(get(&w, "/v1/reports/2026-02-30").0, 400);
    assert_eq!(get(&w, "/v1/reports?limit=0").0, 400);

    // The report, from another process while weir run goes on.
    let out = ok(&weir_in(data)
        .args(["report", "daily", "--date", &today.to_string(), "--json"])
        .output()
        .unwrap());
    let record: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["html_key"], format!("reports/{today}/daily_report.html"));
    assert_eq!(record["headline"]["received"]["value"], 3.0, "{record}");
    assert_eq!(record["published_to"], json!(["alerts"]));
    let listed = ok(&weir_in(data).args(["report", "list"]).output().unwrap());
    assert!(listed.contains(&today.to_string()) && listed.contains("weir-output/reports/"), "{listed}");

    // The history and the documents through the API.
    let (code, _, body) = get(&w, "/v1/reports");
    assert_eq!(code, 200);
    let reports: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reports["reports"][0]["date"], today.to_string(), "{reports}");
    assert_eq!(reports["reports"][0]["html_url"], format!("/v1/reports/{today}/html"));
    let (code, _, body) = get(&w, &format!("/v1/reports/{today}"));
    assert_eq!(code, 200);
    let report: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        report["day"]["files"],
        json!({"received": 3, "succeeded": 2, "rejected": 1, "failed": 0, "in_progress": 0, "skipped": 0})
    );
    assert_eq!(report["day"]["rows"], json!({"total": 17, "valid": 13, "invalid": 4}), "{report}");
    // Per product, by revenue (the first field the pipeline's group_by names).
    let products: Vec<&str> = report["day"]["aggregates"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(products, ["Widget", "Gadget", "Gizmo", "Doohickey"], "{report}");
    assert_eq!(report["day"]["alarm_changes"], json!([]), "alarms that start out fine are not news");
    assert!(report["day"]["rejection_reasons"][0]["reason"].as_str().unwrap().contains("order_id"));
    let (code, head, html) = get(&w, &format!("/v1/reports/{today}/html"));
    assert_eq!(code, 200);
    assert!(header(&head, "content-type").is_some_and(|c| c.starts_with("text/html")), "{head}");
    assert!(
        header(&head, "content-security-policy").is_some_and(|c| c.contains("default-src 'none'")),
        "{head}"
    );

    // Chromium: the downloaded file, the served one, the dashboard's link.
    let download = data.join("daily_report.html");
    std::fs::write(&download, &html).unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let expect = json!({"received": 3, "succeeded": 2, "rejected": 1, "failed": 0, "success_rate": "66.67%"});
    let out = Command::new("node")
        .arg(script_dir.join("report.mjs"))
        .current_dir(&script_dir)
        .env("WEIR_API", &w.api)
        .env("WEIR_TOKEN", &w.token)
        .env("WEIR_DATE", today.to_string())
        .env("WEIR_FILE", &download)
        .env("WEIR_EXPECT", expect.to_string())
        .env("WEIR_SHOTS", &shots)
        .env("WEIR_CHROMIUM", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l.starts_with("ok ")),
        "the browser test failed ({}):\n{stdout}\n{}\nscreenshots: {}\nweir log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        shots.display(),
        w.log()
    );
    for shot in
        ["report-file-light.png", "report-file-dark.png", "report-api-light.png", "dashboard-reports.png"]
    {
        assert!(shots.join(shot).exists(), "no screenshot {shot}");
    }
    eprintln!("report screenshots: {}", shots.display());
}
