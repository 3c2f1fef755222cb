//! Why one file's pass fails, and whether retrying can help.
//!
//! A [`ProcessError`] ends one file's pass; [`ProcessError::class`] says whether retrying can help
//! (a bad file never gets better, an I/O failure might). Invalid *rows* are not errors at all: they
//! go to the error report and the file carries on. (Problems in a pipeline's configuration are
//! [`crate::ConfigError`]s, found once when the [`crate::Plan`] is compiled.)

use weir_core::ErrorClass;

use crate::header::HeaderCheck;

/// Why a file could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The input has no header line (0 bytes, or only blank lines).
    #[error("file is empty: expected a header line")]
    Empty,
    /// The header line is not UTF-8; the offset is of the first bad byte in the file.
    #[error("header is not valid UTF-8 at byte offset {offset} of the file")]
    HeaderEncoding { offset: u64 },
    /// The header line is larger than `format.max_record_bytes`.
    #[error("header line is more than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// Required columns missing or column names duplicated; nothing was written.
    #[error("header does not match the schema: {}", .0.reason())]
    HeaderMismatch(HeaderCheck),
    /// A quoted field was still open at the end of the file.
    #[error("unterminated quoted field: the quote opened on line {line} is never closed")]
    UnterminatedQuote { line: u64 },
    /// A JSON file's structure is broken between elements (a broken element is an invalid row).
    #[error("invalid JSON at byte offset {offset}: {reason}")]
    Json { offset: u64, reason: String },
    /// More of the file's rows were invalid than `validation.max_invalid_ratio` allows.
    #[error(
        "{invalid} of {total} rows are invalid ({:.2} %), more than validation.max_invalid_ratio allows ({:.2} %)",
        *invalid as f64 * 100.0 / *total as f64,
        max_ratio * 100.0
    )]
    TooManyInvalid { invalid: u64, total: u64, max_ratio: f64 },
    /// The file had fewer data rows than `validation.min_rows` asks for (e.g. a header alone).
    #[error("{} (validation.min_rows is {min_rows}); nothing to process", rows_text(*rows))]
    TooFewRows { rows: u64, min_rows: u64 },
    /// The results and error report passed `output.max_bytes`; what was written is incomplete.
    #[error(
        "its outputs pass {limit} bytes (output.max_bytes, by default 4 × source.max_size_bytes); refusing a file that expands this much"
    )]
    OutputTooLarge { limit: u64 },
    /// Reading the input or writing an output failed; `InvalidData` is input that cannot be
    /// decoded (a corrupt or oversized compressed stream).
    #[error("{}", io_message(.0))]
    Io(#[from] std::io::Error),
}

fn rows_text(rows: u64) -> String {
    match rows {
        0 => "the file has no data rows".to_string(),
        1 => "the file has only 1 data row".to_string(),
        n => format!("the file has only {n} data rows"),
    }
}

fn io_message(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::InvalidData {
        format!("unreadable input: {e}")
    } else {
        format!("I/O error: {e}")
    }
}

impl ProcessError {
    /// Permanent for anything wrong with the file itself; transient for I/O, except
    /// `InvalidData`, which readers (decompressors, decoders) use for bytes that will never read.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProcessError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => ErrorClass::Permanent,
            ProcessError::Io(_) => ErrorClass::Transient,
            ProcessError::Empty
            | ProcessError::HeaderEncoding { .. }
            | ProcessError::HeaderTooLarge { .. }
            | ProcessError::HeaderMismatch(_)
            | ProcessError::UnterminatedQuote { .. }
            | ProcessError::Json { .. }
            | ProcessError::TooManyInvalid { .. }
            | ProcessError::TooFewRows { .. }
            | ProcessError::OutputTooLarge { .. } => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(ProcessError::Empty.class(), ErrorClass::Permanent);
        assert_eq!(ProcessError::UnterminatedQuote { line: 3 }.class(), ErrorClass::Permanent);
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "x");
        assert_eq!(ProcessError::Io(io).class(), ErrorClass::Transient);
        let bad = std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt gzip");
        assert_eq!(ProcessError::Io(bad).class(), ErrorClass::Permanent);
    }
}
