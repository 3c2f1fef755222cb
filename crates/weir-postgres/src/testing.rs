//! A throwaway PostgreSQL server for tests: `initdb` in a temporary folder, `pg_ctl start` on a
//! free loopback port (TCP only, password authentication), and `pg_ctl stop -m immediate` plus
//! the folder's removal when the [`TestServer`] is dropped, whether the test passed or not.
//!
//! The server binaries are looked up in `$WEIR_TEST_PG_BIN`, then Debian's
//! `/usr/lib/postgresql/<version>/bin` (newest first), then `PATH`; `scripts/test` installs
//! them (`apt-get install postgresql`). Without them the test fails and says so: a test that
//! needs a server never passes without one. Run as root, the server runs as the `postgres`
//! user (`runuser`), since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The superuser the tests connect as.
pub const USER: &str = "weir";

pub struct TestServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    /// Run the server's commands through `runuser -u postgres --` (we are root).
    as_postgres: bool,
    /// Extra `-c name=value` settings of the server.
    settings: Vec<String>,
}

/// Where the server binaries are.
pub fn server_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/test (it installs the \
         `postgresql` package), or set WEIR_TEST_PG_BIN to their folder"
    );
}

/// Makes `path` (recursively) the `postgres` user's when the server runs as it (we are root),
/// so the server can read it.
pub fn give_to_server(path: &Path) {
    if rustix::process::geteuid().is_root() {
        let ok = Command::new("chown").args(["-R", "postgres:"]).arg(path).status().expect("chown");
        assert!(ok.success(), "chown postgres {}", path.display());
    }
}

/// A CA and a server certificate it signed, made with the `openssl` command.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// In `dir`: a CA, and a server certificate for `names` (`DNS:localhost`, `IP:127.0.0.1`).
    pub fn make(dir: &Path, names: &str) -> TlsFiles {
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        std::fs::write(
            dir.join("server.ext"),
            format!("subjectAltName={names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
        )
        .expect("extensions file");
        run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"]
            .iter()
            .chain(&["-days", "2", "-subj", "/CN=weir test CA"])
            .copied()
            .collect::<Vec<_>>());
        run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"]
            .iter()
            .chain(&["-subj", "/CN=weir test server"])
            .copied()
            .collect::<Vec<_>>());
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .expect("chmod key");
        }
        TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("server.crt"), key: dir.join("server.key") }
    }

    /// The server settings that serve this certificate.
    pub fn server_settings(&self) -> Vec<String> {
        vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", self.cert.display()),
            format!("ssl_key_file={}", self.key.display()),
        ]
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

impl TestServer {
    /// A new server, started.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// A new server with extra settings (`"ssl=on"`), started.
    pub fn start_with(settings: &[&str]) -> TestServer {
        let bin = server_bin();
        let dir = tempfile::Builder::new().prefix("weir-pg-").tempdir().expect("temp dir");
        let as_postgres = rustix::process::geteuid().is_root();
        let password = format!("pw-{}", std::process::id());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("password file");
        let server = TestServer {
            dir,
            bin,
            port: free_port(),
            password,
            as_postgres,
            settings: settings.iter().map(|s| s.to_string()).collect(),
        };
        give_to_server(server.dir.path());
        let data = server.data_dir();
        let out = server
            .server_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        server.start_again();
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder the server's files are in (certificates may go there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn server_command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.stdin(Stdio::null());
        c
    }

    /// Starts the server (again, after [`TestServer::stop`]) on the same port; returns when it
    /// accepts connections.
    pub fn start_again(&self) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=60",
            self.port
        );
        for s in &self.settings {
            options.push_str(&format!(" -c {s}"));
        }
        let log = self.dir.path().join("server.log");
        let out = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.try_psql("SELECT 1").is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not accept connections within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: connections are cut, transactions rolled back).
    pub fn stop(&self) {
        let out = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-m", "fast", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://weir:<password>@127.0.0.1:<port>/postgres?sslmode=disable`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of another database of the server.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://{USER}:{}@127.0.0.1:{}/{db}?sslmode=disable", self.password, self.port)
    }

    /// A new database, its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
        self.url_for(name)
    }

    /// `psql -At -c <sql>` on the `postgres` database, its output; panics with psql's error.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        self.try_psql_in(db, sql).unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.try_psql_in("postgres", sql)
    }

    pub fn try_psql_in(&self, db: &str, sql: &str) -> Result<String, String> {
        let out: Output = Command::new(self.bin.join("psql"))
            .arg(self.url_for(db))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The `psql` binary of the server's version.
    pub fn psql_bin(&self) -> PathBuf {
        self.bin.join("psql")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let stopped = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "30", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            // Not running (stopped by the test), or pg_ctl failed: kill the postmaster if its
            // pid file is there.
            if let Ok(pid) = std::fs::read_to_string(self.data_dir().join("postmaster.pid")) {
                if let Some(pid) = pid.lines().next().and_then(|p| p.trim().parse::<i32>().ok()) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
    }
}
