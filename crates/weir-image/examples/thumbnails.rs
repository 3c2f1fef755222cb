//! Makes the thumbnails of each picture named on the command line with the default image
//! settings, without writing them, and prints images/s: the core of `bench/images.sh`, with no
//! process start or file writing in the figure.
//!
//! `cargo run --release -p weir-image --example thumbnails -- [--repeat N] FILE...`

use std::time::Instant;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1;
    if args.first().map(String::as_str) == Some("--repeat") {
        repeat = args[1].parse().expect("--repeat N");
        args.drain(..2);
    }
    let pictures: Vec<Vec<u8>> = args.iter().map(|p| std::fs::read(p).expect("readable file")).collect();
    let config = weir_core::config::ImageConfig::default();
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..repeat {
        for picture in &pictures {
            let made = weir_image::process(picture, &config).expect("a picture");
            bytes += made.thumbnails.iter().map(|t| t.bytes.len()).sum::<usize>();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let n = (pictures.len() * repeat) as f64;
    println!("{:.2} images/s, {:.1} ms/image, {bytes} thumbnail bytes", n / seconds, seconds / n * 1e3);
}
