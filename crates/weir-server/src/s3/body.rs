//! Receiving an upload's body: bounded, hashed, and never half-stored.
//!
//! A body is read to the end before anything is written to a bucket: small bodies of known length
//! into memory, the rest into a spool file beside the data (so storing it is a rename). While
//! reading, the MD5 (the S3 ETag) is computed, the size is held to the limit, and a client that
//! goes quiet for the idle timeout is dropped. A body that fails on the way (a bad chunk
//! signature, a short read, the limit) leaves nothing behind: the spool file is removed on drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Error, S3Result};
use tokio::io::AsyncWriteExt;

/// Bodies up to this size (when the length is announced) are kept in memory.
pub const IN_MEMORY_MAX: u64 = 1 << 20;

/// A spooled body on disk, removed when dropped unless [`SpoolFile::keep`] says it was taken.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    armed: bool,
}

impl SpoolFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file now belongs to someone else (it was moved into a bucket or renamed).
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Debug)]
pub enum Data {
    Memory(Bytes),
    File(SpoolFile),
}

#[derive(Debug)]
pub struct Received {
    pub data: Data,
    pub size: u64,
    pub md5: [u8; 16],
}

impl Received {
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

pub struct Limits {
    pub max_bytes: u64,
    pub idle: Duration,
}

type StdError = Box<dyn std::error::Error + Send + Sync>;

/// Reads `body` to its end. `announced` is the Content-Length (after aws-chunked decoding);
/// `spool_dir` is where a large body is spooled; `in_memory` allows keeping small ones in RAM.
pub async fn receive(
    body: Option<StreamingBlob>,
    announced: Option<i64>,
    limits: &Limits,
    spool_dir: &Path,
    in_memory: bool,
) -> S3Result<Received> {
    let announced = announced.and_then(|n| u64::try_from(n).ok());
    match body {
        Some(body) => receive_stream(body, announced, limits, spool_dir, in_memory).await,
        None if announced.is_some_and(|n| n > limits.max_bytes) => Err(too_large(limits.max_bytes)),
        None => Ok(Received { data: Data::Memory(Bytes::new()), size: 0, md5: Md5::new().finalize().into() }),
    }
}

/// [`receive`] from any stream of chunks (a form upload's file part).
pub async fn receive_stream<S>(
    mut body: S,
    announced: Option<u64>,
    limits: &Limits,
    spool_dir: &Path,
    in_memory: bool,
) -> S3Result<Received>
where
    S: futures::Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    if let Some(n) = announced {
        if n > limits.max_bytes {
            return Err(too_large(limits.max_bytes));
        }
    }
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let data = if in_memory && announced.is_some_and(|n| n <= IN_MEMORY_MAX) {
        let mut buf = BytesMut::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(chunk) = next_chunk(&mut body, limits.idle).await? {
            size += chunk.len() as u64;
            if size > limits.max_bytes || size > IN_MEMORY_MAX {
                return Err(too_large(limits.max_bytes.min(announced.unwrap_or(u64::MAX))));
            }
            md5.update(&chunk);
            buf.extend_from_slice(&chunk);
        }
        Data::Memory(buf.freeze())
    } else {
        tokio::fs::create_dir_all(spool_dir).await.map_err(internal("creating the spool folder"))?;
        let spool = SpoolFile {
            path: spool_dir.join(format!("{}.spool", uuid::Uuid::new_v4().simple())),
            armed: true,
        };
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(spool.path()).await.map_err(internal("creating a spool file"))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        while let Some(chunk) = next_chunk(&mut body, limits.idle).await? {
            size += chunk.len() as u64;
            if size > limits.max_bytes {
                return Err(too_large(limits.max_bytes));
            }
            md5.update(&chunk);
            out.write_all(&chunk).await.map_err(internal("writing a spool file"))?;
        }
        out.flush().await.map_err(internal("writing a spool file"))?;
        Data::File(spool)
    };
    if let Some(n) = announced {
        if n != size {
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
    }
    Ok(Received { data, size, md5: md5.finalize().into() })
}

/// Checks a `Content-MD5` header (base64 of the MD5) against what was received.
pub fn check_content_md5(content_md5: Option<&str>, received: &Received) -> S3Result<()> {
    let Some(expected) = content_md5 else { return Ok(()) };
    let decoded = base64_decode(expected.trim())
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."))?;
    if decoded.len() != 16 {
        return Err(s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."));
    }
    if decoded != received.md5 {
        return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what was received."));
    }
    Ok(())
}

async fn next_chunk<S>(body: &mut S, idle: Duration) -> S3Result<Option<Bytes>>
where
    S: futures::Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    match tokio::time::timeout(idle, body.next()).await {
        Err(_) => Err(s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period."
        )),
        Ok(None) => Ok(None),
        Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
        Ok(Some(Err(e))) => Err(match e.downcast::<S3Error>() {
            Ok(s3) => *s3,
            Err(other) => s3_error!(IncompleteBody, "reading the request body failed: {other}"),
        }),
    }
}

fn too_large(limit: u64) -> S3Error {
    s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size ({limit} bytes).")
}

pub fn internal(context: &'static str) -> impl Fn(std::io::Error) -> S3Error {
    move |e| {
        tracing::error!(error = %e, "{context}");
        s3_error!(InternalError, "We encountered an internal error. Please try again.")
    }
}

/// Standard base64 (with or without padding), for `Content-MD5`.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_content_md5() {
        // md5("hello") = 5d41402abc4b2a76b9719d911017c592
        let raw = base64_decode("XUFAKrxLKna5cZ2REBfFkg==").unwrap();
        assert_eq!(hex::encode(raw), "5d41402abc4b2a76b9719d911017c592");
        assert!(base64_decode("not*base64").is_none());
    }
}
