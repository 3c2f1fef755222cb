//! The one place that chooses the backend.
//!
//! A configuration with an `[aws]` section runs on AWS (`weir_aws::open`: S3, SQS, DynamoDB,
//! SNS, the resources `weir setup aws` made); any other runs embedded on its data dir
//! (`weir_backends::open_embedded`: folders and SQLite). Every command gets its ports, its
//! engine or its job store here, so adding an adapter (a warehouse sink, an in-memory store)
//! touches this module and nothing else in the binary.
//!
//! The AWS endpoint has one precedence everywhere, the Lambda function included
//! ([`weir_aws::endpoint`]): `--endpoint-url`, else `aws.endpoint_url` in the config, else
//! `AWS_ENDPOINT_URL`, else AWS itself.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use weir_core::config::AwsConfig;
use weir_pipeline::Engine;
use weir_ports::{JobStore, Ports};

use crate::config::Loaded;

/// The `[aws]` section, or an error saying the command needs one.
pub fn aws_section(loaded: &Loaded) -> Result<AwsConfig> {
    loaded.config.aws.clone().with_context(|| {
        format!("{} has no [aws] section (see deploy/aws/weir.toml for an example)", loaded.source)
    })
}

/// SDK configuration for the section (credentials from the standard chain) and the endpoint in
/// force.
pub async fn aws_sdk(
    aws: &AwsConfig,
    endpoint_flag: Option<&str>,
) -> (aws_config::SdkConfig, Option<String>) {
    let endpoint = weir_aws::endpoint(aws, endpoint_flag);
    let sdk = weir_aws::client::load(&weir_aws::AwsSettings {
        region: Some(aws.region.clone()),
        endpoint_url: endpoint.clone(),
    })
    .await;
    (sdk, endpoint)
}

/// The warehouse tables of the pipelines that have one (`[pipeline.sinks.postgres]`), on any
/// backend. Only what runs jobs needs them (and the database URL they are made from).
pub fn warehouses(config: &weir_core::Config) -> Result<weir_ports::Warehouses> {
    weir_postgres::open_all(config, |p| weir_process::Plan::compile(p).map(|plan| plan.table_columns()))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The ports of the configured backend (without warehouses: see [`engine`]). On AWS, messages
/// go to the SNS topics, whose subscriptions deliver them (`weir setup aws` makes the config's).
pub async fn ports(loaded: &Loaded, endpoint_flag: Option<&str>) -> Result<Ports> {
    match &loaded.config.aws {
        Some(aws) => {
            let (sdk, endpoint) = aws_sdk(aws, endpoint_flag).await;
            weir_aws::open(&loaded.config, aws, &sdk, endpoint.as_deref())
                .await
                .context("opening the AWS resources (has `weir setup aws` run?)")
        }
        None => weir_backends::open_embedded(&loaded.config, &loaded.data_dir, loaded.secrets.clone())
            .with_context(|| format!("opening the data dir {}", loaded.data_dir.display())),
    }
}

/// The engine over the configured backend and the pipelines' warehouses; embedded, with its
/// buckets created (on AWS they exist already: `weir setup aws`). Refused if a secret setting
/// cannot be read ([`crate::secrets::at_start`]).
pub async fn engine(loaded: &Loaded, endpoint_flag: Option<&str>) -> Result<Arc<Engine>> {
    let config = crate::secrets::at_start(loaded).await?;
    let mut ports = ports(loaded, endpoint_flag).await?;
    ports.warehouses = warehouses(&config)?;
    let engine = Engine::new(config, ports, loaded.data_dir.join(".tmp"))?;
    if loaded.config.aws.is_none() {
        engine.ensure_buckets().await.context("creating buckets")?;
    }
    Ok(Arc::new(engine))
}

/// The engine of `weir worker`: on AWS, with the pipelines' warehouses, reporting its files and
/// jobs to `metrics`.
pub async fn worker_engine(
    loaded: &Loaded,
    endpoint_flag: Option<&str>,
    metrics: Arc<dyn weir_ports::JobMetrics>,
) -> Result<Arc<Engine>> {
    let config = crate::secrets::at_start(loaded).await?;
    let mut ports = ports(loaded, endpoint_flag).await?;
    ports.warehouses = warehouses(&config)?;
    let engine = Engine::new(config, ports, loaded.data_dir.join(".tmp"))?.with_metrics(metrics);
    Ok(Arc::new(engine))
}

/// The job store alone, for commands that only read jobs: embedded, the SQLite file without
/// the rest of the data dir (which must exist already).
pub async fn job_store(loaded: &Loaded) -> Result<Arc<dyn JobStore>> {
    if loaded.config.aws.is_some() {
        return Ok(ports(loaded, None).await?.jobs);
    }
    let db = weir_backends::state_db(&loaded.data_dir);
    if !db.exists() {
        bail!("no job store at {} (has `weir run` or `weir put` used this data dir?)", db.display());
    }
    Ok(Arc::new(weir_backends::SqliteJobStore::open(&db)?))
}
