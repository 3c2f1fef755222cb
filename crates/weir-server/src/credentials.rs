//! Who may talk to weir: the S3 key pair and the HTTP API's bearer token.
//!
//! Each value is taken from the environment (`WEIR_ACCESS_KEY_ID` with `WEIR_SECRET_ACCESS_KEY`,
//! `WEIR_API_TOKEN`), else from the `[server]` section, else from `<data dir>/credentials.toml`.
//! That file is created on first start with fresh random values and mode 0600, and refused if
//! anyone but weir's own user can read it ([`check_private_file`], the rule for every file that
//! holds a secret, `weir.toml` included). Secrets live in [`Secret`], which never prints its value,
//! so they cannot reach a log by accident.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use serde::{Deserialize, Serialize};
use weir_core::config::ServerConfig;

use crate::ServerError;

/// The name of the credentials file in the data dir.
pub const FILE_NAME: &str = "credentials.toml";

/// A secret value: shown as `***` by `Debug` and `Display`; [`Secret::expose`] gives it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a credential came from, for the startup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    Config,
    /// The credentials file; `true` if it was created just now.
    File {
        created: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub api_token: Secret,
    pub s3_source: Source,
    pub api_source: Source,
    /// The credentials file, if any value came from it.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    access_key_id: String,
    secret_access_key: Secret,
    api_token: Secret,
}

impl CredentialsFile {
    fn generate() -> CredentialsFile {
        let mut rng = rand::rng();
        // AWS-shaped: a 20-character upper-case key id and a 40-character secret.
        let id: String = (0..16)
            .map(|_| {
                const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
                CHARS[rng.random_range(0..CHARS.len())] as char
            })
            .collect();
        CredentialsFile {
            access_key_id: format!("WEIR{id}"),
            secret_access_key: Secret(Alphanumeric.sample_string(&mut rng, 40)),
            api_token: Secret(format!("weir_{}", Alphanumeric.sample_string(&mut rng, 43))),
        }
    }
}

impl Credentials {
    /// Resolves every credential as described in the module docs; `env` reads a variable
    /// (`std::env::var(..).ok()` in production).
    pub fn resolve(
        server: &ServerConfig,
        data_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, ServerError> {
        let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
        let s3 = match (nonempty("WEIR_ACCESS_KEY_ID"), nonempty("WEIR_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some((id, Secret(secret), Source::Environment)),
            (Some(_), None) | (None, Some(_)) => {
                return Err(ServerError::Config(
                    "WEIR_ACCESS_KEY_ID and WEIR_SECRET_ACCESS_KEY must be set together".into(),
                ))
            }
            (None, None) => match (&server.access_key_id, &server.secret_access_key) {
                (Some(id), Some(secret)) => Some((id.clone(), Secret(configured(secret)?), Source::Config)),
                _ => None,
            },
        };
        let api = match nonempty("WEIR_API_TOKEN") {
            Some(token) => Some((Secret(token), Source::Environment)),
            None => server
                .api_token
                .as_ref()
                .map(|t| configured(t).map(|t| (Secret(t), Source::Config)))
                .transpose()?,
        };
        let (file, path) = if s3.is_none() || api.is_none() {
            let path = data_dir.join(FILE_NAME);
            (Some(load_or_create(&path)?), Some(path))
        } else {
            (None, None)
        };
        let (access_key_id, secret_access_key, s3_source) = match s3 {
            Some(v) => v,
            None => {
                let (f, created) = file.as_ref().expect("loaded when needed");
                (f.access_key_id.clone(), f.secret_access_key.clone(), Source::File { created: *created })
            }
        };
        let (api_token, api_source) = match api {
            Some(v) => v,
            None => {
                let (f, created) = file.as_ref().expect("loaded when needed");
                (f.api_token.clone(), Source::File { created: *created })
            }
        };
        for (what, value) in
            [("secret access key", secret_access_key.expose()), ("API token", api_token.expose())]
        {
            if value.len() < 16 {
                return Err(ServerError::Config(format!("the {what} must be at least 16 characters")));
            }
        }
        Ok(Credentials { access_key_id, secret_access_key, api_token, s3_source, api_source, file: path })
    }

    /// Whether the credentials file was created by this start.
    pub fn created_file(&self) -> bool {
        matches!(self.s3_source, Source::File { created: true })
            || matches!(self.api_source, Source::File { created: true })
    }
}

/// Reads the credentials file, or creates it (mode 0600) with fresh values. Returns whether it
/// was created.
fn load_or_create(path: &Path) -> Result<(CredentialsFile, bool), ServerError> {
    let err = |problem: String| ServerError::Credentials { path: path.to_owned(), problem };
    match read(path) {
        Ok(file) => return Ok((file, false)),
        Err(ReadError::Missing) => {}
        Err(ReadError::Other(problem)) => return Err(err(problem)),
    }
    let fresh = CredentialsFile::generate();
    let body = format!(
        "# weir credentials, created on first start. Keep this file secret (mode 0600).\n\
         # `weir credentials` prints them as environment variables for aws/boto3.\n{}",
        toml::to_string(&fresh).expect("credentials serialize")
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(body.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| err(e.to_string()))?;
            Ok((fresh, true))
        }
        // Another weir created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path).map(|f| (f, false)).map_err(|e| match e {
                ReadError::Missing => err("vanished while being read".into()),
                ReadError::Other(p) => err(p),
            })
        }
        Err(e) => Err(err(format!("cannot create it: {e}"))),
    }
}

/// The one rule for every file that holds a secret (`credentials.toml`, a `weir.toml` with keys,
/// a token or a webhook): only weir's own user may read it. `Err` says what is wrong and the
/// command that fixes it.
/// A server secret's value: the binary reads references (`{ secret = ... }`, `{ file = ... }`)
/// at start and puts their values inline before the server starts.
fn configured(value: &weir_core::SecretValue) -> Result<String, ServerError> {
    match value {
        weir_core::SecretValue::Inline(v) => Ok(v.clone()),
        other => Err(ServerError::Config(format!("{} was not read at start", other.origin()))),
    }
}

pub fn check_private_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    private_to_us(path, &meta)
}

fn private_to_us(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        weir_core::private_file::check_mode_and_owner(
            path,
            mode,
            meta.uid(),
            rustix::process::geteuid().as_raw(),
        )?;
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

enum ReadError {
    Missing,
    Other(String),
}

fn read(path: &Path) -> Result<CredentialsFile, ReadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Other(e.to_string())),
    };
    private_to_us(path, &meta).map_err(ReadError::Other)?;
    let text = std::fs::read_to_string(path).map_err(|e| ReadError::Other(e.to_string()))?;
    // The parse error may quote the file's text; say only where it is.
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
        ReadError::Other(format!(
            "not a valid credentials file{at}: expected access_key_id, secret_access_key and api_token"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn first_start_creates_a_private_file_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Credentials::resolve(&ServerConfig::default(), dir.path(), no_env).unwrap();
        assert!(first.created_file());
        assert!(first.access_key_id.starts_with("WEIR") && first.access_key_id.len() == 20);
        assert_eq!(first.secret_access_key.expose().len(), 40);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Credentials::resolve(&ServerConfig::default(), dir.path(), no_env).unwrap();
        assert!(!again.created_file());
        assert_eq!(again.access_key_id, first.access_key_id);
        assert_eq!(again.api_token, first.api_token);
        assert!(!format!("{first:?}").contains(first.secret_access_key.expose()));
    }

    #[test]
    fn environment_wins_and_nothing_is_written_when_all_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let env = |name: &str| match name {
            "WEIR_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_string()),
            "WEIR_SECRET_ACCESS_KEY" => Some("s".repeat(40)),
            "WEIR_API_TOKEN" => Some("t".repeat(32)),
            _ => None,
        };
        let c = Credentials::resolve(&ServerConfig::default(), dir.path(), env).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.s3_source), ("AKIDEXAMPLE", Source::Environment));
        assert!(!dir.path().join(FILE_NAME).exists());
        let half = |name: &str| (name == "WEIR_ACCESS_KEY_ID").then(|| "x".to_string());
        assert!(Credentials::resolve(&ServerConfig::default(), dir.path(), half).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Credentials::resolve(&ServerConfig::default(), dir.path(), no_env).unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Credentials::resolve(&ServerConfig::default(), dir.path(), no_env).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}
