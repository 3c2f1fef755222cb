//! From `[pipeline.sinks.postgres]` to the settings of one connection: where the URL comes from
//! (inline, an environment variable, a secret file read again for every new connection), the
//! libpq conventions weir keeps (`PGPASSWORD`, `.pgpass`, `sslmode` including `verify-ca` and
//! `verify-full`, `sslrootcert`), and a description of the database without credentials.
//!
//! tokio-postgres parses the URL or `key=value` string itself; it knows `sslmode` only up to
//! `require` and has no `sslrootcert`, so those two are taken out here and given to the TLS
//! set-up ([`crate::tls`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use weir_core::sink_config::{PostgresSinkConfig, UrlSource};

/// libpq's `sslmode`, all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it (libpq's default).
    Prefer,
    /// TLS, the certificate not checked (unless `sslrootcert` names a CA, as libpq does).
    Require,
    /// TLS with a certificate signed by a trusted CA, whatever name it carries.
    VerifyCa,
    /// TLS with a certificate signed by a trusted CA for the host connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(s: &str) -> Option<TlsMode> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// What one connection is made with.
#[derive(Clone)]
pub struct Settings {
    pub config: tokio_postgres::Config,
    pub tls: TlsMode,
    /// A PEM file of the CAs to trust (`sslrootcert`); the system's when none.
    pub root_cert: Option<PathBuf>,
    /// `host:port/database`, for messages.
    pub target: String,
}

/// Why the settings could not be made: always the configuration's fault, said plainly.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Reads the URL from where the section says (the file is read now, each time) and
    /// completes it from the environment as libpq would.
    pub fn resolve(sink: &PostgresSinkConfig) -> Result<Settings, SettingsError> {
        let url = match sink.url_source() {
            UrlSource::Inline(u) => u.to_string(),
            UrlSource::Env(var) => std::env::var(var).map_err(|_| {
                SettingsError(format!(
                    "the PostgreSQL sink's URL comes from ${var}, which is not set (or set url / url_env / url_file)"
                ))
            })?,
            UrlSource::File(path) => read_url_file(path)?,
            UrlSource::Unresolved(secret) => {
                return Err(SettingsError(format!(
                    "the PostgreSQL sink's URL is in the secret {}, which was not read at start",
                    secret.secret
                )))
            }
        };
        Settings::parse(url.trim(), sink.connect_timeout_secs, &Env::process())
    }

    /// The settings for `url`, completed from `env`.
    pub(crate) fn parse(url: &str, connect_timeout_secs: u64, env: &Env) -> Result<Settings, SettingsError> {
        let redacted = weir_core::sink_config::redact(url);
        let (rest, extracted) = take_tls_options(url);
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| SettingsError(format!("PostgreSQL URL {redacted}: {e}")))?;
        let tls = match extracted.sslmode.as_deref() {
            None => TlsMode::Prefer,
            Some(m) => TlsMode::parse(m).ok_or_else(|| {
                SettingsError(format!(
                    "PostgreSQL URL {redacted}: sslmode={m} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ))
            })?,
        };
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        if config.get_hosts().is_empty() {
            config.host(env.get("PGHOST").unwrap_or_else(|| "localhost".into()));
        }
        if config.get_user().is_none() {
            let user = env.get("PGUSER").or_else(|| env.get("USER")).unwrap_or_else(|| "postgres".into());
            config.user(user);
        }
        if config.get_dbname().is_none() {
            if let Some(db) = env.get("PGDATABASE") {
                config.dbname(db);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(connect_timeout_secs.max(1)));
        }
        if config.get_application_name().is_none() {
            config.application_name("weir");
        }
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or_default().to_string();
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        if config.get_password().is_none() {
            if let Some(pw) = env.get("PGPASSWORD") {
                config.password(pw);
            } else if let Some(pw) = env.pgpass(&host, port, &dbname, &user) {
                config.password(pw);
            }
        }
        Ok(Settings {
            config,
            tls,
            root_cert: extracted.sslrootcert.filter(|p| p != "system").map(PathBuf::from),
            target: format!("{host}:{port}/{dbname}"),
        })
    }

    /// The host connected to (for TLS names and messages).
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            _ => "localhost".into(),
        }
    }
}

/// Reads a URL file, which like every file holding a secret must be private to weir's user.
fn read_url_file(path: &Path) -> Result<String, SettingsError> {
    let fail = |e: String| SettingsError(format!("the PostgreSQL URL file {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        weir_core::private_file::check_mode_and_owner(
            path,
            meta.permissions().mode() & 0o777,
            meta.uid(),
            rustix::process::geteuid().as_raw(),
        )
        .map_err(fail)?;
    }
    if meta.len() > 64 << 10 {
        return Err(fail(format!("{} bytes; a URL file holds one URL", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let url = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
    url.map(str::to_string).ok_or_else(|| fail("empty".into()))
}

#[derive(Debug, Default, PartialEq)]
struct TlsOptions {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query or a `key=value` string.
fn take_tls_options(url: &str) -> (String, TlsOptions) {
    let mut found = TlsOptions::default();
    let mut take = |k: &str, v: &str| match k {
        "sslmode" => {
            found.sslmode = Some(v.to_string());
            true
        }
        "sslrootcert" => {
            found.sslrootcert = Some(v.to_string());
            true
        }
        _ => false,
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else { return (url.to_string(), found) };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k, &percent_decode(v))
            })
            .collect();
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, found);
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            !take(k.trim(), v.trim_matches('\''))
        })
        .collect();
    (kept.join(" "), found)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The environment the libpq conventions read: the process's, or a test's.
pub(crate) struct Env {
    vars: Box<Lookup>,
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    pub(crate) fn process() -> Env {
        Env { vars: Box::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty())) }
    }

    #[cfg(test)]
    fn from(pairs: &[(&str, &str)]) -> Env {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env { vars: Box::new(move |k| map.get(k).cloned()) }
    }

    fn get(&self, k: &str) -> Option<String> {
        (self.vars)(k)
    }

    /// The password `.pgpass` (or `$PGPASSFILE`) has for this connection. Like libpq, a file
    /// that others can read is ignored, with a warning.
    fn pgpass(&self, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
        let path = match self.get("PGPASSFILE") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(self.get("HOME")?).join(".pgpass"),
        };
        let meta = std::fs::metadata(&path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "password file has group or world access; ignoring it (chmod 600)");
                return None;
            }
        }
        if meta.len() > 1 << 20 {
            return None;
        }
        pgpass_lookup(&std::fs::read_to_string(&path).ok()?, host, port, db, user)
    }
}

/// The first `.pgpass` line (`host:port:database:user:password`, `*` matching anything, `\`
/// escaping `:` and `\`) that matches.
fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            continue;
        }
        let host_ok = fields[0] == "*"
            || fields[0] == host
            || (fields[0] == "localhost" && (host == "127.0.0.1" || host == "::1"));
        if host_ok
            && (fields[1] == "*" || fields[1] == port)
            && (fields[2] == "*" || fields[2] == db)
            && (fields[3] == "*" || fields[3] == user)
        {
            return Some(fields.swap_remove(4));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_both_forms() {
        let (rest, o) =
            take_tls_options("postgres://w@db:5432/a?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&x=1");
        assert_eq!(rest, "postgres://w@db:5432/a?x=1");
        assert_eq!(o.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(o.sslrootcert.as_deref(), Some("/etc/ca.pem"));
        let (rest, o) = take_tls_options("postgres://w@db/a?sslmode=require");
        assert_eq!((rest.as_str(), o.sslmode.as_deref()), ("postgres://w@db/a", Some("require")));
        let (rest, o) = take_tls_options("host=db user=w sslmode=verify-ca sslrootcert='/x/ca.pem' dbname=a");
        assert_eq!(rest, "host=db user=w dbname=a");
        assert_eq!(
            o,
            TlsOptions { sslmode: Some("verify-ca".into()), sslrootcert: Some("/x/ca.pem".into()) }
        );
    }

    #[test]
    fn the_environment_completes_the_url_as_libpq_does() {
        let env = Env::from(&[("PGPASSWORD", "from-env"), ("USER", "me")]);
        let s = Settings::parse("postgres://db.internal/analytics?sslmode=verify-full", 7, &env).unwrap();
        assert_eq!(s.target, "db.internal:5432/analytics");
        assert_eq!(s.tls, TlsMode::VerifyFull);
        assert_eq!(s.config.get_user(), Some("me"));
        assert_eq!(s.config.get_password(), Some(&b"from-env"[..]));
        assert_eq!(s.config.get_connect_timeout(), Some(&Duration::from_secs(7)));
        // A password in the URL wins over the environment.
        let s = Settings::parse("postgres://w:inline@db:6543/a", 7, &env).unwrap();
        assert_eq!((s.config.get_password(), s.target.as_str()), (Some(&b"inline"[..]), "db:6543/a"));
        let e = Settings::parse("postgres://w:pw@db/a?sslmode=sometimes", 7, &env).err().unwrap();
        assert!(e.0.contains("sslmode=sometimes") && !e.0.contains(":pw@"), "{e}");
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:5432:*:*:no\ndb:5432:analytics:weir:pa\\:ss\\\\word\n*:*:*:*:fallback\n";
        assert_eq!(pgpass_lookup(text, "db", 5432, "analytics", "weir").as_deref(), Some("pa:ss\\word"));
        assert_eq!(pgpass_lookup(text, "db", 5433, "analytics", "weir").as_deref(), Some("fallback"));
        assert_eq!(pgpass_lookup("localhost:*:*:*:lo\n", "127.0.0.1", 1, "d", "u").as_deref(), Some("lo"));
        assert_eq!(pgpass_lookup("db:5432:a:u\n", "db", 5432, "a", "u"), None);
    }

    #[test]
    fn a_pgpass_file_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:secret\n").unwrap();
        let env = Env::from(&[("PGPASSFILE", file.to_str().unwrap())]);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(env.pgpass("db", 5432, "a", "u"), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(env.pgpass("db", 5432, "a", "u").as_deref(), Some("secret"));
    }

    #[test]
    fn a_url_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "# written by the agent\npostgres://w:pw@db/a\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_url_file(&file).unwrap_err();
        assert!(e.0.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_url_file(&file).unwrap(), "postgres://w:pw@db/a");
    }
}
