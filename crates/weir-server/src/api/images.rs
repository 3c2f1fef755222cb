//! `GET /v1/jobs/{id}/thumbnail`: an image job's thumbnail, for the dashboard's job page (an
//! `<img>` sends the session cookie) and any client with the token.
//!
//! Only a key the job record names is read (never one from the request), at most
//! [`MAX_THUMBNAIL_BYTES`], and served with its own image type and `nosniff`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use futures::TryStreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use weir_core::JobId;

use crate::http_error::{ApiError, ErrorBody};
use crate::state::AppState;

/// More than any thumbnail weir makes (a 4096 × 4096 PNG of noise is 48 MiB, but a thumbnail of
/// that size is not one a page shows): larger objects are not served.
pub const MAX_THUMBNAIL_BYTES: u64 = 16 << 20;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailQuery {
    /// A size the pipeline makes (`small`, `medium`, `large`, ...) [default: the smallest]
    pub size: Option<String>,
}

/// An image job's thumbnail, by size name (the smallest when none is given).
#[utoipa::path(get, path = "/v1/jobs/{id}/thumbnail", tag = "jobs",
    params(("id" = String, Path, description = "job id"), ThumbnailQuery),
    responses(
        (status = 200, description = "the thumbnail", content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"), (Vec<u8> = "image/png"),
        )),
        (status = 400, description = "a bad query", body = ErrorBody),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 404, description = "no such job, no picture, or no thumbnail of that size", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn job_thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let ports = &state.ctx.ports;
    let job = ports
        .jobs
        .get(&JobId(id.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id:?} not found")))?;
    let image =
        job.image.as_ref().ok_or_else(|| ApiError::not_found(format!("job {id:?} has no picture")))?;
    let thumbnail = match &query.size {
        Some(size) => image.thumbnails.iter().find(|t| &t.name == size),
        None => image.smallest_thumbnail(),
    };
    let thumbnail = thumbnail.ok_or_else(|| {
        ApiError::not_found(format!(
            "job {id:?} has no thumbnail of size {:?}",
            query.size.as_deref().unwrap_or("")
        ))
    })?;
    let bucket = &state.ctx.config.buckets.output;
    let missing =
        || ApiError::not_found(format!("the thumbnail {bucket}/{} is no longer there", thumbnail.key));
    let (info, stream) = match ports.objects.get_range(bucket, &thumbnail.key, 0..MAX_THUMBNAIL_BYTES).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return Err(missing()),
        Err(e) => return Err(e.into()),
    };
    if info.size > MAX_THUMBNAIL_BYTES {
        return Err(missing());
    }
    let chunks: Vec<Bytes> = stream.try_collect().await.map_err(ApiError::from)?;
    let content_type = match thumbnail.key.rsplit('.').next() {
        Some("webp") => "image/webp",
        Some("png") => "image/png",
        _ => "image/jpeg",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // The same key holds a newer version's thumbnail after a new upload: revalidate.
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        Bytes::from(chunks.concat()),
    ))
}
