//! What the binary's tests share: the `weir` command, processes that are killed when the test
//! that started them ends (passing or failing), and waiting for conditions with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// `weir` with a clean environment: no data dir or config from the caller's, quiet logs, and
/// the S3 endpoint and API on free loopback ports (so runs side by side never clash).
pub fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    for var in
        ["WEIR_DATA_DIR", "WEIR_CONFIG", "WEIR_ACCESS_KEY_ID", "WEIR_SECRET_ACCESS_KEY", "WEIR_API_TOKEN"]
    {
        c.env_remove(var);
    }
    c.env("WEIR_LOG", "warn");
    c.env("WEIR_S3_LISTEN", "127.0.0.1:0").env("WEIR_API_LISTEN", "127.0.0.1:0");
    c
}

/// `weir --data-dir <data>`.
pub fn weir_in(data: &Path) -> Command {
    let mut c = weir();
    c.arg("--data-dir").arg(data);
    c
}

pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

/// The default config with test-speed timings.
pub fn default_config() -> String {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../weir-core/src/default_weir.toml");
    std::fs::read_to_string(default).unwrap()
}

/// The process's stdout, after checking it exited 0 (else the whole output in the panic).
pub fn ok(out: &Output) -> String {
    ok_doing(out, "the command")
}

/// [`ok`], the panic saying `what` failed.
pub fn ok_doing(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What a `--json` command printed, after checking it exited 0: one compact JSON object a line
/// (NDJSON), as every `--json` prints.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    ok(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {l}")))
        .collect()
}

/// A child process that is killed (SIGKILL) and reaped when dropped: a failing test leaves no
/// `weir run` behind.
pub struct Proc(Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(cmd.spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}")))
    }

    /// `weir run` on `data`, output discarded.
    pub fn run(data: &Path) -> Proc {
        Proc::spawn(weir_in(data).arg("run").stdout(Stdio::null()).stderr(Stdio::null()))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Waits for it to exit by itself, for at most `timeout` (then the test fails, and the
    /// process is killed on drop).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < timeout, "process {} did not exit within {timeout:?}", self.0.id());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit (up to `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        self.wait_exit(timeout)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A `weir run` on a temporary data dir, its S3 endpoint and HTTP API on free loopback ports, its
/// log in `<data dir>/weir.log`; killed when dropped.
pub struct WeirRun {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    /// `<data dir>/weir.toml`, when the run was given a config.
    pub config: Option<PathBuf>,
    pub s3: String,
    pub api: String,
    pub access_key_id: String,
    pub secret: String,
    pub token: String,
}

impl WeirRun {
    /// `weir run` with `config` (else the bundled pipelines).
    pub fn start(config: Option<&str>) -> WeirRun {
        WeirRun::start_with(config, |_, _| {})
    }

    /// The same, with `prepare(data dir, command)` run first: more environment for `weir run`,
    /// or a command it needs done before it starts.
    pub fn start_with(config: Option<&str>, prepare: impl FnOnce(&Path, &mut Command)) -> WeirRun {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = weir_in(dir.path());
        let config = config.map(|toml| {
            let path = dir.path().join("weir.toml");
            std::fs::write(&path, toml).unwrap();
            cmd.arg("--config").arg(&path);
            path
        });
        prepare(dir.path(), &mut cmd);
        let log = std::fs::File::create(dir.path().join("weir.log")).unwrap();
        let mut proc = Proc::spawn(
            cmd.args(["run", "--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
                .stdout(Stdio::null())
                .stderr(log),
        );
        let log_of = |dir: &Path| std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
        let endpoints = dir.path().join("endpoints.json");
        let start = Instant::now();
        let endpoints: serde_json::Value = loop {
            if let Some(e) = std::fs::read(&endpoints).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                break e;
            }
            if let Some(status) = proc.child().try_wait().unwrap() {
                panic!("weir run exited ({status}): {}", log_of(dir.path()));
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "weir run did not start: {}",
                log_of(dir.path())
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let creds = std::fs::read_to_string(dir.path().join("credentials.toml")).unwrap();
        let field = |name: &str| {
            creds
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{name} in credentials.toml"))
                .to_owned()
        };
        WeirRun {
            s3: endpoints["s3"].as_str().unwrap().to_owned(),
            api: endpoints["api"].as_str().unwrap().to_owned(),
            access_key_id: field("access_key_id"),
            secret: field("secret_access_key"),
            token: field("api_token"),
            config,
            proc,
            dir,
        }
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// The AWS CLI with this instance's keys and nothing of the caller's AWS setup.
    pub fn aws(&self) -> Command {
        let mut c = Command::new(tool("WEIR_TEST_AWS", "aws"));
        c.env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .args(["--endpoint-url", &self.s3]);
        c
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data().join("weir.log")).unwrap_or_default()
    }
}

/// Polls `f` until it gives a value; fails the test after `timeout`, saying what it waited for.
pub fn until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// A Python tool from `var` (set by `scripts/test`), else the repo's `.venv/bin/<name>`.
pub fn tool(var: &str, name: &str) -> PathBuf {
    let path =
        std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| repo().join(".venv/bin").join(name));
    assert!(
        path.exists(),
        "{} not found: run scripts/test once (it installs the AWS CLI, boto3, moto[server] and schemathesis into .venv) or set {var}",
        path.display()
    );
    path
}

/// moto's test credentials and region, for `weir` and the AWS CLI.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A moto server on a free loopback port (killed when the returned process drops), and its URL.
pub fn start_moto() -> (Proc, String) {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let python = tool("WEIR_TEST_PYTHON", "python");
    let mut moto = Proc::spawn(
        Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    until("moto to listen", Duration::from_secs(60), || {
        if let Ok(Some(status)) = moto.child().try_wait() {
            panic!("moto exited ({status}): is moto[server] installed for {}?", python.display());
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (moto, format!("http://127.0.0.1:{port}"))
}

/// `weir --config <config> <args> --endpoint-url <endpoint>` with moto's test credentials, run
/// to its end.
pub fn weir_on_moto(config: &Path, endpoint: &str, args: &[&str]) -> Output {
    weir()
        .arg("--config")
        .arg(config)
        .args(args)
        .args(["--endpoint-url", endpoint])
        .envs(AWS_ENV)
        .output()
        .expect("run weir")
}

/// The AWS CLI against `endpoint`: its JSON answer (`Null` when it printed nothing); fails the
/// test if the command fails.
pub fn aws_cli(endpoint: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(tool("WEIR_TEST_AWS", "aws"))
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .args(args)
        .envs(AWS_ENV)
        .output()
        .expect("run the AWS CLI");
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("aws {args:?} printed no JSON: {e}"))
    }
}

/// A header's value in curl's `-i`/`-D` output.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Chromium and the folder of the browser scripts (`tests/browser`, its npm packages
/// installed); fails the test with what to install when node, Chromium or the packages are
/// missing.
pub fn browser_tools() -> (PathBuf, PathBuf) {
    let node_ok = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        node_ok,
        "node is needed for the browser tests (Debian: apt-get install nodejs npm); scripts/test checks it"
    );
    let chromium =
        PathBuf::from(std::env::var("WEIR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        chromium.exists(),
        "{} is needed for the browser tests: apt-get install -y chromium (scripts/test does)",
        chromium.display()
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is not installed: run `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci` in {} (scripts/test does)",
        dir.display()
    );
    (chromium, dir)
}
