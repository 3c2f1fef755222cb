//! What can stop the servers from starting; request-level failures are answered, not raised.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {path}: {problem}")]
    Credentials { path: PathBuf, problem: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("staging folder {path}: {source}")]
    Staging {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("server configuration: {0}")]
    Config(String),
}
