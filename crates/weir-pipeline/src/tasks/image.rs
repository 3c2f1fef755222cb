//! `weir:process-image`: an image pipeline's one task: read the picture, make its thumbnails
//! and metadata document, and store them under the source's deterministic keys.
//!
//! The picture is refused before a byte of it is read when the store says it is larger than
//! `image.max_input_bytes` (or `source.max_size_bytes`), and its read stops there if the store
//! was wrong. The decode runs on a blocking thread holding one of the engine's pass slots (one
//! per core), so a burst of large photos is decoded a core's worth at a time: the memory image
//! jobs take is at most that many times what one picture may (`max_pixels`). A file that is not a
//! picture weir can read safely is `Weir.InvalidInput`, which the image workflow sends to
//! `failed/` with the reason; the dead-letter queue is for failing backends, not bad pictures.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use weir_core::image::ImageSummary;
use weir_core::keys::{image_metadata_key, thumbnail_key};
use weir_core::summary::SourceRef;
use weir_image::ImageError;
use weir_ports::{PortError, PutBody, PutItem};
use weir_workflow::{Task, TaskError};

use super::{errors, job_input, merge, port_error, TaskContext};
use crate::provenance::Provenance;
use crate::state::{fields, JobInput};

pub struct ProcessImage(pub Arc<TaskContext>);

/// The output-key role of a thumbnail (`thumbnail_small`); the metadata document's is `metadata`.
pub fn thumbnail_role(size: &str) -> String {
    format!("thumbnail_{size}")
}

#[async_trait]
impl Task for ProcessImage {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let ctx = &self.0;
        let input = job_input(&state)?;
        let bytes = match read_picture(ctx, &input).await {
            // A run killed between moving the picture to failed/ and recording it: the same
            // rejection again, so the workflow ends as it would have.
            Err(e) if e.error == errors::SOURCE_MISSING => {
                return match super::move_to_failed::own_rejection(ctx, &input).await? {
                    Some(rejected) => {
                        let reason = rejected[fields::REASON].as_str().unwrap_or("rejected").to_owned();
                        Err(TaskError::permanent(errors::INVALID_INPUT, reason))
                    }
                    None => Err(e),
                };
            }
            other => other?,
        };
        let made = {
            let _slot = ctx.passes.acquire().await.expect("the semaphore is never closed");
            let config = ctx.pipeline.image.clone();
            tokio::task::spawn_blocking(move || weir_image::process(&bytes, &config)).await.map_err(|e| {
                TaskError::transient(errors::UNAVAILABLE, format!("thumbnailing crashed: {e}"))
            })?
        };
        let mut made = made.map_err(|e| refused(&input, &e))?;

        let ext = ctx.pipeline.image.format.extension();
        let (bucket, key) = (&input.source_bucket, &input.source_key);
        let mut keys = Map::new();
        for info in &mut made.summary.thumbnails {
            info.key = thumbnail_key(bucket, key, &info.name, ext);
            keys.insert(thumbnail_role(&info.name), json!(info.key));
        }
        let metadata_key = image_metadata_key(bucket, key);
        keys.insert("metadata".into(), json!(metadata_key));
        made.summary.source = Some(SourceRef {
            bucket: Some(bucket.clone()),
            key: key.clone(),
            job_id: Some(input.job_id.clone()),
            pipeline: Some(input.pipeline.clone()),
        });
        store(ctx, &input, &made.summary, made.thumbnails, &metadata_key).await?;
        Ok(merge(state, json!({ fields::IMAGE: made.summary, fields::OUTPUT_KEYS: keys })))
    }
}

/// The source's bytes, checked to be the version the event announced and within the limits.
async fn read_picture(ctx: &TaskContext, input: &JobInput) -> Result<Bytes, TaskError> {
    let (bucket, key) = (&input.source_bucket, &input.source_key);
    let (info, mut stream) = match ctx.ports.objects.get(bucket, key).await {
        Ok(found) => found,
        Err(PortError::NotFound(_)) => return Err(super::source_gone(ctx, input).await),
        Err(e) => return Err(port_error(e, &format!("reading {bucket}/{key}"))),
    };
    if !input.source_etag.is_empty() && info.etag.trim_matches('"') != input.source_etag {
        return Err(super::superseded(input, &info.etag));
    }
    let image = &ctx.pipeline.image;
    let limit = image.max_input_bytes.min(ctx.pipeline.source.max_size_bytes);
    if info.size > limit {
        return Err(refused(input, &ImageError::TooLarge { size: info.size, limit }));
    }
    let mut body = Vec::with_capacity(info.size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| port_error(e, &format!("reading {bucket}/{key}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            let size = (body.len() + chunk.len()) as u64;
            return Err(refused(input, &ImageError::TooLarge { size, limit }));
        }
        body.extend_from_slice(&chunk);
    }
    if body.len() as u64 != info.size {
        return Err(TaskError::transient(
            errors::UNAVAILABLE,
            format!("reading {bucket}/{key}: {} bytes read where {} were announced", body.len(), info.size),
        ));
    }
    Ok(Bytes::from(body))
}

/// A picture weir will not read, as the workflow sees it: the file's fault, named.
fn refused(input: &JobInput, e: &ImageError) -> TaskError {
    TaskError::permanent(errors::INVALID_INPUT, format!("{}/{}: {e}", input.source_bucket, input.source_key))
}

/// Stores the thumbnails, then the metadata document (last, as a data job's summary: its
/// presence says the outputs are complete).
async fn store(
    ctx: &TaskContext,
    input: &JobInput,
    summary: &ImageSummary,
    thumbnails: Vec<weir_image::Thumbnail>,
    metadata_key: &str,
) -> Result<(), TaskError> {
    super::check_still_newest(ctx, input).await?;
    let metadata = Provenance::of_job(input).metadata([]);
    let mut items: Vec<PutItem> = summary
        .thumbnails
        .iter()
        .zip(thumbnails)
        .map(|(info, t)| PutItem {
            key: info.key.clone(),
            body: PutBody::Bytes(Bytes::from(t.bytes)),
            metadata: metadata.clone(),
        })
        .collect();
    let document = serde_json::to_vec_pretty(summary).expect("an image summary serializes");
    items.push(PutItem {
        key: metadata_key.to_owned(),
        body: PutBody::Bytes(Bytes::from(document)),
        metadata,
    });
    let out_bucket = &ctx.config.buckets.output;
    ctx.ports.objects.put_all(out_bucket, items).await.map_err(|e| {
        port_error(
            e,
            &format!(
                "storing the thumbnails of {}/{} in {out_bucket}",
                input.source_bucket, input.source_key
            ),
        )
    })?;
    Ok(())
}
