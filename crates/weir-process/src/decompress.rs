//! Compressed inputs: gzip and zstd, found by the file name's suffix or the content's magic
//! bytes, inflated as a stream with a ceiling on the output (a decompression bomb is refused).
//!
//! Both decoders are pure Rust (`flate2` on miniz_oxide, `ruzstd`), so the build needs no C
//! toolchain. Concatenated gzip members (`cat a.gz b.gz`) are read as one stream, as gunzip does.
//! A corrupt stream or one that inflates past `format.max_decompressed_bytes` fails with an
//! `InvalidData` I/O error, which [`crate::ProcessError::class`] treats as permanent.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use weir_core::config::Compression;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Which decoder, if any, `input` needs: the configured one, else by `name`'s suffix, else by
/// the first bytes (which are read and put back).
pub(crate) fn open<'a, R: Read + 'a>(
    mut input: R,
    name: Option<&str>,
    compression: Compression,
    limit: u64,
) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head_bytes = head[..n].to_vec();
    let kind = match compression {
        Compression::Auto => {
            let lower = name.map(str::to_ascii_lowercase).unwrap_or_default();
            if lower.ends_with(".gz") || lower.ends_with(".gzip") || head_bytes.starts_with(&GZIP_MAGIC) {
                Compression::Gzip
            } else if lower.ends_with(".zst")
                || lower.ends_with(".zstd")
                || head_bytes.starts_with(&ZSTD_MAGIC)
            {
                Compression::Zstd
            } else {
                Compression::None
            }
        }
        other => other,
    };
    let whole = io::Cursor::new(head_bytes).chain(input);
    if matches!(kind, Compression::Auto | Compression::None) {
        return Ok(Box::new(whole));
    }
    let consumed = Rc::new(Cell::new(0));
    let whole = Counted { inner: whole, read: consumed.clone() };
    Ok(match kind {
        Compression::Gzip => {
            Box::new(Limited::new(flate2::read::MultiGzDecoder::new(whole), limit, "gzip", consumed))
        }
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(whole)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            Box::new(Limited::new(decoder, limit, "zstd", consumed))
        }
        Compression::Auto | Compression::None => unreachable!("uncompressed input returned above"),
    })
}

/// The compressed bytes a decoder has taken, for the bomb's figures.
struct Counted<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Fails once more than `limit` bytes came out of the decoder, and labels decoder errors.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: &'static str,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Limited<R> {
    fn new(inner: R, limit: u64, what: &'static str, consumed: Rc<Cell<u64>>) -> Self {
        Limited { inner, left: limit, limit, what, consumed }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed tells a stream of exactly `limit` bytes from a longer one.
        let want = buf.len().min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want]).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                e
            } else {
                io::Error::new(io::ErrorKind::InvalidData, format!("{} stream is corrupt: {e}", self.what))
            }
        })?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} input inflates to more than {} bytes (format.max_decompressed_bytes, by default source.max_size_bytes) from its first {} compressed bytes; refusing it as a possible decompression bomb",
                    self.what,
                    self.limit,
                    self.consumed.get()
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(r: io::Result<Box<dyn Read + '_>>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn detects_gzip_by_magic_and_by_name_and_passes_plain_input() {
        let data = b"a,b\n1,2\n".repeat(1000);
        let gz = gzip(&data);
        assert_eq!(read_all(open(&gz[..], None, Compression::Auto, 1 << 30)).unwrap(), data);
        assert_eq!(read_all(open(&gz[..], Some("x.csv.GZ"), Compression::Auto, 1 << 30)).unwrap(), data);
        assert_eq!(read_all(open(&data[..], Some("x.csv"), Compression::Auto, 1 << 30)).unwrap(), data);
        assert_eq!(read_all(open(&b"ab"[..], None, Compression::Auto, 1)).unwrap(), b"ab");
        // Concatenated members are one stream.
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        assert_eq!(read_all(open(&two[..], None, Compression::Auto, 100)).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn corrupt_and_oversized_streams_are_invalid_data() {
        let data = vec![b'x'; 1 << 20];
        let gz = gzip(&data);
        let e = read_all(open(&gz[..], None, Compression::Auto, 1000)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
        // Exactly the limit is fine.
        assert_eq!(read_all(open(&gz[..], None, Compression::Auto, 1 << 20)).unwrap().len(), 1 << 20);
        let mut bad = gz.clone();
        bad.truncate(gz.len() / 2);
        let e = read_all(open(&bad[..], Some("x.gz"), Compression::Auto, 1 << 30)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let e =
            read_all(open(&b"not gzip at all"[..], Some("x.gz"), Compression::Auto, 1 << 30)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let e = read_all(open(&b"not zstd"[..], None, Compression::Zstd, 1 << 30)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn reads_zstd_frames() {
        // `printf 'a,b\n1,2\n' | zstd -c`, checked in so the test needs no encoder.
        let frame: &[u8] = &[
            0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x41, 0x00, 0x00, 0x61, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0x32,
            0x0a, 0x35, 0xe7, 0xca, 0xce,
        ];
        let out = read_all(open(frame, None, Compression::Auto, 1 << 20));
        assert_eq!(out.unwrap(), b"a,b\n1,2\n");
    }
}
