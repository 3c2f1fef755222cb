//! From decoded pixels to one encoded thumbnail: fit, resample, turn upright, encode.
//!
//! The EXIF orientation is applied to the thumbnail rather than to the decoded picture: the
//! box is fitted to the picture as it is shown (a portrait photo gets a portrait thumbnail),
//! the stored pixels are resampled to that size turned the stored way, and the small result is
//! turned upright. The pixels are the same as turning first, at a few percent of the cost.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use weir_core::config::ThumbnailFormat;

use crate::decode::Pixels;

/// The size of a `width` × `height` picture fitted into a `box_w` × `box_h` box, aspect ratio
/// kept (to the nearest pixel, at least 1), never enlarged.
pub fn fit(width: u32, height: u32, box_w: u32, box_h: u32) -> (u32, u32) {
    let scale = (f64::from(box_w) / f64::from(width)).min(f64::from(box_h) / f64::from(height));
    if scale >= 1.0 {
        return (width, height);
    }
    let side = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    (side(width).min(box_w), side(height).min(box_h))
}

/// Whether an EXIF orientation swaps width and height (5-8: the picture is stored on its side).
pub fn transposes(orientation: u16) -> bool {
    (5..=8).contains(&orientation)
}

/// Resamples `src` to `width` × `height` with Lanczos3 (alpha premultiplied while resampling).
pub fn resample(resizer: &mut Resizer, src: &Pixels, width: u32, height: u32) -> Result<Pixels, String> {
    if (width, height) == (src.width, src.height) {
        return Ok(src.clone());
    }
    let pixel_type = if src.alpha { PixelType::U8x4 } else { PixelType::U8x3 };
    let from = ImageRef::new(src.width, src.height, &src.data, pixel_type).map_err(|e| e.to_string())?;
    let mut to = Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer.resize(&from, &mut to, &options).map_err(|e| e.to_string())?;
    Ok(Pixels { width, height, alpha: src.alpha, data: to.into_vec() })
}

/// The picture as EXIF `orientation` says to show it.
pub fn upright(src: Pixels, orientation: u16) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return src;
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let (out_w, out_h) = if transposes(orientation) { (h, w) } else { (w, h) };
    let channels = src.channels();
    let mut data = vec![0u8; src.data.len()];
    for y in 0..out_h {
        for x in 0..out_w {
            // Where the shown pixel (x, y) is stored (TIFF 6.0 / EXIF 2.3, tag 0x0112).
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let (to, from) = ((y * out_w + x) * channels, (sy * w + sx) * channels);
            data[to..to + channels].copy_from_slice(&src.data[from..from + channels]);
        }
    }
    Pixels { width: out_w as u32, height: out_h as u32, alpha: src.alpha, data }
}

/// RGBA composited on white, as RGB (a JPEG has no transparency; the seed's Pillow code
/// dropped the alpha channel, which shows transparent areas in whatever colour they hide).
fn on_white(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            let a = u32::from(p[3]);
            let mix = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            [mix(p[0]), mix(p[1]), mix(p[2])]
        })
        .collect()
}

/// Encodes `pixels` as `format` with `exif` (TIFF bytes) embedded.
pub fn encode(
    pixels: &Pixels,
    format: ThumbnailFormat,
    quality: u8,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match format {
        ThumbnailFormat::Jpeg => {
            let rgb;
            let data = if pixels.alpha {
                rgb = on_white(&pixels.data);
                &rgb
            } else {
                &pixels.data
            };
            let (w, h) = (u16::try_from(pixels.width), u16::try_from(pixels.height));
            let (Ok(w), Ok(h)) = (w, h) else { return Err("a JPEG is at most 65535 pixels a side".into()) };
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
            encoder.set_optimized_huffman_tables(true);
            if let Some(exif) = exif {
                encoder.add_exif_metadata(exif).map_err(|e| e.to_string())?;
            }
            encoder.encode(data, w, h, jpeg_encoder::ColorType::Rgb).map_err(|e| e.to_string())?;
        }
        ThumbnailFormat::Png => {
            let mut encoder = png::Encoder::new(&mut out, pixels.width, pixels.height);
            encoder.set_color(if pixels.alpha { png::ColorType::Rgba } else { png::ColorType::Rgb });
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
            if let Some(exif) = exif {
                writer.write_chunk(png::chunk::eXIf, exif).map_err(|e| e.to_string())?;
            }
            writer.write_image_data(&pixels.data).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
        }
        ThumbnailFormat::Webp => {
            let mut encoder = image_webp::WebPEncoder::new(&mut out);
            if let Some(exif) = exif {
                encoder.set_exif_metadata(exif.to_vec());
            }
            let color = if pixels.alpha { image_webp::ColorType::Rgba8 } else { image_webp::ColorType::Rgb8 };
            encoder.encode(&pixels.data, pixels.width, pixels.height, color).map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(fit(4000, 3000, 150, 150), (150, 113));
        assert_eq!(fit(3000, 4000, 600, 600), (450, 600));
        assert_eq!(fit(1200, 400, 300, 200), (300, 100));
        assert_eq!(fit(100, 80, 150, 150), (100, 80));
        assert_eq!(fit(10_000, 1, 150, 150), (150, 1));
    }

    /// A 3 × 2 picture whose pixels are numbered 0-5 in stored order.
    fn numbered() -> Pixels {
        Pixels { width: 3, height: 2, alpha: false, data: (0..6u8).flat_map(|n| [n, n, n]).collect() }
    }

    /// Width, height and the pixels' numbers in shown order.
    type Shown = (u32, u32, Vec<u8>);

    fn shown(p: &Pixels) -> Shown {
        (p.width, p.height, p.data.chunks(3).map(|c| c[0]).collect())
    }

    #[test]
    fn each_orientation_shows_the_stored_pixels_the_exif_way() {
        // Stored:  0 1 2
        //          3 4 5
        let cases: [(u16, Shown); 8] = [
            (1, (3, 2, vec![0, 1, 2, 3, 4, 5])),
            (2, (3, 2, vec![2, 1, 0, 5, 4, 3])),
            (3, (3, 2, vec![5, 4, 3, 2, 1, 0])),
            (4, (3, 2, vec![3, 4, 5, 0, 1, 2])),
            (5, (2, 3, vec![0, 3, 1, 4, 2, 5])),
            // Turned 90° clockwise: the stored top-left corner is shown top-right.
            (6, (2, 3, vec![3, 0, 4, 1, 5, 2])),
            (7, (2, 3, vec![5, 2, 4, 1, 3, 0])),
            (8, (2, 3, vec![2, 5, 1, 4, 0, 3])),
        ];
        for (orientation, expected) in cases {
            assert_eq!(shown(&upright(numbered(), orientation)), expected, "orientation {orientation}");
        }
    }

    #[test]
    fn transparency_becomes_white_in_a_jpeg() {
        assert_eq!(
            on_white(&[10, 20, 30, 0, 10, 20, 30, 255, 0, 0, 0, 128]),
            [255, 255, 255, 10, 20, 30, 127, 127, 127]
        );
    }
}
