//! `weir init --from` and `weir infer` as a user runs them on their own files: the seeds'
//! samples (`samples/seeds/`) each get a config that `weir check` passes and that `weir run`
//! processes the sample with, with zero invalid rows.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ok, samples, until, weir, Proc};
use serde_json::Value;

fn seed_samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".weir.toml"))
        .collect();
    files.sort();
    files
}

fn jobs(data: &Path, config: &Path) -> Vec<Value> {
    let out = weir()
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(["jobs", "--json", "--limit", "100"])
        .output()
        .unwrap();
    // One JSON object per line.
    ok(&out).lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn init_from_each_seed_sample_passes_check_and_runs_with_zero_invalid_rows() {
    let seeds = seed_samples();
    assert_eq!(seeds.len(), 6, "{seeds:?}");
    for sample in &seeds {
        let name = sample.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        let out = weir().arg("init").arg(dir.path()).arg("--from").arg(sample).output().unwrap();
        let printed = ok(&out);
        assert!(printed.contains("column") && printed.contains("distinct"), "{printed}");
        let config = dir.path().join("weir.toml");
        let written = std::fs::read_to_string(&config).unwrap();
        let checked_in =
            std::fs::read_to_string(samples().join("seeds").join(format!("{name}.weir.toml"))).unwrap();
        // The pipeline is what the checked-in config has (the rest is the bundled config's).
        let pipelines = |text: &str| weir_core::Config::from_toml(text).unwrap().pipelines;
        assert_eq!(pipelines(&written), pipelines(&checked_in), "{name}: not the checked-in pipeline");
        let check = weir().arg("--config").arg(&config).arg("check").output().unwrap();
        assert!(ok(&check).contains("ok (1 pipeline(s))"), "{name}");

        let data = dir.path().join("data");
        let _run = Proc::spawn(
            weir()
                .arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(&config)
                .arg("run")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        until("the data dir", Duration::from_secs(60), || data.join("weir.db").exists().then_some(()));
        let put = weir()
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .arg("put")
            .arg(sample)
            .args(["--wait", "--timeout", "60"])
            .output()
            .unwrap();
        ok(&put);
        let jobs = jobs(&data, &config);
        assert_eq!(jobs.len(), 1, "{name}: {jobs:?}");
        let job = &jobs[0];
        assert_eq!(job["status"], "succeeded", "{name}: {job}");
        assert_eq!(job["invalid_rows"], 0, "{name}: {job}");
        assert!(job["valid_rows"].as_u64().unwrap() >= 1, "{name}: {job}");
        assert_eq!(job["valid_rows"], job["total_rows"], "{name}: {job}");
    }
}

#[test]
fn infer_prints_a_table_or_json_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sample = samples().join("seeds/001_sample-data.csv");
    let out = weir().current_dir(dir.path()).arg("infer").arg(&sample).output().unwrap();
    let table = ok(&out);
    let header = table.lines().nth(1).unwrap();
    for word in ["column", "type", "nullable", "example", "distinct"] {
        assert!(header.contains(word), "{table}");
    }
    assert!(table.lines().any(|l| l.starts_with("email ") && l.contains("john@example.com")), "{table}");
    assert!(table.contains("decimal (scale 2)") && table.contains("date (%Y-%m-%d)"), "{table}");
    let out = weir().current_dir(dir.path()).arg("infer").arg(&sample).arg("--json").output().unwrap();
    let json: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(json["rows"], 4);
    assert_eq!(json["format"]["delimiter"], ",");
    assert_eq!(json["columns"][1]["name"], "email");
    assert_eq!(json["columns"][1]["type"], "email");
    assert_eq!(json["columns"][1]["nullable"], false);
    assert_eq!(json["columns"][1]["distinct"], 4);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "infer writes nothing");
}

/// A Latin-1, `;`-delimited file with decimal commas and day-first dates, gzip'ed: the config
/// `init --from` writes makes `weir process` read every row, with the values it meant.
#[test]
fn init_from_a_latin1_semicolon_file_then_process_has_no_invalid_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Kunde;Stadt;Betrag;Datum\n");
    for i in 0..25 {
        let city = ["München", "Köln", "Zürich"][i % 3];
        text.push_str(&format!("K{i};{city};{},{:02};{:02}/0{}/2024\n", 100 + i, i, 1 + i, 1 + i % 9));
    }
    let latin1 = latin1(&text);
    let file = dir.path().join("kunden_2024.csv");
    std::fs::write(&file, latin1).unwrap();
    let gz = dir.path().join("kunden_2024.csv.gz");
    let zipped = std::process::Command::new("gzip").arg("-c").arg(&file).output().unwrap();
    std::fs::write(&gz, zipped.stdout).unwrap();
    let out = weir().arg("init").arg(dir.path()).arg("--from").arg(&gz).output().unwrap();
    ok(&out);
    let config = dir.path().join("weir.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    for line in [
        "delimiter = \";\"",
        "encoding = \"latin-1\"",
        "decimal_separator = \",\"",
        "format = \"%d/%m/%Y\"",
        "prefix = \"raw/kunden_\"",
        "values = [\"Köln\", \"München\", \"Zürich\"]",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // Not overwritten without --force.
    let again = weir().arg("init").arg(dir.path()).arg("--from").arg(&gz).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let results = dir.path().join("out");
    let out = weir()
        .arg("--config")
        .arg(&config)
        .arg("process")
        .arg(&gz)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        (summary["total_rows"].as_u64(), summary["invalid_rows"].as_u64()),
        (Some(25), Some(0)),
        "{summary}"
    );
    let rows = std::fs::read_to_string(results.join("kunden_2024.csv.gz.ndjson")).unwrap();
    let first: Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    assert_eq!((first["stadt"].as_str(), first["betrag"].as_f64()), (Some("München"), Some(100.0)));

    // Files of two kinds are two pipelines: refused with the reason.
    let out = weir()
        .arg("init")
        .arg(dir.path().join("two"))
        .arg("--from")
        .arg(samples().join("seeds/000_sample.csv"))
        .arg(samples().join("seeds/000_sample.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not of one kind"), "{out:?}");
    // How much to read means nothing without files to read.
    let out = weir().arg("init").arg(dir.path().join("three")).arg("--full").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --from FILE"), "{out:?}");
    assert!(!dir.path().join("three").exists());
}

/// Latin-1 (as Windows-1252, which WHATWG calls latin-1) for the characters these tests use.
fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(c as u32).expect("a Latin-1 character")).collect()
}
