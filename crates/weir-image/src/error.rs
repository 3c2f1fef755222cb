//! Why a picture was refused. Every variant is the file's fault (a retry would refuse it
//! again), and each message says what was found and which setting, if any, decides it. Messages
//! are ASCII: a rejection's reason travels in S3 object metadata (an HTTP header).

/// A refused picture.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("the file is empty (0 bytes): there is no picture to read")]
    Empty,
    #[error("the file is {size} bytes; the pipeline takes pictures of at most {limit} bytes (image.max_input_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "not a picture weir reads (JPEG, PNG, GIF or WebP, recognised by content, whatever the file's name says): it starts with {starts}"
    )]
    NotAnImage { starts: String },
    #[error("a {format} file: weir reads JPEG, PNG, GIF and WebP pictures")]
    Unsupported { format: &'static str },
    #[error(
        "the {format} header says {width} x {height} pixels ({megapixels:.1} megapixels), more than the {limit_megapixels:.1} megapixels the pipeline decodes (image.max_pixels): refused before decoding (a decompression bomb, or a picture too large for this pipeline)"
    )]
    TooManyPixels { format: &'static str, width: u64, height: u64, megapixels: f64, limit_megapixels: f64 },
    #[error("the {format} file ends before its picture does: it is truncated (an upload cut short?)")]
    Truncated { format: &'static str },
    #[error("the {format} data is corrupt: {detail}")]
    Corrupt { format: &'static str, detail: String },
    #[error("making the {size} thumbnail: {detail}")]
    Thumbnail { size: String, detail: String },
}

impl ImageError {
    pub(crate) fn corrupt(format: &'static str, detail: impl std::fmt::Display) -> ImageError {
        ImageError::Corrupt { format, detail: detail.to_string() }
    }

    /// A decoder's error: `Truncated` when it ran out of bytes (`eof`), else `Corrupt`.
    pub(crate) fn decoding(format: &'static str, eof: bool, detail: impl std::fmt::Display) -> ImageError {
        if eof {
            ImageError::Truncated { format }
        } else {
            ImageError::corrupt(format, detail)
        }
    }
}
