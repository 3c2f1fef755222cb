//! Reading a sample file as weir's pipeline would: decompressed (gzip or zstd, by name or magic
//! bytes, as weir-process does), then cut into records — CSV rows with fixed, bounded buffers,
//! or JSON elements (an array's items, or objects one after another) flattened into
//! `(dotted path, raw text)` fields. Nothing holds more than one record, and a record larger
//! than [`MAX_RECORD_BYTES`] (weir's own `format.max_record_bytes` default) is counted, not kept.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// weir rejects a record larger than this as an invalid row; inference skips it the same way.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Fields per CSV record, and keys per JSON element, looked at.
pub const MAX_FIELDS: usize = 4096;
/// Nesting a JSON element may have (serde_json's and weir's limit).
const MAX_DEPTH: usize = 127;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Which compression a file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The file's bytes, decompressed, as a buffered stream.
pub fn open(path: &Path) -> io::Result<(Box<dyn BufRead>, Compression)> {
    let mut file = BufReader::with_capacity(64 << 10, File::open(path)?);
    let head = file.fill_buf()?;
    let lower = path.to_string_lossy().to_ascii_lowercase();
    let kind = if lower.ends_with(".gz") || lower.ends_with(".gzip") || head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if lower.ends_with(".zst") || lower.ends_with(".zstd") || head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let reader: Box<dyn BufRead> = match kind {
        Compression::None => Box::new(file),
        Compression::Gzip => {
            Box::new(BufReader::with_capacity(64 << 10, flate2::bufread::MultiGzDecoder::new(file)))
        }
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(file)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            Box::new(BufReader::with_capacity(64 << 10, decoder))
        }
    };
    Ok((reader, kind))
}

/// What a record read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A record; its fields are in the reader.
    Record,
    /// A record weir would count as an invalid row whatever the schema, skipped: larger than
    /// [`MAX_RECORD_BYTES`], more than [`MAX_FIELDS`] CSV fields, a JSON element not an object.
    Skipped,
    End,
}

/// CSV records from a stream, with buffers that grow to [`MAX_RECORD_BYTES`] at most.
pub struct CsvRecords<R> {
    input: R,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
    bytes: u64,
}

impl<R: BufRead> CsvRecords<R> {
    pub fn new(input: R, delimiter: u8, quote: u8) -> Self {
        let core = csv_core::ReaderBuilder::new().delimiter(delimiter).quote(quote).build();
        CsvRecords { input, core, out: vec![0; 4096], ends: vec![0; 64], fields: 0, bytes: 0 }
    }

    /// Decompressed bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Fields of the record just read.
    pub fn field_count(&self) -> usize {
        self.fields
    }

    pub fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    pub fn next_record(&mut self) -> io::Result<Next> {
        let (mut outlen, mut endlen) = (0usize, 0usize);
        let mut oversized = false;
        loop {
            let input = self.input.fill_buf()?;
            let (res, nin, nout, nend) =
                self.core.read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            self.input.consume(nin);
            self.bytes += nin as u64;
            outlen += nout;
            endlen += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    if self.out.len() * 2 <= MAX_RECORD_BYTES && !oversized {
                        self.out.resize(self.out.len() * 2, 0);
                    } else {
                        // Keep scanning to the record's end, keeping nothing.
                        oversized = true;
                        outlen = 0;
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() * 2 <= MAX_FIELDS && !oversized {
                        self.ends.resize(self.ends.len() * 2, 0);
                    } else {
                        oversized = true;
                        endlen = 0;
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    if oversized {
                        self.fields = 0;
                        return Ok(Next::Skipped);
                    }
                    self.fields = endlen;
                    return Ok(Next::Record);
                }
                csv_core::ReadRecordResult::End => return Ok(Next::End),
            }
        }
    }
}

/// A JSON element's field: its value's raw text, or what it was if not a plain value.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    Null,
    /// A string's unescaped text.
    Text(String),
    /// A number or `true`/`false`, as written.
    Literal(String),
    /// An array or an object where a value was expected (weir keeps its compact JSON text).
    Nested(String),
}

/// JSON elements from a stream: the items of a top-level array, or values one after another.
pub struct JsonElements<R> {
    input: R,
    state: State,
    element: Vec<u8>,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Array,
    Stream,
    Done,
}

impl<R: BufRead> JsonElements<R> {
    pub fn new(input: R) -> Self {
        JsonElements { input, state: State::Start, element: Vec::new(), bytes: 0 }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        self.input.consume(1);
        self.bytes += 1;
    }

    /// Skips whitespace (and a UTF-8 byte order mark at the start).
    fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.bump(),
                Some(0xEF) if self.bytes == 0 => {
                    let buf = self.input.fill_buf()?;
                    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                        self.input.consume(3);
                        self.bytes += 3;
                    } else {
                        return Ok(Some(0xEF));
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// The next element's fields (flattened), or `None` at the end. `Err(InvalidData)` for
    /// broken framing.
    pub fn next_element(&mut self, fields: &mut Vec<(String, JsonValue)>) -> io::Result<Next> {
        fields.clear();
        loop {
            let c = self.skip_ws()?;
            match (self.state, c) {
                (_, None) => {
                    self.state = State::Done;
                    return Ok(Next::End);
                }
                (State::Done, Some(_)) => return Err(bad("text after the end of the top-level array")),
                (State::Start, Some(b'[')) => {
                    self.bump();
                    self.state = State::Array;
                }
                (State::Start, Some(_)) => self.state = State::Stream,
                (State::Array, Some(b',')) => self.bump(),
                (State::Array, Some(b']')) => {
                    self.bump();
                    self.state = State::Done;
                }
                (State::Array | State::Stream, Some(_)) => break,
            }
        }
        let oversized = self.frame()?;
        if oversized {
            return Ok(Next::Skipped);
        }
        let mut parser = Flattener { s: &self.element, i: 0 };
        parser.ws();
        if parser.s.get(parser.i) != Some(&b'{') {
            return Ok(Next::Skipped);
        }
        parser.object("", 0, fields)?;
        Ok(Next::Record)
    }

    /// Reads one element's bytes into `self.element` (scanning strings and nesting); true when
    /// it was larger than [`MAX_RECORD_BYTES`] and was only skipped.
    fn frame(&mut self) -> io::Result<bool> {
        self.element.clear();
        let (mut depth, mut in_string, mut escaped, mut oversized) = (0usize, false, false, false);
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                if depth == 0 && !in_string && !self.element.is_empty() {
                    return Ok(oversized);
                }
                return Err(bad("the input ends inside a JSON value"));
            }
            let mut taken = 0;
            let mut done = false;
            for &b in buf {
                if in_string {
                    taken += 1;
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            taken += 1;
                            done = true;
                            break;
                        }
                    }
                    b',' | b']' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => {
                        // The end of a top-level scalar.
                        done = true;
                        break;
                    }
                    _ => {}
                }
                taken += 1;
            }
            if !oversized {
                if self.element.len() + taken > MAX_RECORD_BYTES {
                    oversized = true;
                    self.element.clear();
                } else {
                    self.element.extend_from_slice(&buf[..taken]);
                }
            }
            self.input.consume(taken);
            self.bytes += taken as u64;
            if done {
                return Ok(oversized);
            }
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A recursive descent over one framed element, depth-limited.
struct Flattener<'a> {
    s: &'a [u8],
    i: usize,
}

impl Flattener<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) -> io::Result<()> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(bad(&format!("expected `{}` in a JSON element", b as char)))
        }
    }

    /// An object's keys as fields under `prefix` (`user.id`).
    fn object(&mut self, prefix: &str, depth: usize, out: &mut Vec<(String, JsonValue)>) -> io::Result<()> {
        if depth >= MAX_DEPTH {
            return Err(bad("a JSON element nested too deeply"));
        }
        self.expect(b'{')?;
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.expect(b':')?;
            self.ws();
            let path = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
            if self.s.get(self.i) == Some(&b'{') && depth + 1 < 4 {
                // Nested objects become dotted paths (a few levels; deeper ones stay text).
                self.object(&path, depth + 1, out)?;
            } else {
                let value = self.value(depth + 1)?;
                if out.len() < MAX_FIELDS {
                    out.push((path, value));
                }
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(bad("expected `,` or `}` in a JSON object")),
            }
        }
    }

    fn value(&mut self, depth: usize) -> io::Result<JsonValue> {
        self.ws();
        let start = self.i;
        match self.s.get(self.i) {
            Some(b'"') => Ok(JsonValue::Text(self.string()?)),
            Some(b'{' | b'[') => {
                self.skip_nested(depth)?;
                let raw = &self.s[start..self.i];
                // weir writes such a value as its compact JSON text.
                let compact = serde_json::from_slice::<serde_json::Value>(raw)
                    .map(|v| v.to_string())
                    .map_err(|e| bad(&e.to_string()))?;
                Ok(JsonValue::Nested(compact))
            }
            Some(_) => {
                while matches!(self.s.get(self.i), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                {
                    self.i += 1;
                }
                let raw = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| bad("not UTF-8"))?;
                match raw {
                    "null" => Ok(JsonValue::Null),
                    "true" | "false" => Ok(JsonValue::Literal(raw.to_string())),
                    _ if serde_json::from_str::<serde_json::Number>(raw).is_ok() => {
                        Ok(JsonValue::Literal(raw.to_string()))
                    }
                    _ => Err(bad(&format!("{raw:?} is not a JSON value"))),
                }
            }
            None => Err(bad("a JSON element ends early")),
        }
    }

    fn skip_nested(&mut self, depth: usize) -> io::Result<()> {
        let (mut level, mut in_string, mut escaped) = (0usize, false, false);
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    level += 1;
                    if depth + level > MAX_DEPTH {
                        return Err(bad("a JSON element nested too deeply"));
                    }
                }
                b'}' | b']' => {
                    level -= 1;
                    if level == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err(bad("a JSON element ends early"))
    }

    /// A JSON string at the cursor, unescaped.
    fn string(&mut self) -> io::Result<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(bad("expected a string in a JSON element"));
        }
        let start = self.i;
        self.i += 1;
        let mut escaped_any = false;
        loop {
            match self.s.get(self.i) {
                None => return Err(bad("an unterminated JSON string")),
                Some(b'\\') => {
                    escaped_any = true;
                    self.i += 2;
                }
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(_) => self.i += 1,
            }
        }
        let raw = &self.s[start..self.i.min(self.s.len())];
        if escaped_any {
            serde_json::from_slice::<String>(raw).map_err(|e| bad(&e.to_string()))
        } else {
            String::from_utf8(raw[1..raw.len() - 1].to_vec())
                .map_err(|_| bad("a JSON string that is not UTF-8"))
        }
    }
}

/// Reads up to `n` bytes from the start of a stream, for sniffing, without consuming them from
/// a reader opened again later.
pub fn head(path: &Path, n: usize) -> io::Result<(Vec<u8>, Compression)> {
    let (reader, kind) = open(path)?;
    let mut buf = Vec::with_capacity(n.min(1 << 20));
    reader.take(n as u64).read_to_end(&mut buf)?;
    Ok((buf, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(data: &[u8], cap: usize) -> Vec<Vec<String>> {
        let reader = BufReader::with_capacity(cap, data);
        let mut r = CsvRecords::new(reader, b',', b'"');
        let mut rows = Vec::new();
        while r.next_record().unwrap() == Next::Record {
            rows.push(
                (0..r.field_count()).map(|i| String::from_utf8_lossy(r.field(i)).into_owned()).collect(),
            );
        }
        rows
    }

    #[test]
    fn csv_records_survive_any_buffer_size() {
        let data = b"a,b,c\n1,\"x,\"\"y\"\"\",3\r\n4,5,6\n";
        let want = vec![vec!["a", "b", "c"], vec!["1", "x,\"y\"", "3"], vec!["4", "5", "6"]];
        for cap in [1, 2, 3, 7, 64] {
            assert_eq!(csv(data, cap), want, "capacity {cap}");
        }
    }

    #[test]
    fn json_arrays_and_streams_flatten_to_paths() {
        let mut fields = Vec::new();
        for data in [
            &br#"[{"a": 1, "u": {"id": "x\"y"}, "t": [1, 2]}, {"a": null}]"#[..],
            b"{\"a\": 1, \"u\": {\"id\": \"x\\\"y\"}, \"t\": [1,2]}\n{\"a\": null}\n",
        ] {
            for cap in [1, 5, 4096] {
                let mut r = JsonElements::new(BufReader::with_capacity(cap, data));
                assert_eq!(r.next_element(&mut fields).unwrap(), Next::Record);
                assert_eq!(
                    fields,
                    vec![
                        ("a".to_string(), JsonValue::Literal("1".into())),
                        ("u.id".to_string(), JsonValue::Text("x\"y".into())),
                        ("t".to_string(), JsonValue::Nested("[1,2]".into())),
                    ]
                );
                assert_eq!(r.next_element(&mut fields).unwrap(), Next::Record);
                assert_eq!(fields, vec![("a".to_string(), JsonValue::Null)]);
                assert_eq!(r.next_element(&mut fields).unwrap(), Next::End);
            }
        }
        let mut r = JsonElements::new(&b"[{\"a\": 1}] x"[..]);
        assert_eq!(r.next_element(&mut fields).unwrap(), Next::Record);
        assert!(r.next_element(&mut fields).is_err());
    }
}
