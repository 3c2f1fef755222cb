//! `[pipeline.sinks]`: warehouse tables a pipeline loads its valid rows into, besides the
//! results object.
//!
//! ```toml
//! [pipeline.sinks.postgres]
//! url = "postgres://weir@db.internal:5432/analytics"   # or url_env / url_file
//! table = "sales"                                      # default: the pipeline's name
//! mode = "replace"                                     # or "append"
//! ```
//!
//! The table has one typed column per schema column and derived field, the whole cleaned row
//! as `data` (JSON), and the lineage columns [`LINEAGE_COLUMNS`]; its primary key is
//! (`weir_job_id`, `weir_line`): one version of one source file, one line of it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Problem;

/// The column holding the whole cleaned row (`jsonb` in PostgreSQL), named as the seed's
/// `processed_data` table has it, so `data ->> 'field'` queries work unchanged.
pub const DATA_COLUMN: &str = "data";

/// Where each row came from: the source's bucket and key, the job (one version of the source),
/// the line in the source file (the header is line 1), and when it was loaded.
pub const LINEAGE_COLUMNS: [&str; 5] =
    ["weir_source_bucket", "weir_source_key", "weir_job_id", "weir_line", "weir_processed_at"];

/// The environment variable read for the connection URL when the sink names none.
pub const DEFAULT_URL_ENV: &str = "WEIR_POSTGRES_URL";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinksConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSinkConfig>,
}

impl SinksConfig {
    pub fn is_default(&self) -> bool {
        self == &SinksConfig::default()
    }
}

/// What a new version of a source key does to the rows an earlier version loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// The key's rows are the newest version's only (a file that is re-exported whole).
    #[default]
    Replace,
    /// Every version's rows stay (a file that brings new rows each time); a version loaded
    /// again still replaces only its own rows.
    Append,
}

impl LoadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadMode::Replace => "replace",
            LoadMode::Append => "append",
        }
    }
}

/// `[pipeline.sinks.postgres]`. Its `Debug` shows the URL with the password redacted, so a
/// config printed in a log or a panic never carries it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=verify-full&sslrootcert=ca.pem]`
    /// (or libpq's `host=... user=...` form). Without a password in it, `PGPASSWORD` or the
    /// `.pgpass` file supplies one.
    /// Also `{ secret = "arn:...", key = "..." }` or `{ file = "/path" }` (read at start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<crate::secret::SecretValue>,
    /// An environment variable holding the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// A file holding the URL (which a secrets agent may rewrite: it is read for every new
    /// connection). Like every file holding a secret, it must be private to weir's user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The table, `name` or `schema.name`; default: the pipeline's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub mode: LoadMode,
    /// Connections kept open to the database at most.
    pub pool_size: usize,
    /// How long a connection attempt may take before the database counts as unreachable.
    pub connect_timeout_secs: u64,
}

impl std::fmt::Debug for PostgresSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSinkConfig")
            .field("url", &self.url.as_ref().map(|u| u.inline().map(redact).unwrap_or_else(|| u.origin())))
            .field("url_env", &self.url_env)
            .field("url_file", &self.url_file)
            .field("table", &self.table)
            .field("mode", &self.mode)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

impl Default for PostgresSinkConfig {
    fn default() -> Self {
        PostgresSinkConfig {
            url: None,
            url_env: None,
            url_file: None,
            table: None,
            mode: LoadMode::Replace,
            pool_size: 4,
            connect_timeout_secs: 10,
        }
    }
}

/// Where a connection URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource<'a> {
    Inline(&'a str),
    Env(&'a str),
    File(&'a std::path::Path),
    /// A Secrets Manager secret, which the binary reads at start and puts inline.
    Unresolved(&'a crate::secret::ManagerRef),
}

impl PostgresSinkConfig {
    /// Where the URL comes from: `url`, `url_env`, `url_file`, else [`DEFAULT_URL_ENV`].
    pub fn url_source(&self) -> UrlSource<'_> {
        if let Some(u) = &self.url {
            match u {
                crate::secret::SecretValue::Inline(u) => UrlSource::Inline(u),
                crate::secret::SecretValue::File(f) => UrlSource::File(&f.file),
                crate::secret::SecretValue::Manager(m) => UrlSource::Unresolved(m),
            }
        } else if let Some(e) = &self.url_env {
            UrlSource::Env(e)
        } else if let Some(f) = &self.url_file {
            UrlSource::File(f)
        } else {
            UrlSource::Env(DEFAULT_URL_ENV)
        }
    }

    /// The table as (schema, name); `pipeline` is the default name.
    pub fn table_name<'a>(&'a self, pipeline: &'a str) -> (Option<&'a str>, &'a str) {
        let table = self.table.as_deref().unwrap_or(pipeline);
        match table.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, table),
        }
    }

    /// Problems that can be seen in the text, with paths within the section; `columns` are the
    /// names of the pipeline's schema columns and derived fields.
    pub fn validate(&self, pipeline: &str, columns: &[String]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let given = [self.url.is_some(), self.url_env.is_some(), self.url_file.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            problems.push(Problem::new("", "set one of url, url_env and url_file"));
        }
        if let Some(secret) = &self.url {
            problems.extend(secret.validate().into_iter().map(|p| p.under("url")));
        }
        if let Some(url) = self.url.as_ref().and_then(|u| u.inline()) {
            if !looks_like_connection_string(url) {
                problems.push(Problem::new(
                    "url",
                    "not a PostgreSQL URL (postgres://user@host:5432/database) nor a libpq connection \
                     string (host=... dbname=...)",
                ));
            }
        }
        if self.url_env.as_deref().is_some_and(|e| e.is_empty() || e.contains('=')) {
            problems.push(Problem::new("url_env", "not an environment variable name"));
        }
        let table = self.table.as_deref().unwrap_or(pipeline);
        let parts: Vec<&str> = table.split('.').collect();
        if parts.len() > 2 || parts.iter().any(|p| !identifier_ok(p)) {
            problems.push(Problem::new(
                "table",
                format!(
                    "{table:?} is not a table name: use `name` or `schema.name`, each 1-63 bytes without \
                     quotes, dots or control characters{}",
                    if self.table.is_none() {
                        " (the default is the pipeline's name; set table)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        for name in columns {
            if name == DATA_COLUMN || LINEAGE_COLUMNS.contains(&name.as_str()) {
                problems.push(Problem::new(
                    "",
                    format!(
                        "the pipeline's column {name:?} has the name of a column weir adds to the table \
                         ({DATA_COLUMN}, {}); rename it with a derived field",
                        LINEAGE_COLUMNS.join(", ")
                    ),
                ));
            }
            if !column_name_ok(name) {
                problems.push(Problem::new(
                    "",
                    format!("the pipeline's column {name:?} cannot be a PostgreSQL column name"),
                ));
            }
        }
        if self.pool_size == 0 {
            problems.push(Problem::new("pool_size", "must be at least 1"));
        }
        if self.connect_timeout_secs == 0 {
            problems.push(Problem::new("connect_timeout_secs", "must be at least 1"));
        }
        problems
    }

    /// Whether the inline URL holds a password (so the file holding it is a secret).
    pub fn inline_password(&self) -> bool {
        self.url.as_ref().and_then(|u| u.inline()).is_some_and(has_password)
    }
}

/// A PostgreSQL identifier weir can quote: 1-63 bytes, no quote, dot or control character.
pub fn identifier_ok(name: &str) -> bool {
    (1..=63).contains(&name.len()) && !name.chars().any(|c| c == '"' || c == '.' || c.is_control())
}

/// A column name weir can quote: 1-63 bytes, no quote or control character (a JSON path's
/// dots are fine: `"user.id"`).
pub fn column_name_ok(name: &str) -> bool {
    (1..=63).contains(&name.len()) && !name.chars().any(|c| c == '"' || c.is_control())
}

fn looks_like_connection_string(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains('=')
}

/// Whether a URL or libpq connection string carries a password.
pub fn has_password(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("postgres://").or_else(|| lower.strip_prefix("postgresql://")) {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo.contains(':') {
                return true;
            }
        }
        return rest.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("password=")));
    }
    lower.split_whitespace().any(|kv| kv.starts_with("password="))
}

/// The URL with its password replaced by `***`, for messages (`has_password` decides what is one).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|kv| {
                        if kv.to_ascii_lowercase().starts_with("password=") {
                            "password=***".to_string()
                        } else {
                            kv.to_string()
                        }
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    url.split_whitespace()
        .map(|kv| if kv.to_ascii_lowercase().starts_with("password=") { "password=***" } else { kv })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_and_redacted() {
        for (url, pw, shown) in [
            ("postgres://weir@db:5432/a", false, "postgres://weir@db:5432/a"),
            ("postgres://weir:s3cr%40t@db:5432/a", true, "postgres://weir:***@db:5432/a"),
            ("postgresql://weir:pw@db/a?sslmode=require", true, "postgresql://weir:***@db/a?sslmode=require"),
            ("postgres://db/a?user=w&password=pw", true, "postgres://db/a?user=w&password=***"),
            ("host=db user=w password=pw dbname=a", true, "host=db user=w password=*** dbname=a"),
            ("host=db user=w dbname=a", false, "host=db user=w dbname=a"),
        ] {
            assert_eq!(has_password(url), pw, "{url}");
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn a_config_printed_for_debugging_hides_the_password() {
        let c = PostgresSinkConfig { url: Some("postgres://weir:s3cret@db/a".into()), ..Default::default() };
        let shown = format!("{c:?}");
        assert!(shown.contains("postgres://weir:***@db/a") && !shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn the_section_is_checked() {
        let c: PostgresSinkConfig = toml::from_str(
            "url = \"postgres://w@db/a\"\nurl_env = \"X\"\ntable = \"a.b.c\"\npool_size = 0\n",
        )
        .unwrap();
        let problems: Vec<String> = c
            .validate("sales", &["data".into(), "ok".into()])
            .into_iter()
            .map(|p| p.under("p.sinks.postgres").to_string())
            .collect();
        for expected in
            ["p.sinks.postgres: set one of url", "p.sinks.postgres.table:", "column \"data\"", "pool_size"]
        {
            assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:?}");
        }
        assert!(toml::from_str::<PostgresSinkConfig>("mode = \"upsert\"").is_err());
        assert!(toml::from_str::<PostgresSinkConfig>("tabel = \"x\"").is_err());
        let ok: PostgresSinkConfig =
            toml::from_str("table = \"analytics.sales\"\nmode = \"append\"").unwrap();
        assert!(ok.validate("p", &["revenue".into()]).is_empty());
        assert_eq!(ok.table_name("p"), (Some("analytics"), "sales"));
        assert_eq!(ok.url_source(), UrlSource::Env(DEFAULT_URL_ENV));
        assert_eq!(PostgresSinkConfig::default().table_name("sales"), (None, "sales"));
    }
}
