//! A streaming CSV record reader built for this job rather than the `csv` crate's.
//! (Delimiter, quote, header or not, BOM and `\r\n` all configurable or handled.)
//!
//! The `csv` crate parses well but cannot give what weir promises about bad input: it buffers a
//! record of any size whole (a 10 GB field is an out-of-memory, not an invalid row), it silently
//! accepts a quote still open at the end of the file, and it cannot say at which byte of the file
//! a field stops being UTF-8. This reader keeps RFC 4180 semantics as `csv`/`csv_core` implement
//! them (doubled quotes, quoted delimiters and newlines, text after a closing quote appended
//! literally, `\n`, `\r\n` and `\r` terminators, blank lines skipped) and adds:
//!
//! * **Zero copy**: fields are ranges into one input buffer (a [`RefillBuffer`], 256 KiB,
//!   refilled in place); only a quoted field with doubled quotes is rewritten, in place, once its
//!   record is complete.
//! * **Bounded memory**: the buffer grows for a long record up to `max_record_bytes`; a longer
//!   record is streamed through without being stored and reported as
//!   [`Next::Oversized`] with its true size.
//! * **Exact positions**: the line where each record starts (header = line 1), the line where an
//!   unterminated quote opened, and the file offset of the first non-UTF-8 byte of each field.
//! * A UTF-8 byte order mark at the start of the input is skipped.
//!
//! Parsing a record restarts from its first byte when it crosses the end of the buffer; the
//! buffer is always refilled completely (or grown) first, so this costs one re-scan per buffer.

use std::io::{self, Read};

use memchr::memchr;

use super::refill::{RefillBuffer, INITIAL_BUFFER};
use super::{Field, Next, Record, Source};
use crate::error::ProcessError;
use crate::swar::eq_mask;

/// Fields kept per record; more are counted but not stored, so a record of a million
/// delimiters costs no more memory than its bytes.
pub(crate) const MAX_FIELDS: usize = 1 << 16;

const ORDINARY: u8 = 0;
const DELIMITER: u8 = 1;
const LF: u8 = 2;
const CR: u8 = 3;

enum Parse {
    /// The record ends before `next`; `lines` newlines were consumed, terminator included.
    Done {
        next: usize,
        lines: u64,
        raw_end: usize,
    },
    NeedMore,
    Unterminated {
        line: u64,
    },
}

pub(crate) struct CsvReader<'p, R> {
    input: RefillBuffer<'p, R>,
    /// Line number at `input.pos`.
    line: u64,
    quote: u8,
    delimiter: u8,
    class: [u8; 256],
    max_record: usize,
    /// `buf[..utf8_ok]` is known to be UTF-8 (validated a buffer at a time, not per record).
    utf8_ok: usize,
    /// Where validation stopped at a bad byte (or at a truncated character at the end).
    utf8_bad: bool,
    fields: Vec<Field>,
    field_count: usize,
    utf8_errors: Vec<(usize, u64)>,
}

impl<'p, R: Read> CsvReader<'p, R> {
    pub fn new(
        inner: R,
        delimiter: u8,
        quote: u8,
        max_record: usize,
        progress: Option<&'p dyn Fn(u64)>,
    ) -> Self {
        Self::with_buffer(inner, delimiter, quote, max_record, progress, INITIAL_BUFFER)
    }

    /// [`CsvReader::new`] starting with a buffer of `initial` bytes (it grows as records need),
    /// for inputs known to be small: see [`super::refill::initial_buffer`].
    pub fn with_buffer(
        inner: R,
        delimiter: u8,
        quote: u8,
        max_record: usize,
        progress: Option<&'p dyn Fn(u64)>,
        initial: usize,
    ) -> Self {
        let mut class = [ORDINARY; 256];
        class[delimiter as usize] = DELIMITER;
        class[b'\n' as usize] = LF;
        class[b'\r' as usize] = CR;
        let max_record = max_record.max(1);
        CsvReader {
            input: RefillBuffer::new(inner, initial, max_record, progress),
            line: 1,
            quote,
            delimiter,
            class,
            max_record,
            utf8_ok: 0,
            utf8_bad: false,
            fields: Vec::with_capacity(16),
            field_count: 0,
            utf8_errors: Vec::new(),
        }
    }

    /// A reader of a piece of a file that starts at a record boundary: `line` and `offset` are
    /// where the piece starts in the whole file (for error positions); no BOM is looked for.
    pub fn starting_at(mut self, line: u64, offset: u64) -> Self {
        self.line = line;
        self.input = self.input.starting_at(offset);
        self
    }

    /// Bytes consumed from the input so far.
    #[cfg(test)]
    pub fn bytes_read(&self) -> u64 {
        self.input.offset + self.input.end as u64
    }

    /// The next record, `None` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<Next<'_>>, ProcessError> {
        if !self.input.started() {
            self.input.start()?;
            self.validate_utf8();
        }
        // Blank lines between records are not records.
        loop {
            while self.input.pos < self.input.end {
                match self.input.buf[self.input.pos] {
                    b'\n' => self.line += 1,
                    b'\r' => {}
                    _ => break,
                }
                self.input.pos += 1;
            }
            if self.input.pos < self.input.end {
                break;
            }
            if self.input.eof {
                return Ok(None);
            }
            self.make_room()?;
        }
        loop {
            match self.parse() {
                Parse::Done { next, lines, raw_end } => {
                    let start = self.input.pos;
                    let line = self.line;
                    self.input.pos = next;
                    self.line += lines;
                    if raw_end - start > self.max_record {
                        return Ok(Some(Next::Oversized { line, bytes: (raw_end - start) as u64 }));
                    }
                    self.finish_record(raw_end);
                    return Ok(Some(Next::Record(Record {
                        line,
                        buf: &self.input.buf,
                        fields: &self.fields,
                        field_count: self.field_count,
                        utf8_errors: &self.utf8_errors,
                        json: None,
                    })));
                }
                Parse::Unterminated { line } => return Err(ProcessError::UnterminatedQuote { line }),
                Parse::NeedMore => {
                    if self.input.end - self.input.pos > self.max_record {
                        let line = self.line;
                        let bytes = self.skip_record()?;
                        return Ok(Some(Next::Oversized { line, bytes }));
                    }
                    self.make_room()?;
                }
            }
        }
    }

    /// Refills the buffer ([`RefillBuffer::make_room`]) and validates what was read.
    fn make_room(&mut self) -> io::Result<()> {
        let moved = self.input.make_room()?;
        if self.utf8_ok < moved {
            // A skipped record went past what was validated; resume after it.
            self.utf8_ok = 0;
            self.utf8_bad = false;
        } else {
            self.utf8_ok -= moved;
        }
        self.validate_utf8();
        Ok(())
    }

    /// Extends `utf8_ok` over the newly read bytes, up to the first bad byte.
    fn validate_utf8(&mut self) {
        if self.utf8_bad {
            return;
        }
        if let Err(e) = std::str::from_utf8(&self.input.buf[self.utf8_ok..self.input.end]) {
            self.utf8_ok += e.valid_up_to();
            // A character cut by the end of the buffer is completed by the next read.
            self.utf8_bad = e.error_len().is_some() || self.input.eof;
        } else {
            self.utf8_ok = self.input.end;
        }
    }

    /// Parses the record at `pos` (not a blank line) into `fields`.
    #[inline]
    fn parse(&mut self) -> Parse {
        let buf = &self.input.buf[..self.input.end];
        let end = self.input.end;
        let eof = self.input.eof;
        let quote = self.quote;
        let class = &self.class;
        let fields = &mut self.fields;
        fields.clear();
        let mut count = 0usize;
        let mut i = self.input.pos;
        let mut lines = 0u64;
        loop {
            let raw_start = i;
            if i < end && buf[i] == quote {
                let open_line = self.line + lines;
                let mut j = i + 1;
                let mut escaped = false;
                let content_end;
                loop {
                    match memchr(quote, &buf[j..end]) {
                        None => {
                            return if eof {
                                Parse::Unterminated { line: open_line }
                            } else {
                                Parse::NeedMore
                            };
                        }
                        Some(k) => {
                            let q = j + k;
                            lines += count_lf(&buf[j..q]);
                            if q + 1 < end {
                                if buf[q + 1] == quote {
                                    escaped = true;
                                    j = q + 2;
                                    continue;
                                }
                            } else if !eof {
                                return Parse::NeedMore;
                            }
                            content_end = q;
                            j = q + 1;
                            break;
                        }
                    }
                }
                // Text after the closing quote is kept, as csv_core does.
                while j < end && class[buf[j] as usize] == ORDINARY {
                    escaped = true;
                    j += 1;
                }
                if j == end && !eof {
                    return Parse::NeedMore;
                }
                count += 1;
                if count <= MAX_FIELDS {
                    fields.push(Field {
                        start: raw_start + 1,
                        end: content_end,
                        raw_start,
                        raw_end: j,
                        escaped,
                    });
                }
                i = j;
            } else {
                let mut j = scan_unquoted(buf, i, self.delimiter);
                while j < end && class[buf[j] as usize] == ORDINARY {
                    j += 1;
                }
                if j == end && !eof {
                    return Parse::NeedMore;
                }
                count += 1;
                if count <= MAX_FIELDS {
                    fields.push(Field { start: i, end: j, raw_start: i, raw_end: j, escaped: false });
                }
                i = j;
            }
            if i == end {
                self.field_count = count;
                return Parse::Done { next: i, lines, raw_end: i };
            }
            match class[buf[i] as usize] {
                DELIMITER => i += 1,
                LF => {
                    self.field_count = count;
                    return Parse::Done { next: i + 1, lines: lines + 1, raw_end: i };
                }
                // A `\n` right after is skipped as a blank line by the next call.
                _ => {
                    self.field_count = count;
                    return Parse::Done { next: i + 1, lines, raw_end: i };
                }
            }
        }
    }

    /// Finds the fields that are not UTF-8 if the record reaches past the validated part of the
    /// buffer (quotes and delimiters are ASCII, so a record is UTF-8 iff its fields are), then
    /// rewrites escaped fields in place.
    fn finish_record(&mut self, raw_end: usize) {
        self.utf8_errors.clear();
        if raw_end > self.utf8_ok {
            for (i, f) in self.fields.iter().enumerate() {
                if let Err(e) = std::str::from_utf8(&self.input.buf[f.raw_start..f.raw_end]) {
                    let offset = self.input.offset + (f.raw_start + e.valid_up_to()) as u64;
                    self.utf8_errors.push((i, offset));
                }
            }
            // Validation of the buffer resumes after this record.
            self.utf8_ok = self.utf8_ok.max(raw_end);
            self.utf8_bad = false;
            self.validate_utf8();
        }
        for f in self.fields.iter_mut().filter(|f| f.escaped) {
            let n = unescape_in_place(&mut self.input.buf[f.raw_start..f.raw_end], self.quote);
            f.start = f.raw_start;
            f.end = f.raw_start + n;
        }
    }

    /// Streams through a record too large to keep, from `pos` to its terminator; returns its size.
    fn skip_record(&mut self) -> Result<u64, ProcessError> {
        #[derive(PartialEq)]
        enum S {
            FieldStart,
            Unquoted,
            Quoted,
            QuoteInQuoted,
        }
        let mut state = S::FieldStart;
        let mut bytes = 0u64;
        let mut open_line = self.line;
        loop {
            let mut i = self.input.pos;
            while i < self.input.end {
                let b = self.input.buf[i];
                match state {
                    S::Quoted => match memchr(self.quote, &self.input.buf[i..self.input.end]) {
                        Some(k) => {
                            self.line += count_lf(&self.input.buf[i..i + k]);
                            i += k + 1;
                            state = S::QuoteInQuoted;
                            continue;
                        }
                        None => {
                            self.line += count_lf(&self.input.buf[i..self.input.end]);
                            i = self.input.end;
                            continue;
                        }
                    },
                    S::FieldStart if b == self.quote => {
                        open_line = self.line;
                        state = S::Quoted;
                    }
                    S::QuoteInQuoted if b == self.quote => state = S::Quoted,
                    _ => match self.class[b as usize] {
                        DELIMITER => state = S::FieldStart,
                        LF | CR => {
                            bytes += (i - self.input.pos) as u64;
                            self.input.pos = i + 1;
                            if b == b'\n' {
                                self.line += 1;
                            }
                            return Ok(bytes);
                        }
                        _ => state = S::Unquoted,
                    },
                }
                i += 1;
            }
            bytes += (self.input.end - self.input.pos) as u64;
            self.input.pos = self.input.end;
            if self.input.eof {
                if state == S::Quoted {
                    return Err(ProcessError::UnterminatedQuote { line: open_line });
                }
                return Ok(bytes);
            }
            self.make_room()?;
        }
    }
}

impl<R: Read> Source for CsvReader<'_, R> {
    #[inline]
    fn next_record(&mut self) -> Result<Option<Next<'_>>, ProcessError> {
        CsvReader::next_record(self)
    }
}

/// Skips whole 8-byte words of an unquoted field that hold no delimiter, `\n` or `\r`; returns
/// the position of the first such byte or of the word where the byte loop must take over.
#[inline]
fn scan_unquoted(buf: &[u8], mut j: usize, delimiter: u8) -> usize {
    while let Some(word) = buf.get(j..j + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let m = eq_mask(x, delimiter) | eq_mask(x, b'\n') | eq_mask(x, b'\r');
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    j
}

#[inline]
fn count_lf(s: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', s).count() as u64
}

/// Rewrites a raw field (`"a""b"c`) as its content (`a"bc`) at the start of the slice; returns
/// the content's length.
fn unescape_in_place(raw: &mut [u8], quote: u8) -> usize {
    let mut r = 1; // the opening quote
    let mut w = 0;
    let mut quoted = true;
    while r < raw.len() {
        let b = raw[r];
        if quoted && b == quote {
            if r + 1 < raw.len() && raw[r + 1] == quote {
                raw[w] = quote;
                w += 1;
                r += 2;
                continue;
            }
            quoted = false;
            r += 1;
            continue;
        }
        raw[w] = b;
        w += 1;
        r += 1;
    }
    w
}

/// Parses every record of `data`; the number of fields seen (for the criterion benches).
#[doc(hidden)]
pub fn bench_parse(data: &[u8]) -> usize {
    let mut r = CsvReader::new(data, b',', b'"', 1 << 20, None);
    let mut n = 0;
    while let Ok(Some(Next::Record(rec))) = r.next_record() {
        n += rec.field_count;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::refill::tests::Trickle;

    #[derive(Debug, PartialEq)]
    enum Item {
        Rec(u64, Vec<Vec<u8>>),
        Big(u64, u64),
    }

    fn read_all(data: &[u8], max: usize, chunk: usize) -> Result<Vec<Item>, ProcessError> {
        let mut r = CsvReader::new(Trickle { data, chunk }, b',', b'"', max, None);
        let mut out = Vec::new();
        while let Some(n) = r.next_record()? {
            out.push(match n {
                Next::Record(rec) => {
                    Item::Rec(rec.line, (0..rec.fields.len()).map(|i| rec.field(i).to_vec()).collect())
                }
                Next::Oversized { line, bytes } => Item::Big(line, bytes),
            });
        }
        assert_eq!(r.bytes_read(), data.len() as u64);
        Ok(out)
    }

    fn rec(line: u64, fields: &[&str]) -> Item {
        Item::Rec(line, fields.iter().map(|f| f.as_bytes().to_vec()).collect())
    }

    #[test]
    fn quotes_newlines_terminators_and_lines() {
        let data =
            b"\xEF\xBB\xBFa,b,c\r\n1,\"x, \"\"y\"\"\",3\r\n\r\n2,\"multi\nline\",z\n3,,\n\"q\"tail,e\rlast,1";
        for chunk in [1, 2, 3, 7, 1000] {
            let got = read_all(data, 1 << 20, chunk).unwrap();
            assert_eq!(
                got,
                vec![
                    rec(1, &["a", "b", "c"]),
                    rec(2, &["1", "x, \"y\"", "3"]),
                    rec(4, &["2", "multi\nline", "z"]),
                    rec(6, &["3", "", ""]),
                    rec(7, &["qtail", "e"]),
                    rec(7, &["last", "1"]),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn unterminated_quote_names_the_opening_line() {
        for chunk in [1, 5, 1000] {
            match read_all(b"a,b\n1,2\n3,\"open\nstill open\n", 1 << 20, chunk) {
                Err(ProcessError::UnterminatedQuote { line }) => assert_eq!(line, 3),
                other => panic!("{other:?}"),
            }
            match read_all(b"a,b\n1,2\n3,\"", 1 << 20, chunk) {
                Err(ProcessError::UnterminatedQuote { line }) => assert_eq!(line, 3),
                other => panic!("{other:?}"),
            }
        }
        // A closing quote as the last byte is fine.
        assert_eq!(read_all(b"a,\"b\"", 1 << 20, 1).unwrap(), vec![rec(1, &["a", "b"])]);
    }

    #[test]
    fn oversized_records_are_skipped_with_their_size() {
        let mut data = b"h1,h2\n1,2\n".to_vec();
        let big = vec![b'x'; 1_000_000];
        data.extend_from_slice(b"3,\"");
        data.extend_from_slice(&big);
        data.extend_from_slice(b"\n\"\"y\",9\n4,5\n");
        data.extend_from_slice(&big);
        data.extend_from_slice(b",6\r\n7,8");
        for chunk in [4096, 1 << 20] {
            let got = read_all(&data, 100_000, chunk).unwrap();
            assert_eq!(
                got,
                vec![
                    rec(1, &["h1", "h2"]),
                    rec(2, &["1", "2"]),
                    Item::Big(3, 1_000_000 + 10),
                    rec(5, &["4", "5"]),
                    Item::Big(6, 1_000_002),
                    rec(7, &["7", "8"]),
                ]
            );
        }
        // Under the limit, a long record grows the buffer and is read whole.
        let got = read_all(&data, 2_000_000, 65536).unwrap();
        assert_eq!(got.len(), 6);
        match &got[2] {
            Item::Rec(3, f) => assert_eq!(f[1].len(), 1_000_000 + 3),
            other => panic!("{other:?}"),
        }
        // An unterminated quote inside an oversized record is still found.
        let mut open = b"a\n\"".to_vec();
        open.extend_from_slice(&big);
        assert!(matches!(read_all(&open, 1000, 4096), Err(ProcessError::UnterminatedQuote { line: 2 })));
    }

    #[test]
    fn utf8_errors_carry_file_offsets() {
        let data = b"a,b\nok,\"x\xFFy\"\n\xC3\xA9,\xE9t\xE9\n";
        let mut r = CsvReader::new(&data[..], b',', b'"', 1 << 20, None);
        let Some(Next::Record(h)) = r.next_record().unwrap() else { panic!() };
        assert!(h.utf8_errors.is_empty());
        let Some(Next::Record(x)) = r.next_record().unwrap() else { panic!() };
        assert_eq!(x.utf8_errors, &[(1, 9)]);
        let Some(Next::Record(y)) = r.next_record().unwrap() else { panic!() };
        assert_eq!(y.utf8_errors, &[(1, 16)]);
        assert_eq!(data[16], 0xE9);
    }

    #[test]
    fn utf8_is_checked_across_buffer_boundaries() {
        // ~1.5 MB of multi-byte text, some rows with a bad byte, row lengths varying so that
        // characters are cut by buffer ends.
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for i in 0..20_000usize {
            let start = data.len();
            let thai = "ก".repeat(1 + i % 13);
            data.extend_from_slice(thai.as_bytes());
            data.push(b',');
            if i % 7 == 3 {
                data.extend_from_slice(b"xx\xFFyy");
                expected.push((i, vec![(1usize, (start + thai.len() + 3) as u64)]));
            } else {
                data.extend_from_slice("é".repeat(i % 5).as_bytes());
                expected.push((i, vec![]));
            }
            data.push(b'\n');
        }
        // A truncated character at the very end.
        data.extend_from_slice(b"last,\xE0\xB8");
        expected.push((20_000, vec![(1, (data.len() - 2) as u64)]));
        for chunk in [1 << 20, 4093] {
            let mut r = CsvReader::new(Trickle { data: &data, chunk }, b',', b'"', 1 << 20, None);
            let mut n = 0;
            while let Some(Next::Record(rec)) = r.next_record().unwrap() {
                assert_eq!(rec.utf8_errors, &expected[n].1[..], "row {n}");
                n += 1;
            }
            assert_eq!(n, expected.len());
        }
    }

    #[test]
    fn fields_past_the_cap_are_counted_not_stored() {
        let data = vec![b','; 3 * MAX_FIELDS];
        let mut r = CsvReader::new(&data[..], b',', b'"', 1 << 20, None);
        let Some(Next::Record(rec)) = r.next_record().unwrap() else { panic!() };
        assert_eq!(rec.field_count, 3 * MAX_FIELDS + 1);
        assert_eq!(rec.fields.len(), MAX_FIELDS);
    }

    #[test]
    fn empty_and_blank_inputs() {
        assert!(read_all(b"", 100, 1).unwrap().is_empty());
        assert!(read_all(b"\n\r\n\n", 100, 1).unwrap().is_empty());
        assert_eq!(read_all(b"\xEF\xBB\xBF", 100, 1).unwrap(), vec![]);
        assert_eq!(read_all(b"a,", 100, 1).unwrap(), vec![rec(1, &["a", ""])]);
    }

    /// Differential check against the `csv` crate on generated inputs.
    #[test]
    fn agrees_with_the_csv_crate() {
        let mut seed = 0x9E3779B97F4A7C15u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let alphabet: &[u8] = b"ab,\"\n\r x\xC3\xA9";
        for case in 0..3000 {
            let len = rnd(40) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| alphabet[rnd(alphabet.len() as u64) as usize]).collect();
            if case % 3 == 0 {
                data.push(b'\n');
            }
            let mut ours = Vec::new();
            let mut r = CsvReader::new(
                Trickle { data: &data, chunk: 1 + rnd(5) as usize },
                b',',
                b'"',
                1 << 20,
                None,
            );
            let unterminated = loop {
                match r.next_record() {
                    Ok(Some(Next::Record(rec))) => {
                        ours.push((0..rec.fields.len()).map(|i| rec.field(i).to_vec()).collect::<Vec<_>>())
                    }
                    Ok(Some(Next::Oversized { .. })) => unreachable!(),
                    Ok(None) => break false,
                    Err(ProcessError::UnterminatedQuote { .. }) => break true,
                    Err(e) => panic!("{e}"),
                }
            };
            let mut theirs = Vec::new();
            let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&data[..]);
            let mut rec = csv::ByteRecord::new();
            while r.read_byte_record(&mut rec).unwrap() {
                theirs.push(rec.iter().map(|f| f.to_vec()).collect::<Vec<_>>());
            }
            if unterminated {
                // csv accepts a quote still open at the end as a last record; we refuse it.
                theirs.pop();
            }
            assert_eq!(ours, theirs, "input {:?}", String::from_utf8_lossy(&data));
        }
    }
}
