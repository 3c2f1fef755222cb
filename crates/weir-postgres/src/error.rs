//! What went wrong with the database, in words a user can act on, and whether it is the file's
//! fault (a refused row) or the database's (anything else, retried).

use std::error::Error as _;

use tokio_postgres::error::SqlState;
use weir_ports::{LoadError, PortError};

/// Why a connection could not be made: the network, TLS, authentication, the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    Network,
    Timeout,
    Tls,
    Auth,
    Database,
    Server,
}

impl ConnectFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Network => "network",
            ConnectFailure::Timeout => "network: timeout",
            ConnectFailure::Tls => "TLS",
            ConnectFailure::Auth => "auth",
            ConnectFailure::Database => "database",
            ConnectFailure::Server => "server",
        }
    }
}

/// A failed connection, said with the host, port and database and what kind of failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    pub failure: ConnectFailure,
    pub message: String,
}

impl ConnectError {
    pub fn new(e: &tokio_postgres::Error, target: &str, user: &str) -> ConnectError {
        let failure = classify_connect(e);
        let cause = innermost(e);
        let message = match failure {
            ConnectFailure::Network => {
                format!("PostgreSQL at {target} is unreachable ({}): {cause}; is the server running and listening there?", failure.as_str())
            }
            ConnectFailure::Timeout => {
                format!("PostgreSQL at {target} did not answer in time ({}): {cause}", failure.as_str())
            }
            ConnectFailure::Tls => format!(
                "TLS with PostgreSQL at {target} failed ({}): {cause}; check sslmode and sslrootcert",
                failure.as_str()
            ),
            ConnectFailure::Auth => format!(
                "PostgreSQL at {target} refused user {user:?} ({}): {cause}; check the password (URL, PGPASSWORD or .pgpass)",
                failure.as_str()
            ),
            ConnectFailure::Database => format!("PostgreSQL at {target} ({}): {cause}", failure.as_str()),
            ConnectFailure::Server => format!("PostgreSQL at {target} ({}): {cause}", failure.as_str()),
        };
        ConnectError { failure, message }
    }
}

fn classify_connect(e: &tokio_postgres::Error) -> ConnectFailure {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return if code.starts_with("28") {
            ConnectFailure::Auth
        } else if db.code() == &SqlState::INVALID_CATALOG_NAME {
            ConnectFailure::Database
        } else {
            ConnectFailure::Server
        };
    }
    let text = e.to_string();
    if text.starts_with("error performing TLS handshake") || chain_has_tls(e) {
        return ConnectFailure::Tls;
    }
    if text.starts_with("authentication error") {
        return ConnectFailure::Auth;
    }
    if text.starts_with("timeout") || innermost(e).contains("timed out") {
        return ConnectFailure::Timeout;
    }
    ConnectFailure::Network
}

fn chain_has_tls(e: &tokio_postgres::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// The most specific message in an error's chain (the database's own message for a server
/// error), prefixed by the client's when that adds something.
pub fn innermost(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if last == e.to_string() {
        last
    } else {
        format!("{e}: {last}")
    }
}

/// SQLSTATEs that mean the table is not what weir expects (changed after `weir setup
/// postgres`, or never set up): the configuration's problem, retried, not the file's.
fn table_problem(code: &SqlState) -> bool {
    [
        SqlState::UNDEFINED_TABLE,
        SqlState::UNDEFINED_COLUMN,
        SqlState::INVALID_SCHEMA_NAME,
        SqlState::DATATYPE_MISMATCH,
        SqlState::INVALID_BINARY_REPRESENTATION,
        SqlState::INSUFFICIENT_PRIVILEGE,
        SqlState::WRONG_OBJECT_TYPE,
    ]
    .contains(code)
}

/// An error during a load: a row the database refuses (a data exception, class 22, or an
/// integrity constraint, class 23) fails the file; anything else is retried.
pub fn load_error(e: tokio_postgres::Error, doing: &str, table: &str, target: &str) -> LoadError {
    if let Some(db) = e.as_db_error() {
        let class = &db.code().code()[..2];
        if (class == "22" || class == "23") && !table_problem(db.code()) {
            let row = db.where_().and_then(copy_line);
            let column = db.where_().and_then(copy_column);
            let mut reason = String::from("PostgreSQL refused the row");
            if let Some(c) = column {
                reason.push_str(&format!(" (column {c})"));
            }
            reason.push_str(&format!(": {} (SQLSTATE {})", db.message(), db.code().code()));
            return LoadError::Refused { row, reason };
        }
        if table_problem(db.code()) {
            return LoadError::Port(PortError::unavailable(
                format!("{doing} {table} at {target}"),
                format!(
                    "{} (SQLSTATE {}); the table does not match the pipeline: run `weir check`, then `weir setup postgres`",
                    db.message(),
                    db.code().code()
                ),
            ));
        }
    }
    LoadError::Port(PortError::unavailable(format!("{doing} {table} at {target}"), innermost(&e)))
}

/// The row number in a COPY error's context: `COPY sales, line 3, column price: "x"`.
fn copy_line(context: &str) -> Option<u64> {
    let rest = context.strip_prefix("COPY ")?;
    let at = rest.find(", line ")?;
    let digits: String = rest[at + 7..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn copy_column(context: &str) -> Option<&str> {
    let at = context.find(", column ")?;
    let rest = &context[at + 9..];
    Some(rest.split(':').next().unwrap_or(rest).trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_contexts_name_the_row_and_column() {
        assert_eq!(copy_line("COPY sales, line 3, column price: \"x\""), Some(3));
        assert_eq!(copy_line("COPY sales, line 12"), Some(12));
        assert_eq!(copy_line("SQL function"), None);
        assert_eq!(copy_column("COPY sales, line 3, column price: \"x\""), Some("price"));
        assert_eq!(copy_column("COPY sales, line 3"), None);
    }
}
