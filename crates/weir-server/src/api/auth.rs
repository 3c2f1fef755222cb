//! Bearer-token auth for every route but health and the OpenAPI document.
//!
//! A missing or malformed `Authorization` header is 401 (with `WWW-Authenticate: Bearer`), a
//! wrong token 403; both with the JSON error body. The comparison takes the same time whatever
//! the token's content, so timing says nothing about how much of a guess was right.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::ApiState;

pub async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs `Authorization: Bearer <token>` (see `weir credentials`)",
        )
        .into_response(),
        Some(token) if token_matches(token, state.ctx.credentials.api_token.expose()) => {
            next.run(request).await
        }
        Some(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the bearer token is not valid").into_response()
        }
    }
}

/// Constant-time in the content of the tokens (a length difference fails at once; lengths are
/// not secret).
pub fn token_matches(presented: &str, expected: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(token_matches("weir_abc", "weir_abc"));
        assert!(!token_matches("weir_abd", "weir_abc"));
        assert!(!token_matches("weir_ab", "weir_abc"));
        assert!(!token_matches("", "weir_abc"));
    }
}
