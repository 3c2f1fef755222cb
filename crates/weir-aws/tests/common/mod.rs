//! A moto server for the tests, started by the test itself on a free loopback port.
//!
//! The Python that has moto comes from `WEIR_TEST_PYTHON` (set by `scripts/test`), or the
//! workspace's `.venv`. Without it the tests fail with a message saying how to get it: they never
//! skip, so a green run always means the adapters talked to a real moto.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use weir_aws::AwsSettings;

pub const REGION: &str = "us-east-1";

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The Python interpreter that has moto installed.
pub fn python() -> PathBuf {
    let python = std::env::var_os("WEIR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python for moto at {} — run scripts/test once (it installs moto[server] into .venv) \
         or set WEIR_TEST_PYTHON to a Python with moto[server]",
        python.display()
    );
    python
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("addr").port()
}

impl Moto {
    /// Starts `python -m moto.server` on a free port and waits until it answers.
    pub fn start() -> Moto {
        let python = python();
        let port = free_port();
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto with {}: {e}", python.display()));
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = moto.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "moto exited ({status}) before listening — is moto[server] installed for {}? \
                     (scripts/test installs it)\n{err}",
                    python.display()
                );
            }
            assert!(Instant::now() < deadline, "moto did not listen on {addr} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn settings(&self) -> AwsSettings {
        AwsSettings { region: Some(REGION.into()), endpoint_url: Some(self.endpoint.clone()) }
    }

    /// SDK configuration for this server with moto's test credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        weir_aws::client::loader(&self.settings())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}
