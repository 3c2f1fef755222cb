//! Bounded decoding: the header first, the pixel count checked against the limit, and only then
//! the pixels, always as 8-bit RGB or RGBA.
//!
//! Each format's decoder is asked for the picture's size before it allocates anything for the
//! pixels, so a 100,000 × 100,000 header costs nothing but its own bytes. What a decode then
//! holds is a few bytes per pixel of the header's size, and so at most
//! [`MAX_BYTES_PER_PIXEL`] × `max_pixels`: PNG is reduced to 8 bits a channel while it is read
//! (a 16-bit PNG never exists at full depth), GIF and WebP give 8-bit RGB(A), and a JPEG is
//! decoded in the DCT domain at the smallest scale (1/8, 1/4, 1/2, 1) that still gives the
//! largest thumbnail the pixels it needs, which is also what makes it fast. The worst cases are
//! a progressive JPEG, whose coefficients (2 bytes each, up to 4 components) are kept for the
//! whole picture while it is read, and a GIF, whose first frame is drawn on a canvas.

use std::io::Cursor;
use std::num::NonZeroU64;

use crate::sniff::Format;
use crate::ImageError;

/// Decoded pixels, 8 bits a channel, row after row: RGB, or RGBA when `alpha`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn channels(&self) -> usize {
        if self.alpha {
            4
        } else {
            3
        }
    }
}

/// What the header says, in the seed's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// As stored.
    pub width: u32,
    pub height: u32,
    /// Pillow's mode name for the stored pixels.
    pub mode: &'static str,
    pub animated: bool,
}

/// Decodes `bytes` (already sniffed as `format`). `want` maps the stored size to the smallest
/// size the caller can use (a JPEG may then be decoded smaller); pictures of more than
/// `max_pixels` are refused from their header.
pub fn decode(
    bytes: &[u8],
    format: Format,
    max_pixels: u64,
    want: &dyn Fn(u32, u32) -> (u32, u32),
) -> Result<(Header, Pixels), ImageError> {
    match format {
        Format::Jpeg => jpeg(bytes, max_pixels, want),
        Format::Png => png(bytes, max_pixels),
        Format::Gif => gif(bytes, max_pixels),
        Format::WebP => webp(bytes, max_pixels),
    }
}

fn check_pixels(format: Format, width: u32, height: u32, max_pixels: u64) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::corrupt(format.name(), format!("the header says {width} x {height} pixels")));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(ImageError::TooManyPixels {
            format: format.name(),
            width: width.into(),
            height: height.into(),
            megapixels: pixels as f64 / 1e6,
            limit_megapixels: max_pixels as f64 / 1e6,
        });
    }
    Ok(())
}

/// What decoding holds at most per pixel of the header's size (see the module's notes).
pub const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Bytes a decoder may allocate: the output at 4 bytes a pixel, and room for its own tables.
fn memory_limit(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(4).saturating_add(16 << 20)
}

fn jpeg(
    bytes: &[u8],
    max_pixels: u64,
    want: &dyn Fn(u32, u32) -> (u32, u32),
) -> Result<(Header, Pixels), ImageError> {
    use jpeg_decoder::PixelFormat;
    let corrupt = |e: jpeg_decoder::Error| {
        let eof = matches!(&e, jpeg_decoder::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
        ImageError::decoding("JPEG", eof, e)
    };
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(corrupt)?;
    let info = decoder.info().ok_or_else(|| ImageError::corrupt("JPEG", "no frame header"))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(Format::Jpeg, width, height, max_pixels)?;
    let mode = match info.pixel_format {
        PixelFormat::L8 => "L",
        PixelFormat::L16 => "I;16",
        PixelFormat::RGB24 => "RGB",
        PixelFormat::CMYK32 => "CMYK",
    };
    let (want_w, want_h) = want(width, height);
    if want_w < width && want_h < height {
        decoder.scale(want_w.max(1) as u16, want_h.max(1) as u16).map_err(corrupt)?;
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(memory_limit(max_pixels)).unwrap_or(usize::MAX));
    let raw = decoder.decode().map_err(corrupt)?;
    let out = decoder.info().ok_or_else(|| ImageError::corrupt("JPEG", "no frame header"))?;
    let (w, h) = (u32::from(out.width), u32::from(out.height));
    let pixels = w as usize * h as usize;
    let data = match out.pixel_format {
        PixelFormat::RGB24 => raw,
        PixelFormat::L8 => raw.iter().flat_map(|&l| [l, l, l]).collect(),
        // Lossless JPEG of more than 8 bits (native-endian samples of up to 16 bits): the top
        // 8 bits of the range the samples use.
        PixelFormat::L16 => {
            let samples: Vec<u16> = raw.chunks_exact(2).map(|s| u16::from_ne_bytes([s[0], s[1]])).collect();
            let shift = (16 - samples.iter().max().copied().unwrap_or(0).leading_zeros()).saturating_sub(8);
            samples.iter().flat_map(|&v| [(v >> shift) as u8; 3]).collect()
        }
        // The decoder undoes Adobe's inverted storage: 0 is no ink.
        PixelFormat::CMYK32 => raw
            .chunks_exact(4)
            .flat_map(|p| {
                let white = 255 - u32::from(p[3]);
                let ink = |c: u8| ((255 - u32::from(c)) * white / 255) as u8;
                [ink(p[0]), ink(p[1]), ink(p[2])]
            })
            .collect(),
    };
    if data.len() < pixels * 3 {
        return Err(ImageError::corrupt("JPEG", "fewer pixels than the header says"));
    }
    let header = Header { width, height, mode, animated: false };
    Ok((header, Pixels { width: w, height: h, alpha: false, data }))
}

fn png(bytes: &[u8], max_pixels: u64) -> Result<(Header, Pixels), ImageError> {
    use png::{BitDepth, ColorType, Transformations};
    let corrupt = |e: png::DecodingError| {
        let eof =
            matches!(&e, png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
        ImageError::decoding("PNG", eof, e)
    };
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // 8 bits a channel and no palette, whatever the file holds.
    decoder.set_transformations(Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    let header = decoder.read_header_info().map_err(corrupt)?;
    let (width, height) = (header.width, header.height);
    check_pixels(Format::Png, width, height, max_pixels)?;
    let sixteen = header.bit_depth == BitDepth::Sixteen;
    let mode = match (header.color_type, sixteen) {
        (ColorType::Grayscale, _) if header.bit_depth == BitDepth::One => "1",
        (ColorType::Grayscale, false) => "L",
        (ColorType::Grayscale, true) => "I;16",
        (ColorType::GrayscaleAlpha, false) => "LA",
        (ColorType::GrayscaleAlpha, true) => "LA;16",
        (ColorType::Rgb, false) => "RGB",
        (ColorType::Rgb, true) => "RGB;16",
        (ColorType::Rgba, false) => "RGBA",
        (ColorType::Rgba, true) => "RGBA;16",
        (ColorType::Indexed, _) => "P",
    };
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let animated = reader.info().animation_control.is_some_and(|a| a.num_frames > 1);
    let size =
        reader.output_buffer_size().ok_or_else(|| ImageError::corrupt("PNG", "too large to address"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(corrupt)?;
    buf.truncate(frame.buffer_size());
    let (w, h) = (frame.width, frame.height);
    let (alpha, data) = match frame.color_type {
        ColorType::Rgb => (false, buf),
        ColorType::Rgba => (true, buf),
        ColorType::Grayscale => (false, buf.iter().flat_map(|&l| [l, l, l]).collect()),
        ColorType::GrayscaleAlpha => {
            (true, buf.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect())
        }
        ColorType::Indexed => return Err(ImageError::corrupt("PNG", "a palette that could not be expanded")),
    };
    Ok((Header { width, height, mode, animated }, Pixels { width: w, height: h, alpha, data }))
}

fn gif(bytes: &[u8], max_pixels: u64) -> Result<(Header, Pixels), ImageError> {
    let corrupt = |e: gif::DecodingError| {
        let eof = match &e {
            gif::DecodingError::UnexpectedEof => true,
            gif::DecodingError::Io(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
            _ => false,
        };
        ImageError::decoding("GIF", eof, e)
    };
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    if let Some(limit) = NonZeroU64::new(memory_limit(max_pixels)) {
        options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = options.read_info(bytes).map_err(corrupt)?;
    let (screen_w, screen_h) = (u32::from(decoder.width()), u32::from(decoder.height()));
    let frame = decoder
        .next_frame_info()
        .map_err(corrupt)?
        .ok_or_else(|| ImageError::corrupt("GIF", "it has no picture"))?;
    let (left, top) = (u32::from(frame.left), u32::from(frame.top));
    let (frame_w, frame_h) = (u32::from(frame.width), u32::from(frame.height));
    // Some encoders write a logical screen of 0 × 0: the first frame's extent is the picture.
    let (width, height) =
        if screen_w == 0 || screen_h == 0 { (left + frame_w, top + frame_h) } else { (screen_w, screen_h) };
    check_pixels(Format::Gif, width, height, max_pixels)?;
    check_pixels(Format::Gif, frame_w.max(1), frame_h.max(1), max_pixels)?;
    let mut frame_rgba = vec![0; decoder.buffer_size()];
    decoder.read_into_buffer(&mut frame_rgba).map_err(corrupt)?;
    // The first frame on a transparent canvas of the screen's size, cut to it.
    let mut canvas = vec![0u8; width as usize * height as usize * 4];
    for y in 0..frame_h.min(height.saturating_sub(top)) {
        let cols = frame_w.min(width.saturating_sub(left)) as usize;
        let src = (y * frame_w) as usize * 4;
        let dst = (((top + y) * width) + left) as usize * 4;
        canvas[dst..dst + cols * 4].copy_from_slice(&frame_rgba[src..src + cols * 4]);
    }
    let animated = matches!(decoder.next_frame_info(), Ok(Some(_)));
    let header = Header { width, height, mode: "P", animated };
    Ok((header, Pixels { width, height, alpha: true, data: canvas }))
}

fn webp(bytes: &[u8], max_pixels: u64) -> Result<(Header, Pixels), ImageError> {
    let corrupt = |e: image_webp::DecodingError| {
        let eof = matches!(&e, image_webp::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
        ImageError::decoding("WEBP", eof, e)
    };
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_pixels(Format::WebP, width, height, max_pixels)?;
    decoder.set_memory_limit(usize::try_from(memory_limit(max_pixels)).unwrap_or(usize::MAX));
    let alpha = decoder.has_alpha();
    let size =
        decoder.output_buffer_size().ok_or_else(|| ImageError::corrupt("WEBP", "too large to address"))?;
    let mut data = vec![0; size];
    decoder.read_image(&mut data).map_err(corrupt)?;
    let header =
        Header { width, height, mode: if alpha { "RGBA" } else { "RGB" }, animated: decoder.is_animated() };
    Ok((header, Pixels { width, height, alpha, data }))
}
