//! The source's EXIF data: what the summary reports, which way the picture is shown, and what
//! the thumbnails carry.
//!
//! EXIF is the camera's, and so the file's: a broken EXIF block never refuses a picture (it is
//! read as far as it goes, or not at all). What a thumbnail carries is written anew from the
//! fields kamadak-exif understands, never copied as bytes: the orientation becomes 1 (the pixels
//! are turned already), the source's own embedded thumbnail and maker notes are left out, and
//! so is the location unless the pipeline keeps it.

use std::io::Cursor;

use exif::{Exif, Field, In, Tag, Value};
use weir_core::config::ExifPolicy;
use weir_core::image::{ExifSummary, GpsPosition};

/// The largest EXIF a JPEG APP1 segment holds (64 KiB less its length and `Exif\0\0`).
const MAX_EXIF_BYTES: usize = 65_528;

/// Text values kept in the summary (the job record and metadata document carry them).
const MAX_TEXT_CHARS: usize = 64;

/// The EXIF block of a JPEG, PNG or WebP, if it has one that can be read.
pub fn read(bytes: &[u8]) -> Option<Exif> {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    match reader.read_from_container(&mut Cursor::new(bytes)) {
        Ok(exif) => Some(exif),
        Err(e) => e.distill_partial_result(|_| {}).ok(),
    }
}

/// The orientation (1-8); 1 when absent or out of range.
pub fn orientation(exif: Option<&Exif>) -> u16 {
    exif.and_then(|e| e.get_field(Tag::Orientation, In::PRIMARY))
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u16::try_from(v).ok())
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1)
}

/// The seed's fields (make, model, orientation, dates) and whether there is a location, with
/// the location itself only when the pipeline keeps it.
pub fn summary(exif: &Exif, policy: ExifPolicy) -> ExifSummary {
    let text = |tag| exif.get_field(tag, In::PRIMARY).and_then(ascii);
    let gps = gps_position(exif);
    ExifSummary {
        make: text(Tag::Make),
        model: text(Tag::Model),
        orientation: exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .and_then(|v| u16::try_from(v).ok()),
        datetime: text(Tag::DateTime),
        datetime_original: text(Tag::DateTimeOriginal),
        has_gps: exif.fields().any(|f| f.ifd_num == In::PRIMARY && is_gps(f.tag)),
        gps: gps.filter(|_| policy == ExifPolicy::Keep),
    }
}

/// The first string of an ASCII field, trimmed, without control characters, cut to
/// [`MAX_TEXT_CHARS`].
fn ascii(field: &Field) -> Option<String> {
    let Value::Ascii(ref strings) = field.value else { return None };
    let text: String = String::from_utf8_lossy(strings.first()?)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn is_gps(tag: Tag) -> bool {
    tag.context() == exif::Context::Gps
}

fn gps_position(exif: &Exif) -> Option<GpsPosition> {
    let degrees = |tag, reference, negative: &[u8]| {
        let Value::Rational(ref parts) = exif.get_field(tag, In::PRIMARY)?.value else { return None };
        let [d, m, s] = parts.get(..3)? else { return None };
        let value = d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0;
        let sign = match exif.get_field(reference, In::PRIMARY).map(|f| &f.value) {
            Some(Value::Ascii(r))
                if r.first().is_some_and(|r| r.first().is_some_and(|c| negative.contains(c))) =>
            {
                -1.0
            }
            _ => 1.0,
        };
        value.is_finite().then_some(sign * value)
    };
    let latitude = degrees(Tag::GPSLatitude, Tag::GPSLatitudeRef, b"Ss")?;
    let longitude = degrees(Tag::GPSLongitude, Tag::GPSLongitudeRef, b"Ww")?;
    let altitude = match exif.get_field(Tag::GPSAltitude, In::PRIMARY).map(|f| &f.value) {
        Some(Value::Rational(r)) if !r.is_empty() => {
            let below =
                exif.get_field(Tag::GPSAltitudeRef, In::PRIMARY).and_then(|f| f.value.get_uint(0)) == Some(1);
            Some(if below { -r[0].to_f64() } else { r[0].to_f64() }).filter(|a| a.is_finite())
        }
        _ => None,
    };
    Some(GpsPosition { latitude, longitude, altitude })
}

/// Fields that describe the source's own pixels or storage, which a thumbnail's are not.
const NOT_COPIED: [Tag; 14] = [
    Tag::Orientation,
    Tag::MakerNote,
    Tag::ImageWidth,
    Tag::ImageLength,
    Tag::BitsPerSample,
    Tag::Compression,
    Tag::PhotometricInterpretation,
    Tag::SamplesPerPixel,
    Tag::PlanarConfiguration,
    Tag::YCbCrSubSampling,
    Tag::YCbCrPositioning,
    Tag::RowsPerStrip,
    Tag::PixelXDimension,
    Tag::PixelYDimension,
];

/// Fields kept when everything else would not fit in a JPEG's EXIF segment.
const ESSENTIAL: [Tag; 4] = [Tag::Make, Tag::Model, Tag::DateTime, Tag::DateTimeOriginal];

/// The EXIF block (TIFF bytes, little-endian) a thumbnail carries under `policy`, or `None`.
pub fn for_thumbnail(exif: Option<&Exif>, policy: ExifPolicy) -> Option<Vec<u8>> {
    let exif = exif?;
    if policy == ExifPolicy::Strip {
        return None;
    }
    let upright = Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![1]) };
    let copied: Vec<&Field> = exif
        .fields()
        .filter(|f| f.ifd_num == In::PRIMARY && f.tag.description().is_some())
        .filter(|f| f.tag.context() != exif::Context::Interop && !NOT_COPIED.contains(&f.tag))
        .filter(|f| policy == ExifPolicy::Keep || !is_gps(f.tag))
        .collect();
    let write = |fields: &[&Field]| -> Option<Vec<u8>> {
        let mut writer = exif::experimental::Writer::new();
        writer.push_field(&upright);
        for f in fields {
            writer.push_field(f);
        }
        let mut out = Cursor::new(Vec::new());
        writer.write(&mut out, true).ok()?;
        Some(out.into_inner()).filter(|b| b.len() <= MAX_EXIF_BYTES)
    };
    write(&copied).or_else(|| {
        let essential: Vec<&Field> = copied.iter().copied().filter(|f| ESSENTIAL.contains(&f.tag)).collect();
        write(&essential)
    })
}
