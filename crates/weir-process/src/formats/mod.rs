//! Input formats: how a byte stream becomes records of fields.
//!
//! Whatever the format, the row loop sees the same [`Record`]: fields as byte ranges into one
//! buffer, the line the record starts on, and where a field stops being UTF-8. `csv` reads
//! delimited text; `json` reads a JSON document, an array of objects or NDJSON and flattens each
//! object onto the schema's columns (nested fields by dotted path, `user.id`). Both parse out of
//! one `refill` buffer, which reads the input in large blocks and grows only for a long record.
//! [`open`] puts the decompressor (`crate::decompress`) and, for inputs that are not UTF-8, a
//! transcoder in front.

pub(crate) mod csv;
pub(crate) mod json;
pub(crate) mod refill;

use std::io::{self, Read};

use crate::error::ProcessError;
use crate::plan::Plan;

/// One field of the current record: `start..end` is its content in [`Record::buf`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Field {
    pub start: usize,
    pub end: usize,
    /// The field as it is in the file, quotes included.
    pub(crate) raw_start: usize,
    pub(crate) raw_end: usize,
    /// Quoted with doubled quotes or text after the closing quote: rewritten on completion.
    pub(crate) escaped: bool,
}

impl Field {
    pub fn new(start: usize, end: usize) -> Field {
        Field { start, end, raw_start: start, raw_end: end, escaped: false }
    }
}

/// A complete record, borrowed from the reader until the next call.
pub(crate) struct Record<'a> {
    /// Line of the file where the record starts (1-based, counting `\n`).
    pub line: u64,
    pub buf: &'a [u8],
    /// The stored fields (at most [`csv::MAX_FIELDS`]).
    pub fields: &'a [Field],
    /// How many fields the record has.
    pub field_count: usize,
    /// `(field index, file offset of its first invalid byte)` for every field that is not UTF-8.
    pub utf8_errors: &'a [(usize, u64)],
    /// JSON only (kept behind one reference so that a CSV record stays small to move).
    pub json: Option<&'a JsonParts>,
}

/// What a JSON record has beyond its fields.
#[derive(Debug, Default)]
pub(crate) struct JsonParts {
    /// Keys the schema does not name, as `,"key":value` pairs ready to write.
    pub extra: Vec<u8>,
    /// Why the element is not an object the schema can read (the row is then invalid).
    pub malformed: Option<String>,
    /// Fields that were absent or `null` (as opposed to an empty string).
    pub absent: Vec<bool>,
}

impl Record<'_> {
    #[inline]
    pub fn field(&self, i: usize) -> &[u8] {
        let f = self.fields[i];
        &self.buf[f.start..f.end]
    }

    #[inline]
    pub fn extra(&self) -> &[u8] {
        self.json.map_or(&[], |j| &j.extra)
    }

    #[inline]
    pub fn malformed(&self) -> Option<&str> {
        self.json.and_then(|j| j.malformed.as_deref())
    }

    /// Whether field `i` was absent or `null` in a JSON object.
    #[inline]
    pub fn absent(&self, i: usize) -> bool {
        self.json.is_some_and(|j| j.absent.get(i) == Some(&true))
    }
}

pub(crate) enum Next<'a> {
    Record(Record<'a>),
    /// A record larger than the limit, skipped without being stored; `bytes` is its size
    /// without the line terminator.
    Oversized {
        line: u64,
        bytes: u64,
    },
}

/// A reader of records, whatever the format.
pub(crate) trait Source {
    fn next_record(&mut self) -> Result<Option<Next<'_>>, ProcessError>;
}

/// The input as UTF-8 bytes: decompressed, and transcoded when `format.encoding` says so.
pub(crate) fn open<'a, R: Read + 'a>(
    plan: &Plan,
    input: R,
    name: Option<&str>,
) -> io::Result<Box<dyn Read + 'a>> {
    let f = &plan.input;
    let raw = crate::decompress::open(input, name, f.compression, f.max_decompressed_bytes)?;
    Ok(match f.encoding {
        None => raw,
        Some(e) => Box::new(Transcode::new(raw, e)),
    })
}

/// Decodes another encoding to UTF-8 as a stream (`encoding_rs`, WHATWG semantics: `latin-1`
/// means windows-1252; bytes an encoding does not define become U+FFFD).
struct Transcode<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_pos: usize,
    in_end: usize,
    eof: bool,
    output: Vec<u8>,
    out_pos: usize,
    out_end: usize,
    done: bool,
}

impl<R: Read> Transcode<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Transcode {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; 64 << 10],
            in_pos: 0,
            in_end: 0,
            eof: false,
            output: vec![0; 3 * (64 << 10) + 16],
            out_pos: 0,
            out_end: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out_end {
            if self.done {
                return Ok(0);
            }
            if self.in_pos == self.in_end && !self.eof {
                self.in_pos = 0;
                self.in_end = 0;
                match self.inner.read(&mut self.input) {
                    Ok(0) => self.eof = true,
                    Ok(n) => self.in_end = n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_pos..self.in_end],
                &mut self.output,
                self.eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_end = written;
            if self.eof && result == encoding_rs::CoderResult::InputEmpty && self.in_pos == self.in_end {
                self.done = true;
            }
        }
        let n = buf.len().min(self.out_end - self.out_pos);
        buf[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcodes_latin1_and_utf16_in_small_reads() {
        let latin1 = b"caf\xe9,na\xefve,\x80\n".repeat(5000);
        let mut t = Transcode::new(&latin1[..], encoding_rs::Encoding::for_label(b"latin1").unwrap());
        let mut out = Vec::new();
        let mut chunk = [0u8; 7];
        loop {
            let n = t.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(String::from_utf8(out).unwrap(), "café,naïve,€\n".repeat(5000));
        let utf16: Vec<u8> = "\u{feff}a,é\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let mut t = Transcode::new(&utf16[..], encoding_rs::UTF_16LE);
        let mut s = String::new();
        t.read_to_string(&mut s).unwrap();
        assert_eq!(s, "a,é\n");
    }
}
