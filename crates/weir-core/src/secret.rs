//! A secret setting of `weir.toml` (an SMTP password, a webhook URL with its token, the API
//! token, a database URL): written inline, or as a reference that weir resolves when it starts.
//!
//! ```toml
//! password = "inline, in a file private to weir's user"
//! password = { secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbCdEf", key = "password" }
//! password = { file = "/run/secrets/smtp_password" }
//! ```
//!
//! A reference names where the value is, never the value, so a config holding only references is
//! not itself a secret. Resolving one is I/O (a file, AWS Secrets Manager) and lives outside this
//! crate (`weir_ports::secrets`). Neither the [`Debug`] form nor any message of this module ever
//! shows an inline value.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// One secret setting: its value inline, or where to read it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, { secret = \"arn:aws:secretsmanager:...\", key = \"...\" } or { file = \"/path\" }"
)]
pub enum SecretValue {
    /// The value as written in `weir.toml`.
    Inline(String),
    /// An AWS Secrets Manager secret (its ARN or name): its whole secret string, or with `key`
    /// the value of that key of the JSON object the secret string holds.
    Manager(ManagerRef),
    /// A file's whole content, trailing newline trimmed; the file must be private to weir's user.
    File(FileRef),
}

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerRef {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub file: PathBuf,
}

impl SecretValue {
    /// The inline value, if the setting is written inline.
    pub fn inline(&self) -> Option<&str> {
        match self {
            SecretValue::Inline(v) => Some(v),
            _ => None,
        }
    }

    /// Where the value comes from, for messages and stable names: `inline`,
    /// `secret arn:...#key` or `file /run/secrets/x`; never the value.
    pub fn origin(&self) -> String {
        match self {
            SecretValue::Inline(_) => "inline".to_string(),
            SecretValue::Manager(m) => match &m.key {
                Some(k) => format!("secret {} key {k:?}", m.secret),
                None => format!("secret {}", m.secret),
            },
            SecretValue::File(f) => format!("file {}", f.file.display()),
        }
    }

    /// Problems seen in the text alone, with paths within the setting.
    pub fn validate(&self) -> Vec<Problem> {
        match self {
            SecretValue::Inline(_) => Vec::new(),
            SecretValue::Manager(m) => {
                let mut problems = Vec::new();
                if m.secret.trim().is_empty() || m.secret.len() > 2048 {
                    problems.push(Problem::new(
                        "secret",
                        "name a Secrets Manager secret by its ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) or name",
                    ));
                }
                if m.key.as_deref().is_some_and(str::is_empty) {
                    problems
                        .push(Problem::new("key", "empty; leave `key` out to use the whole secret string"));
                }
                problems
            }
            // A relative path is relative to the config file (the binary makes it absolute).
            SecretValue::File(f) if f.file.as_os_str().is_empty() => {
                vec![Problem::new("file", "empty; give the path of the file holding the secret")]
            }
            SecretValue::File(_) => Vec::new(),
        }
    }
}

impl From<&str> for SecretValue {
    fn from(v: &str) -> Self {
        SecretValue::Inline(v.to_string())
    }
}

impl From<String> for SecretValue {
    fn from(v: String) -> Self {
        SecretValue::Inline(v)
    }
}

/// Shows where the value comes from, never an inline value.
impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValue::Inline(_) => f.write_str("SecretValue(inline, redacted)"),
            other => write!(f, "SecretValue({})", other.origin()),
        }
    }
}

impl fmt::Debug for ManagerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerRef").field("secret", &self.secret).field("key", &self.key).finish()
    }
}

impl fmt::Debug for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRef").field("file", &self.file).finish()
    }
}

/// `[secrets]`: how long a value read from Secrets Manager or a file is used before it is read
/// again, so a rotated secret is picked up without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    pub refresh_secs: u64,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig { refresh_secs: 300 }
    }
}

impl SecretsConfig {
    pub fn validate(&self) -> Vec<Problem> {
        if self.refresh_secs == 0 {
            vec![Problem::new("secrets.refresh_secs", "must be at least 1")]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        password: SecretValue,
    }

    fn parse(toml_text: &str) -> Result<SecretValue, toml::de::Error> {
        toml::from_str::<Holder>(toml_text).map(|h| h.password)
    }

    #[test]
    fn a_secret_setting_is_a_string_a_manager_reference_or_a_file() {
        assert_eq!(parse("password = \"hunter2\"").unwrap(), SecretValue::Inline("hunter2".into()));
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbCdEf";
        assert_eq!(
            parse(&format!("password = {{ secret = \"{arn}\", key = \"password\" }}")).unwrap(),
            SecretValue::Manager(ManagerRef { secret: arn.into(), key: Some("password".into()) })
        );
        assert_eq!(
            parse(&format!("password = {{ secret = \"{arn}\" }}")).unwrap(),
            SecretValue::Manager(ManagerRef { secret: arn.into(), key: None })
        );
        assert_eq!(
            parse("password = { file = \"/run/secrets/x\" }").unwrap(),
            SecretValue::File(FileRef { file: "/run/secrets/x".into() })
        );
        let e = parse("password = { vault = \"x\" }").unwrap_err().to_string();
        assert!(e.contains("a string, { secret = "), "{e}");
        assert!(parse("password = { file = \"/x\", secret = \"y\" }").is_err());
    }

    #[test]
    fn debug_and_origin_never_show_an_inline_value() {
        let inline = SecretValue::from("hunter2-value");
        assert!(!format!("{inline:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&inline)).contains("hunter2"));
        assert_eq!(inline.origin(), "inline");
        let m = SecretValue::Manager(ManagerRef { secret: "arn:x".into(), key: Some("pw".into()) });
        assert_eq!(m.origin(), "secret arn:x key \"pw\"");
        assert!(format!("{m:?}").contains("arn:x"));
    }

    #[test]
    fn references_are_checked_in_the_text() {
        assert!(SecretValue::File(FileRef { file: "".into() }).validate()[0].message.contains("empty"));
        let empty_key = SecretValue::Manager(ManagerRef { secret: "arn:x".into(), key: Some(String::new()) });
        assert_eq!(empty_key.validate()[0].path, "key");
        assert!(SecretsConfig { refresh_secs: 0 }.validate().len() == 1);
    }
}
