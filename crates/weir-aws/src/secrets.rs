//! `{ secret = "arn:aws:secretsmanager:...", key = "..." }` secrets: the secret string of an AWS
//! Secrets Manager secret (`GetSecretValue`, the current version), which
//! [`weir_ports::Secrets`] caches and reads again after its refresh interval.

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use weir_ports::secrets::MAX_SECRET_BYTES;
use weir_ports::{SecretError, SecretSource};

use crate::AwsSettings;

/// Reads secrets from Secrets Manager (the `id` is the secret's ARN or name).
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        SecretsManagerSource { client: aws_sdk_secretsmanager::Client::new(sdk) }
    }
}

/// A [`SecretsManagerSource`] made the first time a secret is read, so a process whose config
/// names none never loads the SDK or reaches AWS.
#[derive(Debug)]
pub struct SecretsManagerOnFirstUse {
    settings: AwsSettings,
    source: tokio::sync::OnceCell<SecretsManagerSource>,
}

impl SecretsManagerOnFirstUse {
    /// With `settings` (region and endpoint, as [`crate::endpoint`] finds them).
    pub fn new(settings: AwsSettings) -> Self {
        SecretsManagerOnFirstUse { settings, source: tokio::sync::OnceCell::new() }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerOnFirstUse {
    async fn read(&self, id: &str) -> Result<String, SecretError> {
        let source = self
            .source
            .get_or_init(|| async { SecretsManagerSource::new(&crate::client::load(&self.settings).await) })
            .await;
        source.read(id).await
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn read(&self, id: &str) -> Result<String, SecretError> {
        let out = self.client.get_secret_value().secret_id(id).send().await.map_err(|e| {
            match e.as_service_error().and_then(|s| s.code()) {
                Some("ResourceNotFoundException") => SecretError::NotFound(id.to_string()),
                Some("AccessDeniedException") => SecretError::Unreadable(format!(
                    "the secret {id}: access denied (weir's role needs secretsmanager:GetSecretValue on it)"
                )),
                _ => SecretError::Unreadable(format!(
                    "the secret {id}: Secrets Manager answered {}",
                    DisplayErrorContext(&e)
                )),
            }
        })?;
        let text = out.secret_string().ok_or_else(|| {
            SecretError::Unreadable(format!("the secret {id} holds binary data, not a string"))
        })?;
        if text.len() as u64 > MAX_SECRET_BYTES {
            return Err(SecretError::Unreadable(format!(
                "the secret {id} is longer than {MAX_SECRET_BYTES} bytes"
            )));
        }
        Ok(text.to_string())
    }
}
