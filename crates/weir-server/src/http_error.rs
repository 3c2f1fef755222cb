//! The error responses of the API and the dashboard: a status and
//! `{"error": {"code", "message"}}`, always JSON.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use weir_ports::PortError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `invalid_request`, `invalid_key`,
    /// `invalid_payload`, `no_pipeline`, `not_found`, `payload_too_large`, `unavailable`.
    pub code: String,
    /// For people.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(limit: u64) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> ApiError {
        match e {
            PortError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            PortError::NoSuchBucket(bucket) => ApiError::not_found(format!("bucket {bucket} not found")),
            PortError::Invalid(m) => ApiError::bad_request("invalid_request", m),
            PortError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            e @ PortError::Unavailable { .. } => {
                tracing::error!(error = %e, "a backend failed while serving the API");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "a backend is unavailable; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"weir\""));
        }
        resp
    }
}

/// The answer to a path no route takes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}
