//! Pictures for tests, made by the codecs themselves (feature `fixtures`): every colour type the
//! issue names, an EXIF block as a phone writes it, and the hostile files.
//!
//! The pictures are four quadrants (red, green / blue, white as stored), so that which way a
//! thumbnail is turned can be read from its corners whatever JPEG does to the edges.

use std::io::Cursor;

pub use exif;
use exif::{Field, In, Rational, Tag, Value};

pub const RED: [u8; 3] = [255, 0, 0];
pub const GREEN: [u8; 3] = [0, 255, 0];
pub const BLUE: [u8; 3] = [0, 0, 255];
pub const WHITE: [u8; 3] = [255, 255, 255];

/// The colour of the stored quadrant that (x, y) falls in.
fn quadrant(x: u32, y: u32, w: u32, h: u32) -> [u8; 3] {
    match (x < w / 2, y < h / 2) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    }
}

/// RGB pixels of the four quadrants.
pub fn quadrants(w: u32, h: u32) -> Vec<u8> {
    (0..h).flat_map(|y| (0..w).flat_map(move |x| quadrant(x, y, w, h))).collect()
}

/// A baseline JPEG (quality 90) of the quadrants, with `exif` (TIFF bytes) in APP1.
pub fn jpeg(w: u16, h: u16, exif: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    if let Some(exif) = exif {
        encoder.add_exif_metadata(exif).unwrap();
    }
    encoder.encode(&quadrants(w.into(), h.into()), w, h, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

/// A progressive JPEG of the quadrants.
pub fn progressive_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    encoder.encode(&quadrants(w.into(), h.into()), w, h, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

/// A grayscale JPEG: black left half, white right half.
pub fn gray_jpeg(w: u16, h: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..h).flat_map(|_| (0..w).map(move |x| if x < w / 2 { 0 } else { 255 })).collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90).encode(&pixels, w, h, jpeg_encoder::ColorType::Luma).unwrap();
    out
}

/// A CMYK JPEG as print workflows make them (Adobe APP14, inverted samples): cyan ink on the
/// left half, black ink on the right.
pub fn cmyk_jpeg(w: u16, h: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).flat_map(move |x| if x < w / 2 { [255, 0, 0, 0] } else { [0, 0, 0, 255] }))
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95).encode(&pixels, w, h, jpeg_encoder::ColorType::Cmyk).unwrap();
    out
}

/// The EXIF block a phone writes: make, model, dates, `orientation`, and a location when `gps`
/// (51.5° N, 0.25° W, 35 m).
pub fn camera_exif(orientation: u16, gps: bool) -> Vec<u8> {
    let ascii = |tag, text: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    };
    let rational =
        |n: &[(u32, u32)]| Value::Rational(n.iter().map(|&(num, denom)| Rational { num, denom }).collect());
    let mut fields = vec![
        ascii(Tag::Make, "Weirphone"),
        ascii(Tag::Model, "W 12 Pro"),
        ascii(Tag::DateTime, "2024:05:01 12:30:00"),
        ascii(Tag::DateTimeOriginal, "2024:05:01 12:29:58"),
        Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![orientation]) },
    ];
    if gps {
        fields.extend([
            ascii(Tag::GPSLatitudeRef, "N"),
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: rational(&[(51, 1), (30, 1), (0, 1)]),
            },
            ascii(Tag::GPSLongitudeRef, "W"),
            Field {
                tag: Tag::GPSLongitude,
                ifd_num: In::PRIMARY,
                value: rational(&[(0, 1), (15, 1), (0, 1)]),
            },
            Field { tag: Tag::GPSAltitude, ifd_num: In::PRIMARY, value: rational(&[(35, 1)]) },
        ]);
    }
    let mut writer = exif::experimental::Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

fn png_of(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(color);
    encoder.set_depth(depth);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    out
}

/// An RGBA PNG of the quadrants whose left half is fully transparent.
pub fn png_rgba(w: u32, h: u32) -> Vec<u8> {
    let rgb = quadrants(w, h);
    let data: Vec<u8> = rgb
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], if (i as u32 % w) < w / 2 { 0 } else { 255 }])
        .collect();
    png_of(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &data)
}

/// A 16-bit RGB PNG of the quadrants (big-endian samples, `v * 257`).
pub fn png16(w: u32, h: u32) -> Vec<u8> {
    let data: Vec<u8> = quadrants(w, h).iter().flat_map(|&v| (u16::from(v) * 257).to_be_bytes()).collect();
    png_of(w, h, png::ColorType::Rgb, png::BitDepth::Sixteen, &data)
}

/// A grayscale 8-bit PNG of `w` × `h` zeros: deflate makes it a few hundred bytes a megapixel.
pub fn blank_png(w: u32, h: u32) -> Vec<u8> {
    png_of(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &vec![0; w as usize * h as usize])
}

/// A PNG whose header claims `w` × `h` (1 bit a pixel) followed by a little compressed data: a
/// decompression bomb's header, whatever the rest would inflate to.
pub fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().unwrap();
    // A zlib stream of zeros (stored blocks would do; the content never matters).
    writer.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]).unwrap();
    drop(writer);
    out
}

/// A palette GIF of the quadrants; with `animated`, a second frame all white follows.
pub fn gif(w: u16, h: u16, animated: bool) -> Vec<u8> {
    let palette = [RED, GREEN, BLUE, WHITE].concat();
    let index = |c: [u8; 3]| [RED, GREEN, BLUE, WHITE].iter().position(|p| *p == c).unwrap() as u8;
    let first: Vec<u8> =
        quadrants(w.into(), h.into()).chunks_exact(3).map(|p| index([p[0], p[1], p[2]])).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w, h, &palette).unwrap();
        encoder.write_frame(&gif::Frame::from_indexed_pixels(w, h, first, None)).unwrap();
        if animated {
            let white = vec![3u8; usize::from(w) * usize::from(h)];
            encoder.write_frame(&gif::Frame::from_indexed_pixels(w, h, white, None)).unwrap();
        }
    }
    out
}

/// A lossless WebP of the quadrants.
pub fn webp(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&quadrants(w, h), w, h, image_webp::ColorType::Rgb8)
        .unwrap();
    out
}

/// Decodes a JPEG thumbnail to RGB for checking: (width, height, pixels).
pub fn read_jpeg(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let pixels = decoder.decode().unwrap();
    let info = decoder.info().unwrap();
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    (info.width.into(), info.height.into(), pixels)
}

/// The RGB of pixel (x, y) of row-major RGB `pixels` `w` wide.
pub fn pixel(pixels: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
    let i = (y * w + x) as usize * 3;
    [pixels[i], pixels[i + 1], pixels[i + 2]]
}

/// Whether two colours are within `tolerance` in every channel (JPEG is lossy).
pub fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}
