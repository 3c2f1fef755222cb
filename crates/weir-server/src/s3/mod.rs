//! The S3-compatible endpoint: s3s speaks the protocol (routing, XML, SigV4, aws-chunked
//! bodies), this module maps it onto weir.
//!
//! * [`service`] — the operations over the object-store port, with the event on every create;
//! * [`auth`] — which secret belongs to an access key id;
//! * [`host`] — virtual-host-style bucket addressing on local domains;
//! * [`multipart`] — the staging area for multipart uploads;
//! * [`body`] — receiving bodies: bounded, hashed, spooled, never half-stored;
//! * [`front`] — what is decided before s3s sees a request: [`form`] uploads, [`sigv2`]
//!   signatures checked in constant time.

pub mod auth;
pub mod body;
pub mod form;
pub mod front;
pub mod host;
pub mod multipart;
pub mod service;
pub mod sigv2;

use std::sync::Arc;
use std::time::Duration;

use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::S3ServiceBuilder;

use crate::{Context, ServerError};

/// Builds the S3 service for `weir run`.
pub fn build(ctx: &Context) -> Result<front::Front, ServerError> {
    let server = &ctx.config.server;
    let staging = multipart::Staging::open(ctx.data_dir.join(".multipart"))?;
    // Bodies are spooled in the object store's scratch folder of this process (a store-then-
    // rename away from their key), which the next start sweeps once this process is gone, never
    // while it runs: another process's uploads in flight are not touched.
    let spool = match ctx.ports.objects.local_scratch() {
        Some(scratch) => scratch.join("incoming"),
        None => ctx.data_dir.join(".incoming").join(format!("p{}", std::process::id())),
    };
    std::fs::create_dir_all(&spool).map_err(|source| ServerError::Staging { path: spool.clone(), source })?;
    let weir = service::WeirS3 {
        ports: ctx.ports.clone(),
        config: ctx.config.clone(),
        staging,
        spool,
        max_object_bytes: server.max_object_bytes,
        idle_timeout: Duration::from_secs(server.idle_timeout_secs),
        inline_active_content: server.inline_active_content,
    };
    let forms = form::FormUploads::new(
        weir.clone(),
        &ctx.credentials,
        host::LocalDomains::new(&server.s3_domains),
        Duration::from_secs(server.idle_timeout_secs),
    );
    let mut builder = S3ServiceBuilder::new(weir);
    builder.set_auth(auth::KeyAuth::new(&ctx.credentials));
    builder.set_host(host::LocalDomains::new(&server.s3_domains));
    let mut config = S3Config::default();
    // CompleteMultipartUpload with 10,000 parts is about 1 MiB of XML.
    config.xml_max_body_size = 4 << 20;
    let xml_max_bytes = config.xml_max_body_size;
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(config))));
    Ok(front::Front {
        s3: builder.build(),
        forms: Arc::new(forms),
        sigv2: server.sigv2,
        sigv2_presigned: server.sigv2_presigned,
        sigv2_keys: Arc::new(sigv2::SigV2 {
            access_key_id: ctx.credentials.access_key_id.clone(),
            secret: ctx.credentials.secret_access_key.expose().to_owned(),
            domains: host::LocalDomains::new(&server.s3_domains),
        }),
        domains: Arc::new(host::LocalDomains::new(&server.s3_domains)),
        xml_max_bytes,
        idle: Duration::from_secs(server.idle_timeout_secs),
    })
}

/// Sweeps abandoned multipart uploads now and then every hour until `stop`.
pub fn spawn_sweeper(ctx: &Context, stop: tokio_util::sync::CancellationToken) {
    let Ok(staging) = multipart::Staging::open(ctx.data_dir.join(".multipart")) else { return };
    let max_age = Duration::from_secs(ctx.config.server.multipart_expiry_secs);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {
                    let removed = staging.sweep(max_age).await;
                    if removed > 0 {
                        tracing::info!(removed, "removed abandoned multipart uploads");
                    }
                }
            }
        }
    });
}
