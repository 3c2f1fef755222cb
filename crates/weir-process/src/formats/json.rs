//! JSON input: one object, an array of objects, or objects one after another (NDJSON), read as
//! a stream with bounded memory and flattened onto the schema's columns.
//!
//! Two layers. The *framer* finds where each top-level element (an array item, or a value of
//! the stream) starts and ends with a resumable byte scanner that tracks strings and nesting
//! with counters, never recursion, so any depth costs nothing; it keeps at most one element in
//! its buffer (the [`RefillBuffer`] the CSV reader uses too, growing up to
//! `format.max_record_bytes`) and streams through a larger one, reporting it as oversized with
//! its size, exactly as the CSV reader does with a long record.
//! Broken framing (text after the array, a missing comma, an unterminated string at the end) is
//! a file error with its byte offset.
//!
//! The *flattener* parses one element (a recursive descent limited to [`MAX_DEPTH`] levels, so
//! a deeply nested element is an invalid row, not a stack overflow) straight into the row loop's
//! [`Record`]: one field per schema column, found by its dotted path (`user.id` is `id` inside
//! `user`; keys are normalized as CSV headers are). Strings are unescaped, numbers keep the text
//! they were written with (a 30-digit integer is reported as written, not as a rounded float),
//! `null` and absent keys are empty fields, and an object or array where a column expects a
//! value becomes its compact JSON text. Keys the schema does not name go to [`Record::extra`] as
//! compact `,"key":value` pairs (or are dropped with `unknown_columns = "drop"`). An element that
//! is not valid JSON, or not an object, is an invalid row whose reason carries the byte offset.

use std::io::Read;

type FxHashMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;
use weir_core::config::normalize_field_name;

use super::refill::RefillBuffer;
use super::{Field, JsonParts, Next, Record, Source};
use crate::error::ProcessError;
use crate::json_text::write_escaped;
use crate::plan::Plan;

/// Arrays and objects an element may nest, its own object being the first: serde_json's default
/// limit (it refuses the 128th).
pub(crate) const MAX_DEPTH: usize = 127;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Before the first non-whitespace byte.
    Start,
    /// Inside a top-level array: elements separated by commas.
    Array { first: bool },
    /// Values one after another (a single object, NDJSON).
    Stream,
    /// After the top-level array's `]`.
    Done,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Column(usize),
    /// A proper prefix of a column path: an object to descend into.
    Prefix,
}

/// Where the element being framed has got to, relative to its first byte.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    off: usize,
    depth: u64,
    in_str: bool,
    esc: bool,
    lines: u64,
}

pub(crate) struct JsonReader<'p, R> {
    input: RefillBuffer<'p, R>,
    /// Line number at `input.pos`.
    line: u64,
    max_record: usize,
    mode: Mode,
    targets: FxHashMap<Box<[u8]>, Target>,
    keep_unknown: bool,
    columns: usize,
    out: Vec<u8>,
    fields: Vec<Field>,
    parts: JsonParts,
    utf8_errors: Vec<(usize, u64)>,
}

impl<'p, R: Read> JsonReader<'p, R> {
    #[cfg(test)]
    pub fn new(inner: R, plan: &Plan, progress: Option<&'p dyn Fn(u64)>) -> Self {
        Self::with_buffer(inner, plan, progress, super::refill::INITIAL_BUFFER)
    }

    /// A reader of the plan's columns, starting with a buffer of `initial` bytes (it grows as
    /// records need; see [`super::refill::initial_buffer`] for inputs known to be small).
    pub fn with_buffer(inner: R, plan: &Plan, progress: Option<&'p dyn Fn(u64)>, initial: usize) -> Self {
        let mut targets = FxHashMap::default();
        for c in &plan.columns {
            let mut dot = 0;
            while let Some(p) = c.name[dot..].find('.') {
                targets.entry(c.name.as_bytes()[..dot + p].into()).or_insert(Target::Prefix);
                dot += p + 1;
            }
        }
        for (i, c) in plan.columns.iter().enumerate() {
            targets.insert(c.name.as_bytes().into(), Target::Column(i));
        }
        let max_record = plan.max_record_bytes.max(1);
        let n = plan.columns.len();
        JsonReader {
            input: RefillBuffer::new(inner, initial, max_record, progress),
            line: 1,
            max_record,
            mode: Mode::Start,
            targets,
            keep_unknown: plan.keep_unknown,
            columns: n,
            out: Vec::with_capacity(4096),
            fields: vec![Field::default(); n],
            parts: JsonParts { extra: Vec::new(), malformed: None, absent: vec![true; n] },
            utf8_errors: Vec::new(),
        }
    }

    /// Whether the input starts like JSON (`{` or `[` after whitespace and a BOM); reads at most
    /// one buffer. The `validate-schema` step's check for JSON files.
    pub fn check_start(&mut self) -> Result<(), ProcessError> {
        match self.skip_ws()? {
            None => Err(ProcessError::Empty),
            Some(b'{' | b'[') => Ok(()),
            Some(b) => Err(ProcessError::Json {
                offset: self.offset(),
                reason: format!("expected `{{` or `[` to start JSON, found {}", describe(b)),
            }),
        }
    }

    fn offset(&self) -> u64 {
        self.input.offset + self.input.pos as u64
    }

    /// Skips whitespace (and a BOM at the very start); the next byte, `None` at the end.
    fn skip_ws(&mut self) -> Result<Option<u8>, ProcessError> {
        if !self.input.started() {
            self.input.start()?;
        }
        loop {
            while self.input.pos < self.input.end {
                match self.input.buf[self.input.pos] {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' => {}
                    b => return Ok(Some(b)),
                }
                self.input.pos += 1;
            }
            if self.input.eof {
                return Ok(None);
            }
            self.input.make_room()?;
        }
    }

    fn framing_error(&self, reason: String) -> ProcessError {
        ProcessError::Json { offset: self.offset(), reason }
    }

    /// Advances the scan over `buf[pos..end]`; the element's length once it is complete.
    fn scan(&self, s: &mut Scan) -> Option<usize> {
        let el = &self.input.buf[self.input.pos..self.input.end];
        let first = el[0];
        if s.off == 0 {
            s.off = 1;
            match first {
                b'{' | b'[' => s.depth = 1,
                b'"' => s.in_str = true,
                _ => {}
            }
        }
        if !matches!(first, b'{' | b'[' | b'"') {
            // A scalar ends at whitespace or a structural character.
            while s.off < el.len() {
                if matches!(el[s.off], b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}' | b'[' | b'{' | b'"')
                {
                    return Some(s.off);
                }
                s.off += 1;
            }
            return if self.input.eof { Some(s.off) } else { None };
        }
        while s.off < el.len() {
            if s.esc {
                s.esc = false;
                s.off += 1;
                continue;
            }
            if s.in_str {
                match memchr::memchr2(b'"', b'\\', &el[s.off..]) {
                    None => s.off = el.len(),
                    Some(k) => {
                        let at = s.off + k;
                        if el[at] == b'\\' {
                            // Skip the escaped byte (it may be past the end: resume there).
                            s.off = at + 2;
                            s.esc = s.off > el.len();
                            if s.esc {
                                s.off = el.len();
                            }
                        } else {
                            s.in_str = false;
                            s.off = at + 1;
                            if s.depth == 0 {
                                return Some(s.off);
                            }
                        }
                    }
                }
                continue;
            }
            match el[s.off] {
                b'"' => s.in_str = true,
                b'{' | b'[' => s.depth += 1,
                b'}' | b']' => {
                    s.depth -= 1;
                    if s.depth == 0 {
                        return Some(s.off + 1);
                    }
                }
                b'\n' => s.lines += 1,
                _ => {}
            }
            s.off += 1;
        }
        None
    }

    /// The next element's bytes are `buf[pos..pos + len]` (or it was too large and skipped).
    fn frame(&mut self) -> Result<Option<Framed>, ProcessError> {
        loop {
            match self.mode {
                Mode::Done => {
                    return match self.skip_ws()? {
                        None => Ok(None),
                        Some(b) => Err(self.framing_error(format!(
                            "unexpected {} after the end of the top-level array",
                            describe(b)
                        ))),
                    }
                }
                Mode::Start => match self.skip_ws()? {
                    None => return Ok(None),
                    Some(b'[') => {
                        self.input.pos += 1;
                        self.mode = Mode::Array { first: true };
                    }
                    Some(_) => self.mode = Mode::Stream,
                },
                Mode::Array { first } => {
                    match self.skip_ws()? {
                        None => return Err(self.framing_error("the top-level array is never closed".into())),
                        Some(b']') => {
                            self.input.pos += 1;
                            self.mode = Mode::Done;
                            continue;
                        }
                        Some(b',') if !first => {
                            self.input.pos += 1;
                            match self.skip_ws()? {
                                Some(b']') | None => {
                                    return Err(self.framing_error("expected an element after `,`".into()))
                                }
                                Some(_) => {}
                            }
                        }
                        Some(b) if !first => {
                            return Err(self.framing_error(format!(
                                "expected `,` or `]` between array elements, found {}",
                                describe(b)
                            )))
                        }
                        Some(_) => {}
                    }
                    self.mode = Mode::Array { first: false };
                    return self.element().map(Some);
                }
                Mode::Stream => {
                    return match self.skip_ws()? {
                        None => Ok(None),
                        Some(_) => self.element().map(Some),
                    }
                }
            }
        }
    }

    /// Frames the element starting at `pos` (not whitespace).
    fn element(&mut self) -> Result<Framed, ProcessError> {
        let mut s = Scan::default();
        let line = self.line;
        loop {
            if let Some(len) = self.scan(&mut s) {
                let start = self.input.pos;
                self.input.pos += len;
                self.line += s.lines;
                if len > self.max_record {
                    return Ok(Framed::Oversized { line, bytes: len as u64 });
                }
                return Ok(Framed::Element { start, len, line });
            }
            if self.input.eof {
                let what = if s.in_str { "a string" } else { "an element" };
                return Err(self.framing_error(format!("{what} starting here is never closed")));
            }
            if self.input.end - self.input.pos > self.max_record {
                return self.skip_element(s, line);
            }
            self.input.make_room()?;
        }
    }

    /// Streams through an element too large to keep.
    fn skip_element(&mut self, mut s: Scan, line: u64) -> Result<Framed, ProcessError> {
        let mut bytes = 0u64;
        loop {
            if let Some(len) = self.scan(&mut s) {
                self.input.pos += len;
                self.line += s.lines;
                return Ok(Framed::Oversized { line, bytes: bytes + len as u64 });
            }
            if self.input.eof {
                return Err(self.framing_error("an element starting before here is never closed".into()));
            }
            // Keep only the first byte (it tells the scanner what kind of element this is).
            let consumed = self.input.end - self.input.pos - 1;
            bytes += consumed as u64;
            s.off -= consumed;
            let first = self.input.buf[self.input.pos];
            self.input.pos = self.input.end - 1;
            self.input.buf[self.input.pos] = first;
            self.input.make_room()?;
        }
    }

    /// Flattens the element at `buf[start..start + len]` into the record fields.
    fn flatten(&mut self, start: usize, len: usize) {
        self.out.clear();
        self.parts.extra.clear();
        self.parts.malformed = None;
        self.utf8_errors.clear();
        self.parts.absent.iter_mut().for_each(|a| *a = true);
        self.fields.iter_mut().for_each(|f| *f = Field::default());
        let base = self.input.offset + start as u64;
        let el = &self.input.buf[start..start + len];
        if let Err(e) = std::str::from_utf8(el) {
            self.parts.malformed =
                Some(format!("not valid UTF-8 at byte offset {}", base + e.valid_up_to() as u64));
            return;
        }
        let mut f = Flatten {
            s: el,
            i: 0,
            base,
            targets: &self.targets,
            keep: self.keep_unknown,
            out: &mut self.out,
            fields: &mut self.fields,
            absent: &mut self.parts.absent,
            extra: &mut self.parts.extra,
            path: Vec::new(),
            key: Vec::new(),
        };
        let result = match el[0] {
            b'{' => f.object(1, true).and_then(|_| {
                f.ws();
                if f.i < f.s.len() {
                    Err(f.error("unexpected data after the object"))
                } else {
                    Ok(())
                }
            }),
            b => Err(format!("expected a JSON object, found {}", describe_value(b))),
        };
        if let Err(e) = result {
            self.parts.malformed = Some(e);
        }
    }
}

enum Framed {
    Element { start: usize, len: usize, line: u64 },
    Oversized { line: u64, bytes: u64 },
}

impl<R: Read> Source for JsonReader<'_, R> {
    fn next_record(&mut self) -> Result<Option<Next<'_>>, ProcessError> {
        match self.frame()? {
            None => Ok(None),
            Some(Framed::Oversized { line, bytes }) => Ok(Some(Next::Oversized { line, bytes })),
            Some(Framed::Element { start, len, line }) => {
                self.flatten(start, len);
                Ok(Some(Next::Record(Record {
                    line,
                    buf: &self.out,
                    fields: &self.fields,
                    field_count: self.columns,
                    utf8_errors: &self.utf8_errors,
                    json: Some(&self.parts),
                })))
            }
        }
    }
}

/// Whether `normalize_field_name` would change a key: ASCII capitals, whitespace as
/// `char::is_whitespace` sees it (which, unlike `u8::is_ascii_whitespace`, includes the vertical
/// tab), or anything beyond ASCII.
fn needs_normalizing(key: &[u8]) -> bool {
    key.iter().any(|&b| b.is_ascii_uppercase() || b.is_ascii_whitespace() || b == 0x0B || b >= 0x80)
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

fn describe_value(b: u8) -> &'static str {
    match b {
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        b'-' | b'0'..=b'9' => "a number",
        _ => "something that is not JSON",
    }
}

/// The recursive-descent parser of one element.
struct Flatten<'a> {
    s: &'a [u8],
    i: usize,
    base: u64,
    targets: &'a FxHashMap<Box<[u8]>, Target>,
    keep: bool,
    out: &'a mut Vec<u8>,
    fields: &'a mut [Field],
    absent: &'a mut [bool],
    extra: &'a mut Vec<u8>,
    /// Dotted path of the object being read.
    path: Vec<u8>,
    key: Vec<u8>,
}

impl Flatten<'_> {
    fn error(&self, what: &str) -> String {
        format!("invalid JSON: {what} at byte offset {}", self.base + self.i as u64)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            let found = self.s.get(self.i).map_or("the end".into(), |&c| describe(c));
            Err(self.error(&format!("expected `{}`, found {found}", b as char)))
        }
    }

    /// An object at `self.path` (the opening `{` is at `i`); columns inside it are filled.
    fn object(&mut self, depth: usize, top: bool) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested more than {MAX_DEPTH} levels")));
        }
        self.i += 1;
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let mut key = std::mem::take(&mut self.key);
            key.clear();
            self.string_into(&mut key)?;
            let normalized: Vec<u8> = if needs_normalizing(&key) {
                normalize_field_name(&String::from_utf8_lossy(&key)).into_bytes()
            } else {
                key.clone()
            };
            let path_len = self.path.len();
            if !top {
                self.path.push(b'.');
            }
            self.path.extend_from_slice(&normalized);
            self.expect(b':')?;
            self.ws();
            let target = self.targets.get(self.path.as_slice()).copied();
            match (target, self.s.get(self.i)) {
                (Some(Target::Column(c)), _) => self.column_value(c, depth)?,
                (Some(Target::Prefix), Some(b'{')) => self.object(depth + 1, false)?,
                _ if self.keep => {
                    self.extra.push(b',');
                    self.extra.push(b'"');
                    write_escaped(self.extra, if top { &key } else { &self.path });
                    self.extra.extend_from_slice(b"\":");
                    let mut extra = std::mem::take(self.extra);
                    let r = self.copy_value(depth + 1, &mut extra);
                    *self.extra = extra;
                    r?;
                }
                _ => {
                    let mut sink = Vec::new();
                    self.copy_value(depth + 1, &mut sink)?;
                }
            }
            self.path.truncate(path_len);
            self.key = key;
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}` after an object member")),
            }
        }
    }

    /// The value of column `c`.
    fn column_value(&mut self, c: usize, depth: usize) -> Result<(), String> {
        let start = self.out.len();
        match self.s.get(self.i) {
            Some(b'"') => {
                let mut out = std::mem::take(self.out);
                let r = self.string_into(&mut out);
                *self.out = out;
                r?;
            }
            Some(b'n') => {
                self.literal(b"null")?;
                self.absent[c] = true;
                self.fields[c] = Field::new(start, start);
                return Ok(());
            }
            Some(b't') => {
                self.literal(b"true")?;
                self.out.extend_from_slice(b"true");
            }
            Some(b'f') => {
                self.literal(b"false")?;
                self.out.extend_from_slice(b"false");
            }
            Some(b'-' | b'0'..=b'9') => {
                let from = self.i;
                self.number()?;
                self.out.extend_from_slice(&self.s[from..self.i]);
            }
            Some(b'{' | b'[') => {
                let mut out = std::mem::take(self.out);
                let r = self.copy_value(depth + 1, &mut out);
                *self.out = out;
                r?;
            }
            _ => return Err(self.error("expected a value")),
        }
        self.absent[c] = false;
        self.fields[c] = Field::new(start, self.out.len());
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value (true, false, null, a number, a string, an object or an array)"))
        }
    }

    /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), String> {
        let s = self.s;
        let mut i = self.i;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let from = *i;
            while s.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        let int_start = i;
        let n = digits(&mut i);
        if n == 0 || (n > 1 && s[int_start] == b'0') {
            self.i = int_start;
            return Err(self.error("invalid number"));
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.error("invalid number: no digits after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = s.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = s.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.error("invalid number: no digits in the exponent"));
            }
        }
        self.i = i;
        Ok(())
    }

    /// Unescapes the string at `i` (its opening quote) into `out`.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.i += 1;
        loop {
            let rest = &self.s[self.i..];
            let Some(k) = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20) else {
                self.i = self.s.len();
                return Err(self.error("unterminated string"));
            };
            out.extend_from_slice(&rest[..k]);
            self.i += k;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    let e = self.s.get(self.i + 1).copied();
                    self.i += 2;
                    let c = match e {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 8,
                        Some(b'f') => 12,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => {
                            let ch = self.unicode_escape()?;
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                            continue;
                        }
                        _ => {
                            self.i -= 2;
                            return Err(self.error("invalid escape in a string"));
                        }
                    };
                    out.push(c);
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
    }

    /// `XXXX` after `\u`, with a surrogate pair's second half.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let hex = |f: &mut Self| -> Result<u32, String> {
            let h = f.s.get(f.i..f.i + 4).and_then(|h| std::str::from_utf8(h).ok());
            match h.and_then(|h| u32::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    f.i += 4;
                    Ok(v)
                }
                None => Err(f.error("invalid \\u escape")),
            }
        };
        let hi = hex(self)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.s[self.i..].starts_with(b"\\u") {
                self.i += 2;
                let lo = hex(self)?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(c).ok_or_else(|| self.error("invalid \\u escape"));
                }
            }
            return Err(self.error("unpaired surrogate in a \\u escape"));
        }
        char::from_u32(hi).ok_or_else(|| self.error("unpaired surrogate in a \\u escape"))
    }

    /// Validates any value and appends it to `out` as compact JSON.
    fn copy_value(&mut self, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'"') => {
                let from = self.i;
                let mut scratch = Vec::new();
                self.string_into(&mut scratch)?;
                out.extend_from_slice(&self.s[from..self.i]);
            }
            Some(b'n') => {
                self.literal(b"null")?;
                out.extend_from_slice(b"null");
            }
            Some(b't') => {
                self.literal(b"true")?;
                out.extend_from_slice(b"true");
            }
            Some(b'f') => {
                self.literal(b"false")?;
                out.extend_from_slice(b"false");
            }
            Some(b'-' | b'0'..=b'9') => {
                let from = self.i;
                self.number()?;
                out.extend_from_slice(&self.s[from..self.i]);
            }
            Some(&open @ (b'{' | b'[')) => {
                if depth > MAX_DEPTH {
                    return Err(self.error(&format!("nested more than {MAX_DEPTH} levels")));
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                out.push(open);
                self.ws();
                if self.s.get(self.i) == Some(&close) {
                    self.i += 1;
                    out.push(close);
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return Err(self.error("expected a key in double quotes"));
                        }
                        self.copy_value(depth + 1, out)?;
                        self.expect(b':')?;
                        out.push(b':');
                    }
                    self.copy_value(depth + 1, out)?;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => {
                            self.i += 1;
                            out.push(b',');
                        }
                        Some(&c) if c == close => {
                            self.i += 1;
                            out.push(close);
                            return Ok(());
                        }
                        _ => {
                            return Err(self.error(&format!("expected `,` or `{}`", close as char)));
                        }
                    }
                }
            }
            _ => return Err(self.error("expected a value")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod differential;

#[cfg(test)]
mod tests {
    use weir_core::config::{ColumnConfig, ColumnType, FormatKind};

    use super::*;
    use crate::formats::refill::tests::Trickle;

    pub(super) fn plan(cols: &[&str], keep: bool, max: usize) -> Plan {
        let mut p = weir_core::Config::bundled().pipelines.remove(0);
        p.format.kind = FormatKind::Json;
        p.format.max_record_bytes = max;
        p.columns = cols.iter().map(|c| ColumnConfig::new(c, ColumnType::String)).collect();
        p.derived.clear();
        p.summary = Default::default();
        p.validation.unknown_columns = if keep {
            weir_core::config::UnknownColumns::Keep
        } else {
            weir_core::config::UnknownColumns::Drop
        };
        Plan::compile(&p).unwrap()
    }

    #[derive(Debug, PartialEq)]
    enum Item {
        Row(u64, Vec<Option<String>>, String),
        Bad(u64, String),
        Big(u64, u64),
    }

    fn read(data: &[u8], cols: &[&str], keep: bool, chunk: usize) -> Result<Vec<Item>, ProcessError> {
        let plan = plan(cols, keep, 1000);
        let mut r = JsonReader::new(Trickle { data, chunk }, &plan, None);
        let mut out = Vec::new();
        while let Some(n) = Source::next_record(&mut r)? {
            out.push(match n {
                Next::Oversized { line, bytes } => Item::Big(line, bytes),
                Next::Record(rec) => match rec.malformed() {
                    Some(m) => Item::Bad(rec.line, m.to_string()),
                    None => Item::Row(
                        rec.line,
                        (0..rec.field_count)
                            .map(|i| {
                                (!rec.absent(i)).then(|| String::from_utf8(rec.field(i).to_vec()).unwrap())
                            })
                            .collect(),
                        String::from_utf8(rec.extra().to_vec()).unwrap(),
                    ),
                },
            });
        }
        Ok(out)
    }

    fn row(line: u64, values: &[Option<&str>], extra: &str) -> Item {
        Item::Row(line, values.iter().map(|v| v.map(String::from)).collect(), extra.into())
    }

    #[test]
    fn arrays_single_objects_and_ndjson_with_nested_paths() {
        let cols = ["id", "user.id", "user.name"];
        let array = br#"[
  {"id": 1, "user": {"id": "u1", "name": "Ann \"A\" \u00e9\ud83d\ude00"}, "Type": "click"},
  {"id": 2.50e1, "user": null, "tags": ["a", {"b": [1, 2]}]}
]"#;
        let ndjson = b"{\"id\":1,\"user\":{\"id\":\"u1\",\"name\":\"Ann \\\"A\\\" \\u00e9\\ud83d\\ude00\"},\"Type\":\"click\"}\n{\"id\":2.50e1,\"user\":null,\"tags\":[\"a\",{\"b\":[1,2]}]}\n";
        for chunk in [1, 3, 4096] {
            let a = read(array, &cols, true, chunk).unwrap();
            assert_eq!(
                a,
                vec![
                    row(2, &[Some("1"), Some("u1"), Some("Ann \"A\" é😀")], r#","Type":"click""#),
                    row(3, &[Some("2.50e1"), None, None], r#","user":null,"tags":["a",{"b":[1,2]}]"#),
                ]
            );
            let n = read(ndjson, &cols, false, chunk).unwrap();
            assert_eq!(n[0], row(1, &[Some("1"), Some("u1"), Some("Ann \"A\" é😀")], ""));
            assert_eq!(n[1], row(2, &[Some("2.50e1"), None, None], ""));
        }
        let single = read(br#"  {"id": "x", "user": {"id": {"deep": [true]}}}  "#, &cols, true, 7).unwrap();
        assert_eq!(single, vec![row(1, &[Some("x"), Some(r#"{"deep":[true]}"#), None], "")]);
        assert!(read(b"[]", &cols, true, 1).unwrap().is_empty());
        assert!(read(b" \n ", &cols, true, 1).unwrap().is_empty());
    }

    #[test]
    fn bad_elements_are_invalid_rows_with_offsets() {
        let data = br#"[{"id": 1}, 42, {"id": 01}, {"id": NaN}, {"id" 1}, "s", {"id": "a\qb"}, {"id": 2}]"#;
        let got = read(data, &["id"], true, 5).unwrap();
        assert_eq!(got.len(), 8);
        assert_eq!(got[1], Item::Bad(1, "expected a JSON object, found a number".into()));
        assert_eq!(got[2], Item::Bad(1, "invalid JSON: invalid number at byte offset 23".into()));
        assert_eq!(got[3], Item::Bad(1, "invalid JSON: expected a value at byte offset 35".into()));
        assert_eq!(got[4], Item::Bad(1, "invalid JSON: expected `:`, found `1` at byte offset 47".into()));
        assert_eq!(got[5], Item::Bad(1, "expected a JSON object, found a string".into()));
        assert!(matches!(&got[6], Item::Bad(1, m) if m.contains("invalid escape")), "{:?}", got[6]);
        assert_eq!(got[7], row(1, &[Some("2")], ""));
    }

    #[test]
    fn framing_errors_are_file_errors_with_offsets() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"[{\"id\":1} {\"id\":2}]",
                "at byte offset 10: expected `,` or `]` between array elements, found `{`",
            ),
            (b"[{\"id\":1}] x", "at byte offset 11: unexpected `x` after the end of the top-level array"),
            (b"[{\"id\":1},]", "at byte offset 10: expected an element after `,`"),
            (b"[{\"id\":1}", "at byte offset 9: the top-level array is never closed"),
            (b"{\"id\":\"open", "at byte offset 0: a string starting here is never closed"),
            (b"{\"id\":{\"a\":1}", "at byte offset 0: an element starting here is never closed"),
        ];
        for (data, want) in cases {
            for chunk in [1, 4096] {
                let e = read(data, &["id"], true, chunk).unwrap_err();
                assert!(e.to_string().contains(want), "{e} / {want}");
                assert_eq!(e.class(), weir_core::ErrorClass::Permanent);
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_invalid_row_not_a_stack_overflow() {
        let depth = 100_000;
        let mut data = b"[{\"id\":1,\"x\":".to_vec();
        data.extend(std::iter::repeat_n(b'[', depth));
        data.extend(std::iter::repeat_n(b']', depth));
        data.extend_from_slice(b"},{\"id\":2}]");
        let plan = plan(&["id"], true, 1 << 20);
        let mut r = JsonReader::new(&data[..], &plan, None);
        let Some(Next::Record(rec)) = Source::next_record(&mut r).unwrap() else { panic!() };
        assert!(rec.malformed().unwrap().contains("nested more than 127 levels"), "{:?}", rec.malformed());
        let Some(Next::Record(rec)) = Source::next_record(&mut r).unwrap() else { panic!() };
        assert_eq!(rec.field(0), b"2");
    }

    #[test]
    fn oversized_elements_are_skipped_with_their_size() {
        let mut data = b"[{\"id\":1},{\"id\":\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend_from_slice(b"\\\"\"},\n{\"id\":3}]");
        for chunk in [1, 7, 100_000] {
            let got = read(&data, &["id"], true, chunk).unwrap();
            assert_eq!(got, vec![row(1, &[Some("1")], ""), Item::Big(1, 5011), row(2, &[Some("3")], "")]);
        }
    }

    #[test]
    fn bad_utf8_names_its_offset() {
        let got = read(b"{\"id\":\"a\xffb\"}", &["id"], true, 4096).unwrap();
        assert_eq!(got, vec![Item::Bad(1, "not valid UTF-8 at byte offset 8".into())]);
    }
}
