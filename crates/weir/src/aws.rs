//! The AWS backend of the binary: turns a configuration with an `[aws]` section into the S3,
//! SQS, DynamoDB and SNS adapters of `weir-aws`, and those into a pipeline engine.
//!
//! Kept apart from `setup.rs` (the embedded wiring) so that the embedded path never loads AWS
//! configuration; `setup::engine` hands over here when the configuration has `[aws]`.

use std::sync::Arc;

use anyhow::{Context, Result};
use weir_core::config::AwsConfig;
use weir_pipeline::{Engine, Ports};

use crate::setup::Loaded;

/// The endpoint in force: `--endpoint-url`, else `aws.endpoint_url`, else `AWS_ENDPOINT_URL`.
pub fn endpoint(aws: &AwsConfig, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| aws.endpoint_url.clone())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty())
}

/// The `[aws]` section, or an error saying the command needs one.
pub fn section(loaded: &Loaded) -> Result<AwsConfig> {
    loaded.config.aws.clone().with_context(|| {
        format!("{} has no [aws] section (see deploy/aws/weir.toml for an example)", loaded.source)
    })
}

/// SDK configuration for the section (credentials from the standard chain).
pub async fn sdk(aws: &AwsConfig, endpoint: Option<&str>) -> aws_config::SdkConfig {
    weir_aws::client::load(&weir_aws::AwsSettings {
        region: Some(aws.region.clone()),
        endpoint_url: endpoint.map(str::to_string),
    })
    .await
}

/// The ports over the AWS adapters.
pub async fn ports(loaded: &Loaded, endpoint_flag: Option<&str>) -> Result<Ports> {
    let aws = section(loaded)?;
    let endpoint = endpoint(&aws, endpoint_flag);
    let sdk = sdk(&aws, endpoint.as_deref()).await;
    let p = weir_aws::open(&loaded.config, &aws, &sdk, endpoint.as_deref())
        .await
        .context("opening the AWS resources (has `weir setup aws` run?)")?;
    Ok(Ports { objects: p.objects, queue: p.queue, jobs: p.jobs, records: p.records, notifier: p.notifier })
}

/// The engine over the AWS adapters.
pub async fn engine(loaded: &Loaded, endpoint_flag: Option<&str>) -> Result<Arc<Engine>> {
    let ports = ports(loaded, endpoint_flag).await?;
    let scratch = loaded.data_dir.join(".tmp");
    Ok(Arc::new(Engine::new(loaded.config.clone(), ports, scratch)?))
}
