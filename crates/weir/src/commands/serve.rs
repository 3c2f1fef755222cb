//! Starting the S3 endpoint and the HTTP API for `weir run`, and telling the user how to reach
//! them. The bound addresses also go to `<data dir>/endpoints.json`, so tools and tests can find
//! servers started on port 0.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;
use weir_pipeline::Engine;
use weir_server::credentials::Source;
use weir_server::{Context, Credentials, Running};

use crate::cli::RunArgs;
use crate::config::Loaded;

pub async fn start(
    loaded: &Loaded,
    engine: &Arc<Engine>,
    args: &RunArgs,
    stop: CancellationToken,
) -> Result<Running> {
    let mut config = engine.config().clone();
    if let Some(addr) = &args.s3_listen {
        config.server.s3_listen = addr.clone();
    }
    if let Some(addr) = &args.api_listen {
        config.server.api_listen = addr.clone();
    }
    let problems = config.validate();
    anyhow::ensure!(problems.is_empty(), "{}", weir_core::problem::lines(&problems));
    let credentials =
        Credentials::resolve(&config.server, &loaded.data_dir, |name| std::env::var(name).ok())?;
    if let (true, Some(file)) = (credentials.created_file(), &credentials.file) {
        tracing::info!(
            file = %file.display(),
            "created S3 keys and an API token (mode 0600); `weir --data-dir {} credentials` prints them as environment variables for the AWS CLI and boto3",
            loaded.data_dir.display()
        );
    }
    let input = config.buckets.input.clone();
    let ctx = Context {
        ports: engine.ports().clone(),
        config: Arc::new(config),
        data_dir: loaded.data_dir.clone(),
        credentials: Arc::new(credentials),
    };
    let running = weir_server::start(ctx.clone(), stop).await?;
    let scheme = if running.tls { "https" } else { "http" };
    let s3 = running.s3_addr.map(|a| format!("{scheme}://{a}"));
    let api = running.api_addr.map(|a| format!("{scheme}://{a}"));
    if let Some(url) = &s3 {
        tracing::info!(
            endpoint = %url, access_key_id = %ctx.credentials.access_key_id,
            keys_from = source(ctx.credentials.s3_source),
            "S3 endpoint ready: eval \"$(weir --data-dir {} credentials)\" && aws --endpoint-url {url} s3 cp FILE s3://{input}/raw/",
            loaded.data_dir.display()
        );
    }
    if let Some(url) = &api {
        tracing::info!(
            endpoint = %url, token_from = source(ctx.credentials.api_source),
            "HTTP API ready ({url}/openapi.json) and the dashboard at {url}/ (bearer token, or sign in on the page, with the token from `weir --data-dir {} credentials`)",
            loaded.data_dir.display()
        );
    }
    let endpoints = serde_json::json!({ "s3": s3, "api": api });
    let path = loaded.data_dir.join("endpoints.json");
    std::fs::write(&path, endpoints.to_string()).with_context(|| format!("writing {}", path.display()))?;
    Ok(running)
}

fn source(s: Source) -> &'static str {
    match s {
        Source::Environment => "environment",
        Source::Config => "config",
        Source::File { .. } => "credentials.toml",
    }
}
