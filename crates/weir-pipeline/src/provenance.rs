//! Where an object weir wrote came from: every output (results, summary, error report,
//! thumbnails, picture metadata) and every copy of a source (archived, `failed/`, a duplicate)
//! carries its source's bucket, key and ETag and the job's id in its user metadata
//! (`x-amz-meta-*` on S3, the object's metadata in the other stores).
//!
//! With output key templates (`[pipeline.output] results_key`, `archive_key`, ...) a key alone
//! does not say which source it belongs to; this record does. Retention's in-use check and
//! `weir reprocess` from the archive read it ([`Provenance::of_object`]), and fall back to the
//! default key layout for objects written before weir recorded it.
//!
//! Metadata travels in HTTP headers, which carry ASCII only: the source key is stored
//! percent-encoded (every byte but letters, digits and `/-_.~`), and decoded when read.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use weir_ports::{Metadata, ObjectInfo, ObjectStore, PortError};

use crate::state::JobInput;

/// The metadata names of the record.
pub const JOB_ID: &str = "job_id";
pub const SOURCE_BUCKET: &str = "source_bucket";
pub const SOURCE_KEY: &str = "source_key";
pub const SOURCE_ETAG: &str = "source_etag";

/// The bytes a source key keeps as they are in metadata.
const KEY_KEEPS: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The bytes free text (a rejection reason, column names) keeps as they are in metadata: all
/// printable ASCII but `%`, so a reason stays readable in `aws s3api head-object`.
const TEXT_KEEPS: &AsciiSet = &CONTROLS.add(b'%');

/// Free text as a metadata value: ASCII, with anything else percent-encoded.
pub fn text_to_metadata(text: &str) -> String {
    utf8_percent_encode(text, TEXT_KEEPS).to_string()
}

/// Text stored by [`text_to_metadata`] (or raw, by an older weir) read back.
pub fn text_from_metadata(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

/// The source an object was written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub bucket: String,
    pub key: String,
    /// The source version's ETag (without quotes); empty when the job did not know it.
    pub etag: String,
    pub job_id: String,
}

impl Provenance {
    /// The source of the job `input` is about.
    pub fn of_job(input: &JobInput) -> Self {
        Provenance {
            bucket: input.source_bucket.clone(),
            key: input.source_key.clone(),
            etag: input.source_etag.trim_matches('"').to_owned(),
            job_id: input.job_id.clone(),
        }
    }

    /// The record as metadata, with `extra` entries (a reason, a time) added.
    pub fn metadata<const N: usize>(&self, extra: [(&str, String); N]) -> Metadata {
        let mut m = Metadata::from([
            (JOB_ID.to_owned(), self.job_id.clone()),
            (SOURCE_BUCKET.to_owned(), self.bucket.clone()),
            (SOURCE_KEY.to_owned(), utf8_percent_encode(&self.key, KEY_KEEPS).to_string()),
        ]);
        if !self.etag.is_empty() {
            m.insert(SOURCE_ETAG.to_owned(), self.etag.clone());
        }
        m.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        m
    }

    /// The record in `metadata`, if it has one (an object written before weir recorded it, or
    /// not by weir, has none).
    pub fn from_metadata(metadata: &Metadata) -> Option<Self> {
        let bucket = metadata.get(SOURCE_BUCKET).filter(|b| !b.is_empty())?;
        let key = percent_decode_str(metadata.get(SOURCE_KEY)?).decode_utf8().ok()?;
        if key.is_empty() {
            return None;
        }
        Some(Provenance {
            bucket: bucket.clone(),
            key: key.into_owned(),
            etag: metadata.get(SOURCE_ETAG).map(|e| e.trim_matches('"').to_owned()).unwrap_or_default(),
            job_id: metadata.get(JOB_ID).cloned().unwrap_or_default(),
        })
    }

    /// The record of a listed object: from the listing's metadata, or from a look at the object
    /// when the listing carries none (S3's ListObjectsV2 returns no user metadata). `None` for
    /// an object without a record, or gone since the listing.
    pub async fn of_object(objects: &dyn ObjectStore, obj: &ObjectInfo) -> Result<Option<Self>, PortError> {
        if let Some(found) = Self::from_metadata(&obj.metadata) {
            return Ok(Some(found));
        }
        if !obj.metadata.is_empty() {
            return Ok(None);
        }
        match objects.head(&obj.bucket, &obj.key).await {
            Ok(now) if now.etag == obj.etag => Ok(Self::from_metadata(&now.metadata)),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `obj` is a copy of this source (archived, `failed/`, a duplicate) at another
    /// key, rather than an output made from it or the source itself.
    pub fn is_copy_elsewhere(&self, obj: &ObjectInfo) -> bool {
        !self.etag.is_empty()
            && obj.etag.trim_matches('"') == self.etag
            && (obj.bucket != self.bucket || obj.key != self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_metadata_with_any_key() {
        let p = Provenance {
            bucket: "pipeline-data".into(),
            key: "raw-data/ยอดขาย 2024/a%b+c.csv".into(),
            etag: "abc".into(),
            job_id: "j-1".into(),
        };
        let m = p.metadata([("reason", "why".to_string())]);
        assert!(m.values().all(|v| v.is_ascii()), "{m:?}");
        assert_eq!(m["reason"], "why");
        assert_eq!(Provenance::from_metadata(&m), Some(p));
        // Objects from before: a failed/ copy had only the key, an archived one only the bucket.
        let old = Metadata::from([(SOURCE_KEY.to_string(), "raw/a.csv".to_string())]);
        assert_eq!(Provenance::from_metadata(&old), None);
    }

    #[test]
    fn free_text_goes_into_metadata_as_readable_ascii_and_comes_back() {
        let reason = "missing columns: \"prénom\", \"名前\" (100% of the header)\n";
        let stored = text_to_metadata(reason);
        assert!(stored.is_ascii() && !stored.contains('\n'), "{stored}");
        assert!(stored.starts_with("missing columns: \"pr%C3%A9nom\""), "{stored}");
        assert_eq!(text_from_metadata(&stored), reason);
        // A reason an older weir stored raw reads back as it was.
        assert_eq!(text_from_metadata("header has no order_id"), "header has no order_id");
    }
}
