//! `output.threads = N` gives byte-identical results, error report and summary to one thread,
//! on inputs that cross many pieces, with quoted newlines, CRLF, literal quotes in unquoted
//! fields (where quote parity lies) and bad rows.

use weir_core::config::PipelineConfig;
use weir_core::Summary;
use weir_process::{process, Plan};

fn sales(threads: usize) -> PipelineConfig {
    let mut p = weir_core::Config::bundled().pipelines.remove(0);
    p.output.threads = threads;
    p.summary.max_errors_in_report = 500;
    // Some inputs below are mostly bad rows (stray quotes) or none: what is compared is how
    // they are processed, so neither the share of invalid rows nor the row count rejects them.
    p.validation.max_invalid_ratio = 1.0;
    p.validation.min_rows = 0;
    p
}

fn run(cfg: &PipelineConfig, data: &[u8]) -> (Summary, Vec<u8>, Vec<u8>) {
    let plan = Plan::compile(cfg).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = process(&plan, data, &mut out, &mut err, None).unwrap();
    (s, out, err)
}

// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
fn data(rows: usize, stray_quote_every: usize) -> Vec<u8> {
    let mut d = b"order_id,customer_name,product,quantity,price,date\r\n".to_vec();
    let names = ["Ann", "\"Doe, John\"", "\"multi\nline\"", "\"q \"\"x\"\"\"", "Bob 5\" tall"];
    let mut seed = 42u64;
    for i in 0..rows {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut name = names[(seed % 4) as usize];
        if stray_quote_every > 0 && i % stray_quote_every == 7 {
            name = names[4];
        }
        let qty = if seed % 50 == 0 { "two".to_string() } else { (1 + seed % 9).to_string() };
        let product = ["Widget", "Gadget", "Gizmo"][(seed >> 8) as usize % 3];
        let eol = if seed % 3 == 0 { "\r\n" } else { "\n" };
        d.extend_from_slice(
            format!("O{i},{name},{product},{qty},{}.25,2024-01-0{}{eol}", seed % 100, 1 + seed % 9)
                .as_bytes(),
        );
    }
    d
}

#[test]
fn n_threads_match_one_thread_exactly() {
    for (rows, stray) in [(60_000, 0), (60_000, 5_000), (10, 0), (0, 0)] {
        let d = data(rows, stray);
        let one = run(&sales(1), &d);
        for threads in [2, 3] {
            let many = run(&sales(threads), &d);
            assert_eq!(many.0, one.0, "summary, {rows} rows, stray {stray}, {threads} threads");
            assert!(many.1 == one.1, "results differ, {rows} rows, stray {stray}, {threads} threads");
            assert!(many.2 == one.2, "error reports differ, {rows} rows, stray {stray}, {threads} threads");
        }
        assert!(one.0.invalid_rows > 0 || rows < 100);
    }
}

#[test]
fn a_header_mismatch_is_found_before_any_work() {
    let plan = Plan::compile(&sales(2)).unwrap();
    let e = process(&plan, &b"order_id,product\n1,2\n"[..], Vec::new(), Vec::new(), None).unwrap_err();
    assert!(e.to_string().contains("missing required columns"), "{e}");
}
