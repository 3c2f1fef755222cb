//! What the S3 endpoint decides before s3s sees a request.
//!
//! s3s speaks the protocol, but a few of its behaviours are unsafe for a server left running and
//! cannot be configured away, so this layer answers first:
//!
//! * **Form uploads** (POST Object): s3s reads the whole file into memory before it checks the
//!   policy's signature, and without a signature before it refuses. [`super::form`] takes them:
//!   refused before the file when unsigned, streamed to the spool when signed.
//! * **SigV2**: header-signed requests are refused unless `server.sigv2` (they must then carry a
//!   `Date` within 15 minutes of the server's clock: s3s ignores it, so a captured request would
//!   work for ever); presigned URLs (`aws s3 presign` of AWS CLI v1 makes them) may not expire
//!   more than 7 days out (`server.sigv2_presigned` turns them off). Their signatures are
//!   checked in constant time here ([`super::sigv2`]) before s3s compares them with `!=`.
//! * **Presigned SigV4 URLs** valid for more than 7 days (`X-Amz-Expires` over 604800): refused
//!   with `AuthorizationQueryParametersError`, as S3 does.
//! * **XML bodies** over the limit (CompleteMultipartUpload, DeleteObjects, CreateBucket):
//!   `MalformedXML` instead of s3s's `InternalError`.
//!
//! Everything else goes to s3s unchanged. Every answer carries `Server: weir`
//! ([`weir_core::WEIR_S3_SERVER`]), so a tool pointed here by mistake can tell it is not AWS.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, SERVER};
use hyper::{Method, Request, Response, StatusCode};
use s3s::service::S3Service;
use s3s::{Body, HttpError, S3Error};

use super::form::FormUploads;
use super::host::LocalDomains;
use super::sigv2;

/// The longest validity of a presigned URL, as on S3: 7 days.
pub const MAX_PRESIGNED_SECS: u64 = 7 * 24 * 3600;

/// How far a SigV2 request's `Date` may be from the server's clock.
const MAX_SIGV2_SKEW_SECS: i64 = 15 * 60;

/// The S3 endpoint's service: these checks, then s3s.
#[derive(Clone)]
pub struct Front {
    pub(crate) s3: S3Service,
    pub(crate) forms: Arc<FormUploads>,
    /// Header-signed SigV2 accepted (`server.sigv2`).
    pub(crate) sigv2: bool,
    /// SigV2 presigned URLs accepted (`server.sigv2_presigned`).
    pub(crate) sigv2_presigned: bool,
    pub(crate) sigv2_keys: Arc<sigv2::SigV2>,
    pub(crate) domains: Arc<LocalDomains>,
    pub(crate) xml_max_bytes: usize,
    pub(crate) idle: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, HttpError>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut resp = this.handle(req).await?;
            resp.headers_mut().insert(SERVER, HeaderValue::from_static(weir_core::WEIR_S3_SERVER));
            Ok(resp)
        })
    }
}

impl Front {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
        if let Some(refused) = self.refusal(&req) {
            return Ok(error_response(refused));
        }
        if is_form_upload(&req) {
            return Ok(self.forms.upload(req).await);
        }
        let query = Query::parse(req.uri().query().unwrap_or(""));
        let virtual_host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| self.domains.bucket_of_host(h).is_some());
        let req = if carries_xml(req.method(), req.uri().path(), &query, virtual_host) {
            match self.bounded_xml(req).await {
                Ok(req) => req,
                Err(e) => return Ok(error_response(e)),
            }
        } else {
            req.map(Body::from)
        };
        self.s3.call(req).await
    }

    /// Why a request is refused before anything else looks at it, if it is.
    fn refusal(&self, req: &Request<Incoming>) -> Option<S3Error> {
        let query = Query::parse(req.uri().query().unwrap_or(""));
        if query.has("X-Amz-Signature") {
            if let Some(expires) = query.get("X-Amz-Expires").and_then(|v| v.parse::<u64>().ok()) {
                if expires > MAX_PRESIGNED_SECS {
                    return Some(presign_too_long());
                }
            }
        }
        let authorization = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let v2_header = authorization.and_then(|v| v.strip_prefix("AWS ")).and_then(|v| v.split_once(':'));
        let v2_query = (query.get("AWSAccessKeyId"), query.get("Signature"), query.get("Expires"));
        let signed = match (v2_header, v2_query) {
            (Some((key_id, signature)), _) => {
                if !self.sigv2 {
                    return Some(s3s::s3_error!(
                        AccessDenied,
                        "SigV2-signed requests are turned off (server.sigv2); sign with SigV4, as the AWS CLI, boto3 and current SDKs do"
                    ));
                }
                if let Some(skewed) = sigv2_date_refusal(req) {
                    return Some(skewed);
                }
                sigv2::Signed::Header { key_id, signature }
            }
            (None, (Some(key_id), Some(signature), Some(expires))) => {
                if !self.sigv2_presigned {
                    return Some(s3s::s3_error!(
                        AccessDenied,
                        "SigV2 presigned URLs are turned off (server.sigv2_presigned); presign with SigV4"
                    ));
                }
                let now = chrono::Utc::now().timestamp();
                if expires.parse::<i64>().is_ok_and(|e| e - now > MAX_PRESIGNED_SECS as i64) {
                    return Some(presign_too_long());
                }
                sigv2::Signed::Presigned { key_id, signature, expires }
            }
            _ => return None,
        };
        let request = sigv2::Request {
            method: req.method(),
            path: req.uri().path(),
            host: req.headers().get(HOST).and_then(|v| v.to_str().ok()),
            headers: req.headers(),
            query: &query.0,
        };
        self.sigv2_keys.verify(&request, &signed).err()
    }

    /// The request with its XML body held to the limit: refused at once when its length says it
    /// is over, read here (bounded) when it has no length.
    async fn bounded_xml(&self, req: Request<Incoming>) -> Result<Request<Body>, S3Error> {
        let length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match length {
            Some(n) if n > self.xml_max_bytes as u64 => Err(xml_too_large(self.xml_max_bytes)),
            Some(_) => Ok(req.map(Body::from)),
            None => {
                let (parts, body) = req.into_parts();
                let collect = Limited::new(body, self.xml_max_bytes).collect();
                let bytes: Bytes = match tokio::time::timeout(self.idle, collect).await {
                    Err(_) => {
                        return Err(s3s::s3_error!(
                            RequestTimeout,
                            "The request body did not arrive in time."
                        ))
                    }
                    Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                        return Err(xml_too_large(self.xml_max_bytes))
                    }
                    Ok(Err(_)) => {
                        return Err(s3s::s3_error!(IncompleteBody, "reading the request body failed"))
                    }
                    Ok(Ok(collected)) => collected.to_bytes(),
                };
                Ok(Request::from_parts(parts, Body::from(bytes)))
            }
        }
    }
}

/// Why a SigV2 header-signed request's date is refused, if it is: s3s ignores it, so a captured
/// request would work for ever.
fn sigv2_date_refusal(req: &Request<Incoming>) -> Option<S3Error> {
    let date = ["x-amz-date", "date"]
        .iter()
        .find_map(|h| req.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v.trim()).ok());
    match date {
        None => Some(s3s::s3_error!(
            AccessDenied,
            "a SigV2 request needs a Date (or x-amz-date) header in RFC 1123 form"
        )),
        Some(d) if (chrono::Utc::now().timestamp() - d.timestamp()).abs() > MAX_SIGV2_SKEW_SECS => {
            Some(s3s::s3_error!(
                RequestTimeTooSkewed,
                "The difference between the request time and the server's time is too large."
            ))
        }
        Some(_) => None,
    }
}

fn presign_too_long() -> S3Error {
    s3s::s3_error!(
        AuthorizationQueryParametersError,
        "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_SECS}"
    )
}

fn xml_too_large(limit: usize) -> S3Error {
    s3s::s3_error!(MalformedXML, "The XML you provided was larger than the limit of {limit} bytes.")
}

/// `POST` with a `multipart/form-data` body: a browser-style upload.
fn is_form_upload(req: &Request<Incoming>) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The operations whose body is an XML document s3s reads whole: CompleteMultipartUpload
/// (`POST ?uploadId`), DeleteObjects (`POST ?delete`) and a bucket-level `PUT` (CreateBucket's
/// configuration).
fn carries_xml(method: &Method, path: &str, query: &Query, virtual_host: bool) -> bool {
    match *method {
        Method::POST => query.has("uploadId") || query.has("delete"),
        Method::PUT => {
            // Bucket level: `/` under a bucket's own host name, `/<bucket>` in path style.
            let path = path.trim_start_matches('/');
            let bucket_level =
                if virtual_host { path.is_empty() } else { !path.trim_end_matches('/').contains('/') };
            bucket_level && !query.has("partNumber")
        }
        _ => false,
    }
}

/// A query string's parameters, percent-decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
        };
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// S3's error document for `e`, with `Connection: close`: the request's body may not have been
/// read, and it is not read after the answer either.
pub fn error_response(e: S3Error) -> Response<Body> {
    let mut resp = e.to_http_response().unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    });
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        let q = Query::parse("X-Amz-Expires=604801&a%20b=c+d&flag");
        assert_eq!(q.get("X-Amz-Expires"), Some("604801"));
        assert_eq!(q.get("a b"), Some("c d"));
        assert!(q.has("flag") && !q.has("nope"));
    }

    #[test]
    fn only_bucket_level_puts_and_xml_posts_carry_xml() {
        let none = Query::parse("");
        assert!(carries_xml(&Method::PUT, "/new-bucket", &none, false));
        assert!(carries_xml(&Method::PUT, "/", &none, true));
        // Objects, path style and virtual-host style (a key without a slash too), and parts.
        assert!(!carries_xml(&Method::PUT, "/weir-input/raw/x.csv", &none, false));
        assert!(!carries_xml(&Method::PUT, "/big.csv", &none, true));
        assert!(!carries_xml(&Method::PUT, "/b/k", &Query::parse("partNumber=1&uploadId=x"), false));
        assert!(carries_xml(&Method::POST, "/b/k", &Query::parse("uploadId=x"), false));
        assert!(carries_xml(&Method::POST, "/b", &Query::parse("delete"), false));
        assert!(!carries_xml(&Method::POST, "/b/k", &Query::parse("uploads"), false));
        assert!(!carries_xml(&Method::GET, "/b", &none, false));
    }

    #[test]
    fn refusals_close_the_connection() {
        let resp = error_response(presign_too_long());
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()[CONNECTION], "close");
    }
}
