//! The secret settings of the configuration (`weir_core::SecretValue`): where they are read.
//!
//! Every command gets a [`Secrets`] with its config ([`for_config`]): files are read by
//! `weir_backends::FileSecrets`, Secrets Manager by `weir_aws::SecretsManagerOnFirstUse`, whose
//! SDK is loaded only when a `{ secret = ... }` is first read (the `[aws]` section's region and
//! endpoint, else the environment's), so commands that read none never touch AWS.
//!
//! Commands that run jobs or servers call [`at_start`], which is [`Secrets::resolve`] (as the
//! Lambda function's cold start): every secret setting is read once, and any that cannot be is
//! refused with its path, as `weir check` lists it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use weir_core::Config;
use weir_ports::Secrets;

use crate::config::Loaded;

/// The secrets of `config`: files, and Secrets Manager on first use (at `endpoint_flag`, the
/// command line's `--endpoint-url`, if given; else as every AWS client: see `weir_aws::endpoint`).
pub fn for_config(config: &Config, endpoint_flag: Option<&str>) -> Arc<Secrets> {
    let settings = match &config.aws {
        Some(aws) => weir_aws::AwsSettings {
            region: Some(aws.region.clone()),
            endpoint_url: weir_aws::endpoint(aws, endpoint_flag),
        },
        None => weir_aws::AwsSettings {
            region: None,
            endpoint_url: endpoint_flag
                .map(str::to_string)
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                .filter(|e| !e.is_empty()),
        },
    };
    Arc::new(Secrets::new(
        Arc::new(weir_backends::FileSecrets),
        Some(Arc::new(weir_aws::SecretsManagerOnFirstUse::new(settings))),
        Duration::from_secs(config.secrets.refresh_secs.max(1)),
    ))
}

/// [`Secrets::resolve`] for the loaded config: the config to run with, or an error listing
/// each secret setting that cannot be read (by its path, never with a value).
pub async fn at_start(loaded: &Loaded) -> Result<Config> {
    match loaded.secrets.resolve(&loaded.config).await {
        Ok(config) => Ok(config),
        Err(problems) => {
            bail!("{} has secrets weir cannot read:\n{}", loaded.source, weir_core::problem::lines(&problems))
        }
    }
}
