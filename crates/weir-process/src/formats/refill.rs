//! The input buffer both readers parse from, as ripgrep's `LineBuffer` serves every searcher.
//!
//! A reader parses records straight out of `buf[pos..end]` (its fields are ranges into it, never
//! copies) and asks for more with [`RefillBuffer::make_room`] only when a record crosses `end`:
//! the unread bytes move to the front, the buffer grows if they already fill it (up to the record
//! limit and some slack, so that a record of `max_record_bytes` fits whole), and the rest is filled
//! by reading. A buffer grown for a long record shrinks back once it is past. Growth is the
//! reader's to bound: a reader that finds a record larger than the limit streams through it
//! instead of asking for room. A UTF-8 byte order mark at the very start of the input is skipped.

use std::io::{self, Read};

/// The usual buffer size: large enough that refills cost nothing next to parsing, small enough
/// to stay in the L2 cache of most machines.
pub(crate) const INITIAL_BUFFER: usize = 256 << 10;

/// The buffer a reader starts with for an input of `size_hint` bytes: the whole input and a
/// byte to see its end when it is small, else the usual size. A small file then costs a small
/// allocation, not a quarter megabyte that the allocator may have to zero and fault in.
pub(crate) fn initial_buffer(size_hint: Option<u64>) -> usize {
    const SMALLEST: u64 = 4 << 10;
    match size_hint {
        Some(n) => {
            usize::try_from(n.saturating_add(1).max(SMALLEST)).unwrap_or(usize::MAX).min(INITIAL_BUFFER)
        }
        None => INITIAL_BUFFER,
    }
}

pub(crate) struct RefillBuffer<'p, R> {
    inner: R,
    /// `buf[pos..end]` is read and not consumed yet; a reader may rewrite consumed bytes in place.
    pub buf: Vec<u8>,
    pub pos: usize,
    pub end: usize,
    /// The input has no more bytes after `buf[..end]`.
    pub eof: bool,
    /// File offset of `buf[0]`.
    pub offset: u64,
    max_len: usize,
    started: bool,
    /// Called with the number of bytes read so far after every read.
    progress: Option<&'p dyn Fn(u64)>,
}

impl<'p, R: Read> RefillBuffer<'p, R> {
    /// A buffer of `initial` bytes (see [`initial_buffer`]) that grows for records of up to
    /// `max_record` bytes.
    pub fn new(inner: R, initial: usize, max_record: usize, progress: Option<&'p dyn Fn(u64)>) -> Self {
        RefillBuffer {
            inner,
            buf: vec![0; initial.clamp(1, INITIAL_BUFFER)],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            max_len: max_record.max(1).saturating_add(64 << 10).max(INITIAL_BUFFER),
            started: false,
            progress,
        }
    }

    /// For input that is a piece of a file starting at file offset `offset` (not the start of
    /// the file: no byte order mark is looked for).
    pub fn starting_at(mut self, offset: u64) -> Self {
        self.offset = offset;
        self.started = true;
        self
    }

    /// Whether [`RefillBuffer::start`] has run.
    #[inline]
    pub fn started(&self) -> bool {
        self.started
    }

    /// Reads the first bytes of the input and skips a UTF-8 byte order mark.
    pub fn start(&mut self) -> io::Result<()> {
        while self.end < 3 && !self.eof {
            self.fill()?;
        }
        if self.buf[..self.end].starts_with(b"\xEF\xBB\xBF") {
            self.pos = 3;
        }
        self.started = true;
        Ok(())
    }

    /// Moves the unread bytes to the front, grows the buffer if they fill it, then fills it;
    /// returns by how many bytes the unread ones moved (positions in the buffer before the call
    /// are that much too large after it).
    pub fn make_room(&mut self) -> io::Result<usize> {
        let moved = self.pos;
        if self.pos > 0 {
            let pending = self.end - self.pos;
            self.buf.copy_within(self.pos..self.end, 0);
            self.offset += self.pos as u64;
            self.pos = 0;
            self.end = pending;
            // After a long record, give the memory back.
            if self.buf.len() > INITIAL_BUFFER && pending < INITIAL_BUFFER / 2 {
                self.buf.truncate(INITIAL_BUFFER);
                self.buf.shrink_to_fit();
            }
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.max_len).max(self.buf.len() + 1);
            self.buf.resize(grown, 0);
        }
        while self.end < self.buf.len() && !self.eof {
            self.fill()?;
        }
        Ok(moved)
    }

    /// One read into the free end of the buffer.
    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if let Some(p) = self.progress {
            p(self.offset + self.end as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read, to cross buffer boundaries.
    pub(crate) struct Trickle<'a> {
        pub data: &'a [u8],
        pub chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn keeps_unread_bytes_grows_for_long_records_and_shrinks_back() {
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let seen = std::cell::Cell::new(0u64);
        let progress = |n: u64| seen.set(n);
        let mut b = RefillBuffer::new(
            Trickle { data: &data, chunk: 10_000 },
            INITIAL_BUFFER,
            1 << 20,
            Some(&progress),
        );
        b.start().unwrap();
        assert_eq!((b.pos, b.end), (0, 10_000));
        assert_eq!(b.make_room().unwrap(), 0);
        assert_eq!(b.end, INITIAL_BUFFER);
        // Consume most of it: the rest moves to the front and the buffer is filled again.
        b.pos = INITIAL_BUFFER - 100;
        assert_eq!(b.make_room().unwrap(), INITIAL_BUFFER - 100);
        assert_eq!(b.offset, (INITIAL_BUFFER - 100) as u64);
        assert_eq!(&b.buf[..100], &data[INITIAL_BUFFER - 100..INITIAL_BUFFER]);
        assert_eq!(b.end, INITIAL_BUFFER);
        // A record that fills the buffer grows it, doubling, up to the limit and the slack.
        for _ in 0..3 {
            b.make_room().unwrap();
        }
        assert_eq!(b.buf.len(), (1 << 20) + (64 << 10));
        assert_eq!(&b.buf[..b.end], &data[INITIAL_BUFFER - 100..INITIAL_BUFFER - 100 + b.end]);
        assert_eq!(seen.get(), b.offset + b.end as u64);
        // Once the long record is consumed, the memory goes back.
        b.pos = b.end - 10;
        b.make_room().unwrap();
        assert_eq!(b.buf.len(), INITIAL_BUFFER);
        assert_eq!(&b.buf[..10], &data[b.offset as usize..b.offset as usize + 10]);
        // To the end of the input.
        while !b.eof {
            b.pos = b.end;
            b.make_room().unwrap();
        }
        assert_eq!(b.offset + b.end as u64, data.len() as u64);
    }

    #[test]
    fn skips_a_byte_order_mark_at_the_start_only() {
        let mut b = RefillBuffer::new(Trickle { data: b"\xEF\xBB\xBFa,b", chunk: 1 }, 16, 100, None);
        b.start().unwrap();
        assert_eq!(&b.buf[b.pos..b.end], b"");
        assert_eq!(b.pos, 3);
        let mut b = RefillBuffer::new(&b"\xEF\xBB\xBFa"[..], 16, 100, None).starting_at(10);
        assert!(b.started());
        b.make_room().unwrap();
        assert_eq!((b.pos, b.offset), (0, 10));
        let mut b = RefillBuffer::new(&b"ab"[..], 16, 100, None);
        b.start().unwrap();
        assert_eq!((b.pos, b.end, b.eof), (0, 2, true));
    }

    #[test]
    fn small_inputs_get_small_buffers() {
        assert_eq!(initial_buffer(None), INITIAL_BUFFER);
        assert_eq!(initial_buffer(Some(10)), 4 << 10);
        assert_eq!(initial_buffer(Some(100_000)), 100_001);
        assert_eq!(initial_buffer(Some(u64::MAX)), INITIAL_BUFFER);
    }
}
