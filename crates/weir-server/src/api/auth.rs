//! Auth for every route but health, the OpenAPI document and the dashboard's static page.
//!
//! Two ways in, both compared in constant time:
//! * `Authorization: Bearer <token>` — the CLI, scripts, any client; every method;
//! * the dashboard's session cookie ([`SESSION_COOKIE`], HttpOnly, SameSite=Strict), set by
//!   [`crate::dashboard`] once the token was given — for `GET`/`HEAD` only. A browser attaches
//!   cookies on its own, so they do not authorize writes (ingest, uploads, DLQ replay): that
//!   keeps cross-site request forgery out even in a browser that ignores SameSite.
//!
//! The cookie holds [`session_value`], a digest of the token, not the token itself: it never
//! sits in the browser's cookie store, and rotating the token ends every session.
//!
//! No credentials is 401 (with `WWW-Authenticate: Bearer`), wrong ones 403; both with the JSON
//! error body.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::ApiState;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "weir_session";

pub async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let expected = state.ctx.credentials.api_token.expose();
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let cookie = if reads { session_cookie(request.headers()) } else { None };
    let allowed = match (bearer, cookie) {
        (Some(token), _) => token_matches(token, expected),
        (None, Some(session)) => token_matches(session, &session_value(expected)),
        (None, None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs `Authorization: Bearer <token>` (see `weir credentials`)",
            )
            .into_response()
        }
    };
    if allowed {
        next.run(request).await
    } else {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the bearer token or session is not valid")
            .into_response()
    }
}

/// Constant-time in the content of the tokens (a length difference fails at once; lengths are
/// not secret).
pub fn token_matches(presented: &str, expected: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// The session cookie's value for a token: SHA-256 of a fixed label and the token, in hex.
pub fn session_value(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"weir dashboard session v1\n");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// The value of [`SESSION_COOKIE`] in the request's `Cookie` headers, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn compares_tokens() {
        assert!(token_matches("weir_abc", "weir_abc"));
        assert!(!token_matches("weir_abd", "weir_abc"));
        assert!(!token_matches("weir_ab", "weir_abc"));
        assert!(!token_matches("", "weir_abc"));
    }

    #[test]
    fn the_session_is_a_digest_of_the_token_not_the_token() {
        let s = session_value("weir_abc");
        assert_eq!(s.len(), 64);
        assert!(!s.contains("weir_abc"));
        assert_eq!(s, session_value("weir_abc"));
        assert_ne!(s, session_value("weir_abd"));
    }

    #[test]
    fn finds_the_session_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; weir_session_x=no"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2;  weir_session=abc ; c=3"));
        assert_eq!(session_cookie(&h), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
