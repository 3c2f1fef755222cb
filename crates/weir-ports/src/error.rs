//! The one error type every port returns, classified for retry decisions.

use weir_core::ErrorClass;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The thing asked for does not exist (object, job, receipt handle, bucket).
    #[error("{0} not found")]
    NotFound(String),
    /// The bucket does not exist. Unlike a missing object, this is the backend's set-up, not
    /// the data: a job that meets it is retried (and dead-lettered, with an alert, if it stays).
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    /// The request can never succeed as made (a key that escapes its bucket, a bad name).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A conditional write found the record changed under it: a run that lost its lease (another
    /// run holds the key now). Nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend failed; trying again later may work (I/O error, database busy, timeout).
    #[error("{context}: {source}")]
    Unavailable {
        context: String,
        #[source]
        source: BoxError,
    },
}

impl PortError {
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        PortError::Unavailable { context: context.into(), source: source.into() }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            PortError::NotFound(_) | PortError::Invalid(_) => ErrorClass::Permanent,
            PortError::NoSuchBucket(_) | PortError::Conflict(_) | PortError::Unavailable { .. } => {
                ErrorClass::Transient
            }
        }
    }

    /// A missing object, or a missing bucket.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PortError::NotFound(_) | PortError::NoSuchBucket(_))
    }
}
