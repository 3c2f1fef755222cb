//! `weir alarms` through the binary: the rules before `weir run` evaluated them, then the states
//! it wrote.

use std::process::Command;

fn weir_alarms(data_dir: &std::path::Path, json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("alarms").arg("--data-dir").arg(data_dir).env_remove("WEIR_CONFIG").current_dir(data_dir);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lists_the_default_rules_then_the_evaluated_states() {
    let dir = tempfile::tempdir().unwrap();
    let out = weir_alarms(dir.path(), false);
    for name in ["dlq-not-empty", "queue-backlog", "error-rate", "slow-jobs", "stale-data"] {
        assert!(
            out.lines().any(|l| l.starts_with(name) && l.contains("INSUFFICIENT_DATA")),
            "{name} in\n{out}"
        );
    }
    std::fs::write(
        dir.path().join("alarms.json"),
        r#"[{"name": "dlq-not-empty", "description": "The dead-letter queue has messages", "state": "ALARM",
             "reason": "threshold crossed: Maximum dlq_messages over 1 period(s) of 60 s [2] >= 1"}]"#,
    )
    .unwrap();
    let out = weir_alarms(dir.path(), false);
    let line = out.lines().find(|l| l.starts_with("dlq-not-empty")).unwrap();
    assert!(line.contains("ALARM") && line.contains("threshold crossed"), "{out}");
    let json = weir_alarms(dir.path(), true);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["state"], "ALARM", "{json}");
}

#[test]
fn lists_the_rules_of_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    let mut text = weir_core::config::DEFAULT_CONFIG_TOML.replace("defaults = true", "defaults = false");
    text.push_str(
        r#"
[[alarms.rule]]
name = "many-rejects"
description = "More than 5 % rejected"
metric = "error_rate_percent"
statistic = "Average"
period_secs = 60
evaluation_periods = 1
threshold = 5
comparison = "GreaterThanThreshold"
"#,
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["alarms", "--json", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8(out.stdout).unwrap();
    let alarms: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<_> = alarms.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["many-rejects"], "{json}");
}
