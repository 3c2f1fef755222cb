//! `{ file = "/run/secrets/x" }` secrets: a file's whole content, trailing newline trimmed, read
//! only if the file is private to weir's user (as `credentials.toml` and a PostgreSQL URL file
//! must be), and at most [`weir_ports::secrets::MAX_SECRET_BYTES`] long.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use weir_ports::secrets::MAX_SECRET_BYTES;
use weir_ports::{SecretError, SecretSource, Secrets};

/// Reads secret files (the `id` is the path).
#[derive(Debug, Default, Clone)]
pub struct FileSecrets;

#[async_trait]
impl SecretSource for FileSecrets {
    async fn read(&self, id: &str) -> Result<String, SecretError> {
        let path = Path::new(id).to_path_buf();
        tokio::task::spawn_blocking(move || read_secret_file(&path))
            .await
            .map_err(|e| SecretError::Unreadable(format!("reading {id}: {e}")))?
    }
}

/// The secrets of a process that reaches no AWS: inline values and files, re-read after
/// `refresh`; a `{ secret = ... }` reference fails with [`SecretError::NoManager`].
pub fn local_secrets(refresh: Duration) -> Arc<Secrets> {
    Arc::new(Secrets::new(Arc::new(FileSecrets), None, refresh))
}

fn read_secret_file(path: &Path) -> Result<String, SecretError> {
    let fail = |e: String| SecretError::Unreadable(format!("the file {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        weir_core::private_file::check_mode_and_owner(
            path,
            meta.permissions().mode() & 0o777,
            meta.uid(),
            rustix::process::geteuid().as_raw(),
        )
        .map_err(|e| fail(format!("{e}: a file holding a secret must be private to weir's user")))?;
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(fail(format!("{} bytes, more than a secret's {MAX_SECRET_BYTES}", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if value.is_empty() {
        return Err(fail("empty".into()));
    }
    Ok(value.to_string())
}
