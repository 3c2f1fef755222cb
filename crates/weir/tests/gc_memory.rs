//! `weir gc` over a large prefix holds a page of it, not the prefix: its peak RSS (the
//! process's own, from `wait4`, read by `$WEIR_TEST_PYTHON`) stays bounded and about the same
//! for 20,000 and for 200,000 expired objects in one archive folder. Every expired object goes;
//! the young ones under the prefix and the old ones outside it stay.
//!
//! The objects are made cheaply: empty files written straight into the data dir's bucket folder
//! with their modification time set 400 days back (an object without weir's attribute has the
//! file's fingerprint as its ETag, as for a file put there by hand).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{default_config, tool};

/// Peak RSS `weir gc` may reach (the debug build the tests run idles at about 40 MiB).
const MAX_RSS_MIB: u64 = 120;

/// How much more the large run may use than the small one: a page and allocator slack, not
/// anything that grows with the count.
const MAX_GROWTH_MIB: u64 = 16;

const YOUNG: usize = 10;
const OUTSIDE: usize = 10;

fn gc_config() -> String {
    default_config()
        + r#"
[retention]
sweep_interval_secs = 0
batch_size = 1000
[[retention.rule]]
bucket = "weir-archive"
prefix = "raw/"
expire_after_days = 30
"#
}

fn touch(path: &Path, when: SystemTime) {
    let f = std::fs::File::create(path).unwrap();
    f.set_modified(when).unwrap();
}

/// A data dir with `expired` old objects under `weir-archive/raw/`, plus young ones there and
/// old ones outside the prefix.
fn data_dir(root: &Path, expired: usize) {
    let old = SystemTime::now() - Duration::from_secs(400 * 86_400);
    let raw = root.join("weir-archive/raw");
    let keep = root.join("weir-archive/keep");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    for i in 0..expired {
        touch(&raw.join(format!("sales-{i:07}.csv")), old);
    }
    for i in 0..YOUNG {
        touch(&raw.join(format!("young-{i}.csv")), SystemTime::now());
    }
    for i in 0..OUTSIDE {
        touch(&keep.join(format!("old-{i}.csv")), old);
    }
}

/// Runs `weir gc` on a fresh data dir of `expired` old objects; returns its peak RSS in KiB.
fn gc_peak_kib(expired: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    data_dir(&data, expired);
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, gc_config()).unwrap();
    let out_path = dir.path().join("gc.out");
    // The child's own peak (ru_maxrss of wait4 on that pid), not the test's.
    let wrapper = r#"
import os, subprocess, sys
with open(sys.argv[1], "wb") as out:
    p = subprocess.Popen(sys.argv[2:], stdout=out, env=os.environ)
    _, status, usage = os.wait4(p.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"#;
    let started = std::time::Instant::now();
    let out = Command::new(tool("WEIR_TEST_PYTHON", "python3"))
        .arg("-c")
        .arg(wrapper)
        .arg(&out_path)
        .arg(env!("CARGO_BIN_EXE_weir"))
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .arg("gc")
        .env_remove("WEIR_DATA_DIR")
        .env_remove("WEIR_CONFIG")
        .env("WEIR_LOG", "warn")
        .output()
        .unwrap();
    let wrapped = String::from_utf8_lossy(&out.stdout);
    let (code, peak_kib) = wrapped
        .split_once(' ')
        .map(|(c, p)| (c.trim().parse::<i32>().unwrap(), p.trim().parse::<u64>().unwrap()))
        .unwrap_or_else(|| {
            panic!("the wrapper said {wrapped:?}, stderr {}", String::from_utf8_lossy(&out.stderr))
        });
    let printed = std::fs::read_to_string(&out_path).unwrap();
    let summary = printed.lines().last().unwrap_or_default();
    assert_eq!(code, 0, "weir gc failed: {summary}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.starts_with(&format!("expired: {expired} objects,")), "summary: {summary}");
    let listed = printed.lines().filter(|l| l.starts_with("expired object weir-archive/raw/sales-")).count();
    assert_eq!(listed, expired, "objects reported expired");

    let mut left: Vec<String> = std::fs::read_dir(data.join("weir-archive/raw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let young: Vec<String> = (0..YOUNG).map(|i| format!("young-{i}.csv")).collect();
    assert_eq!(left, young, "exactly the young objects stay under the prefix");
    assert_eq!(std::fs::read_dir(data.join("weir-archive/keep")).unwrap().count(), OUTSIDE);
    eprintln!(
        "weir gc of {expired} expired objects: peak RSS {:.1} MiB, {:.1} s",
        peak_kib as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    peak_kib
}

#[test]
fn gc_memory_stays_flat_from_20_000_to_200_000_expired_objects() {
    let small = gc_peak_kib(20_000);
    let large = gc_peak_kib(200_000);
    assert!(large <= MAX_RSS_MIB * 1024, "peak RSS {large} KiB over {MAX_RSS_MIB} MiB");
    assert!(
        large <= small + MAX_GROWTH_MIB * 1024,
        "peak RSS grew with the count: {small} KiB for 20,000, {large} KiB for 200,000"
    );
}
