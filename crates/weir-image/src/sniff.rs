//! What a file is, from its first bytes. A name can lie (`photo.jpg` holding a PNG, or a CSV);
//! the magic bytes cannot, so they alone decide how a file is decoded.

use crate::ImageError;

/// A format weir decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl Format {
    /// Pillow's name for the format, as the seed's metadata reported it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::WebP => "WEBP",
        }
    }
}

/// The format of `bytes`, or why they are not a picture weir decodes.
pub fn sniff(bytes: &[u8]) -> Result<Format, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Ok(Format::Gif);
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Ok(Format::WebP);
    }
    // Pictures weir does not read, named so the message says what the file is.
    let other = if at(4, b"ftypavif") || at(4, b"ftypavis") {
        Some("AVIF")
    } else if at(4, b"ftyp")
        && ["heic", "heix", "hevc", "heim", "heis", "mif1", "msf1"].iter().any(|b| at(8, b.as_bytes()))
    {
        Some("HEIF/HEIC")
    } else if at(0, b"II*\0") || at(0, b"MM\0*") {
        Some("TIFF (or camera raw)")
    } else if at(0, b"BM") && bytes.len() >= 26 {
        Some("BMP")
    } else if at(0, &[0xFF, 0x0A]) || at(4, b"JXL ") {
        Some("JPEG XL")
    } else if at(0, &[0, 0, 1, 0]) {
        Some("ICO")
    } else {
        None
    };
    match other {
        Some(format) => Err(ImageError::Unsupported { format }),
        None => Err(ImageError::NotAnImage { starts: describe_start(bytes) }),
    }
}

/// The first bytes, as text if they are printable (a CSV's header), else in hex.
fn describe_start(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    let printable = head.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let more = if bytes.len() > head.len() { "..." } else { "" };
    if printable {
        format!("{:?}{more}", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}{more}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Ok(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Ok(Format::Png));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Ok(Format::Gif));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Ok(Format::WebP));
        assert_eq!(sniff(b""), Err(ImageError::Empty));
        let csv = sniff(b"order_id,customer_name,product\n1,a,b\n").unwrap_err().to_string();
        assert!(csv.contains("starts with \"order_id,custome\"..."), "{csv}");
        let short = sniff(b"a,b\n1,2\n").unwrap_err().to_string();
        assert!(short.ends_with("starts with \"a,b\\n1,2\\n\""), "{short}");
        let binary = sniff(&[0, 1, 2, 3]).unwrap_err().to_string();
        assert!(binary.ends_with("starts with bytes 00 01 02 03"), "{binary}");
        let heic = sniff(b"\0\0\0\x18ftypheic\0\0\0\0").unwrap_err().to_string();
        assert!(heic.starts_with("a HEIF/HEIC file"), "{heic}");
        assert!(sniff(b"RIFF\x24\0\0\0WAVEfmt ").is_err());
    }
}
