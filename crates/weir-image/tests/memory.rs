//! Peak memory under hostile and large pictures, measured: each case runs in a process of its
//! own (this test binary, started again with `child CASE FILE`), which reads its file, notes its
//! resident set, processes the picture and reports how far its peak (`VmHWM`) rose. The parent
//! makes the files, runs every case and checks each rise against its bound.
//!
//! A bomb must cost next to nothing (it is refused from its header); a picture that is decoded
//! may cost at most `MAX_BYTES_PER_PIXEL` × `max_pixels`, and in practice far less.

use std::path::Path;
use std::process::Command;

use weir_core::config::ImageConfig;
use weir_image::decode::MAX_BYTES_PER_PIXEL;
use weir_image::fixtures;

const MIB: u64 = 1 << 20;

/// The pixel limit of the cases that decode (lower than the default to keep the test quick).
const MAX_PIXELS: u64 = 16_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2], Path::new(&args[3]));
        return;
    }
    // `cargo test` passes harness flags (`--quiet`, filters); they are not cases.
    parent();
}

fn config() -> ImageConfig {
    ImageConfig { max_pixels: MAX_PIXELS, ..ImageConfig::default() }
}

/// One case: process the file and print `rise_kib outcome`.
fn child(case: &str, file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let before = status_kib("VmRSS");
    let outcome = match weir_image::process(&bytes, &config()) {
        Ok(p) => format!("ok {}x{}", p.summary.width, p.summary.height),
        Err(e) => format!("refused {e}"),
    };
    let peak = status_kib("VmHWM");
    println!("{case} {} {outcome}", peak.saturating_sub(before));
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A JPEG whose frame header claims `w` × `h`, followed by a little scan data.
fn bomb_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = fixtures::jpeg(64, 64, None);
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).expect("a baseline frame header");
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

/// A GIF whose logical screen is `w` × `h` and whose one frame is 1 × 1.
fn bomb_gif(w: u16, h: u16) -> Vec<u8> {
    let mut gif = fixtures::gif(1, 1, false);
    gif[6..8].copy_from_slice(&w.to_le_bytes());
    gif[8..10].copy_from_slice(&h.to_le_bytes());
    gif
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let decoded_bound = MAX_BYTES_PER_PIXEL * MAX_PIXELS / 1024;
    // (case, file bytes, expected outcome prefix, bound on the rise in KiB)
    let cases: Vec<(&str, Vec<u8>, &str, u64)> = vec![
        (
            "png-bomb-100000x100000",
            fixtures::bomb_png(100_000, 100_000),
            "refused the PNG header says 100000 x 100000",
            4 * MIB / 1024,
        ),
        (
            "jpeg-bomb-65535x65535",
            bomb_jpeg(65_535, 65_535),
            "refused the JPEG header says 65535 x 65535",
            4 * MIB / 1024,
        ),
        (
            "gif-bomb-65535x65535",
            bomb_gif(65_535, 65_535),
            "refused the GIF header says 65535 x 65535",
            4 * MIB / 1024,
        ),
        (
            "truncated-12mp-jpeg",
            {
                let j = fixtures::jpeg(4000, 3000, None);
                j[..j.len() / 2].to_vec()
            },
            "refused the JPEG file ends before its picture does",
            decoded_bound,
        ),
        ("12mp-jpeg", fixtures::jpeg(4000, 3000, None), "ok 4000x3000", decoded_bound),
        ("12mp-progressive-jpeg", fixtures::progressive_jpeg(4000, 3000), "ok 4000x3000", decoded_bound),
        ("16mp-blank-png-at-the-limit", fixtures::blank_png(4000, 4000), "ok 4000x4000", decoded_bound),
        ("16mp-gif-at-the-limit", bomb_gif(4000, 4000), "ok 4000x4000", decoded_bound),
    ];
    let mut failures = Vec::new();
    for (case, bytes, expected, bound_kib) in cases {
        let file = dir.join(case);
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["child", case, file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{case}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        let mut parts = line.trim().splitn(3, ' ');
        let (_, rise, outcome) = (parts.next(), parts.next().unwrap(), parts.next().unwrap_or(""));
        let rise: u64 = rise.parse().unwrap();
        println!("{case:32} {:>6} KiB (bound {bound_kib} KiB): {outcome}", rise);
        if !outcome.starts_with(expected) {
            failures.push(format!("{case}: expected {expected:?}, got {outcome:?}"));
        }
        if rise > bound_kib {
            failures.push(format!("{case}: resident set rose by {rise} KiB, more than {bound_kib} KiB"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
