//! The secret settings of the configuration (`weir_core::SecretValue`): where they are read.
//!
//! Every command gets a [`Secrets`] with its config ([`for_config`]): files are read by
//! `weir_backends::FileSecrets`, Secrets Manager by `weir_aws::SecretsManagerSource`, whose SDK
//! is loaded only when a `{ secret = ... }` is first read (the `[aws]` section's region and
//! endpoint, else the environment's), so commands that read none never touch AWS.
//!
//! Commands that run jobs or servers call [`at_start`]: every secret setting is read once, and
//! any that cannot be is refused with its path, as `weir check` lists it. The S3 keys, the API
//! token and a database URL in Secrets Manager are read then and kept (a database URL in a file
//! is read for each new connection); the SMTP password and a webhook's URL are read for each
//! delivery through the cache, so their rotation needs no restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use async_trait::async_trait;
use weir_core::config::AwsConfig;
use weir_core::{Config, SecretValue};
use weir_ports::{SecretError, SecretSource, Secrets};

use crate::config::Loaded;

/// The secrets of `config`: files, and Secrets Manager on first use (at `endpoint_flag`, the
/// command line's `--endpoint-url`, if given; else as every AWS client: see `weir_aws::endpoint`).
pub fn for_config(config: &Config, endpoint_flag: Option<&str>) -> Arc<Secrets> {
    let manager = ManagerOnFirstUse {
        aws: config.aws.clone(),
        endpoint_flag: endpoint_flag.map(str::to_string),
        source: tokio::sync::OnceCell::new(),
    };
    Arc::new(Secrets::new(
        Arc::new(weir_backends::FileSecrets),
        Some(Arc::new(manager)),
        Duration::from_secs(config.secrets.refresh_secs.max(1)),
    ))
}

/// Reads every secret setting of the loaded config, refusing to go on with the problems if any
/// cannot be read; the config to run with, the settings read only at start put in place.
pub async fn at_start(loaded: &Loaded) -> Result<Config> {
    let problems = loaded.secrets.check(&loaded.config).await;
    if !problems.is_empty() {
        bail!("{} has secrets weir cannot read:\n{}", loaded.source, weir_core::problem::lines(&problems));
    }
    let mut config = loaded.config.clone();
    for (path, value) in config.secret_settings_mut() {
        // The server's keys are read once; a database URL file is re-read by weir-postgres for
        // each new connection, a database URL in Secrets Manager once.
        let read_once = match value {
            SecretValue::Inline(_) => false,
            SecretValue::File(_) => path.starts_with("server."),
            SecretValue::Manager(_) => path.starts_with("server.") || path.ends_with(".sinks.postgres.url"),
        };
        if read_once {
            *value = SecretValue::Inline(loaded.secrets.get(value).await?);
        }
    }
    Ok(config)
}

/// Secrets Manager, reached the first time a secret is read from it.
struct ManagerOnFirstUse {
    aws: Option<AwsConfig>,
    endpoint_flag: Option<String>,
    source: tokio::sync::OnceCell<weir_aws::SecretsManagerSource>,
}

#[async_trait]
impl SecretSource for ManagerOnFirstUse {
    async fn read(&self, id: &str) -> Result<String, SecretError> {
        let source = self
            .source
            .get_or_init(|| async {
                let settings = match &self.aws {
                    Some(aws) => weir_aws::AwsSettings {
                        region: Some(aws.region.clone()),
                        endpoint_url: weir_aws::endpoint(aws, self.endpoint_flag.as_deref()),
                    },
                    None => weir_aws::AwsSettings {
                        region: None,
                        endpoint_url: self
                            .endpoint_flag
                            .clone()
                            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                            .filter(|e| !e.is_empty()),
                    },
                };
                weir_aws::SecretsManagerSource::new(&weir_aws::client::load(&settings).await)
            })
            .await;
        source.read(id).await
    }
}
