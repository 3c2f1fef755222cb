//! One large CSV file on N threads (`output.threads`), with the same outputs as one thread.
//!
//! The calling thread reads the (decompressed) input in blocks and cuts each at the last record
//! boundary; worker threads run the ordinary row loop ([`Pass`]) on whole pieces and hand back
//! their NDJSON, their error-report lines and their partial summary, which the calling thread
//! writes and merges strictly in file order. Memory is bounded: at most `2 × N + 1` pieces of
//! [`PIECE`] bytes are in flight, and their buffers (input and output) go round rather than
//! being allocated for every piece: a piece's input buffer comes back with its results and
//! takes the next piece, its output buffer goes back to the workers once written. Fresh
//! megabyte-sized buffers freed on another thread than the one that made them are what general
//! allocators hold on to longest.
//!
//! Finding a boundary without parsing every byte: outside quotes, a record ends at a newline.
//! The splitter counts quote characters (their parity says whether a newline is inside a quoted
//! field) and checks that every quote that would open a quoted field really is at the start of a
//! field; a quote inside an unquoted field (`5" screen`), where quote parity would lie, sends
//! that block through an exact byte-by-byte scan instead. Line numbers are the newlines before
//! a piece, counted as the sequential reader counts them.
//!
//! Used for NDJSON output of CSV input without `unique` columns or `summary.unique`/`range`
//! (whose state cannot be split); anything else runs on one thread.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::mpsc;

use weir_core::config::{FormatKind, OutputFormat};
use weir_core::Summary;

use crate::binding::{read_header, Binding};
use crate::error::ProcessError;
use crate::formats;
use crate::formats::csv::CsvReader;
use crate::header::HeaderCheck;
use crate::output::ndjson::NdjsonSink;
use crate::output::{Layout, OutBuf};
use crate::pass::{check_row_counts, Pass, PassParts};
use crate::plan::Plan;
use crate::summary::{Accumulator, RowCounts};

/// Bytes per piece of work: enough that handing a piece over costs nothing next to its rows
/// (a 256 KiB piece runs as fast), small enough that the pieces in flight stay a few MiB.
pub(crate) const PIECE: usize = 512 << 10;

/// Whether a pass can be split between threads.
pub(crate) fn applies(plan: &Plan) -> bool {
    plan.threads > 1
        && plan.input.kind == FormatKind::Csv
        && plan.output == OutputFormat::Ndjson
        && plan.outputs.len() == 1
        && !plan.columns.iter().any(|c| c.unique)
        && plan.unique_summary.is_empty()
        && plan.range_summary.is_empty()
}

struct Piece {
    index: u64,
    bytes: Vec<u8>,
    line: u64,
    offset: u64,
}

struct Done {
    index: u64,
    /// The piece's input buffer, for the next piece.
    input: Vec<u8>,
    out: Vec<u8>,
    err: Vec<u8>,
    acc: Accumulator,
    /// `reported` is the number of lines in `err`.
    counts: RowCounts,
}

/// The header, and where the rows after it start.
struct Start {
    check: HeaderCheck,
    /// The header's names as written.
    names: Vec<String>,
    /// Line and file offset of the first row.
    line: u64,
    offset: u64,
    /// What was read after the header: the start of the first piece.
    rest: Vec<u8>,
}

/// Reads the first record and parses it with the ordinary reader, as the header (or, without
/// one, as the first row, which then starts the first piece).
fn read_start(plan: &Plan, splitter: &mut Splitter, input: &mut dyn Read) -> Result<Start, ProcessError> {
    let (header_bytes, rest) = splitter.first_record(input)?;
    let mut reader =
        CsvReader::new(&header_bytes[..], plan.delimiter, plan.quote, plan.max_record_bytes, None);
    let (check, names) = read_header(plan, &mut reader)?;
    if !plan.has_header {
        let mut all = header_bytes;
        all.extend_from_slice(&rest);
        return Ok(Start { check, names, line: 1, offset: 0, rest: all });
    }
    let lines = memchr::memchr_iter(b'\n', &header_bytes).count() as u64;
    Ok(Start { check, names, line: 1 + lines, offset: header_bytes.len() as u64, rest })
}

pub(crate) fn process<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    mut results: W,
    mut errors: E,
    source_name: Option<&str>,
    progress: Option<&dyn Fn(u64)>,
) -> Result<Summary, ProcessError> {
    let mut input = formats::open(plan, input, source_name)?;
    let mut splitter = Splitter::new(plan);
    let Start { check, names, mut line, mut offset, rest: mut carry } =
        read_start(plan, &mut splitter, &mut input)?;
    if !check.is_valid() {
        return Err(ProcessError::HeaderMismatch(check));
    }
    let binding = Binding::new(plan, &check, names);
    let layout = binding.layout(plan);

    let threads = plan.threads;
    let (job_tx, job_rx) = mpsc::sync_channel::<Piece>(threads * 2);
    let job_rx = std::sync::Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Result<Done, ProcessError>>();
    // Written output buffers, back to the workers.
    let (spare_out_tx, spare_out_rx) = mpsc::channel::<Vec<u8>>();
    let spare_out_rx = std::sync::Mutex::new(spare_out_rx);
    // Input buffers of finished pieces, for the splitter (on this thread).
    let (spare_in_tx, spare_in_rx) = mpsc::channel::<Vec<u8>>();
    let mut acc = Accumulator::new(plan, &binding.file_column);
    let mut counts = RowCounts::default();
    // Bytes of descriptions written to the error report so far.
    let mut reported_bytes = 0u64;

    std::thread::scope(|scope| -> Result<(), ProcessError> {
        for _ in 0..threads {
            let (job_rx, done_tx, binding, layout) = (&job_rx, done_tx.clone(), &binding, &layout);
            let spare_out_rx = &spare_out_rx;
            scope.spawn(move || loop {
                let piece = match job_rx.lock().expect("job queue").recv() {
                    Ok(p) => p,
                    Err(_) => return,
                };
                let out = spare_out_rx.lock().expect("spare buffers").try_recv().unwrap_or_default();
                let result = run_piece(plan, binding, layout, piece, out);
                if done_tx.send(result).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let mut next_write = 0u64;
        let mut sent = 0u64;
        let mut read_bytes = offset;
        let mut write_done =
            |d: Done, acc: &mut Accumulator, results: &mut W, errors: &mut E| -> Result<(), ProcessError> {
                results.write_all(&d.out)?;
                let (mut out, mut input) = (d.out, d.input);
                out.clear();
                input.clear();
                let _ = spare_out_tx.send(out);
                let _ = spare_in_tx.send(input);
                // Keep only the first `max_errors` descriptions of the whole file, and no more
                // than `max_error_bytes` of them.
                let room = (plan.max_errors as u64).saturating_sub(counts.reported);
                let mut written = d.counts.reported;
                if room >= d.counts.reported && reported_bytes + d.err.len() as u64 <= plan.max_error_bytes {
                    errors.write_all(&d.err)?;
                    reported_bytes += d.err.len() as u64;
                } else {
                    let (mut cut, mut lines) = (0, 0);
                    for end in memchr::memchr_iter(b'\n', &d.err).map(|p| p + 1) {
                        if lines == room || reported_bytes + end as u64 > plan.max_error_bytes {
                            break;
                        }
                        (cut, lines) = (end, lines + 1);
                    }
                    errors.write_all(&d.err[..cut])?;
                    reported_bytes += cut as u64;
                    written = lines;
                }
                acc.merge(d.acc);
                counts.add(RowCounts { reported: written, ..d.counts });
                Ok(())
            };
        let mut drain = |block: bool,
                         pending: &mut BTreeMap<u64, Done>,
                         next_write: &mut u64,
                         acc: &mut Accumulator,
                         results: &mut W,
                         errors: &mut E|
         -> Result<(), ProcessError> {
            loop {
                let got = if block { done_rx.recv().ok() } else { done_rx.try_recv().ok() };
                let Some(d) = got else { return Ok(()) };
                let d = d?;
                pending.insert(d.index, d);
                while let Some(d) = pending.remove(next_write) {
                    *next_write += 1;
                    write_done(d, acc, results, errors)?;
                }
                if block {
                    return Ok(());
                }
            }
        };
        let result = (|| -> Result<(), ProcessError> {
            loop {
                let spare = spare_in_rx.try_recv().unwrap_or_default();
                let (piece, rest, eof) =
                    splitter.next_piece(&mut input, std::mem::take(&mut carry), spare)?;
                read_bytes += piece.len() as u64;
                if let Some(p) = progress {
                    p(read_bytes);
                }
                if !piece.is_empty() {
                    let lines = memchr::memchr_iter(b'\n', &piece).count() as u64;
                    let len = piece.len() as u64;
                    let job = Piece { index: sent, bytes: piece, line, offset };
                    sent += 1;
                    line += lines;
                    offset += len;
                    // Keep the number of finished-but-unwritten pieces bounded too.
                    while sent - next_write > (threads * 2) as u64 {
                        drain(true, &mut pending, &mut next_write, &mut acc, &mut results, &mut errors)?;
                    }
                    if job_tx.send(job).is_err() {
                        break;
                    }
                    drain(false, &mut pending, &mut next_write, &mut acc, &mut results, &mut errors)?;
                }
                carry = rest;
                if eof {
                    break;
                }
            }
            Ok(())
        })();
        drop(job_tx);
        result?;
        while next_write < sent {
            drain(true, &mut pending, &mut next_write, &mut acc, &mut results, &mut errors)?;
        }
        Ok(())
    })?;
    results.flush()?;
    errors.flush()?;
    check_row_counts(plan, counts)?;
    Ok(acc.finish(counts))
}

/// Runs the row loop over one piece, its NDJSON into `out` (a written buffer come back, or an
/// empty one).
fn run_piece(
    plan: &Plan,
    binding: &Binding,
    layout: &Layout,
    piece: Piece,
    mut out: Vec<u8>,
) -> Result<Done, ProcessError> {
    let mut reader =
        CsvReader::new(&piece.bytes[..], plan.delimiter, plan.quote, plan.max_record_bytes, None)
            .starting_at(piece.line, piece.offset);
    out.reserve(piece.bytes.len() * 3 / 2);
    let sink = NdjsonSink::new(out, layout);
    let mut pass = Pass::new(plan, binding.clone(), sink, OutBuf::new(Vec::new()));
    while let Some(next) = reader.next_record()? {
        pass.record(next)?;
    }
    let PassParts { sink, errors, acc, counts } = pass.into_parts();
    drop(reader);
    Ok(Done {
        index: piece.index,
        input: piece.bytes,
        out: sink.into_inner()?,
        err: errors.into_inner()?,
        acc,
        counts,
    })
}

/// Cuts the input into pieces that end at record boundaries.
struct Splitter {
    quote: u8,
    delimiter: u8,
    max_record: usize,
    eof: bool,
}

impl Splitter {
    fn new(plan: &Plan) -> Splitter {
        Splitter {
            quote: plan.quote,
            delimiter: plan.delimiter,
            max_record: plan.max_record_bytes,
            eof: false,
        }
    }

    fn fill(&mut self, input: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<()> {
        let start = buf.len();
        buf.resize(start + want, 0);
        let mut n = start;
        while n < buf.len() {
            match input.read(&mut buf[n..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(())
    }

    /// The first record's bytes (the header, terminator included) and what was read after it.
    fn first_record(&mut self, input: &mut dyn Read) -> Result<(Vec<u8>, Vec<u8>), ProcessError> {
        let mut buf = Vec::new();
        loop {
            self.fill(input, &mut buf, 64 << 10)?;
            if let Some(end) = exact_first_end(&buf, self.quote, self.delimiter) {
                let rest = buf.split_off(end);
                return Ok((buf, rest));
            }
            if self.eof || buf.len() > self.max_record.saturating_add(1 << 20) {
                return Ok((buf, Vec::new()));
            }
        }
    }

    /// The next piece (whole records), the bytes after it, and whether the input is done;
    /// `spare` (an empty buffer, or a fresh one) takes the bytes after it.
    fn next_piece(
        &mut self,
        input: &mut dyn Read,
        mut buf: Vec<u8>,
        mut spare: Vec<u8>,
    ) -> Result<(Vec<u8>, Vec<u8>, bool), ProcessError> {
        loop {
            if !self.eof && buf.len() < PIECE {
                let want = PIECE - buf.len();
                self.fill(input, &mut buf, want)?;
            }
            if self.eof {
                return Ok((buf, Vec::new(), true));
            }
            let cut = fast_last_end(&buf, self.quote, self.delimiter)
                .or_else(|| exact_last_end(&buf, self.quote, self.delimiter));
            match cut {
                Some(end) if end > 0 => {
                    spare.clear();
                    spare.extend_from_slice(&buf[end..]);
                    buf.truncate(end);
                    return Ok((buf, spare, false));
                }
                // One record longer than a piece: read on.
                _ => {
                    let more = buf.len();
                    self.fill(input, &mut buf, more.max(PIECE))?;
                    if self.eof {
                        return Ok((buf, Vec::new(), true));
                    }
                }
            }
        }
    }
}

/// The end (after its `\n`) of the last whole record in `buf`, which starts at a record
/// boundary, by quote parity; `None` when a quote could make parity wrong, or no newline is
/// outside quotes.
fn fast_last_end(buf: &[u8], quote: u8, delimiter: u8) -> Option<usize> {
    let mut quotes = Vec::new();
    let mut open = false;
    for q in memchr::memchr_iter(quote, buf) {
        if !open
            && q > 0
            && !matches!(buf[q - 1], b'\n' | b'\r')
            && buf[q - 1] != delimiter
            && buf[q - 1] != quote
        {
            // A quote inside an unquoted field is literal: parity would be wrong.
            return None;
        }
        open = !open;
        quotes.push(q);
    }
    let mut end = buf.len();
    while let Some(nl) = memchr::memrchr(b'\n', &buf[..end]) {
        let before = quotes.partition_point(|&q| q < nl);
        if before % 2 == 0 {
            return Some(nl + 1);
        }
        end = nl;
    }
    None
}

#[derive(PartialEq, Clone, Copy)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Where each record ends, by the exact state machine (as the reader parses).
fn exact_ends(buf: &[u8], quote: u8, delimiter: u8, mut f: impl FnMut(usize) -> bool) {
    let mut state = State::FieldStart;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        state = match state {
            State::Quoted => match memchr::memchr(quote, &buf[i..]) {
                Some(k) => {
                    i += k + 1;
                    state = State::QuoteInQuoted;
                    continue;
                }
                None => return,
            },
            State::FieldStart if b == quote => State::Quoted,
            State::QuoteInQuoted if b == quote => State::Quoted,
            _ if b == delimiter => State::FieldStart,
            _ if b == b'\n' || b == b'\r' => {
                // `\r\n` ends at its `\n`; a lone `\r` ends a record too, once the next byte
                // shows it is lone.
                let ends = b == b'\n' || buf.get(i + 1).is_some_and(|&n| n != b'\n');
                if ends && !f(i + 1) {
                    return;
                }
                State::FieldStart
            }
            _ => State::Unquoted,
        };
        i += 1;
    }
}

fn exact_first_end(buf: &[u8], quote: u8, delimiter: u8) -> Option<usize> {
    let mut first = None;
    exact_ends(buf, quote, delimiter, |end| {
        first = Some(end);
        false
    });
    first
}

fn exact_last_end(buf: &[u8], quote: u8, delimiter: u8) -> Option<usize> {
    let mut last = None;
    exact_ends(buf, quote, delimiter, |end| {
        last = Some(end);
        true
    });
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_by_parity_and_exactly() {
        let data = b"a,\"x\ny\",1\nb,\"q\"\"q\",2\nc,3";
        assert_eq!(fast_last_end(data, b'"', b','), Some(21));
        assert_eq!(exact_last_end(data, b'"', b','), Some(21));
        assert_eq!(exact_first_end(data, b'"', b','), Some(10));
        // A literal quote in an unquoted field: parity gives up, the exact scan does not.
        let inch = b"tv,55\" screen\nradio,x\n";
        assert_eq!(fast_last_end(inch, b'"', b','), None);
        assert_eq!(exact_last_end(inch, b'"', b','), Some(inch.len()));
        assert_eq!(exact_first_end(inch, b'"', b','), Some(14));
        // Inside an open quote there is no boundary.
        assert_eq!(fast_last_end(b"\"open\nstill", b'"', b','), None);
        assert_eq!(exact_last_end(b"\"open\nstill", b'"', b','), None);
    }
}
