//! SigV2 signatures, checked in constant time before s3s sees them.
//!
//! s3s compares SigV2 signatures with `!=`, which returns at the first byte that differs: how
//! long a refusal takes tells how much of a guessed signature was right. Here the signature is
//! computed as s3s computes it (the same string to sign) and compared in constant time, so a
//! wrong one is refused before s3s sees it, and s3s only ever compares signatures that are equal.
//!
//! The string to sign is SigV2's: method, `Content-MD5`, `Content-Type`, the `Date` (empty when
//! `x-amz-date` is sent) or, presigned, `Expires`, the `x-amz-*` headers, and the resource: the
//! virtual host's bucket, the path as sent, and the sub-resources S3 signs.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use hyper::{HeaderMap, Method};
use s3s::{s3_error, S3Result};
use subtle::ConstantTimeEq;

use super::host::LocalDomains;

/// The query parameters SigV2 signs, in the order it signs them (s3s's list).
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// How a SigV2 request is signed.
pub enum Signed<'a> {
    /// `Authorization: AWS <key id>:<signature>`.
    Header { key_id: &'a str, signature: &'a str },
    /// `?AWSAccessKeyId=&Expires=&Signature=`.
    Presigned { key_id: &'a str, signature: &'a str, expires: &'a str },
}

pub struct SigV2 {
    pub(crate) access_key_id: String,
    pub(crate) secret: String,
    pub(crate) domains: LocalDomains,
}

/// What of a request SigV2 signs.
pub struct Request<'a> {
    pub method: &'a Method,
    /// As sent (percent-encoded).
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
}

impl SigV2 {
    /// `Ok` if the request is signed with the configured key pair; `InvalidAccessKeyId` or
    /// `SignatureDoesNotMatch` otherwise.
    pub fn verify(&self, req: &Request<'_>, signed: &Signed<'_>) -> S3Result<()> {
        let (key_id, signature, expires) = match signed {
            Signed::Header { key_id, signature } => (*key_id, *signature, None),
            Signed::Presigned { key_id, signature, expires } => (*key_id, *signature, Some(*expires)),
        };
        if !bool::from(key_id.as_bytes().ct_eq(self.access_key_id.as_bytes())) {
            return Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records."
            ));
        }
        let provided = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| s3_error!(SignatureDoesNotMatch))?;
        let vh_bucket = req.host.and_then(|h| self.domains.bucket_of_host(h));
        let expected =
            hmac_sha1(self.secret.as_bytes(), string_to_sign(req, expires, vh_bucket.as_deref()).as_bytes());
        if bool::from(provided.as_slice().ct_eq(&expected)) {
            Ok(())
        } else {
            Err(s3_error!(SignatureDoesNotMatch))
        }
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac =
        <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().unwrap_or(""),
        _ => "",
    }
}

fn string_to_sign(req: &Request<'_>, expires: Option<&str>, vh_bucket: Option<&str>) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(req.method.as_str());
    s.push('\n');
    s.push_str(header(req.headers, "content-md5"));
    s.push('\n');
    s.push_str(header(req.headers, "content-type"));
    s.push('\n');
    match expires {
        Some(e) => s.push_str(e),
        None if req.headers.contains_key("x-amz-date") => {}
        None => s.push_str(header(req.headers, "date")),
    }
    s.push('\n');
    let mut amz: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in req.headers {
        let name = name.as_str();
        if !name.starts_with("x-amz-") {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        match amz.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value.trim()),
            None => amz.push((name.to_owned(), vec![value.trim()])),
        }
    }
    amz.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, values) in amz {
        s.push_str(&name);
        s.push(':');
        s.push_str(&values.join(","));
        s.push('\n');
    }
    if let Some(bucket) = vh_bucket {
        s.push('/');
        s.push_str(bucket);
    }
    s.push_str(req.path);
    let mut first = true;
    for name in SIGNED_SUBRESOURCES {
        let mut values = req.query.iter().filter(|(k, _)| k == name);
        let (Some((_, v)), None) = (values.next(), values.next()) else { continue };
        s.push(if first { '?' } else { '&' });
        first = false;
        s.push_str(name);
        if !v.is_empty() {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigv2() -> SigV2 {
        SigV2 {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            domains: LocalDomains::new(&["s3.amazonaws.com".to_string()]),
        }
    }

    /// AWS's examples ("Signing and authenticating REST requests"): an object GET, virtual
    /// hosted, and a presigned URL (whose published signature is wrong; this is the one for its
    /// string to sign, as s3s's own test has it).
    #[test]
    fn verifies_aws_documented_signatures() {
        let mut headers = HeaderMap::new();
        headers.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let req = Request {
            method: &Method::GET,
            path: "/photos/puppy.jpg",
            host: Some("awsexamplebucket1.s3.amazonaws.com"),
            headers: &headers,
            query: &[],
        };
        let key_id = "AKIAIOSFODNN7EXAMPLE";
        assert!(sigv2()
            .verify(&req, &Signed::Header { key_id, signature: "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=" })
            .is_ok());
        let wrong = Signed::Header { key_id, signature: "qgk2+6Sv9/oM7G3qLEjTH1a1l1h=" };
        assert_eq!(
            sigv2().verify(&req, &wrong).unwrap_err().code(),
            &s3s::S3ErrorCode::SignatureDoesNotMatch
        );
        let other = Signed::Header { key_id: "AKIAOTHER", signature: "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=" };
        assert_eq!(sigv2().verify(&req, &other).unwrap_err().code(), &s3s::S3ErrorCode::InvalidAccessKeyId);

        let headers = HeaderMap::new();
        let req = Request {
            method: &Method::GET,
            path: "/photos/puppy.jpg",
            host: Some("awsexamplebucket1.s3.amazonaws.com"),
            headers: &headers,
            query: &[],
        };
        let presigned =
            Signed::Presigned { key_id, signature: "1No4mq5ETf02z8aet9voy6gui6E=", expires: "1175139620" };
        assert!(sigv2().verify(&req, &presigned).is_ok());
    }
}
