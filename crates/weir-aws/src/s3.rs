//! The object store port on Amazon S3 (or any S3-compatible endpoint).
//!
//! Object data goes through the `object_store` crate (streaming GETs, multipart uploads for big
//! files, retries), the same crate the embedded store uses. `object_store` addresses one bucket
//! per store and has no bucket-level or cross-bucket calls, so those few — create/list/head
//! bucket and the server-side CopyObject that archives a source into another bucket with new
//! metadata — go through `aws-sdk-s3`, as do listings (ListObjectsV2 pages with S3's own string
//! prefixes and `StartAfter`, which `object_store`'s folder-based listing cannot express). Both clients use the same credentials: `object_store` asks
//! the SDK's standard chain (env, profile, web identity, ECS, IMDS) through [`ChainCredentials`].
//!
//! Differences from the embedded store: listing reports no user metadata (S3's ListObjectsV2
//! does not return it); keys that `object_store` cannot address (empty or `.`/`..` segments,
//! control characters) are refused as invalid. Folder markers (keys ending in `/`, such as
//! `csv/`), which `object_store` cannot address either, go through `aws-sdk-s3`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::types::MetadataDirective;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, ClientOptions, CredentialProvider, GetOptions, ObjectStore as _,
    ObjectStoreExt as _, PutOptions, PutPayload,
};
use weir_core::keys::{validate_bucket, validate_key};
use weir_ports::{
    clamp_page, BucketInfo, ByteStream, Metadata, ObjectInfo, ObjectPage, ObjectStore, PortError,
};

use crate::client::port_error;

/// Files up to this size are uploaded in one PUT; larger ones in parts.
const SINGLE_PUT_MAX: u64 = 16 * 1024 * 1024;

/// How to reach S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub region: String,
    /// `None`: AWS's own endpoint for the region.
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which moto, MinIO and weir's own endpoint
    /// want; virtual-hosted style otherwise.
    pub path_style: bool,
}

/// Buckets on S3.
#[derive(Debug)]
pub struct S3ObjectStore {
    s3: aws_sdk_s3::Client,
    settings: S3Settings,
    credentials: Arc<ChainCredentials>,
    stores: Mutex<HashMap<String, Arc<AmazonS3>>>,
}

impl S3ObjectStore {
    /// A store using `config`'s credentials chain.
    pub fn new(config: &aws_config::SdkConfig, settings: S3Settings) -> Result<S3ObjectStore, PortError> {
        crate::client::install_crypto();
        let provider = config
            .credentials_provider()
            .ok_or_else(|| PortError::Invalid("no AWS credentials provider configured".into()))?;
        let s3_config =
            aws_sdk_s3::config::Builder::from(config).force_path_style(settings.path_style).build();
        Ok(S3ObjectStore {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            settings,
            credentials: Arc::new(ChainCredentials { provider, cached: tokio::sync::Mutex::new(None) }),
            stores: Mutex::new(HashMap::new()),
        })
    }

    /// The SDK client (for bucket configuration in `setup`).
    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    fn store(&self, bucket: &str) -> Result<Arc<AmazonS3>, PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stores.get(bucket) {
            return Ok(s.clone());
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&self.settings.region)
            .with_virtual_hosted_style_request(!self.settings.path_style)
            .with_credentials(self.credentials.clone());
        if let Some(url) = &self.settings.endpoint_url {
            b = b
                .with_endpoint(url.trim_end_matches('/'))
                .with_client_options(ClientOptions::new().with_allow_http(url.starts_with("http://")));
        }
        let store = Arc::new(b.build().map_err(|e| PortError::Invalid(format!("S3 bucket {bucket}: {e}")))?);
        stores.insert(bucket.to_string(), store.clone());
        Ok(store)
    }

    async fn info_of(
        &self,
        bucket: &str,
        key: &str,
        store: &AmazonS3,
        path: &StorePath,
    ) -> Result<ObjectInfo, PortError> {
        let r = store.get_opts(path, GetOptions { head: true, ..Default::default() }).await;
        let r = self.bucket_or_object(r.map_err(|e| store_error(e, bucket, key)), bucket).await?;
        Ok(info(bucket, key, &r.meta, &r.attributes))
    }

    /// S3 answers a request on a missing bucket with a plain 404 (a HEAD has no body to say
    /// which): a `NotFound` is told apart by asking whether the bucket exists.
    async fn bucket_or_object<T>(&self, r: Result<T, PortError>, bucket: &str) -> Result<T, PortError> {
        match r {
            Err(PortError::NotFound(what)) => match self.bucket_exists(bucket).await {
                Ok(false) => Err(PortError::NoSuchBucket(bucket.to_owned())),
                _ => Err(PortError::NotFound(what)),
            },
            other => other,
        }
    }
}

/// An object's last modification as S3 reports it (the epoch when it does not).
fn modified(at: Option<aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    at.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos())).unwrap_or_default()
}

/// Whether `key` is a folder marker (`csv/`), which goes through the SDK.
fn is_marker(key: &str) -> bool {
    key.ends_with('/')
}

/// Checks a key for a call through the SDK: a folder marker's folder, or the key itself.
fn checked_key(key: &str) -> Result<(), PortError> {
    let folder = key.strip_suffix('/').unwrap_or(key);
    validate_key(folder).map_err(|e| PortError::Invalid(format!("key {key:?}: {e}")))
}

fn location(key: &str) -> Result<StorePath, PortError> {
    validate_key(key).map_err(|e| PortError::Invalid(format!("key {key:?}: {e}")))?;
    StorePath::parse(key)
        .map_err(|e| PortError::Invalid(format!("key {key:?} cannot be addressed on S3: {e}")))
}

fn info(bucket: &str, key: &str, meta: &object_store::ObjectMeta, attrs: &Attributes) -> ObjectInfo {
    let metadata = attrs
        .iter()
        .filter_map(|(k, v)| match k {
            Attribute::Metadata(name) => Some((name.to_string(), v.to_string())),
            _ => None,
        })
        .collect();
    ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size: meta.size,
        etag: meta.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_string(),
        last_modified: meta.last_modified,
        metadata,
    }
}

fn attributes(metadata: &Metadata) -> Attributes {
    metadata
        .iter()
        .map(|(k, v)| (Attribute::Metadata(k.clone().into()), object_store::AttributeValue::from(v.clone())))
        .collect()
}

fn store_error(e: object_store::Error, bucket: &str, key: &str) -> PortError {
    match e {
        object_store::Error::NotFound { .. } => PortError::NotFound(format!("s3://{bucket}/{key}")),
        object_store::Error::InvalidPath { .. } | object_store::Error::Precondition { .. } => {
            PortError::Invalid(format!("s3://{bucket}/{key}: {e}"))
        }
        other => PortError::unavailable(format!("S3 s3://{bucket}/{key}"), concise(&other.to_string())),
    }
}

/// An S3 error without the XML document S3 answered with: its `Code` and `Message` say what
/// matters, and the request ids and host ids make a job's error text long and unreadable.
fn concise(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = text.find(&open)? + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(&text[from..to])
    };
    let mut out = text[..start].trim_end().trim_end_matches(':').to_string();
    if let Some(code) = tag("Code") {
        out.push_str(&format!(": {code}"));
    }
    if let Some(message) = tag("Message") {
        out.push_str(&format!(": {message}"));
    }
    if let Some(class) = tag("StorageClass") {
        out.push_str(&format!(" ({class})"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn s3_errors_keep_code_and_message_only() {
        let raw = "Error performing GET http://h/b/k in 49ms - Server returned non-2xx status code: 403 Forbidden: \
                   <?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>InvalidObjectState</Code>\
                   <Message>The operation is not valid for the object's storage class</Message>\
                   <StorageClass>GLACIER</StorageClass><RequestId>NK1w</RequestId></Error>";
        assert_eq!(
            super::concise(raw),
            "Error performing GET http://h/b/k in 49ms - Server returned non-2xx status code: 403 Forbidden: \
             InvalidObjectState: The operation is not valid for the object's storage class (GLACIER)"
        );
        assert_eq!(super::concise("connection refused"), "connection refused");
    }
}

impl S3ObjectStore {
    /// A folder marker's info (HeadObject through the SDK).
    async fn head_marker(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        checked_key(key)?;
        let out = match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) => {
                let not_found = e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                let r = match not_found {
                    true => Err(PortError::NotFound(format!("s3://{bucket}/{key}"))),
                    false => Err(port_error(&format!("looking at s3://{bucket}/{key}"), e)),
                };
                return self.bucket_or_object(r, bucket).await;
            }
        };
        Ok(ObjectInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: out.content_length.unwrap_or_default().max(0) as u64,
            etag: out.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_owned(),
            last_modified: modified(out.last_modified),
            metadata: out.metadata.unwrap_or_default().into_iter().collect(),
        })
    }

    /// Stores a folder marker (PutObject through the SDK).
    async fn put_marker(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        checked_key(key)?;
        let size = data.len() as u64;
        let out = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(data))
            .set_metadata(Some(metadata.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| port_error(&format!("storing s3://{bucket}/{key}"), e))?;
        Ok(ObjectInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            etag: out.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_owned(),
            last_modified: Utc::now(),
            metadata,
        })
    }

    /// A folder marker's info and bytes (GetObject through the SDK), streamed.
    async fn get_marker(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        let info = self.head_marker(bucket, key).await?;
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .if_match(format!("\"{}\"", info.etag))
            .send()
            .await
            .map_err(|e| port_error(&format!("reading s3://{bucket}/{key}"), e))?;
        let where_ = format!("reading s3://{bucket}/{key}");
        let stream = futures::stream::unfold((out.body, where_), |(mut body, where_)| async move {
            let next = body.next().await?;
            let item = next.map_err(|e| PortError::unavailable(where_.clone(), e));
            Some((item, (body, where_)))
        })
        .boxed();
        Ok((info, stream))
    }

    /// Server-side copy, of the version with ETag `if_match` only when given (`NotFound` if
    /// the key holds another version).
    async fn copy_if(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
        if_match: Option<&str>,
    ) -> Result<ObjectInfo, PortError> {
        for key in [from_key, to_key] {
            if is_marker(key) {
                checked_key(key)?;
            } else {
                location(key)?;
            }
        }
        let store = self.store(to_bucket)?;
        let mut req = self
            .s3
            .copy_object()
            .copy_source(copy_source(from_bucket, from_key))
            .bucket(to_bucket)
            .key(to_key);
        if let Some(etag) = if_match {
            req = req.copy_source_if_match(format!("\"{}\"", etag.trim_matches('"')));
        }
        if let Some(m) = metadata {
            req = req
                .metadata_directive(MetadataDirective::Replace)
                .set_metadata(Some(m.into_iter().collect()));
        }
        req.send().await.map_err(|e| {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
            let e =
                port_error(&format!("copying s3://{from_bucket}/{from_key} to s3://{to_bucket}/{to_key}"), e);
            match (code.as_deref(), e) {
                (Some("PreconditionFailed"), _) => {
                    PortError::NotFound(format!("this version of s3://{from_bucket}/{from_key}"))
                }
                (_, PortError::Unavailable { ref source, .. })
                    if source.to_string().contains("NoSuchKey") =>
                {
                    PortError::NotFound(format!("s3://{from_bucket}/{from_key}"))
                }
                (_, e) => e,
            }
        })?;
        match is_marker(to_key) {
            true => self.head_marker(to_bucket, to_key).await,
            false => self.info_of(to_bucket, to_key, &store, &location(to_key)?).await,
        }
    }
}

/// `bucket/key` for `x-amz-copy-source`, URL-encoded but for the slashes.
fn copy_source(bucket: &str, key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    format!("{bucket}/{}", percent_encoding::utf8_percent_encode(key, KEEP))
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn create_bucket(&self, bucket: &str) -> Result<(), PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        if self.bucket_exists(bucket).await? {
            return Ok(());
        }
        let mut req = self.s3.create_bucket().bucket(bucket);
        if self.settings.region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        self.settings.region.as_str(),
                    ))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
                    Some("BucketAlreadyOwnedByYou")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(port_error(&format!("creating bucket {bucket}"), e)),
        }
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        if is_marker(key) {
            return self.head_marker(bucket, key).await;
        }
        let (store, path) = (self.store(bucket)?, location(key)?);
        self.info_of(bucket, key, &store, &path).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        if is_marker(key) {
            return self.get_marker(bucket, key).await;
        }
        let (store, path) = (self.store(bucket)?, location(key)?);
        let r = store.get_opts(&path, GetOptions::default()).await.map_err(|e| store_error(e, bucket, key));
        let r = self.bucket_or_object(r, bucket).await?;
        let info = info(bucket, key, &r.meta, &r.attributes);
        let (b, k) = (bucket.to_string(), key.to_string());
        let stream = r.into_stream().map_err(move |e| store_error(e, &b, &k)).boxed();
        Ok((info, stream))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        if is_marker(key) {
            return self.put_marker(bucket, key, data, metadata).await;
        }
        let (store, path) = (self.store(bucket)?, location(key)?);
        let size = data.len() as u64;
        let opts = PutOptions { attributes: attributes(&metadata), ..Default::default() };
        let r = store
            .put_opts(&path, PutPayload::from_bytes(data), opts)
            .await
            .map_err(|e| store_error(e, bucket, key));
        let r = self.bucket_or_object(r, bucket).await?;
        Ok(ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag: r.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_string(),
            last_modified: Utc::now(),
            metadata,
        })
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        let local = |e: std::io::Error| PortError::unavailable(format!("reading {}", path.display()), e);
        let size = tokio::fs::metadata(path).await.map_err(local)?.len();
        let info = if size <= SINGLE_PUT_MAX {
            let data = tokio::fs::read(path).await.map_err(local)?;
            self.put(bucket, key, Bytes::from(data), metadata).await?
        } else {
            let (store, loc) = (self.store(bucket)?, location(key)?);
            let mut writer = object_store::buffered::BufWriter::new(store.clone(), loc.clone())
                .with_attributes(attributes(&metadata));
            let mut file = tokio::fs::File::open(path).await.map_err(local)?;
            let upload = async {
                tokio::io::copy(&mut file, &mut writer).await?;
                tokio::io::AsyncWriteExt::shutdown(&mut writer).await
            };
            if let Err(e) = upload.await {
                let _ = writer.abort().await;
                return Err(PortError::unavailable(format!("uploading to s3://{bucket}/{key}"), e));
            }
            self.info_of(bucket, key, &store, &loc).await?
        };
        let _ = tokio::fs::remove_file(path).await;
        Ok(info)
    }

    async fn copy(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        self.copy_if(from_bucket, from_key, to_bucket, to_key, metadata, None).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), PortError> {
        if is_marker(key) {
            validate_bucket(bucket).map_err(PortError::Invalid)?;
            checked_key(key)?;
            return match self.s3.delete_object().bucket(bucket).key(key).send().await {
                Ok(_) => Ok(()),
                Err(e) if aws_sdk_s3::error::ProvideErrorMetadata::code(&e) == Some("NoSuchKey") => Ok(()),
                Err(e) => Err(port_error(&format!("deleting s3://{bucket}/{key}"), e)),
            };
        }
        let (store, path) = (self.store(bucket)?, location(key)?);
        match store.delete(&path).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e, bucket, key)),
        }
    }

    /// S3's conditional delete (`If-Match`, on the current version): a newer upload is never
    /// removed, on a versioned bucket too (the delete marker goes on top of this version only
    /// while it is the current one).
    async fn delete_version(&self, bucket: &str, key: &str, etag: &str) -> Result<bool, PortError> {
        checked_key(key)?;
        let quoted = format!("\"{}\"", etag.trim_matches('"'));
        match self.s3.delete_object().bucket(bucket).key(key).if_match(quoted).send().await {
            Ok(_) => Ok(true),
            Err(e) => match aws_sdk_s3::error::ProvideErrorMetadata::code(&e) {
                Some("PreconditionFailed") | Some("NoSuchKey") => Ok(false),
                _ => Err(port_error(&format!("deleting s3://{bucket}/{key}"), e)),
            },
        }
    }

    /// A copy that only copies the version with ETag `if_match` (`x-amz-copy-source-if-match`),
    /// then the conditional delete of that version. The version is also checked before the copy
    /// and on the copy's answer, for S3-compatible servers that ignore the copy's precondition.
    async fn move_object(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
        if_match: Option<&str>,
    ) -> Result<ObjectInfo, PortError> {
        let current = self.head(from_bucket, from_key).await?.etag;
        let etag = if_match.unwrap_or(&current).trim_matches('"').to_owned();
        let this_version = || PortError::NotFound(format!("this version of s3://{from_bucket}/{from_key}"));
        if current.trim_matches('"') != etag {
            return Err(this_version());
        }
        let info = self.copy_if(from_bucket, from_key, to_bucket, to_key, metadata, Some(&etag)).await?;
        if info.etag.trim_matches('"') != etag {
            return Err(this_version());
        }
        // False when a newer version landed under the key meanwhile: it stays, this one moved.
        self.delete_version(from_bucket, from_key, &etag).await?;
        Ok(info)
    }

    /// ListObjectsV2 with S3's own string prefix, `StartAfter` and `MaxKeys`: one request a
    /// page. (S3 answers at most 1,000 keys a request, the most a page asks for.)
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectPage, PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        let max_keys = clamp_page(max_keys);
        let out = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.filter(|a| *a >= prefix).map(str::to_owned))
            .max_keys(max_keys as i32)
            .send()
            .await
            .map_err(|e| port_error(&format!("listing {bucket}/{prefix}"), e))?;
        let objects: Vec<ObjectInfo> = out
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| {
                let key = o.key?;
                Some(ObjectInfo {
                    bucket: bucket.to_owned(),
                    size: o.size.unwrap_or_default().max(0) as u64,
                    etag: o.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_owned(),
                    last_modified: modified(o.last_modified),
                    metadata: Metadata::new(),
                    key,
                })
            })
            .collect();
        let truncated = out.is_truncated.unwrap_or(false);
        let next_after = truncated.then(|| objects.last().map(|o| o.key.clone())).flatten();
        Ok(ObjectPage { objects, next_after })
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, PortError> {
        let out = self.s3.list_buckets().send().await.map_err(|e| port_error("listing buckets", e))?;
        let mut buckets: Vec<BucketInfo> = out
            .buckets
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| {
                Some(BucketInfo {
                    name: b.name?,
                    created: b.creation_date.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), 0)),
                })
            })
            .collect();
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(buckets)
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, PortError> {
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let not_found = e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if not_found {
                    Ok(false)
                } else {
                    Err(port_error(&format!("checking bucket {bucket}"), e))
                }
            }
        }
    }
}

/// `object_store`'s credentials, asked of the SDK's standard chain and kept until five minutes
/// before they expire.
#[derive(Debug)]
pub struct ChainCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

#[async_trait]
impl CredentialProvider for ChainCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((cred, expiry)) = &*cached {
            if expiry.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300)) {
                return Ok(cred.clone());
            }
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic { store: "S3", source: Box::new(e) })?;
        let cred = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((cred.clone(), c.expiry()));
        Ok(cred)
    }
}
