//! Auth for every route but health, the OpenAPI document and the dashboard's static page.
//!
//! Two ways in, both compared in constant time:
//! * `Authorization: Bearer <token>` — the CLI, scripts, any client; every method;
//! * the dashboard's session cookie ([`SESSION_COOKIE`], HttpOnly, SameSite=Strict), set by
//!   [`crate::dashboard`] once the token was given — for `GET`/`HEAD` only. A browser attaches
//!   cookies on its own, so they do not authorize writes (ingest, uploads, DLQ replay): that
//!   keeps cross-site request forgery out even in a browser that ignores SameSite.
//!
//! The cookie holds a session from [`issue_session`]: its expiry and an HMAC of that expiry keyed
//! with the token. It is not the token (which never sits in the browser's cookie store), it ends
//! by itself after `server.session_ttl_secs`, its expiry cannot be moved without the token, and
//! rotating the token ends every session.
//!
//! No credentials is 401 (with `WWW-Authenticate: Bearer`), wrong ones 403; both with the JSON
//! error body. Failed dashboard sign-ins are limited per client ([`sign_in_limit`]).

pub mod sign_in_limit;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::http_error::ApiError;
use crate::state::AppState;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "weir_session";

pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
        (None, Some(session)) => session_valid(expected, session, chrono::Utc::now().timestamp()),
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

/// A session cookie's value for `token`, valid until `expires` (Unix seconds):
/// `<expires>.<hex HMAC-SHA256 of the expiry, keyed with the token>`.
pub fn issue_session(token: &str, expires: i64) -> String {
    format!("{expires}.{}", hex::encode(session_mac(token, expires)))
}

/// Whether `value` is a session [`issue_session`] gave for `token` that has not expired at `now`.
pub fn session_valid(token: &str, value: &str, now: i64) -> bool {
    let Some((expires, mac)) = value.split_once('.') else { return false };
    let Ok(expires) = expires.parse::<i64>() else { return false };
    let Ok(mac) = hex::decode(mac) else { return false };
    expires > now && bool::from(mac.as_slice().ct_eq(&session_mac(token, expires)))
}

fn session_mac(token: &str, expires: i64) -> [u8; 32] {
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(format!("weir dashboard session v2\n{expires}").as_bytes());
    mac.finalize().into_bytes().into()
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
    fn sessions_expire_and_cannot_be_extended_without_the_token() {
        let s = issue_session("weir_abc", 1_000);
        assert!(!s.contains("weir_abc"));
        assert!(session_valid("weir_abc", &s, 999));
        assert!(!session_valid("weir_abc", &s, 1_000), "expired");
        assert!(!session_valid("weir_abd", &s, 999), "another token");
        let (_, mac) = s.split_once('.').unwrap();
        assert!(!session_valid("weir_abc", &format!("99999.{mac}"), 999), "expiry moved");
        for junk in ["", "abc", "1000.", "1000.zz", ".00"] {
            assert!(!session_valid("weir_abc", junk, 0), "{junk:?}");
        }
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
