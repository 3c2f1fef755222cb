//! The one error type every port returns, classified for retry decisions.

use weir_core::ErrorClass;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The thing asked for does not exist (object, job, receipt handle, bucket).
    #[error("{0} not found")]
    NotFound(String),
    /// The request can never succeed as made (a key that escapes its bucket, a bad name).
    #[error("invalid request: {0}")]
    Invalid(String),
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
            PortError::Unavailable { .. } => ErrorClass::Transient,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, PortError::NotFound(_))
    }
}
