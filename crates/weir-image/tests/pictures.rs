//! Every kind of picture the issue names, through `weir_image::process`, with the thumbnails
//! decoded back and checked: sizes and aspect, which way up, colours, EXIF carried or stripped.

use weir_core::config::{ExifPolicy, ImageConfig, ThumbnailFormat, ThumbnailSize};
use weir_image::fixtures::{self, near, pixel, read_jpeg, BLUE, GREEN, RED, WHITE};
use weir_image::{process, ImageError, Processed};

fn thumb<'a>(p: &'a Processed, name: &str) -> &'a weir_image::Thumbnail {
    p.thumbnails.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no {name} thumbnail"))
}

/// The colours at the four corners (inset by a few pixels) of a decoded JPEG thumbnail:
/// top-left, top-right, bottom-left, bottom-right.
fn corners(bytes: &[u8]) -> (u32, u32, [[u8; 3]; 4]) {
    let (w, h, px) = read_jpeg(bytes);
    let (l, t, r, b) = (2, 2, w - 3, h - 3);
    (w, h, [pixel(&px, w, l, t), pixel(&px, w, r, t), pixel(&px, w, l, b), pixel(&px, w, r, b)])
}

fn assert_corners(got: [[u8; 3]; 4], want: [[u8; 3]; 4]) {
    for (g, w) in got.iter().zip(want) {
        assert!(near(*g, w, 40), "corners {got:?}, expected {want:?}");
    }
}

#[test]
fn a_phone_photo_gets_three_upright_thumbnails_and_its_exif_read() {
    // Stored landscape 800 × 600 with orientation 6: shown portrait 600 × 800.
    let photo = fixtures::jpeg(800, 600, Some(&fixtures::camera_exif(6, true)));
    let p = process(&photo, &ImageConfig::default()).unwrap();
    let s = &p.summary;
    assert_eq!((s.format.as_str(), s.mode.as_str()), ("JPEG", "RGB"));
    assert_eq!((s.width, s.height, s.display_width, s.display_height), (800, 600, 600, 800));
    assert_eq!(s.file_size, photo.len() as u64);
    let sizes: Vec<_> = s.thumbnails.iter().map(|t| (t.name.as_str(), t.width, t.height)).collect();
    assert_eq!(sizes, [("large", 450, 600), ("medium", 225, 300), ("small", 113, 150)]);

    // Turned 90° clockwise: the stored bottom-left (blue) is shown top-left, the stored
    // top-left (red) top-right.
    for name in ["small", "medium", "large"] {
        let t = thumb(&p, name);
        let (w, h, got) = corners(&t.bytes);
        assert_eq!((w, h), (t.width, t.height), "{name}");
        assert_corners(got, [BLUE, RED, WHITE, GREEN]);
        assert_eq!(s.thumbnails.iter().find(|i| i.name == name).unwrap().bytes, t.bytes.len() as u64);
    }

    let exif = s.exif.as_ref().expect("EXIF summary");
    assert_eq!(exif.make.as_deref(), Some("Weirphone"));
    assert_eq!(exif.model.as_deref(), Some("W 12 Pro"));
    assert_eq!(exif.orientation, Some(6));
    assert_eq!(exif.datetime.as_deref(), Some("2024:05:01 12:30:00"));
    assert_eq!(exif.datetime_original.as_deref(), Some("2024:05:01 12:29:58"));
    assert!(exif.has_gps);
    assert_eq!(exif.gps, None, "the location is personal data: not reported by default");
}

/// The EXIF a thumbnail carries, read back with kamadak-exif.
fn thumbnail_exif(bytes: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)).ok()
}

#[test]
fn gps_is_stripped_from_thumbnails_by_default_and_kept_or_all_stripped_on_request() {
    let photo = fixtures::jpeg(640, 480, Some(&fixtures::camera_exif(6, true)));
    let gps_fields = |e: &exif::Exif| e.fields().filter(|f| f.tag.context() == exif::Context::Gps).count();

    let p = process(&photo, &ImageConfig::default()).unwrap();
    for t in &p.thumbnails {
        let e = thumbnail_exif(&t.bytes).expect("the camera's EXIF, less the location");
        assert_eq!(gps_fields(&e), 0, "{}: GPS left in", t.name);
        let make = e.get_field(exif::Tag::Make, exif::In::PRIMARY).unwrap();
        assert_eq!(make.display_value().to_string(), "\"Weirphone\"");
        // The pixels are turned already: a viewer must not turn them again.
        let o = e.get_field(exif::Tag::Orientation, exif::In::PRIMARY).unwrap();
        assert_eq!(o.value.get_uint(0), Some(1));
    }

    let keep = ImageConfig { exif: ExifPolicy::Keep, ..ImageConfig::default() };
    let p = process(&photo, &keep).unwrap();
    let e = thumbnail_exif(&p.thumbnails[0].bytes).unwrap();
    assert_eq!(gps_fields(&e), 5);
    let gps = p.summary.exif.as_ref().unwrap().gps.expect("kept, so reported");
    assert!((gps.latitude - 51.5).abs() < 1e-9 && (gps.longitude + 0.25).abs() < 1e-9, "{gps:?}");
    assert_eq!(gps.altitude, Some(35.0));

    let strip = ImageConfig { exif: ExifPolicy::Strip, ..ImageConfig::default() };
    let p = process(&photo, &strip).unwrap();
    assert!(p.thumbnails.iter().all(|t| thumbnail_exif(&t.bytes).is_none()));
    // Still read for the summary, which says a location exists without giving it.
    assert!(p.summary.exif.as_ref().unwrap().has_gps);
}

#[test]
fn every_orientation_is_applied_before_resizing() {
    // Where each stored quadrant is shown, corner by corner (TL, TR, BL, BR).
    let expected = [
        (1, [RED, GREEN, BLUE, WHITE]),
        (2, [GREEN, RED, WHITE, BLUE]),
        (3, [WHITE, BLUE, GREEN, RED]),
        (4, [BLUE, WHITE, RED, GREEN]),
        (5, [RED, BLUE, GREEN, WHITE]),
        (6, [BLUE, RED, WHITE, GREEN]),
        (7, [WHITE, GREEN, BLUE, RED]),
        (8, [GREEN, WHITE, RED, BLUE]),
    ];
    for (orientation, want) in expected {
        let photo = fixtures::jpeg(400, 200, Some(&fixtures::camera_exif(orientation, false)));
        let p = process(&photo, &ImageConfig::default()).unwrap();
        let (w, h, got) = corners(&thumb(&p, "small").bytes);
        let expected_size = if orientation >= 5 { (75, 150) } else { (150, 75) };
        assert_eq!((w, h), expected_size, "orientation {orientation}");
        assert_corners(got, want);
    }
}

#[test]
fn a_large_photo_is_decoded_at_a_reduced_scale_and_keeps_its_aspect() {
    // 4000 × 3000 (12 MP): the thumbnails are made from a 1/4-scale decode (1000 × 750).
    let photo = fixtures::jpeg(4000, 3000, None);
    let p = process(&photo, &ImageConfig::default()).unwrap();
    let sizes: Vec<_> = p.thumbnails.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(sizes, [(600, 450), (300, 225), (150, 113)]);
    for t in &p.thumbnails {
        let (w, h, got) = corners(&t.bytes);
        assert_eq!((w, h), (t.width, t.height));
        assert_corners(got, [RED, GREEN, BLUE, WHITE]);
    }
    assert!(p.summary.exif.is_none());
    // A progressive JPEG decodes to the same picture.
    let p = process(&fixtures::progressive_jpeg(1200, 900), &ImageConfig::default()).unwrap();
    assert_corners(corners(&thumb(&p, "large").bytes).2, [RED, GREEN, BLUE, WHITE]);
}

#[test]
fn small_pictures_are_never_enlarged_and_boxes_fit() {
    let mut config = ImageConfig::default();
    config.sizes.insert("banner".into(), ThumbnailSize::Box("300x50".into()));
    let p = process(&fixtures::jpeg(200, 100, None), &config).unwrap();
    let sizes: Vec<_> = p.thumbnails.iter().map(|t| (t.name.as_str(), t.width, t.height)).collect();
    assert_eq!(sizes, [("large", 200, 100), ("medium", 200, 100), ("small", 150, 75), ("banner", 100, 50)]);
}

#[test]
fn colour_types_rgba_palette_grayscale_16_bit_cmyk_webp() {
    let config = ImageConfig::default();

    // RGBA: transparency becomes white in a JPEG (the left half is transparent).
    let p = process(&fixtures::png_rgba(300, 200), &config).unwrap();
    assert_eq!((p.summary.format.as_str(), p.summary.mode.as_str()), ("PNG", "RGBA"));
    assert_corners(corners(&thumb(&p, "small").bytes).2, [WHITE, GREEN, WHITE, WHITE]);

    // Palette GIF; animated, the first frame (the second is all white).
    for animated in [false, true] {
        let p = process(&fixtures::gif(300, 200, animated), &config).unwrap();
        assert_eq!((p.summary.format.as_str(), p.summary.mode.as_str()), ("GIF", "P"));
        assert_eq!(p.summary.animated, animated);
        assert_corners(corners(&thumb(&p, "small").bytes).2, [RED, GREEN, BLUE, WHITE]);
    }

    // 16 bits a channel.
    let p = process(&fixtures::png16(300, 200), &config).unwrap();
    assert_eq!(p.summary.mode, "RGB;16");
    assert_corners(corners(&thumb(&p, "small").bytes).2, [RED, GREEN, BLUE, WHITE]);

    // Grayscale JPEG: black | white.
    let p = process(&fixtures::gray_jpeg(300, 200), &config).unwrap();
    assert_eq!(p.summary.mode, "L");
    let black = [0, 0, 0];
    assert_corners(corners(&thumb(&p, "small").bytes).2, [black, WHITE, black, WHITE]);

    // CMYK JPEG: cyan ink | black ink.
    let p = process(&fixtures::cmyk_jpeg(300, 200), &config).unwrap();
    assert_eq!(p.summary.mode, "CMYK");
    let cyan = [0, 255, 255];
    assert_corners(corners(&thumb(&p, "small").bytes).2, [cyan, black, cyan, black]);

    // WebP.
    let p = process(&fixtures::webp(300, 200), &config).unwrap();
    assert_eq!((p.summary.format.as_str(), p.summary.mode.as_str()), ("WEBP", "RGB"));
    assert_corners(corners(&thumb(&p, "small").bytes).2, [RED, GREEN, BLUE, WHITE]);
}

#[test]
fn png_and_webp_thumbnails_keep_transparency() {
    for format in [ThumbnailFormat::Png, ThumbnailFormat::Webp] {
        let config = ImageConfig { format, ..ImageConfig::default() };
        let p = process(&fixtures::png_rgba(300, 200), &config).unwrap();
        let small = thumb(&p, "small");
        assert_eq!((small.width, small.height), (150, 100));
        // Read back with the same decoders weir reads uploads with.
        let again = process(&small.bytes, &ImageConfig::default()).unwrap();
        assert_eq!(again.summary.mode, "RGBA", "{format:?}");
        assert_eq!((again.summary.width, again.summary.height), (150, 100));
    }
}

#[test]
fn hostile_files_are_refused_with_their_reason() {
    let config = ImageConfig::default();
    let refuse = |bytes: &[u8]| {
        let e = process(bytes, &config).unwrap_err();
        // The reason travels in S3 metadata, an HTTP header: ASCII only.
        assert!(e.to_string().is_ascii(), "{e}");
        e
    };

    assert_eq!(refuse(b""), ImageError::Empty);
    let csv = refuse(b"order_id,customer_name,product\n1,Ann,Widget\n").to_string();
    assert!(csv.starts_with("not a picture weir reads"), "{csv}");
    assert!(csv.contains("\"order_id,custome\""), "{csv}");

    // A header claiming 100,000 × 100,000 pixels: refused from the header.
    let bomb = fixtures::bomb_png(100_000, 100_000);
    assert!(bomb.len() < 100, "{}", bomb.len());
    let e = refuse(&bomb);
    assert!(matches!(e, ImageError::TooManyPixels { width: 100_000, height: 100_000, .. }), "{e:?}");
    assert!(e.to_string().contains("10000.0 megapixels"), "{e}");
    assert!(e.to_string().contains("image.max_pixels"), "{e}");

    // Truncated anywhere: in the header, in the pixels, just before the end.
    let photo = fixtures::jpeg(400, 300, Some(&fixtures::camera_exif(1, true)));
    for cut in [3, 100, photo.len() / 2, photo.len() - 2] {
        let e = refuse(&photo[..cut]);
        assert_eq!(e, ImageError::Truncated { format: "JPEG" }, "cut at {cut}");
    }
    assert!(refuse(&photo[..100]).to_string().contains("truncated"));
    let png = fixtures::png_rgba(300, 200);
    assert_eq!(refuse(&png[..png.len() / 2]), ImageError::Truncated { format: "PNG" });
    let gif = fixtures::gif(300, 200, false);
    assert_eq!(refuse(&gif[..gif.len() / 2]), ImageError::Truncated { format: "GIF" });
    // A lossless WebP's bitstream is read ahead in whole words: cut short, it is corrupt.
    let webp = fixtures::webp(300, 200);
    assert!(matches!(refuse(&webp[..webp.len() / 2]), ImageError::Corrupt { format: "WEBP", .. }));
    assert_eq!(refuse(&webp[..20]), ImageError::Truncated { format: "WEBP" });

    // Corrupt in the middle: a PNG's checksums catch it, a JPEG's markers.
    let mut broken = png.clone();
    broken[png.len() / 2] ^= 0xFF;
    let e = refuse(&broken);
    assert!(matches!(e, ImageError::Corrupt { format: "PNG", .. }), "{e:?}");
    let mut broken = photo.clone();
    let sos = broken.windows(2).position(|m| m == [0xFF, 0xDA]).unwrap();
    broken[sos + 1] = 0x01; // an undefined marker where the scan starts
    assert!(matches!(refuse(&broken), ImageError::Corrupt { format: "JPEG", .. }));

    // Too large, before anything else is looked at.
    let small = ImageConfig { max_input_bytes: 100, ..ImageConfig::default() };
    let e = process(&photo, &small).unwrap_err();
    assert_eq!(e, ImageError::TooLarge { size: photo.len() as u64, limit: 100 });

    // Formats weir does not decode are named.
    let tiff = refuse(b"II*\0\x08\0\0\0").to_string();
    assert!(tiff.starts_with("a TIFF (or camera raw) file"), "{tiff}");
}

#[test]
fn the_metadata_document_serializes_as_the_seed_names_its_fields() {
    let photo = fixtures::jpeg(800, 600, Some(&fixtures::camera_exif(1, true)));
    let p = process(&photo, &ImageConfig::default()).unwrap();
    let doc = serde_json::to_value(&p.summary).unwrap();
    for field in ["format", "mode", "width", "height", "file_size", "exif", "thumbnails"] {
        assert!(doc.get(field).is_some(), "{field} missing from {doc}");
    }
    assert_eq!(doc["exif"]["make"], "Weirphone");
    assert_eq!(doc["exif"]["has_gps"], true);
    assert!(doc["exif"].get("gps").is_none(), "{doc}");
}

#[test]
fn a_jpeg_is_decoded_at_the_smallest_scale_that_serves_the_thumbnails() {
    let photo = fixtures::jpeg(4000, 3000, None);
    let decode = |want: (u32, u32)| {
        let (header, pixels) =
            weir_image::decode::decode(&photo, weir_image::Format::Jpeg, 50_000_000, &|_, _| want).unwrap();
        assert_eq!((header.width, header.height), (4000, 3000));
        (pixels.width, pixels.height)
    };
    assert_eq!(decode((1200, 900)), (2000, 1500));
    assert_eq!(decode((300, 226)), (500, 375));
    assert_eq!(decode((4000, 3000)), (4000, 3000));
}
