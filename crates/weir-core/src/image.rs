//! What an image job learns about its picture.
//!
//! One type serves three readers: the metadata document written next to the thumbnails (the
//! seed's `metadata/<key>.json`), the job record (so `weir jobs show`, the API and the
//! dashboard show dimensions, format, EXIF summary and thumbnails without reading an object),
//! and `weir process`, which prints it. Every text in it comes from the file, so each is cut
//! to a few dozen characters and cleared of control characters where it is read.

use serde::{Deserialize, Serialize};

use crate::summary::SourceRef;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageSummary {
    /// Filled in by whoever knows the source (the pipeline, or `weir process`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// `JPEG`, `PNG`, `GIF` or `WEBP`, from the file's content (not its name).
    pub format: String,
    /// The pixels as stored, in Pillow's names: `1`, `L`, `LA`, `P`, `RGB`, `RGBA`, `CMYK`,
    /// `I;16`, `RGB;16`, `RGBA;16`, `LA;16`.
    pub mode: String,
    /// Width and height as stored (before the EXIF orientation is applied).
    pub width: u32,
    pub height: u32,
    /// Width and height as shown (after the EXIF orientation): a portrait phone photo is
    /// stored landscape with orientation 6 and shown portrait.
    pub display_width: u32,
    pub display_height: u32,
    pub file_size: u64,
    /// An animated GIF, PNG or WebP: the thumbnails show its first frame.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif: Option<ExifSummary>,
    /// Largest first.
    pub thumbnails: Vec<ThumbnailInfo>,
}

impl ImageSummary {
    /// The smallest thumbnail (fewest pixels), which the dashboard shows.
    pub fn smallest_thumbnail(&self) -> Option<&ThumbnailInfo> {
        self.thumbnails.iter().min_by_key(|t| u64::from(t.width) * u64::from(t.height))
    }
}

/// The EXIF fields the seed reported, plus where the picture was taken when the pipeline keeps
/// location data (`exif = "keep"`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExifSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// 1-8 as in the file; 1 (or none) is upright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// When the file was last changed (`DateTime`), as EXIF writes it: `2024:05:01 12:30:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
    /// When the picture was taken (`DateTimeOriginal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime_original: Option<String>,
    /// The source has location data. Whether the thumbnails and this summary carry it depends
    /// on the pipeline's `exif` setting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_gps: bool,
    /// Only with `exif = "keep"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<GpsPosition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GpsPosition {
    /// Degrees, north positive.
    pub latitude: f64,
    /// Degrees, east positive.
    pub longitude: f64,
    /// Metres above sea level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
}

/// One thumbnail made.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThumbnailInfo {
    /// The size's name (`small`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Where it is: the object key in the output bucket, or the file `weir process` wrote.
    pub key: String,
}
