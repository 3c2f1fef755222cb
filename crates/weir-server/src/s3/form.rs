//! Browser form uploads (S3 POST Object), checked before the file is read and streamed to disk.
//!
//! s3s handles these by reading the file into memory first, then checking the policy (and,
//! without a signature, refusing only then): one unsigned 200 MB post held 200 MB. Here the form
//! is parsed as a stream (`multer`): its fields (everything before the `file` part, a few KiB,
//! which must arrive within the idle timeout) are read, the policy's SigV4 signature and its
//! conditions are checked, and only then is the file read, through the same bounded, hashed,
//! spooled path as a PutObject body.
//!
//! Policies must be signed with SigV4 (`x-amz-signature`), as boto3's `generate_presigned_post`
//! and the AWS SDKs do; a SigV2 `signature` field is refused.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use hmac::{KeyInit, Mac};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, LOCATION};
use hyper::{Request, Response, StatusCode};
use s3s::dto::TimestampFormat;
use s3s::host::S3Host;
use s3s::post_policy::{PostPolicy, PostPolicyCondition};
use s3s::{s3_error, Body, S3Error, S3Result};
use subtle::ConstantTimeEq;

use super::body::{self, Limits};
use super::front::error_response;
use super::host::LocalDomains;
use super::service::{check_key, to_metadata, WeirS3};
use crate::credentials::Credentials;

/// The form's fields other than the file: at most this many bytes and fields.
const MAX_FIELDS_BYTES: usize = 64 << 10;
const MAX_FIELDS: usize = 100;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub struct FormUploads {
    pub(crate) weir: WeirS3,
    pub(crate) access_key_id: String,
    pub(crate) secret: String,
    pub(crate) domains: LocalDomains,
    pub(crate) idle: Duration,
    pub(crate) max_object_bytes: u64,
}

impl FormUploads {
    pub fn new(
        weir: WeirS3,
        credentials: &Credentials,
        domains: LocalDomains,
        idle: Duration,
    ) -> FormUploads {
        let max_object_bytes = weir.max_object_bytes;
        FormUploads {
            weir,
            access_key_id: credentials.access_key_id.clone(),
            secret: credentials.secret_access_key.expose().to_owned(),
            domains,
            idle,
            max_object_bytes,
        }
    }

    /// Answers a `POST` with a `multipart/form-data` body.
    pub async fn upload(&self, req: Request<Incoming>) -> Response<Body> {
        match self.try_upload(req).await {
            Ok(resp) => resp,
            Err(e) => error_response(e),
        }
    }

    async fn try_upload(&self, req: Request<Incoming>) -> S3Result<Response<Body>> {
        let bucket = self.bucket_of(&req)?;
        let announced = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > self.max_object_bytes.saturating_add(MAX_FIELDS_BYTES as u64)) {
            return Err(too_large(self.max_object_bytes));
        }
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            s3_error!(
                MalformedPOSTRequest,
                "The body of your POST request is not well-formed multipart/form-data."
            )
        })?;
        let stream = http_body_util::BodyDataStream::new(req.into_body());
        let constraints = multer::Constraints::new().size_limit(
            multer::SizeLimit::new()
                .per_field(MAX_FIELDS_BYTES as u64)
                .for_field("file", self.max_object_bytes.saturating_add(1)),
        );
        let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);

        // The fields, before anything is known about who sends them: bounded in size and time.
        let (fields, file) =
            tokio::time::timeout(self.idle, read_fields(&mut form)).await.map_err(|_| {
                s3_error!(RequestTimeout, "The form's fields did not arrive within the idle timeout.")
            })??;
        let policy = self.check_signature(&fields)?;
        let range = check_policy(&policy, &fields, &bucket)?;

        let file_name = file.file_name().unwrap_or_default().to_owned();
        let key = fields
            .get("key")
            .ok_or_else(|| s3_error!(InvalidArgument, "Bucket POST must contain a field named 'key'."))?
            .replace("${filename}", &file_name);
        check_key(&key)?;
        self.weir.require_bucket(&bucket).await?;

        let max_bytes = range.map_or(self.max_object_bytes, |(_, max)| max.min(self.max_object_bytes));
        let limits = Limits { max_bytes, idle: self.weir.idle_timeout };
        let chunks =
            std::pin::pin!(file.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>));
        let received = body::receive_stream(chunks, None, &limits, &self.weir.spool, true).await?;
        if let Some((min, _)) = range {
            if received.size < min {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size."
                ));
            }
        }
        let user = fields
            .0
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("x-amz-meta-").map(|m| (m.to_owned(), v.clone())))
            .collect();
        let metadata = to_metadata(Some(user), fields.get("content-type"))?;
        let (info, job) = self.weir.store_received(&bucket, &key, received, metadata, "Post").await?;
        Ok(answer(&fields, &bucket, &info.key, &info.etag, job))
    }

    /// The bucket the form posts to: `/bucket` (path style) or `bucket.<domain>/`.
    fn bucket_of(&self, req: &Request<Incoming>) -> S3Result<String> {
        let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy().into_owned();
        let path = path.trim_start_matches('/');
        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
        let vh = host
            .and_then(|h| self.domains.parse_host_header(h).ok())
            .and_then(|v| v.bucket().map(str::to_owned));
        let bucket = match vh {
            Some(b) if path.is_empty() => b,
            Some(_) => {
                return Err(s3_error!(MethodNotAllowed, "POST uploads go to the bucket, not to a key."))
            }
            None => match path.trim_end_matches('/') {
                "" => return Err(s3_error!(MethodNotAllowed, "POST uploads go to a bucket.")),
                p if p.contains('/') => {
                    return Err(s3_error!(MethodNotAllowed, "POST uploads go to the bucket, not to a key."))
                }
                p => p.to_owned(),
            },
        };
        Ok(bucket)
    }

    /// The policy, once its SigV4 signature is checked against the configured key.
    fn check_signature(&self, fields: &Fields) -> S3Result<PostPolicy> {
        let (Some(policy_b64), Some(signature)) = (fields.get("policy"), fields.get("x-amz-signature"))
        else {
            return Err(if fields.get("signature").is_some() {
                s3_error!(
                    AccessDenied,
                    "SigV2 form uploads are not accepted; sign the policy with SigV4 (x-amz-signature)."
                )
            } else {
                s3_error!(AccessDenied, "A form upload needs a policy signed with SigV4 (fields policy, x-amz-signature, x-amz-credential, x-amz-date, x-amz-algorithm).")
            });
        };
        if fields.get("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(s3_error!(InvalidArgument, "x-amz-algorithm must be AWS4-HMAC-SHA256."));
        }
        let credential = fields.get("x-amz-credential").unwrap_or_default();
        let parts: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, service, "aws4_request"] = parts[..] else {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-credential is not KEY/DATE/REGION/SERVICE/aws4_request."
            ));
        };
        let amz_date = fields.get("x-amz-date").unwrap_or_default();
        if amz_date.len() != 16 || !amz_date.starts_with(date) {
            return Err(s3_error!(SignatureDoesNotMatch, "x-amz-date does not match the credential's date."));
        }
        if !bool::from(key_id.as_bytes().ct_eq(self.access_key_id.as_bytes())) {
            return Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records."
            ));
        }
        let expected = hex::encode(sign_policy(&self.secret, date, region, service, policy_b64));
        if !bool::from(expected.as_bytes().ct_eq(signature.to_ascii_lowercase().as_bytes())) {
            return Err(s3_error!(SignatureDoesNotMatch));
        }
        let policy = PostPolicy::from_base64(policy_b64)
            .map_err(|e| s3_error!(InvalidPolicyDocument, "Invalid Policy: {e}"))?;
        for field in ["x-amz-date", "x-amz-credential", "x-amz-algorithm"] {
            let signed = policy.conditions.iter().any(|c| {
                matches!(c, PostPolicyCondition::Eq { field: f, value } if f == field && Some(value.as_str()) == fields.get(field))
            });
            if !signed {
                return Err(s3_error!(
                    AccessDenied,
                    "Invalid according to Policy: the policy must fix {field}."
                ));
            }
        }
        Ok(policy)
    }
}

/// The form's fields, names lower-cased, in order.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads the fields up to the `file` part, which it returns unread.
async fn read_fields(form: &mut multer::Multipart<'static>) -> S3Result<(Fields, multer::Field<'static>)> {
    let mut fields = Vec::new();
    let mut total = 0usize;
    loop {
        let field = form.next_field().await.map_err(malformed)?.ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "POST requires exactly one file upload per request (a field named 'file')."
            )
        })?;
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            return Ok((Fields(fields), field));
        }
        let value = field.text().await.map_err(malformed)?;
        total += name.len() + value.len();
        if total > MAX_FIELDS_BYTES || fields.len() >= MAX_FIELDS {
            return Err(s3_error!(
                MaxPostPreDataLengthExceededError,
                "Your POST request fields preceding the upload file were too large."
            ));
        }
        fields.push((name, value));
    }
}

fn malformed(e: multer::Error) -> S3Error {
    match e {
        multer::Error::FieldSizeExceeded { field_name, .. } if field_name.as_deref() == Some("file") => {
            too_large(0)
        }
        multer::Error::FieldSizeExceeded { .. } => s3_error!(
            MaxPostPreDataLengthExceededError,
            "Your POST request fields preceding the upload file were too large."
        ),
        other => s3_error!(
            MalformedPOSTRequest,
            "The body of your POST request is not well-formed multipart/form-data: {other}"
        ),
    }
}

fn too_large(_limit: u64) -> S3Error {
    s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
}

/// SigV4 over a POST policy: HMAC-SHA256 of the base64 policy with the derived signing key.
fn sign_policy(secret: &str, date: &str, region: &str, service: &str, policy_b64: &str) -> [u8; 32] {
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hmac_sha256(&key, policy_b64.as_bytes())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks the policy's expiration and conditions against the fields (the file's size is checked
/// while it is read); returns its content-length-range. As on S3, every field but the exempt
/// ones must be named by a condition.
fn check_policy(policy: &PostPolicy, fields: &Fields, bucket: &str) -> S3Result<Option<(u64, u64)>> {
    let mut epoch = Vec::new();
    let _ = policy.expiration.format(TimestampFormat::EpochSeconds, &mut epoch);
    let expires = std::str::from_utf8(&epoch).ok().and_then(|s| s.split('.').next()?.parse::<i64>().ok());
    if expires.is_none_or(|t| t <= chrono::Utc::now().timestamp()) {
        return Err(s3_error!(AccessDenied, "Invalid according to Policy: Policy expired."));
    }
    let value = |field: &str| -> Option<Cow<'_, str>> {
        if field == "bucket" {
            Some(Cow::Borrowed(bucket))
        } else {
            fields.get(field).map(Cow::Borrowed)
        }
    };
    if fields.get("bucket").is_some_and(|b| b != bucket) {
        return Err(s3_error!(
            AccessDenied,
            "Invalid according to Policy: the bucket field is not the bucket posted to."
        ));
    }
    let mut range = None;
    for condition in &policy.conditions {
        let failed = match condition {
            PostPolicyCondition::Eq { field, value: expected } => {
                value(field).as_deref() != Some(expected.as_str())
            }
            PostPolicyCondition::StartsWith { field, prefix } => {
                !value(field).as_deref().unwrap_or("").starts_with(prefix.as_str())
            }
            PostPolicyCondition::ContentLengthRange { min, max } => {
                range = Some((*min, *max));
                false
            }
        };
        if failed {
            return Err(s3_error!(
                AccessDenied,
                "Invalid according to Policy: Policy Condition failed: {condition:?}"
            ));
        }
    }
    for (name, _) in &fields.0 {
        let exempt = matches!(name.as_str(), "x-amz-signature" | "file" | "submit" | "policy")
            || name.starts_with("x-ignore-");
        let named = policy.conditions.iter().any(|c| match c {
            PostPolicyCondition::Eq { field, .. } | PostPolicyCondition::StartsWith { field, .. } => {
                field == name
            }
            PostPolicyCondition::ContentLengthRange { .. } => false,
        });
        if !exempt && !named {
            return Err(s3_error!(AccessDenied, "Invalid according to Policy: Extra input fields: {name}"));
        }
    }
    Ok(range)
}

/// The answer S3 gives: a redirect, or the status the form asked for (204 by default).
fn answer(fields: &Fields, bucket: &str, key: &str, etag: &str, job: Option<String>) -> Response<Body> {
    let location = format!("/{bucket}/{key}");
    let (status, body) = if let Some(to) =
        fields.get("success_action_redirect").or_else(|| fields.get("redirect"))
    {
        let sep = if to.contains('?') { '&' } else { '?' };
        let q = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let url = format!("{to}{sep}bucket={}&key={}&etag={}", q(bucket), q(key), q(&format!("\"{etag}\"")));
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&url) {
            resp.headers_mut().insert(LOCATION, v);
        }
        return resp;
    } else {
        match fields.get("success_action_status") {
            Some("200") => (StatusCode::OK, Bytes::new()),
            Some("201") => {
                let e = xml_escape;
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>\"{}\"</ETag></PostResponse>",
                    e(&location), e(bucket), e(key), e(etag)
                );
                (StatusCode::CREATED, Bytes::from(xml))
            }
            _ => (StatusCode::NO_CONTENT, Bytes::new()),
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if status == StatusCode::CREATED {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        h.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(LOCATION, v);
    }
    if let Some(v) = job.and_then(|j| HeaderValue::from_str(&j).ok()) {
        h.insert("x-weir-job-id", v);
    }
    resp
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's "Example: Browser-Based Upload using HTTP POST (Using AWS Signature
    /// Version 4)": its policy, secret and signature.
    #[test]
    fn signs_a_policy_as_aws_documents() {
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            hex::encode(sign_policy(secret, "20151229", "us-east-1", "s3", policy)),
            "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
        );
    }
}
