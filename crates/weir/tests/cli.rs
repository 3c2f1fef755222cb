//! The `weir` binary as a user runs it: separate processes sharing a data dir.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ok, samples, weir, Proc};
use serde_json::Value;

fn jobs_json(data: &Path) -> Vec<Value> {
    let out =
        weir().arg("--data-dir").arg(data).args(["jobs", "--json", "--limit", "1000"]).output().unwrap();
    let stdout = ok(&out);
    // One compact object per line, as the help says.
    stdout.lines().map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line")).collect()
}

fn start_run(data: &Path) -> Proc {
    Proc::run(data)
}

/// Waits until every job in the store is terminal and there are `n` of them.
fn wait_all_terminal(data: &Path, n: usize, timeout: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        if data.join("weir.db").exists() {
            let jobs = jobs_json(data);
            let terminal =
                jobs.iter().filter(|j| !matches!(j["status"].as_str(), Some("queued" | "running"))).count();
            if jobs.len() == n && terminal == n {
                return jobs;
            }
        }
        assert!(start.elapsed() < timeout, "jobs did not all finish in {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn process_prints_the_summary_and_exit_codes_say_what_happened() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = weir()
        .arg("process")
        .arg(samples().join("sales.csv"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["total_rows"], 8);
    assert_eq!(summary["valid_rows"], 8);
    assert!(out_dir.path().join("sales.csv.ndjson").exists());
    let written: Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("sales.csv.summary.json")).unwrap())
            .unwrap();
    assert_eq!(written, summary, "printed summary is the summary output");

    let out = weir()
        .arg("process")
        .arg(samples().join("bad_schema.csv"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("order_id"));

    let out = weir()
        .arg("process")
        .arg(samples().join("bad_rows.csv"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["invalid_rows"], 4);
    assert!(out_dir.path().join("bad_rows.csv.errors.json").exists());

    let out =
        weir().arg("process").arg("/nonexistent/file.csv").arg("--out").arg(out_dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.csv"));

    // A gzipped file goes to the pipeline of its inner suffix, and to the same results; piped
    // (not a terminal), no progress bar is drawn.
    let gz = out_dir.path().join("sales.csv.gz");
    let status = Command::new("gzip").arg("-c").arg(samples().join("sales.csv")).output().unwrap();
    std::fs::write(&gz, status.stdout).unwrap();
    let out = weir().arg("process").arg(&gz).arg("--out").arg(out_dir.path()).output().unwrap();
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["valid_rows"], 8);
    assert_eq!(
        std::fs::read(out_dir.path().join("sales.csv.gz.ndjson")).unwrap(),
        std::fs::read(out_dir.path().join("sales.csv.ndjson")).unwrap()
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'), "no progress bar when piped");
}

/// With no config, `weir process` takes a picture to the bundled image pipeline: three
/// thumbnails and the metadata document in `--out`; a file that is not a picture it reads
/// safely exits 2 with the reason.
#[test]
fn process_makes_thumbnails_and_metadata_of_a_picture_and_refuses_hostile_ones() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = weir()
        .arg("process")
        .arg(samples().join("photo.jpg"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let image: Value = serde_json::from_str(&ok(&out)).unwrap();
    // Stored 900 x 1200 on its side, shown 1200 x 900 (EXIF orientation 6).
    assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(900), Some(1200)));
    assert_eq!((image["display_width"].as_u64(), image["display_height"].as_u64()), (Some(1200), Some(900)));
    assert_eq!(image["exif"]["make"], "Weirphone");
    assert_eq!(image["exif"]["has_gps"], true);
    assert!(image["exif"].get("gps").is_none(), "the location is withheld by default: {image}");
    for (size, w, h) in [("small", 150, 113), ("medium", 300, 225), ("large", 600, 450)] {
        let path = out_dir.path().join(format!("photo.jpg_{size}.jpg"));
        let (tw, th, pixels) = weir_image::fixtures::read_jpeg(&std::fs::read(&path).unwrap());
        assert_eq!((tw, th), (w, h), "{}", path.display());
        // The sample's red corner is top-left when the photo is shown upright.
        let corner = weir_image::fixtures::pixel(&pixels, tw, 2, 2);
        assert!(weir_image::fixtures::near(corner, [200, 30, 30], 40), "{size}: top-left is {corner:?}");
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("photo.jpg.json")).unwrap()).unwrap();
    assert_eq!(written, image, "the printed metadata is the metadata document");

    let bomb = out_dir.path().join("bomb.png");
    std::fs::write(&bomb, weir_image::fixtures::bomb_png(100_000, 100_000)).unwrap();
    let csv = out_dir.path().join("holiday.jpg");
    std::fs::copy(samples().join("sales.csv"), &csv).unwrap();
    let empty = out_dir.path().join("empty.gif");
    std::fs::write(&empty, b"").unwrap();
    for (file, reason) in
        [(&bomb, "100000 x 100000 pixels"), (&csv, "not a picture weir reads"), (&empty, "the file is empty")]
    {
        let out = weir().arg("process").arg(file).arg("--out").arg(out_dir.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains(reason), "{}: {stderr}", file.display());
    }
    assert!(!out_dir.path().join("bomb.png.json").exists());
}

#[test]
fn init_writes_a_config_that_check_accepts_and_check_reports_problems() {
    let dir = tempfile::tempdir().unwrap();
    ok(&weir().arg("init").arg(dir.path()).output().unwrap());
    for f in [
        "weir.toml",
        "workflow.asl.json",
        "samples/sales.csv",
        "samples/bad_schema.csv",
        "samples/bad_rows.csv",
        "samples/photo.jpg",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let check = ok(&weir().arg("--config").arg(dir.path().join("weir.toml")).arg("check").output().unwrap());
    assert!(check.contains("ok"), "{check}");
    // The config names the workflow beside it; a broken workflow is reported with its pointer.
    let toml = std::fs::read_to_string(dir.path().join("weir.toml")).unwrap();
    assert!(toml.contains("\n[pipeline.workflow]\nfile = \"workflow.asl.json\""), "{toml}");
    let workflow = dir.path().join("workflow.asl.json");
    let good = std::fs::read_to_string(&workflow).unwrap();
    std::fs::write(&workflow, good.replace("\"Next\": \"CheckValidation\"", "\"Next\": \"Nowhere\""))
        .unwrap();
    let out = weir().arg("--config").arg(dir.path().join("weir.toml")).arg("check").output().unwrap();
    assert!(!out.status.success());
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("/States/ValidateSchema") && all.contains("Nowhere"), "{all}");
    std::fs::write(&workflow, good).unwrap();
    // init refuses to overwrite.
    assert!(!weir().arg("init").arg(dir.path()).output().unwrap().status.success());

    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(dir.path().join("weir.toml"))
        .unwrap()
        .replace("quantity * price", "quantity * prize")
        .replace("prefix = \"raw/\"", "prefix = \"\"");
    std::fs::write(&bad, text).unwrap();
    let out = weir().arg("--config").arg(&bad).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The config's own rule and the compiled schema's problem, in one list, alike.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\n  pipeline[0] (sales).source: prefix \"\" would match"), "{stdout}");
    assert!(stdout.contains("\n  pipeline[0] (sales).derived[0].expr: unknown field `prize`"), "{stdout}");
    // A command that runs pipelines refuses the same config with the same lines.
    let out = weir().arg("--config").arg(&bad).args(["process", "/dev/null"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("pipeline[0] (sales).derived[0].expr"), "{stderr}");

    // Schema problems: every one, on its own line, with its path in the configuration.
    let schema = dir.path().join("schema.toml");
    let text = std::fs::read_to_string(dir.path().join("weir.toml"))
        .unwrap()
        .replace("quantity * price", "quantity * prize")
        .replace("type = \"integer\"", "type = \"integer\"\nmin = \"one\"");
    std::fs::write(&schema, text).unwrap();
    let out = weir().arg("--config").arg(&schema).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "\n  pipeline[0] (sales).columns[3].min: one is not a valid bound for this integer column\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("\n  pipeline[0] (sales).derived[0].expr: unknown field `prize`"), "{stdout}");
}

/// `weir check` refuses what would only fail later: no pipeline at all, and a records sink
/// (here DynamoDB on AWS) with results it cannot load.
#[test]
fn check_refuses_no_pipelines_and_a_records_sink_with_json_results() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "[buckets]\ninput = \"weir-input\"\n").unwrap();
    let out = weir().arg("--config").arg(&empty).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\n  pipeline: no [[pipeline]]: no file would ever be processed"), "{stdout}");

    let aws = dir.path().join("aws.toml");
    let text = weir_core::config::DEFAULT_CONFIG_TOML
        .replace("format = \"ndjson\"   # or \"json\"", "format = \"json\"   # or \"json\"");
    assert_ne!(text, weir_core::config::DEFAULT_CONFIG_TOML, "the bundled config's output format line moved");
    std::fs::write(&aws, format!("{text}\n[aws]\nrecords_table = \"weir-records\"\n")).unwrap();
    let out = weir().arg("--config").arg(&aws).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\n  pipeline[0] (sales).output.format: the records sink (aws.records_table = \"weir-records\") loads NDJSON results"),
        "{stdout}"
    );
}

/// `weir check` refuses output key templates that could make two sources write one key, and
/// a template under the watched input prefix, each with its setting's
/// path and a sentence; the seed 003 layout (one bucket) passes.
#[test]
fn check_refuses_colliding_unknown_and_looping_key_templates() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("templates.toml");
    let text = weir_core::config::DEFAULT_CONFIG_TOML.replace(
        "format = \"ndjson\"   # or \"json\"",
        "results_key = \"out/{stem}.ndjson\"\nfailed_key = \"raw/failed/{key}\"\nformat = \"ndjson\"   # or \"json\"",
    );
    assert_ne!(text, weir_core::config::DEFAULT_CONFIG_TOML, "the bundled config's output format line moved");
    std::fs::write(&bad, text).unwrap();
    let out = weir().arg("--config").arg(&bad).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "\n  pipeline[0] (sales).output.results_key: \"out/{stem}.ndjson\": it could give two different sources the same key",
        "\n  pipeline[0] (sales).output.failed_key: keys from \"raw/failed/{key}\" in weir-input could match pipeline[0] (sales)'s source",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}");
    }

    let one_bucket = dir.path().join("one_bucket.toml");
    std::fs::write(
        &one_bucket,
        "[buckets]\ninput = \"pipeline-data\"\noutput = \"pipeline-data\"\narchive = \"pipeline-data\"\n\
         [[pipeline]]\nname = \"orders\"\nsource = { prefix = \"raw-data/\" }\n[pipeline.output]\n\
         results_key = \"results/{dir}/{name}.ndjson\"\nsummary_key = \"results/{dir}/{name}.summary.json\"\n\
         errors_key = \"results/{dir}/{name}.errors.json\"\narchive_key = \"processed-data/{key}\"\n\
         failed_key = \"failed-data/{yyyy}-{mm}-{dd}/{key}\"\n",
    )
    .unwrap();
    let out = weir().arg("--config").arg(&one_bucket).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_and_put_in_separate_processes() {
    let data = tempfile::tempdir().unwrap();
    let mut run = start_run(data.path());
    let out = weir()
        .arg("--data-dir")
        .arg(data.path())
        .arg("put")
        .args([samples().join("sales.csv"), samples().join("bad_schema.csv")])
        .arg("--wait")
        .output()
        .unwrap();
    // One file was rejected, so `put --wait` says so with its exit code.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("succeeded") && stdout.contains("rejected"), "{stdout}");

    let ok_put = weir()
        .arg("--data-dir")
        .arg(data.path())
        .arg("put")
        .arg(samples().join("bad_rows.csv"))
        .arg("--key")
        .arg("raw/renamed.csv")
        .arg("--wait")
        .output()
        .unwrap();
    ok(&ok_put);

    let jobs = jobs_json(data.path());
    assert_eq!(jobs.len(), 3);
    for j in &jobs {
        for field in [
            "job_id",
            "status",
            "source_bucket",
            "source_key",
            "total_rows",
            "valid_rows",
            "invalid_rows",
            "output_keys",
            "attempts",
            "error",
        ] {
            assert!(j.get(field).is_some(), "job lacks {field}: {j}");
        }
    }
    let renamed = jobs.iter().find(|j| j["source_key"] == "raw/renamed.csv").unwrap();
    let id = renamed["job_id"].as_str().unwrap();
    let show = ok(&weir().arg("--data-dir").arg(data.path()).args(["jobs", "show", id]).output().unwrap());
    assert!(
        show.contains("TransformData") && show.contains("errors/weir-input/raw/renamed.csv.errors.json"),
        "{show}"
    );
    let table = ok(&weir()
        .arg("--data-dir")
        .arg(data.path())
        .args(["jobs", "--status", "rejected"])
        .output()
        .unwrap());
    assert!(table.contains("bad_schema.csv") && !table.contains("renamed.csv"), "{table}");

    // SIGTERM stops the worker cleanly.
    let status = run.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// `weir put` uploads under the configured source prefix (not always raw/), takes --prefix, and
/// `--wait` exits non-zero when a file made no job, saying why.
#[test]
fn put_uses_the_pipelines_prefix_and_wait_fails_when_a_file_makes_no_job() {
    let data = tempfile::tempdir().unwrap();
    let text = weir_core::config::DEFAULT_CONFIG_TOML.replace("prefix = \"raw/\"", "prefix = \"incoming/\"");
    assert_ne!(text, weir_core::config::DEFAULT_CONFIG_TOML);
    std::fs::write(data.path().join("weir.toml"), text).unwrap();
    let mut run = start_run(data.path());
    let put = |args: &[&str], file: PathBuf| {
        weir()
            .arg("--data-dir")
            .arg(data.path())
            .arg("put")
            .args(args)
            .arg(file)
            .arg("--wait")
            .output()
            .unwrap()
    };
    let out = put(&[], samples().join("sales.csv"));
    let stdout = ok(&out);
    assert!(stdout.contains("weir-input/incoming/sales.csv") && stdout.contains("succeeded"), "{stdout}");
    // A picture goes to the image pipeline's prefix, a CSV file to the sales one.
    let out = put(&[], samples().join("photo.jpg"));
    assert!(ok(&out).contains("weir-input/images/photo.jpg"));
    // Under a prefix no pipeline takes: uploaded, no job, and --wait says so with its exit code.
    let out = put(&["--prefix", "elsewhere/"], samples().join("sales.csv"));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("weir-input/elsewhere/sales.csv") && stdout.contains("no job"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 file(s) made no job"), "{stderr}");
    let keys: Vec<String> =
        jobs_json(data.path()).iter().map(|j| j["source_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&"incoming/sales.csv".to_string()), "{keys:?}");
    let status = run.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// kill -9 while files are being processed, restart, and every file still ends in exactly one
/// terminal state with complete outputs.
#[test]
fn restart_after_kill_with_messages_in_flight() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let header = "order_id,customer_name,product,quantity,price,date\n";
    let n_files = 12;
    let rows = 40_000;
    let mut paths = Vec::new();
    for f in 0..n_files {
        let mut text = String::from(header);
        for r in 0..rows {
            text.push_str(&format!(
                "O-{f}-{r},Name {r},P{},{},{}.5,2024-01-{:02}\n",
                r % 7,
                r % 9 + 1,
                r % 50,
                r % 28 + 1
            ));
        }
        let p = files.path().join(format!("f{f:02}.csv"));
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    // Messages received by a killed process come back after the visibility timeout (30 s by
    // default); a short one keeps the test quick.
    std::fs::write(data.path().join("weir.toml"), config_with_short_visibility()).unwrap();
    ok(&weir().arg("--data-dir").arg(data.path()).arg("put").args(&paths).output().unwrap());

    // Kills at different moments, each while work is still unfinished, then a run to completion.
    let mut interrupted = 0;
    for delay in [150u64, 400, 250] {
        let mut run = start_run(data.path());
        std::thread::sleep(Duration::from_millis(delay));
        run.kill9();
        let jobs = jobs_json(data.path());
        let done = jobs.iter().filter(|j| j["status"] == "succeeded").count();
        eprintln!(
            "killed after {delay} ms: {done}/{n_files} done, statuses {:?}",
            jobs.iter().map(|j| j["status"].as_str().unwrap_or("")).collect::<Vec<_>>()
        );
        if done < n_files {
            interrupted += 1;
        }
    }
    assert!(interrupted >= 2, "the kills must land while files are in flight; make the files bigger");
    let mut run = start_run(data.path());
    let jobs = wait_all_terminal(data.path(), n_files, Duration::from_secs(120));
    run.kill9();

    assert!(jobs.iter().any(|j| j["attempts"].as_u64().unwrap() > 1), "some job was interrupted and retried");
    for j in &jobs {
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["valid_rows"], rows, "{j}");
        let key = j["output_keys"]["results"].as_str().unwrap();
        let results = std::fs::read_to_string(data.path().join("weir-output").join(key)).unwrap();
        assert_eq!(results.lines().count(), rows, "complete results for {key}");
        let name = j["source_key"].as_str().unwrap();
        assert!(data.path().join("weir-archive").join(name).exists());
        assert!(!data.path().join("weir-input").join(name).exists());
    }
    // No stray spool files are visible as objects.
    let outputs = walk(&data.path().join("weir-output"));
    assert_eq!(outputs.len(), n_files * 2, "{outputs:?}");
}

fn config_with_short_visibility() -> String {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../weir-core/src/default_weir.toml");
    std::fs::read_to_string(default)
        .unwrap()
        .replace("visibility_timeout_secs = 30", "visibility_timeout_secs = 2")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn demo_shows_the_sample_jobs() {
    let out = weir().args(["demo", "--exit"]).output().unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("raw/sales.csv") && stdout.contains("succeeded"), "{stdout}");
    assert!(stdout.contains("raw/bad_schema.csv") && stdout.contains("rejected"), "{stdout}");
    assert!(stdout.contains("raw/bad_rows.csv"), "{stdout}");
    // The table's row of the sample picture: the image pipeline made its metadata.
    let photo = stdout.lines().find(|l| l.starts_with("j-") && l.contains("images/photo.jpg"));
    let photo = photo.unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        photo.contains("succeeded") && photo.contains("metadata/weir-input/images/photo.jpg.json"),
        "{photo}"
    );
}

/// `weir demo --data-dir D` keeps D, and its hint says so instead of promising to remove it.
#[test]
fn demo_on_a_given_data_dir_says_it_keeps_it() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut demo = Proc::spawn(
        weir()
            .arg("--data-dir")
            .arg(data.path())
            .arg("demo")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let stdout = demo.child().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let hint = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the demo's Ctrl-C hint within 60 s");
        if line.starts_with("Ctrl-C stops") {
            break line;
        }
    };
    assert_eq!(hint, "Ctrl-C stops (the data dir is kept).");
    let status = demo.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(data.path().join("weir-output").is_dir(), "the data dir and its outputs are kept");
}

/// `weir credentials` where nothing has run says so instead of making a data dir with new keys,
/// and on a real one points only S3 at weir (AWS_ENDPOINT_URL_S3, not AWS_ENDPOINT_URL).
#[test]
fn credentials_need_a_data_dir_and_point_only_s3_at_weir() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("weir-data");
    let out = weir().arg("--data-dir").arg(&missing).arg("credentials").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("there is no weir data dir at") && stderr.contains("weir run"), "{stderr}");
    assert!(!missing.exists(), "no data dir was created");

    let data = tempfile::tempdir().unwrap();
    let out = weir().arg("--data-dir").arg(data.path()).arg("credentials").output().unwrap();
    let printed = ok(&out);
    assert!(printed.lines().any(|l| l.starts_with("export AWS_ENDPOINT_URL_S3=http")), "{printed}");
    assert!(!printed.contains("AWS_ENDPOINT_URL="), "{printed}");
    assert!(printed.contains("--profile weir"), "the profile form is explained: {printed}");
}

/// `weir jobs --json | head -1`, and any command whose reader has gone: weir ends quietly with
/// status 0 as ripgrep does (no "failed printing to stdout" panic, nothing on stderr).
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A private data dir, else weir warns of it on stderr.
    std::fs::set_permissions(data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // 1,000 jobs: their NDJSON (about 400 kB) is far more than a pipe holds (64 kB).
    let store = weir_backends::SqliteJobStore::open(&weir_backends::state_db(data)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for i in 0..1000 {
            let job =
                weir_core::Job::queued("weir-input", &format!("raw/{i:05}.csv"), "etag", 100, Some("sales"));
            weir_ports::JobStore::create(&store, &job).await.unwrap();
        }
    });
    drop(store);
    let quiet = |what: &str, status: std::process::ExitStatus, stderr: &[u8]| {
        let stderr = String::from_utf8_lossy(stderr);
        assert!(status.success() && stderr.is_empty(), "{what}: {status:?}, stderr: {stderr}");
    };

    // head -1: one line read, then the pipe closed while weir is still writing.
    let mut head = Proc::spawn(
        weir()
            .arg("--data-dir")
            .arg(data)
            .args(["jobs", "--json", "--limit", "1000"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let mut stdout = std::io::BufReader::new(head.child().stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    serde_json::from_str::<Value>(&first).expect("the first line is a job");
    drop(stdout);
    let status = head.wait_exit(Duration::from_secs(60));
    let mut stderr = Vec::new();
    std::io::Read::read_to_end(&mut head.child().stderr.take().unwrap(), &mut stderr).unwrap();
    quiet("jobs --json | head -1", status, &stderr);

    // The reader gone before weir writes its first line.
    let sales = samples().join("sales.csv");
    let commands: [&[&OsStr]; 7] = [
        &["jobs".as_ref()],
        &["jobs".as_ref(), "--json".as_ref()],
        &["alarms".as_ref(), "--json".as_ref()],
        &["schedules".as_ref()],
        &["dlq".as_ref(), "list".as_ref()],
        &["infer".as_ref(), "--json".as_ref(), sales.as_os_str()],
        &["--help".as_ref()],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = weir().arg("--data-dir").arg(data).args(args).stdout(writer).output().unwrap();
        quiet(&format!("{args:?}"), out.status, &out.stderr);
    }
}
