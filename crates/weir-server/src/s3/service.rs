//! The S3 operations, each mapped onto the object-store port.
//!
//! Every request names its bucket and key before anything is touched: keys that could leave
//! their bucket (`..`, absolute, backslash, NUL, over-long) are refused with `InvalidArgument` or
//! `KeyTooLongError`, unknown buckets with `NoSuchBucket`. Every object this endpoint creates
//! (PUT, POST, copy, completed multipart upload) goes through `ingest::object_created`, which
//! emits the S3 event for matching sources and records the job, exactly as `weir put` does.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, S3};
use weir_core::keys::{validate_bucket, validate_key, KeyError};
use weir_core::Config;
use weir_pipeline::{ingest, Ports};
use weir_ports::{ObjectInfo, ObjectPages, PortError, MAX_PAGE_KEYS};

use super::body::{self, Data, Received};
use super::multipart::{Manifest, Staging, MAX_PARTS};

/// The largest page ListObjects returns, as on S3.
const MAX_KEYS: i32 = 1000;

/// The S3 service over weir's ports.
#[derive(Clone)]
pub struct WeirS3 {
    pub(crate) ports: Ports,
    pub(crate) config: Arc<Config>,
    pub(crate) staging: Staging,
    pub(crate) spool: std::path::PathBuf,
    pub(crate) max_object_bytes: u64,
    pub(crate) idle_timeout: Duration,
    /// Serve HTML, SVG and XML objects inline (`server.inline_active_content`).
    pub(crate) inline_active_content: bool,
}

/// `KeyTooLongError` for over-long keys, `InvalidArgument` for every other unsafe key.
pub fn check_key(key: &str) -> S3Result<()> {
    // A folder marker (`csv/`): the folder's own name must be a key.
    let key = match key.strip_suffix('/') {
        Some(folder) if !folder.is_empty() => folder,
        _ => key,
    };
    match validate_key(key) {
        Ok(()) => Ok(()),
        Err(KeyError::TooLong(n)) => {
            Err(s3_error!(KeyTooLongError, "Your key is too long ({n} bytes; the limit is 1024)."))
        }
        Err(e @ KeyError::SegmentTooLong(_)) => Err(s3_error!(KeyTooLongError, "{e}")),
        Err(e) => Err(s3_error!(InvalidArgument, "{e}")),
    }
}

fn port_error(e: PortError) -> S3Error {
    match e {
        PortError::NotFound(_) => s3_error!(NoSuchKey, "The specified key does not exist."),
        PortError::NoSuchBucket(_) => s3_error!(NoSuchBucket, "The specified bucket does not exist."),
        PortError::Invalid(m) => s3_error!(InvalidArgument, "{m}"),
        PortError::Conflict(m) => s3_error!(OperationAborted, "{m}"),
        e @ PortError::Unavailable { .. } => {
            tracing::error!(error = %e, "object store failed");
            s3_error!(InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::from(SystemTime::from(t))
}

/// Where an object's `Content-Type` is kept: beside its user metadata, under a name users may
/// not give theirs (the port has no field for it, and on S3 this is an `x-amz-meta-` header).
pub const CONTENT_TYPE_META: &str = "weir-content-type";

/// The user metadata of a request (names lower-cased) with its `Content-Type`.
pub(crate) fn to_metadata(
    m: Option<s3s::dto::Metadata>,
    content_type: Option<&str>,
) -> S3Result<weir_ports::Metadata> {
    let mut metadata: weir_ports::Metadata =
        m.map(|m| m.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()).unwrap_or_default();
    if metadata.contains_key(CONTENT_TYPE_META) {
        return Err(s3_error!(InvalidArgument, "x-amz-meta-{CONTENT_TYPE_META} is reserved."));
    }
    if let Some(ct) = content_type.map(str::trim).filter(|ct| !ct.is_empty()) {
        metadata.insert(CONTENT_TYPE_META.to_owned(), ct.to_owned());
    }
    Ok(metadata)
}

/// The user metadata to return (without the stored content type).
fn from_metadata(m: &weir_ports::Metadata) -> Option<s3s::dto::Metadata> {
    let user: s3s::dto::Metadata =
        m.iter().filter(|(k, _)| *k != CONTENT_TYPE_META).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!user.is_empty()).then_some(user)
}

/// The stored content type, or S3's default for objects uploaded without one.
fn content_type(m: &weir_ports::Metadata) -> String {
    m.get(CONTENT_TYPE_META).cloned().unwrap_or_else(|| "binary/octet-stream".to_owned())
}

/// Content a browser would run on the endpoint's origin when opened inline: HTML, XML (XHTML,
/// SVG, XSLT) and scripts.
fn is_active_content(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/html"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "text/javascript"
            | "application/javascript"
    ) || essence.ends_with("+xml")
}

/// Percent-encoding for `encoding-type=url` listings: everything but unreserved characters and
/// `/`, so both `unquote` and `unquote_plus` on the client give the key back.
const URL_ENCODE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

impl WeirS3 {
    pub(crate) async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        if let Err(e) = validate_bucket(bucket) {
            return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid: {e}"));
        }
        match self.ports.objects.bucket_exists(bucket).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(s3_error!(NoSuchBucket, "The specified bucket does not exist.")),
            Err(e) => Err(port_error(e)),
        }
    }

    async fn require_object(&self, bucket: &str, key: &str) -> S3Result<ObjectInfo> {
        check_key(key)?;
        self.require_bucket(bucket).await?;
        self.ports.objects.head(bucket, key).await.map_err(port_error)
    }

    /// Emits the object's event and returns the job id, if a pipeline took it.
    async fn created(&self, info: &ObjectInfo, event: &str) -> S3Result<Option<String>> {
        match ingest::object_created(&self.ports, &self.config, info, event).await {
            Ok(job) => Ok(job.map(|j| j.job_id.to_string())),
            Err(e) => {
                // The object is stored; without its event no job runs until the next
                // reconciliation, so tell the client to try again.
                tracing::error!(bucket = %info.bucket, key = %info.key, error = %e, "queueing the object's event failed");
                Err(s3_error!(
                    ServiceUnavailable,
                    "The object was stored but could not be queued; retry the upload."
                ))
            }
        }
    }

    /// PutObject and PostObject: receive the body, store it, emit the event.
    async fn store_upload(&self, upload: Upload<'_>, event: &str) -> S3Result<(ObjectInfo, Option<String>)> {
        let Upload { bucket, key, body, content_length, content_md5, metadata } = upload;
        check_key(key)?;
        self.require_bucket(bucket).await?;
        let limits = body::Limits { max_bytes: self.max_object_bytes, idle: self.idle_timeout };
        let received = body::receive(body, content_length, &limits, &self.spool, true).await?;
        body::check_content_md5(content_md5, &received)?;
        self.store_received(bucket, key, received, metadata, event).await
    }

    /// Stores a received body under `key` and emits the object's event.
    pub(crate) async fn store_received(
        &self,
        bucket: &str,
        key: &str,
        received: Received,
        metadata: weir_ports::Metadata,
        event: &str,
    ) -> S3Result<(ObjectInfo, Option<String>)> {
        let Received { data, md5, .. } = received;
        let info = match data {
            Data::Memory(bytes) => self.ports.objects.put(bucket, key, bytes, metadata).await,
            Data::File(spool) => {
                let result = self
                    .ports
                    .objects
                    .put_file_with_etag(bucket, key, spool.path(), metadata, hex::encode(md5))
                    .await;
                if result.is_ok() {
                    spool.keep();
                }
                result
            }
        }
        .map_err(port_error)?;
        let job = self.created(&info, event).await?;
        Ok((info, job))
    }
}

/// What PutObject and PostObject have in common.
struct Upload<'a> {
    bucket: &'a str,
    key: &'a str,
    body: Option<StreamingBlob>,
    content_length: Option<i64>,
    content_md5: Option<&'a str>,
    metadata: weir_ports::Metadata,
}

/// The [`Upload`] of a PutObject or PostObject input: s3s makes them two types with the same
/// fields.
macro_rules! upload_of {
    ($input:ident) => {
        Upload {
            bucket: &$input.bucket,
            key: &$input.key,
            body: $input.body,
            content_length: $input.content_length,
            content_md5: $input.content_md5.as_deref(),
            metadata: to_metadata($input.metadata, $input.content_type.as_deref())?,
        }
    };
}

/// A ListObjects or ListObjectsV2 output of `page` (s3s makes them two types with these fields),
/// with the version's own fields; keys and prefixes URL-encoded when `url`.
macro_rules! listing {
    ($output:ident, $input:ident, $page:ident, $url:ident, { $($field:ident: $value:expr),* $(,)? }) => {
        $output {
            $($field: $value,)*
            name: Some($input.bucket),
            prefix: Some(encode($input.prefix.unwrap_or_default(), $url)),
            delimiter: $input.delimiter.map(|d| encode(d, $url)),
            max_keys: Some($page.max_keys),
            is_truncated: Some($page.is_truncated),
            contents: Some($page.objects($url)),
            common_prefixes: Some($page.prefixes($url)),
            encoding_type: $input.encoding_type,
            ..Default::default()
        }
    };
}

fn with_job<T>(output: T, job: Option<String>) -> S3Response<T> {
    let mut resp = S3Response::new(output);
    if let Some(job) = job.and_then(|j| j.parse().ok()) {
        resp.headers.insert("x-weir-job-id", job);
    }
    resp
}

#[async_trait::async_trait]
impl S3 for WeirS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self.ports.objects.list_buckets().await.map_err(port_error)?;
        let buckets = buckets
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: b.created.map(timestamp),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), ..Default::default() }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = &req.input.bucket;
        if let Err(e) = validate_bucket(bucket) {
            return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid: {e}"));
        }
        if self.ports.objects.bucket_exists(bucket).await.map_err(port_error)? {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        self.ports.objects.create_bucket(bucket).await.map_err(port_error)?;
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{bucket}")) }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let (info, job) = self.store_upload(upload_of!(input), "Put").await?;
        let output = PutObjectOutput {
            e_tag: Some(ETag::Strong(info.etag)),
            size: i64::try_from(info.size).ok(),
            ..Default::default()
        };
        Ok(with_job(output, job))
    }

    async fn post_object(&self, req: S3Request<PostObjectInput>) -> S3Result<S3Response<PostObjectOutput>> {
        let input = req.input;
        let (info, job) = self.store_upload(upload_of!(input), "Post").await?;
        let output = PostObjectOutput {
            e_tag: Some(ETag::Strong(info.etag)),
            size: i64::try_from(info.size).ok(),
            ..Default::default()
        };
        Ok(with_job(output, job))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let head = self.require_object(&input.bucket, &input.key).await?;
        let (range, content_range) = match &input.range {
            None => (0..head.size, None),
            Some(r) => {
                let r = r.check(head.size)?;
                let content_range = format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), head.size);
                (r, Some(content_range))
            }
        };
        let (info, stream) = if content_range.is_some() {
            self.ports.objects.get_range(&input.bucket, &input.key, range.clone()).await
        } else {
            self.ports.objects.get(&input.bucket, &input.key).await
        }
        .map_err(port_error)?;
        // Without a range, the object as read now (it may have been replaced since the HEAD).
        let length = if content_range.is_some() { range.end - range.start } else { info.size };
        let frames = stream.map_ok(hyper::body::Frame::data);
        let body = s3s::Body::http_body_unsync(http_body_util::StreamBody::new(frames));
        let stored_type = content_type(&info.metadata);
        let shown_type = input.response_content_type.clone().unwrap_or_else(|| stored_type.clone());
        let output = GetObjectOutput {
            body: Some(StreamingBlob::from(body)),
            content_length: i64::try_from(length).ok(),
            content_range,
            content_type: Some(stored_type),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(info.etag)),
            last_modified: Some(timestamp(info.last_modified)),
            metadata: from_metadata(&info.metadata),
            ..Default::default()
        };
        let mut resp = S3Response::new(output);
        // Set last, over any response-* override: no sniffing, and an uploaded page opened from
        // a presigned URL is downloaded rather than run on the endpoint's origin.
        resp.headers.insert(
            hyper::header::X_CONTENT_TYPE_OPTIONS,
            hyper::header::HeaderValue::from_static("nosniff"),
        );
        if is_active_content(&shown_type) && !self.inline_active_content {
            resp.headers.insert(
                hyper::header::CONTENT_DISPOSITION,
                hyper::header::HeaderValue::from_static("attachment"),
            );
        }
        Ok(resp)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let info = self.require_object(&input.bucket, &input.key).await?;
        let output = HeadObjectOutput {
            content_length: i64::try_from(info.size).ok(),
            content_type: Some(content_type(&info.metadata)),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(info.etag)),
            last_modified: Some(timestamp(info.last_modified)),
            metadata: from_metadata(&info.metadata),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        self.ports.objects.delete(&input.bucket, &input.key).await.map_err(port_error)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket).await?;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "A DeleteObjects request names at most 1000 keys."));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for object in input.delete.objects {
            let outcome = match check_key(&object.key) {
                Err(e) => Err(e),
                Ok(()) => self.ports.objects.delete(&input.bucket, &object.key).await.map_err(port_error),
            };
            match outcome {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject { key: Some(object.key), ..Default::default() }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: e.message().map(str::to_owned),
                    version_id: None,
                }),
            }
        }
        let output = DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket: from_bucket, key: from_key, .. } = &input.copy_source else {
            return Err(s3_error!(NotImplemented, "Only bucket/key copy sources are supported."));
        };
        check_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        self.require_object(from_bucket, from_key).await?;
        let replace =
            input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let metadata =
            if replace { Some(to_metadata(input.metadata, input.content_type.as_deref())?) } else { None };
        if !replace && **from_bucket == *input.bucket && **from_key == *input.key {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata."
            ));
        }
        let info = self
            .ports
            .objects
            .copy(from_bucket, from_key, &input.bucket, &input.key, metadata)
            .await
            .map_err(port_error)?;
        let job = self.created(&info, "Copy").await?;
        let output = CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(info.etag.clone())),
                last_modified: Some(timestamp(info.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(with_job(output, job))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let page = self
            .list_page(
                &input.bucket,
                input.prefix.as_deref().unwrap_or(""),
                input.delimiter.as_deref(),
                input.marker.as_deref(),
                input.max_keys,
            )
            .await?;
        let url = input.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
        let output = listing!(ListObjectsOutput, input, page, url, {
            marker: Some(encode(input.marker.unwrap_or_default(), url)),
            next_marker: page.is_truncated.then(|| page.last.clone()).flatten().map(|m| encode(m, url)),
        });
        Ok(S3Response::new(output))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let token = match &input.continuation_token {
            None => None,
            Some(t) => {
                Some(hex::decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                    s3_error!(InvalidArgument, "The continuation token provided is incorrect.")
                })?)
            }
        };
        let after = match (token.as_deref(), input.start_after.as_deref()) {
            (Some(t), Some(s)) => Some(t.max(s)),
            (t, s) => t.or(s),
        };
        let page = self
            .list_page(
                &input.bucket,
                input.prefix.as_deref().unwrap_or(""),
                input.delimiter.as_deref(),
                after,
                input.max_keys,
            )
            .await?;
        let url = input.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
        let output = listing!(ListObjectsV2Output, input, page, url, {
            start_after: input.start_after.map(|s| encode(s, url)),
            continuation_token: input.continuation_token,
            next_continuation_token: page.is_truncated.then(|| page.last.as_ref().map(hex::encode)).flatten(),
            key_count: Some(page.count()),
        });
        Ok(S3Response::new(output))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        let manifest = Manifest {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            metadata: to_metadata(input.metadata, input.content_type.as_deref())?,
            initiated: chrono::Utc::now(),
        };
        let upload_id = self.staging.create(&manifest).await?;
        let output = CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        if !(1..=MAX_PARTS).contains(&input.part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive."
            ));
        }
        self.staging.manifest(&input.upload_id, &input.bucket, &input.key).await?;
        let dir = self.staging.dir(&input.upload_id)?;
        // What is already staged (other parts) counts against the object's limit.
        let staged: u64 = self
            .staging
            .parts(&dir)
            .await?
            .iter()
            .filter(|p| p.number != input.part_number)
            .map(|p| p.size)
            .sum();
        let room = self.max_object_bytes.saturating_sub(staged);
        let limits = body::Limits { max_bytes: room, idle: self.idle_timeout };
        let received = body::receive(input.body, input.content_length, &limits, &dir, false).await?;
        body::check_content_md5(input.content_md5.as_deref(), &received)?;
        let md5 = received.md5_hex();
        let Data::File(spool) = received.data else { unreachable!("parts are always spooled") };
        self.staging.store_part(&dir, input.part_number, spool.path(), &md5).await?;
        spool.keep();
        Ok(S3Response::new(UploadPartOutput { e_tag: Some(ETag::Strong(md5)), ..Default::default() }))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        self.staging.manifest(&input.upload_id, &input.bucket, &input.key).await?;
        let dir = self.staging.dir(&input.upload_id)?;
        let marker = input.part_number_marker.unwrap_or(0);
        let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let all: Vec<_> = self.staging.parts(&dir).await?.into_iter().filter(|p| p.number > marker).collect();
        let truncated = all.len() > max;
        let parts: Vec<Part> = all
            .into_iter()
            .take(max)
            .map(|p| Part {
                part_number: Some(p.number),
                size: i64::try_from(p.size).ok(),
                e_tag: Some(ETag::Strong(p.etag)),
                last_modified: Some(timestamp(p.modified)),
                ..Default::default()
            })
            .collect();
        let output = ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts.last().and_then(|p| p.part_number),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        let manifest = self.staging.manifest(&input.upload_id, &input.bucket, &input.key).await?;
        let dir = self.staging.dir(&input.upload_id)?;
        let requested: Vec<(i32, Option<String>)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.part_number.unwrap_or(0), p.e_tag.map(ETag::into_value)))
            .collect();
        let (file, _size, etag) = self.staging.assemble(&dir, &requested, self.max_object_bytes).await?;
        let info = self
            .ports
            .objects
            .put_file_with_etag(&input.bucket, &input.key, &file, manifest.metadata, etag)
            .await
            .map_err(port_error)?;
        self.staging.remove(&dir).await;
        let job = self.created(&info, "CompleteMultipartUpload").await?;
        let output = CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(info.etag)),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            ..Default::default()
        };
        Ok(with_job(output, job))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.staging.manifest(&input.upload_id, &input.bucket, &input.key).await?;
        let dir = self.staging.dir(&input.upload_id)?;
        self.staging.remove(&dir).await;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }
}

fn encode(s: String, url: bool) -> String {
    if url {
        percent_encoding::utf8_percent_encode(&s, URL_ENCODE).to_string()
    } else {
        s
    }
}

/// One page of a listing: objects and common prefixes, in key order.
struct Page {
    entries: Vec<Entry>,
    is_truncated: bool,
    /// The last key or prefix on the page (where the next page starts after).
    last: Option<String>,
    max_keys: i32,
}

enum Entry {
    Object(ObjectInfo),
    Prefix(String),
}

impl Page {
    fn count(&self) -> i32 {
        self.entries.len() as i32
    }

    fn objects(&self, url: bool) -> Vec<Object> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Object(o) => Some(Object {
                    key: Some(encode(o.key.clone(), url)),
                    size: i64::try_from(o.size).ok(),
                    e_tag: Some(ETag::Strong(o.etag.clone())),
                    last_modified: Some(timestamp(o.last_modified)),
                    storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                    ..Default::default()
                }),
                Entry::Prefix(_) => None,
            })
            .collect()
    }

    fn prefixes(&self, url: bool) -> Vec<CommonPrefix> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Prefix(p) => Some(CommonPrefix { prefix: Some(encode(p.clone(), url)) }),
                Entry::Object(_) => None,
            })
            .collect()
    }
}

impl WeirS3 {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: Option<i32>,
    ) -> S3Result<Page> {
        self.require_bucket(bucket).await?;
        let max_keys = max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS);
        // The store's pages, from where this page starts: never more than a store page and
        // this page's entries in memory, however large the prefix (keys a common prefix rolls
        // up are read and skipped, page by page).
        let mut pages = ObjectPages::new(self.ports.objects.as_ref(), bucket, prefix, MAX_PAGE_KEYS)
            .starting_after(after.map(str::to_owned));
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut entries = Vec::new();
        let mut is_truncated = false;
        let mut last_prefix: Option<String> = None;
        'pages: while let Some(objects) = pages.next().await.map_err(port_error)? {
            for object in objects {
                // Keys come sorted, so the keys a common prefix rolls up are contiguous.
                let entry = match delimiter.and_then(|d| object.key[prefix.len()..].find(d).map(|i| (d, i))) {
                    Some((d, i)) => {
                        let common = object.key[..prefix.len() + i + d.len()].to_owned();
                        if last_prefix.as_deref() == Some(common.as_str()) {
                            continue;
                        }
                        last_prefix = Some(common.clone());
                        Entry::Prefix(common)
                    }
                    None => Entry::Object(object),
                };
                let name = match &entry {
                    Entry::Object(o) => o.key.as_str(),
                    Entry::Prefix(p) => p.as_str(),
                };
                if after.is_some_and(|a| name <= a) {
                    continue;
                }
                if entries.len() == max_keys as usize {
                    is_truncated = true;
                    break 'pages;
                }
                entries.push(entry);
            }
        }
        let last = entries.last().map(|e| match e {
            Entry::Object(o) => o.key.clone(),
            Entry::Prefix(p) => p.clone(),
        });
        Ok(Page { entries, is_truncated, last, max_keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_keys_get_s3_error_codes() {
        assert!(check_key("raw/sales.csv").is_ok());
        assert!(check_key("csv/").is_ok() && check_key("raw/2024/").is_ok(), "folder markers");
        for bad in ["../x", "raw/../../etc/passwd", "/abs", "a\\b", "a\0b", "a//b", "a//", "/", "../"] {
            assert_eq!(check_key(bad).unwrap_err().code(), &s3s::S3ErrorCode::InvalidArgument, "{bad:?}");
        }
        assert_eq!(check_key(&"k".repeat(1025)).unwrap_err().code(), &s3s::S3ErrorCode::KeyTooLongError);
        let segment = format!("raw/{}.csv", "a".repeat(300));
        assert_eq!(check_key(&segment).unwrap_err().code(), &s3s::S3ErrorCode::KeyTooLongError);
    }

    #[test]
    fn the_content_type_is_kept_apart_from_user_metadata() {
        let user = s3s::dto::Metadata::from([("Owner".to_string(), "ann".to_string())]);
        let m = to_metadata(Some(user), Some("text/csv")).unwrap();
        assert_eq!(content_type(&m), "text/csv");
        assert_eq!(
            from_metadata(&m).unwrap().into_iter().collect::<Vec<_>>(),
            [("owner".into(), "ann".into())]
        );
        assert_eq!(content_type(&to_metadata(None, None).unwrap()), "binary/octet-stream");
        let forged = s3s::dto::Metadata::from([(CONTENT_TYPE_META.to_string(), "text/html".to_string())]);
        assert_eq!(to_metadata(Some(forged), None).unwrap_err().code(), &s3s::S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn pages_and_images_that_run_script_are_active() {
        for active in
            ["text/html", "TEXT/HTML; charset=utf-8", "image/svg+xml", "application/xhtml+xml", "text/xml"]
        {
            assert!(is_active_content(active), "{active}");
        }
        for passive in ["text/csv", "application/json", "binary/octet-stream", "image/png", "text/plain"] {
            assert!(!is_active_content(passive), "{passive}");
        }
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(encode("raw/a b+c%.csv".into(), true), "raw/a%20b%2Bc%25.csv");
        assert_eq!(encode("raw/a b".into(), false), "raw/a b");
    }
}
