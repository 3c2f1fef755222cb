//! Issue #14's probe, replayed against a real `weir run`: one test per finding.
//!
//! The attacks themselves live in `scripts/security_probe.py` (the script an operator runs
//! against an instance; it prints a table): each test starts `weir run` with the settings the
//! item needs, runs the script's rows for that item with `--json`, and fails with the whole table
//! unless every row is safe. The memory items give the script weir's pid: it resets the process's
//! peak RSS (`/proc/<pid>/clear_refs`), runs the attack while polling `/healthz` and making one
//! ordinary signed upload, and compares the peak (`VmHWM`) with the bound stated here.
//!
//! The tests run one at a time: the memory attacks measure one process on a 2-core machine, and
//! their latency bounds should not measure each other.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::{until, Proc};
use serde_json::Value;

/// One test at a time (see the module docs).
static SERIAL: Mutex<()> = Mutex::new(());

/// Peak RSS a memory attack may cause, for the debug build the tests run (about 40 MiB idle).
const MAX_RSS_MIB: &str = "150";

/// The servers' idle timeout in these tests, and how many connections each listener takes.
const IDLE_SECS: u64 = 3;
const SLOTS: usize = 8;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test venv's Python (boto3): `WEIR_TEST_PYTHON`, else `.venv/bin/python` of the repo.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("WEIR_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "{} is needed (boto3): run scripts/test, which creates the venv", p.display());
    p
}

/// The bundled config with this test's changes: `(from, to)` replacements, then `extra` appended
/// (inside `[server]`, the file's last section).
fn config(replace: &[(&str, &str)], extra: &str) -> String {
    let mut text = std::fs::read_to_string(repo().join("crates/weir-core/src/default_weir.toml")).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "the bundled weir.toml no longer has {from:?}");
        text = text.replace(from, to);
    }
    format!("{text}\nmax_connections = {SLOTS}\nidle_timeout_secs = {IDLE_SECS}\n{extra}\n")
}

/// A `weir run` on a temporary data dir, killed when dropped (a failed test leaves nothing).
struct Weir {
    child: Proc,
    dir: tempfile::TempDir,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Weir {
    /// Starts weir with `toml`; `verbose` runs `weir -vv` with no `WEIR_LOG`. The process runs
    /// under umask 000, so the modes of what it creates are its own choice.
    fn start(toml: &str, verbose: bool) -> Weir {
        let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("weir.toml");
        std::fs::write(&config, toml).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let data = dir.path().join("data");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("umask 000 && exec \"$@\"").arg("sh").arg(env!("CARGO_BIN_EXE_weir"));
        if verbose {
            cmd.arg("-vv");
        }
        for var in
            ["WEIR_DATA_DIR", "WEIR_CONFIG", "WEIR_ACCESS_KEY_ID", "WEIR_SECRET_ACCESS_KEY", "WEIR_API_TOKEN"]
        {
            cmd.env_remove(var);
        }
        if verbose {
            cmd.env_remove("WEIR_LOG");
        } else {
            cmd.env("WEIR_LOG", "warn");
        }
        let log = std::fs::File::create(dir.path().join("weir.log")).unwrap();
        let child = Proc::spawn(
            cmd.arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(&config)
                .args(["run", "--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
                .stdout(Stdio::null())
                .stderr(log),
        );
        let mut weir = Weir { child, dir, _lock: lock };
        until("weir run to write endpoints.json", Duration::from_secs(60), || {
            assert!(weir.child.running(), "weir run exited: {}", weir.log());
            data.join("endpoints.json").exists().then_some(())
        });
        weir
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weir.log")).unwrap_or_default()
    }

    /// Runs the probe's rows for `items`; panics with the table unless every row is safe.
    fn probe(&self, items: &str, args: &[&str]) -> Vec<Value> {
        let out = Command::new(python())
            .arg(repo().join("scripts/security_probe.py"))
            .arg("--data-dir")
            .arg(self.data())
            .args(["--only", items, "--json", "--pid", &self.child.id().to_string()])
            .args(["--idle-timeout", &IDLE_SECS.to_string(), "--slots", &SLOTS.to_string()])
            .args(["--max-rss-mib", MAX_RSS_MIB])
            .args(args)
            .env_remove("WEIR_ACCESS_KEY_ID")
            .env_remove("WEIR_SECRET_ACCESS_KEY")
            .env_remove("WEIR_API_TOKEN")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let rows: Vec<Value> =
            stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
                panic!(
                    "the probe printed no rows\nstdout: {stdout}\nstderr: {stderr}\nweir log: {}",
                    self.log()
                )
            });
        let bad: Vec<&Value> = rows.iter().filter(|r| r["result"] != "ok").collect();
        assert!(
            bad.is_empty() && !rows.is_empty(),
            "item(s) {items}: {} of {} rows not safe:\n{stderr}\nweir log (end): {}",
            bad.len(),
            rows.len(),
            tail(&self.log(), 4000)
        );
        eprintln!("item(s) {items}:\n{stderr}");
        rows
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

#[test]
fn item01_form_posts_are_refused_before_the_file_and_streamed_when_signed() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("1", &["--attack-mib", "200", "--parallel", "4"]);
}

#[test]
fn item02_ingest_caps_fields_and_stays_off_the_async_threads() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("2", &["--ingest-records", "20000"]);
}

#[test]
fn item03_the_error_report_of_wide_rows_is_bounded_and_says_so() {
    // Every row of the attack is invalid: the default max_invalid_ratio would reject the file
    // before its error report is written, and the report's bound is what this item is about.
    let toml =
        config(&[("# [pipeline.validation]", "[pipeline.validation]\nmax_invalid_ratio = 1.0\n#")], "");
    let weir = Weir::start(&toml, false);
    weir.probe("3", &["--wide-columns", "100000", "--wide-rows", "50"]);
}

#[test]
fn item04_sign_in_bodies_are_small_and_slow_senders_are_cut_off() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("4", &[]);
}

#[test]
fn item05_sigv2_is_off_by_default() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("5", &[]);
}

#[test]
fn item06_no_log_level_prints_secrets() {
    // Subscriptions whose secrets are in their config, both down: deliveries fail and are logged.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (hook, password) = ("T0HOOK/B0/hookpathsecret9f3", "smtp-password-secret-7c1");
    let subscriptions = format!(
        "[[notify.subscriptions]]\ntopic = \"success\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{closed}/services/{hook}\"\nformat = \"slack\"\n\n\
         [[notify.subscriptions]]\ntopic = \"success\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {closed}\nsecurity = \"none\"\n\
         username = \"weir\"\npassword = \"{password}\"\nfrom = \"weir <weir@example.com>\"\nto = [\"ops@example.com\"]\n\n[alarms]"
    );
    let weir = Weir::start(&config(&[("[alarms]", &subscriptions)], ""), true);
    let log = weir.dir.path().join("weir.log");
    weir.probe("6", &["--log", log.to_str().unwrap(), "--secret", hook, "--secret", password]);
    // The check above read a real -vv log, with the failed deliveries in it.
    let log = weir.log();
    assert!(log.contains("DEBUG") && log.contains("TRACE"), "{}", tail(&log, 2000));
    assert!(log.contains("notification delivery failed"), "{}", tail(&log, 2000));
}

#[test]
fn item07_bombs_and_oversized_outputs_are_rejected_with_figures() {
    // A 16 MiB source limit: by default, compressed sources may inflate to as much.
    let toml = config(&[("max_size_bytes = 5368709120", "max_size_bytes = 16777216")], "");
    let weir = Weir::start(&toml, false);
    weir.probe("7", &["--bomb-mib", "64"]);
    drop(weir);
    // And a job's outputs have a limit of their own.
    let toml = config(&[("format = \"ndjson\"", "format = \"ndjson\"\nmax_bytes = 1048576")], "");
    let weir = Weir::start(&toml, false);
    weir.probe("7", &["--bomb-mib", "0", "--output-probe-mib", "2"]);
}

#[test]
fn item08_the_data_dir_is_private_whatever_the_umask() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("8", &[]);
}

#[test]
fn item08_a_data_dir_open_to_others_is_reported_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(weir_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["jobs"])
        .env("WEIR_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 700"), "no warning about the data dir's mode 755: {stderr}");
}

#[test]
fn item09_presigned_urls_expire_within_a_week() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("9", &[]);
}

#[test]
fn item10_metrics_labels_are_escaped_and_alarm_names_restricted() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("10", &["--weir", weir_bin()]);
}

#[test]
fn item11_slack_messages_escape_what_slack_would_expand() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hook = format!(
        "[[notify.subscriptions]]\ntopic = \"success\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/services/T0/B0/secret\"\nformat = \"slack\"\n\n[alarms]"
    );
    let toml = config(&[("[alarms]", &hook)], "");
    let weir = Weir::start(&toml, false);
    weir.probe("11", &["--webhook-listen", &format!("127.0.0.1:{port}")]);
}

#[test]
fn item12_every_file_holding_a_secret_is_private() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("12", &["--weir", weir_bin()]);
}

#[test]
fn item12_weir_run_refuses_a_config_with_secrets_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "[server]\nsecret_access_key = \"0123456789abcdef0123\"\naccess_key_id = \"AKIDEXAMPLE\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let mut child = Proc::spawn(
        Command::new(weir_bin())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .args(["run", "--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let status = child.wait_exit(Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.child().stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success() && stderr.contains("chmod 600"), "{status}: {stderr}");
}

#[test]
fn item13_buckets_cannot_take_the_names_of_weirs_files() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("13", &[]);
    for name in ["records.db", "weir.toml"] {
        assert!(!weir.data().join(name).is_dir(), "{name} became a bucket folder");
    }
}

#[test]
fn item14_overlong_segments_and_xml_bodies_are_client_errors() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("14", &[]);
    assert!(!weir.log().contains("ERROR"), "a client error logged an ERROR: {}", tail(&weir.log(), 2000));
}

#[test]
fn item15_uploaded_html_is_never_rendered_by_the_endpoint() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("15", &[]);
}

#[test]
fn item16_sign_in_is_rate_limited_and_sessions_expire() {
    let weir = Weir::start(&config(&[], ""), false);
    weir.probe("16", &[]);
}
