//! `[pipeline.image]`: what an image pipeline makes of each picture.
//!
//! An image pipeline (`kind = "image"`) turns every picture that lands under its source into
//! thumbnails and a metadata document, as the seed's image Lambda did: small 150, medium 300 and
//! large 600 pixels on the longest edge, JPEG at quality 85, files over 10 MB refused. Each of
//! those is a setting here, and so are the bounds that keep a hostile file from costing more
//! than a known amount of memory (`max_pixels`) and what happens to the camera's EXIF data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Problem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Thumbnails to make, by name: the longest edge in pixels (`small = 150`) or a box
    /// (`banner = "1200x400"`). The picture fits inside, keeps its aspect ratio and is never
    /// enlarged.
    pub sizes: BTreeMap<String, ThumbnailSize>,
    /// The thumbnails' format.
    pub format: ThumbnailFormat,
    /// JPEG quality, 1-100 (PNG and WebP thumbnails are lossless).
    pub quality: u8,
    /// Larger files are rejected without being decoded.
    pub max_input_bytes: u64,
    /// Pictures with more pixels (width × height, as the file's header says) are rejected
    /// before any pixel is decoded: a 100,000 × 100,000 header is a decompression bomb. The
    /// memory an image job takes is bounded by this: a few bytes per pixel, 8 at most.
    pub max_pixels: u64,
    /// What the thumbnails keep of the source's EXIF data.
    pub exif: ExifPolicy,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            sizes: BTreeMap::from([
                ("small".to_string(), ThumbnailSize::Edge(150)),
                ("medium".to_string(), ThumbnailSize::Edge(300)),
                ("large".to_string(), ThumbnailSize::Edge(600)),
            ]),
            format: ThumbnailFormat::Jpeg,
            quality: 85,
            max_input_bytes: 10 << 20,
            max_pixels: 50_000_000,
            exif: ExifPolicy::StripGps,
        }
    }
}

/// The longest thumbnail edge weir makes: a thumbnail is a small picture, and its pixels are
/// held in memory while it is encoded.
pub const MAX_THUMBNAIL_EDGE: u32 = 4096;

/// A thumbnail size name becomes part of an object key and a file name.
const MAX_SIZE_NAME: usize = 32;

impl ImageConfig {
    pub fn is_default(&self) -> bool {
        self == &ImageConfig::default()
    }

    /// The sizes as (name, width, height) boxes, or the first problem.
    pub fn boxes(&self) -> Result<Vec<(String, u32, u32)>, String> {
        self.sizes.iter().map(|(name, size)| size.bounds().map(|(w, h)| (name.clone(), w, h))).collect()
    }

    /// Every problem, located within the section (`sizes.small`, `quality`).
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.sizes.is_empty() {
            problems.push(Problem::new("sizes", "name at least one thumbnail size, e.g. small = 150"));
        }
        for (name, size) in &self.sizes {
            let name_ok = (1..=MAX_SIZE_NAME).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !name_ok {
                problems.push(Problem::new(
                    "sizes",
                    format!("{name:?} is not a size name: use 1-{MAX_SIZE_NAME} lowercase letters, digits, '_' or '-' (it becomes part of each thumbnail's key)"),
                ));
            }
            if let Err(e) = size.bounds() {
                problems.push(Problem::new(format!("sizes.{name}"), e));
            }
        }
        if !(1..=100).contains(&self.quality) {
            problems.push(Problem::new("quality", format!("{} is not a quality; use 1-100", self.quality)));
        }
        if self.max_input_bytes == 0 {
            problems.push(Problem::new("max_input_bytes", "must be at least 1"));
        }
        if self.max_pixels == 0 {
            problems.push(Problem::new("max_pixels", "must be at least 1"));
        }
        problems
    }
}

/// A thumbnail's size: the longest edge, or a `"WIDTHxHEIGHT"` box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ThumbnailSize {
    Edge(u32),
    Box(String),
}

impl ThumbnailSize {
    /// The box the picture must fit in.
    pub fn bounds(&self) -> Result<(u32, u32), String> {
        let (w, h) = match self {
            ThumbnailSize::Edge(n) => (*n, *n),
            ThumbnailSize::Box(text) => {
                let parsed = text
                    .split_once(['x', 'X'])
                    .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
                parsed.ok_or_else(|| {
                    format!("{text:?} is not a size: give the longest edge (150) or a box (\"300x200\")")
                })?
            }
        };
        if !(1..=MAX_THUMBNAIL_EDGE).contains(&w) || !(1..=MAX_THUMBNAIL_EDGE).contains(&h) {
            return Err(format!("{w}x{h}: each edge must be 1-{MAX_THUMBNAIL_EDGE} pixels"));
        }
        Ok((w, h))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThumbnailFormat {
    /// Baseline JPEG with optimized Huffman tables, as the seed wrote (`optimize=True`).
    #[default]
    Jpeg,
    /// Lossless WebP (keeps transparency).
    Webp,
    /// PNG (keeps transparency).
    Png,
}

impl ThumbnailFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ThumbnailFormat::Jpeg => "jpg",
            ThumbnailFormat::Webp => "webp",
            ThumbnailFormat::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ThumbnailFormat::Jpeg => "image/jpeg",
            ThumbnailFormat::Webp => "image/webp",
            ThumbnailFormat::Png => "image/png",
        }
    }

    /// Whether a thumbnail in this format keeps an alpha channel (JPEG's are flattened on white).
    pub fn has_alpha(self) -> bool {
        !matches!(self, ThumbnailFormat::Jpeg)
    }
}

/// What a thumbnail keeps of its source's EXIF data. The orientation is applied to the pixels
/// either way (a kept EXIF says orientation 1), and the source's own embedded thumbnail and
/// maker notes are never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExifPolicy {
    /// Camera, dates, exposure and location.
    Keep,
    /// None at all.
    Strip,
    /// Everything but the location (GPS): location data is personal data.
    #[default]
    StripGps,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_edges_or_boxes_within_bounds() {
        assert_eq!(ThumbnailSize::Edge(150).bounds(), Ok((150, 150)));
        assert_eq!(ThumbnailSize::Box("1200x400".into()).bounds(), Ok((1200, 400)));
        assert!(ThumbnailSize::Box("wide".into()).bounds().unwrap_err().contains("not a size"));
        assert!(ThumbnailSize::Edge(0).bounds().unwrap_err().contains("1-4096"));
        assert!(ThumbnailSize::Box("10x99999".into()).bounds().is_err());
    }

    #[test]
    fn validation_names_each_problem() {
        let mut c = ImageConfig::default();
        assert!(c.validate().is_empty());
        c.sizes.insert("Big One".into(), ThumbnailSize::Edge(0));
        c.quality = 0;
        c.max_pixels = 0;
        let problems: Vec<String> =
            c.validate().into_iter().map(|p| p.under("pipeline[1] (images).image").to_string()).collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("\"Big One\" is not a size name"), "{problems:?}");
        assert!(problems[1].starts_with("pipeline[1] (images).image.sizes.Big One: 0x0"), "{problems:?}");
        c.sizes.clear();
        assert!(c.validate()[0].to_string().contains("at least one thumbnail size"));
    }
}
