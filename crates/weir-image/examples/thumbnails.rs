//! Makes the thumbnails of each picture named on the command line with the default image
//! settings (the bundled pipeline's: 150, 300 and 600 px, JPEG 85, GPS stripped) and prints
//! images/s: the core of `bench/images.py`, with no process start or file writing in the time.
//!
//! `cargo run --release -p weir-image --example thumbnails -- [--repeat N] [--out DIR] FILE...`
//!
//! With `--out`, the thumbnails of the last round are written there as `<file>_<size>.jpg` (after
//! the time is taken), for the benchmark to compare them with Pillow's.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let (mut repeat, mut out, mut files) = (1, None, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => repeat = args.next().and_then(|n| n.parse().ok()).expect("--repeat N"),
            "--out" => out = Some(PathBuf::from(args.next().expect("--out DIR"))),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let pictures: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).expect("a readable file")).collect();
    let config = weir_core::config::ImageConfig::default();
    let started = Instant::now();
    let mut made = Vec::new();
    for _ in 0..repeat {
        made = pictures.iter().map(|p| weir_image::process(p, &config).expect("a picture")).collect();
    }
    let seconds = started.elapsed().as_secs_f64();
    let n = (pictures.len() * repeat) as f64;
    println!("{n} images in {seconds:.3} s: {:.2} images/s, {:.1} ms/image", n / seconds, seconds / n * 1e3);
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).expect("the --out folder");
        for (file, m) in files.iter().zip(&made) {
            let name = file.file_name().expect("a file name").to_string_lossy();
            for t in &m.thumbnails {
                std::fs::write(dir.join(format!("{name}_{}.jpg", t.name)), &t.bytes).expect("writing");
            }
        }
    }
}
