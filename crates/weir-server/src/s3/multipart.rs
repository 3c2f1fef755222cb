//! Multipart uploads, staged under `<data dir>/.multipart/<upload-id>/` until completed.
//!
//! Each upload has a manifest (bucket, key, metadata, start time) and one file per part with its
//! MD5 beside it. Completing checks the parts the client lists against what was staged,
//! concatenates them into one file in the same folder and hands that to the object store (a
//! rename, since it is on the same disk), with S3's multipart ETag: the MD5 of the concatenated
//! binary part MD5s, a dash, and the number of parts. Uploads left alone longer than the expiry
//! are swept away, as an S3 lifecycle rule would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};
use weir_ports::Metadata;

use super::body::internal;
use crate::ServerError;

/// S3's smallest part, except for the last one.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PARTS: i32 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub bucket: String,
    pub key: String,
    pub metadata: Metadata,
    pub initiated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct StagedPart {
    pub number: i32,
    pub size: u64,
    pub etag: String,
    pub modified: DateTime<Utc>,
}

/// The staging area.
#[derive(Debug, Clone)]
pub struct Staging {
    root: PathBuf,
}

impl Staging {
    pub fn open(root: PathBuf) -> Result<Staging, ServerError> {
        std::fs::create_dir_all(&root)
            .map_err(|source| ServerError::Staging { path: root.clone(), source })?;
        Ok(Staging { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of an upload; ids are ours (32 hex digits), anything else names no upload and
    /// can never name a path outside the staging area.
    pub fn dir(&self, upload_id: &str) -> S3Result<PathBuf> {
        if upload_id.len() == 32 && upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(self.root.join(upload_id.to_ascii_lowercase()))
        } else {
            Err(no_such_upload())
        }
    }

    pub async fn create(&self, manifest: &Manifest) -> S3Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.root.join(&id);
        tokio::fs::create_dir_all(&dir).await.map_err(internal("creating a multipart upload"))?;
        let body = serde_json::to_vec(manifest).expect("manifest serializes");
        tokio::fs::write(dir.join("manifest.json"), body)
            .await
            .map_err(internal("creating a multipart upload"))?;
        Ok(id)
    }

    /// The upload's manifest, checked against the bucket and key the request names.
    pub async fn manifest(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<Manifest> {
        let dir = self.dir(upload_id)?;
        let bytes = match tokio::fs::read(dir.join("manifest.json")).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such_upload()),
            Err(e) => return Err(internal("reading a multipart upload")(e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|_| no_such_upload())?;
        if manifest.bucket != bucket || manifest.key != key {
            return Err(no_such_upload());
        }
        Ok(manifest)
    }

    pub fn part_path(dir: &Path, number: i32) -> PathBuf {
        dir.join(format!("part-{number:05}"))
    }

    /// Records a received part: its file moves into place and its MD5 is kept beside it.
    pub async fn store_part(&self, dir: &Path, number: i32, spooled: &Path, md5_hex: &str) -> S3Result<()> {
        let path = Self::part_path(dir, number);
        // The MD5 first: a part file without its MD5 is ignored, never listed with a wrong one.
        tokio::fs::write(path.with_extension("md5.tmp"), md5_hex)
            .await
            .map_err(internal("storing a part"))?;
        tokio::fs::rename(spooled, &path).await.map_err(internal("storing a part"))?;
        tokio::fs::rename(path.with_extension("md5.tmp"), path.with_extension("md5"))
            .await
            .map_err(internal("storing a part"))?;
        Ok(())
    }

    /// The parts staged so far, by number.
    pub async fn parts(&self, dir: &Path) -> S3Result<Vec<StagedPart>> {
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such_upload()),
            Err(e) => return Err(internal("listing parts")(e)),
        };
        let mut parts = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(internal("listing parts"))? {
            let name = entry.file_name();
            let Some(number) =
                name.to_str().and_then(|n| n.strip_prefix("part-")).and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let Ok(etag) = tokio::fs::read_to_string(entry.path().with_extension("md5")).await else {
                continue;
            };
            let Ok(meta) = entry.metadata().await else { continue };
            let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
            parts.push(StagedPart { number, size: meta.len(), etag, modified });
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Checks the client's part list against the staged parts and concatenates them. Returns
    /// the assembled file, its size and the multipart ETag.
    pub async fn assemble(
        &self,
        dir: &Path,
        requested: &[(i32, Option<String>)],
        max_bytes: u64,
    ) -> S3Result<(PathBuf, u64, String)> {
        if requested.is_empty() {
            return Err(s3_error!(MalformedXML, "You must specify at least one part."));
        }
        let staged = self.parts(dir).await?;
        let mut chosen = Vec::with_capacity(requested.len());
        let mut previous = 0;
        for (i, (number, etag)) in requested.iter().enumerate() {
            if *number <= previous {
                return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order."));
            }
            previous = *number;
            let part = staged.iter().find(|p| p.number == *number).ok_or_else(invalid_part)?;
            if let Some(etag) = etag {
                if etag.trim_matches('"') != part.etag {
                    return Err(invalid_part());
                }
            }
            if i + 1 < requested.len() && part.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed object size."
                ));
            }
            chosen.push(part.clone());
        }
        let total: u64 = chosen.iter().map(|p| p.size).sum();
        if total > max_bytes {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size ({max_bytes} bytes)."
            ));
        }
        let mut etag_md5 = Md5::new();
        for p in &chosen {
            let raw = hex::decode(&p.etag).map_err(|_| invalid_part())?;
            etag_md5.update(&raw);
        }
        let etag = format!("{}-{}", hex::encode(etag_md5.finalize()), chosen.len());
        let out = dir.join("object");
        let sources: Vec<PathBuf> = chosen.iter().map(|p| Self::part_path(dir, p.number)).collect();
        let target = out.clone();
        tokio::task::spawn_blocking(move || concatenate(&sources, &target))
            .await
            .map_err(|e| internal("assembling an upload")(std::io::Error::other(e)))?
            .map_err(internal("assembling an upload"))?;
        Ok((out, total, etag))
    }

    pub async fn remove(&self, dir: &Path) {
        if let Err(e) = tokio::fs::remove_dir_all(dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "removing a multipart upload failed");
            }
        }
    }

    /// Removes uploads started longer than `max_age` ago. Returns how many.
    pub async fn sweep(&self, max_age: Duration) -> usize {
        let Ok(mut entries) = tokio::fs::read_dir(&self.root).await else { return 0 };
        let cutoff = Utc::now() - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let mut removed = 0;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let started = match tokio::fs::read(entry.path().join("manifest.json")).await {
                Ok(b) => serde_json::from_slice::<Manifest>(&b).ok().map(|m| m.initiated),
                Err(_) => None,
            };
            // A folder without a readable manifest is judged by its own age.
            let started = match started {
                Some(t) => t,
                None => match entry.metadata().await.and_then(|m| m.modified()) {
                    Ok(t) => DateTime::<Utc>::from(t),
                    Err(_) => continue,
                },
            };
            if started < cutoff {
                self.remove(&entry.path()).await;
                removed += 1;
            }
        }
        removed
    }
}

fn concatenate(sources: &[PathBuf], target: &Path) -> std::io::Result<()> {
    let mut out = std::fs::File::create(target)?;
    for source in sources {
        let mut input = std::fs::File::open(source)?;
        std::io::copy(&mut input, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

pub fn no_such_upload() -> s3s::S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified multipart upload does not exist. The upload ID might not be valid, or the multipart upload might have been aborted or completed."
    )
}

fn invalid_part() -> s3s::S3Error {
    s3_error!(
        InvalidPart,
        "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn assembles_parts_with_the_multipart_etag() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path().join(".multipart")).unwrap();
        let manifest = Manifest {
            bucket: "b".into(),
            key: "k".into(),
            metadata: Metadata::new(),
            initiated: Utc::now(),
        };
        let id = staging.create(&manifest).await.unwrap();
        let up = staging.dir(&id).unwrap();
        let big = vec![b'a'; MIN_PART_SIZE as usize];
        for (n, data) in [(1, &big[..]), (2, &b"tail"[..])] {
            let spool = up.join(format!("spool-{n}"));
            std::fs::write(&spool, data).unwrap();
            staging.store_part(&up, n, &spool, &hex::encode(Md5::digest(data))).await.unwrap();
        }
        assert!(staging.manifest(&id, "b", "other").await.is_err());
        let parts = staging.parts(&up).await.unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
        let (file, size, etag) = staging
            .assemble(&up, &[(1, None), (2, Some(format!("\"{}\"", parts[1].etag)))], u64::MAX)
            .await
            .unwrap();
        assert_eq!(size, MIN_PART_SIZE + 4);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
        let mut expected = Md5::new();
        expected.update(Md5::digest(&big));
        expected.update(Md5::digest(b"tail"));
        assert_eq!(etag, format!("{}-2", hex::encode(expected.finalize())));
        // Order, sizes and the limit are checked.
        assert!(staging.assemble(&up, &[(2, None), (1, None)], u64::MAX).await.is_err());
        assert!(staging.assemble(&up, &[(2, None), (3, None)], u64::MAX).await.is_err());
        assert!(staging.assemble(&up, &[(1, None), (2, None)], 10).await.is_err());
        assert!(staging.dir("../../etc").is_err());
        staging.remove(&up).await;
        assert!(staging.manifest(&id, "b", "k").await.is_err());
        assert_eq!(staging.sweep(Duration::ZERO).await, 0);
    }
}
