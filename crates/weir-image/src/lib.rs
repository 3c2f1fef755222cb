//! weir's image core: from a picture's bytes to its thumbnails and metadata, or a reason.
//!
//! An image pipeline (`kind = "image"`) hands every file under its source to [`process`]:
//!
//! * [`sniff`] — what the file is, from its magic bytes (a name can lie).
//! * [`decode`] — the header first, the pixel count checked against `max_pixels`, and only then
//!   the pixels, as 8-bit RGB(A); a JPEG is decoded at a reduced scale when the thumbnails need
//!   no more (what makes it fast and keeps a 12 MP photo's pixels small).
//! * [`exif_data`] — camera, dates, orientation and location; what the thumbnails carry.
//! * [`thumbnail`] — fit each size, resample (Lanczos3), turn upright, encode.
//!
//! Like `weir-process`, this crate knows no queues or buckets: bytes in, bytes and a summary
//! out. Every failure is an [`ImageError`] that says what is wrong with the file.

pub mod decode;
mod error;
pub mod exif_data;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod sniff;
pub mod thumbnail;

use fast_image_resize::Resizer;
use weir_core::config::ImageConfig;
use weir_core::image::{ImageSummary, ThumbnailInfo};

pub use error::ImageError;
pub use sniff::{sniff, Format};

/// One encoded thumbnail.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// The size's name (`small`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// What [`process`] made of a picture: its summary (thumbnail keys left empty for the caller to
/// fill in) and the thumbnails, in the order of the summary's.
#[derive(Debug, Clone)]
pub struct Processed {
    pub summary: ImageSummary,
    pub thumbnails: Vec<Thumbnail>,
}

/// The decoded pixels are at least this many times the largest thumbnail's edge (when the
/// picture is that large). A JPEG decoded at a reduced scale has gone through a reduced inverse
/// DCT, which averages what it drops, so the resampler gets no margin above the thumbnail's
/// own size, as libvips' shrink-on-load; a margin of 2, as Pillow's `reducing_gap`, cost a
/// fifth more time on 12 MP photos. bench/images.sh reports how close the thumbnails are to
/// Pillow's (PSNR).
const DECODE_MARGIN: u32 = 1;

/// Reads a picture and makes its thumbnails as `config` says. Files over `max_input_bytes`,
/// empty, not a JPEG/PNG/GIF/WebP by content, claiming more than `max_pixels`, or corrupt are
/// refused with the reason; the memory a call takes is bounded by `max_pixels` (see
/// [`decode`]), never by what a header claims.
pub fn process(bytes: &[u8], config: &ImageConfig) -> Result<Processed, ImageError> {
    let size = bytes.len() as u64;
    if size > config.max_input_bytes {
        return Err(ImageError::TooLarge { size, limit: config.max_input_bytes });
    }
    let format = sniff(bytes)?;
    let boxes = config.boxes().map_err(|detail| ImageError::Thumbnail { size: "(config)".into(), detail })?;
    let exif = match format {
        Format::Gif => None,
        _ => exif_data::read(bytes),
    };
    let orientation = exif_data::orientation(exif.as_ref());
    let turned = thumbnail::transposes(orientation);

    // The largest thumbnail's size as shown, turned back to how the picture is stored: the
    // smallest decode that serves every thumbnail.
    let want = |width: u32, height: u32| {
        let (shown_w, shown_h) = if turned { (height, width) } else { (width, height) };
        let (w, h) = boxes
            .iter()
            .map(|(_, bw, bh)| thumbnail::fit(shown_w, shown_h, *bw, *bh))
            .max_by_key(|(w, h)| u64::from(*w) * u64::from(*h))
            .unwrap_or((shown_w, shown_h));
        let (w, h) = (w.saturating_mul(DECODE_MARGIN), h.saturating_mul(DECODE_MARGIN));
        if turned {
            (h, w)
        } else {
            (w, h)
        }
    };
    let (header, pixels) = decode::decode(bytes, format, config.max_pixels, &want)?;
    let (shown_w, shown_h) =
        if turned { (header.height, header.width) } else { (header.width, header.height) };

    let mut resizer = Resizer::new();
    let thumb_exif = exif_data::for_thumbnail(exif.as_ref(), config.exif);
    let mut thumbnails = Vec::with_capacity(boxes.len());
    for (name, box_w, box_h) in &boxes {
        let failed = |detail: String| ImageError::Thumbnail { size: name.clone(), detail };
        // Fitted to the picture as shown, at its full size: the aspect ratio is the original's
        // whatever scale it was decoded at.
        let (w, h) = thumbnail::fit(shown_w, shown_h, *box_w, *box_h);
        let (stored_w, stored_h) = if turned { (h, w) } else { (w, h) };
        let small = thumbnail::resample(&mut resizer, &pixels, stored_w, stored_h).map_err(failed)?;
        let small = thumbnail::upright(small, orientation);
        let bytes = thumbnail::encode(&small, config.format, config.quality, thumb_exif.as_deref())
            .map_err(failed)?;
        thumbnails.push(Thumbnail { name: name.clone(), width: w, height: h, bytes });
    }
    // Largest first, as the summary lists them.
    thumbnails.sort_by_key(|t| std::cmp::Reverse(u64::from(t.width) * u64::from(t.height)));

    let summary = ImageSummary {
        source: None,
        format: format.name().to_string(),
        mode: header.mode.to_string(),
        width: header.width,
        height: header.height,
        display_width: shown_w,
        display_height: shown_h,
        file_size: size,
        animated: header.animated,
        exif: exif.as_ref().map(|e| exif_data::summary(e, config.exif)),
        thumbnails: thumbnails
            .iter()
            .map(|t| ThumbnailInfo {
                name: t.name.clone(),
                width: t.width,
                height: t.height,
                bytes: t.bytes.len() as u64,
                key: String::new(),
            })
            .collect(),
    };
    Ok(Processed { summary, thumbnails })
}
