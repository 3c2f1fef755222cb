//! Reading the secret settings of `weir.toml` ([`weir_core::SecretValue`]): inline as written,
//! from a file, or from AWS Secrets Manager, through a [`SecretSource`] for each of the last two
//! (`weir_backends::FileSecrets`, `weir_aws::SecretsManagerSource`).
//!
//! [`Secrets`] caches what it read for the configured refresh interval, so a rotated secret is
//! picked up within that time without a restart, and a source that cannot be reached for a
//! while does not stop deliveries that have a value already. No message of this module holds a
//! secret's value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use weir_core::secret::SecretValue;
use weir_core::{Config, Problem};

/// Largest secret weir reads (Secrets Manager's own limit is 64 KiB).
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Why a secret could not be read; never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret {0} does not exist (or weir may not read it)")]
    NotFound(String),
    #[error("{0}")]
    Unreadable(String),
    #[error("the secret {secret} has no key {key:?} in its JSON object")]
    NoKey { secret: String, key: String },
    #[error("the secret {0} is not a JSON object, so `key` cannot pick a value from it; leave `key` out to use the whole secret string")]
    NotJson(String),
    #[error("the secret {0} is in AWS Secrets Manager, which this command does not reach")]
    NoManager(String),
}

/// Where references of one kind are read: the secret string of a Secrets Manager secret (by
/// ARN or name), or the content of a file (by path).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn read(&self, id: &str) -> Result<String, SecretError>;
}

/// The secret settings' values: read from their sources, cached for `refresh`.
pub struct Secrets {
    files: Arc<dyn SecretSource>,
    manager: Option<Arc<dyn SecretSource>>,
    refresh: Duration,
    /// By source and id (`file:/run/x`, `secret:arn:...`): when it was read and what it held.
    cache: Mutex<HashMap<String, (Instant, String)>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("Secrets")
            .field("manager", &self.manager.is_some())
            .field("refresh", &self.refresh)
            .field("cached", &cached)
            .finish()
    }
}

impl Secrets {
    /// `files` reads `{ file = ... }`, `manager` (when this process can reach AWS) `{ secret = ... }`.
    pub fn new(
        files: Arc<dyn SecretSource>,
        manager: Option<Arc<dyn SecretSource>>,
        refresh: Duration,
    ) -> Self {
        Secrets { files, manager, refresh, cache: Mutex::new(HashMap::new()) }
    }

    /// The value of a secret setting: inline as written; a reference from the cache when read
    /// less than `refresh` ago, else read again (keeping the value it had, with a warning, if
    /// that fails after an earlier success).
    pub async fn get(&self, value: &SecretValue) -> Result<String, SecretError> {
        let (cache_key, source, id, key) = match value {
            SecretValue::Inline(v) => return Ok(v.clone()),
            SecretValue::File(f) => {
                let path = f.file.to_string_lossy().into_owned();
                (format!("file:{path}"), Some(&self.files), path, None)
            }
            SecretValue::Manager(m) => {
                (format!("secret:{}", m.secret), self.manager.as_ref(), m.secret.clone(), m.key.as_deref())
            }
        };
        let cached = self.cache.lock().expect("secrets cache").get(&cache_key).cloned();
        let whole = match cached {
            Some((at, text)) if at.elapsed() < self.refresh => text,
            stale => {
                let source = source.ok_or_else(|| SecretError::NoManager(id.clone()))?;
                match source.read(&id).await {
                    Ok(text) => {
                        self.cache
                            .lock()
                            .expect("secrets cache")
                            .insert(cache_key, (Instant::now(), text.clone()));
                        text
                    }
                    Err(e) => match stale {
                        Some((_, text)) => {
                            tracing::warn!(secret = %value.origin(), error = %e, "the secret could not be read again; its last value is used");
                            text
                        }
                        None => return Err(e),
                    },
                }
            }
        };
        match key {
            None => Ok(whole),
            Some(key) => pick_key(&whole, &id, key),
        }
    }

    /// Reads every secret setting of `config` now (filling the cache): a problem, at the
    /// setting's path, for each that cannot be read.
    pub async fn check(&self, config: &Config) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (path, value) in config.secret_settings() {
            if let Err(e) = self.get(value).await {
                problems.push(Problem::new(path, format!("cannot read {}: {e}", value.origin())));
            }
        }
        problems
    }

    /// The config a process runs with: every secret setting read now ([`Secrets::check`]; the
    /// problems if any cannot be), and the values of those read only at start put in place of
    /// their references: the server's keys, and a database URL in Secrets Manager (a database
    /// URL in a file is read again by the PostgreSQL sink for each new connection; the SMTP
    /// password and a webhook's URL through this cache at each delivery). `weir worker`,
    /// `weir run` and the Lambda function's cold start all come here.
    pub async fn resolve(&self, config: &Config) -> Result<Config, Vec<Problem>> {
        let problems = self.check(config).await;
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut config = config.clone();
        for (path, value) in config.secret_settings_mut() {
            let read_once = match value {
                SecretValue::Inline(_) => false,
                SecretValue::File(_) => path.starts_with("server."),
                SecretValue::Manager(_) => {
                    path.starts_with("server.") || path.ends_with(".sinks.postgres.url")
                }
            };
            if read_once {
                match self.get(value).await {
                    Ok(v) => *value = SecretValue::Inline(v),
                    Err(e) => {
                        return Err(vec![Problem::new(path, format!("cannot read {}: {e}", value.origin()))])
                    }
                }
            }
        }
        Ok(config)
    }
}

/// The value of `key` in the JSON object `text`, as a string (a number or boolean as written).
fn pick_key(text: &str, secret: &str, key: &str) -> Result<String, SecretError> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| SecretError::NotJson(secret.to_string()))?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(v.to_string()),
        _ => Err(SecretError::NoKey { secret: secret.to_string(), key: key.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_picks_a_value_of_the_json_object_and_errors_never_show_values() {
        let text = r#"{"username":"weir","password":"s3cr3t-value","port":587}"#;
        assert_eq!(pick_key(text, "arn:x", "password").unwrap(), "s3cr3t-value");
        assert_eq!(pick_key(text, "arn:x", "port").unwrap(), "587");
        let missing = pick_key(text, "arn:x", "pass").unwrap_err().to_string();
        assert_eq!(missing, "the secret arn:x has no key \"pass\" in its JSON object");
        let not_json = pick_key("s3cr3t-value", "arn:x", "password").unwrap_err().to_string();
        assert!(not_json.contains("not a JSON object") && !not_json.contains("s3cr3t"), "{not_json}");
    }
}
