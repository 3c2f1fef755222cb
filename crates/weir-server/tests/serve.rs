//! The servers in process: connection limit, header timeout, graceful stop, and (with the `tls`
//! feature) HTTPS. The S3 and API behaviour itself is tested against `weir run` with real
//! clients in `crates/weir/tests/s3_api.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_backends::{LocalObjectStore, SqliteJobStore, SqliteQueue, TopicNotifier};
use weir_core::Config;
use weir_pipeline::Ports;
use weir_ports::{ObjectStore, QueueSettings};
use weir_server::{Context, Credentials};

async fn context(dir: &Path, config: Config) -> Context {
    let objects = LocalObjectStore::open(dir).unwrap();
    objects.create_bucket(&config.buckets.input).await.unwrap();
    let ports = Ports {
        objects: Arc::new(objects),
        queue: Arc::new(
            SqliteQueue::open(&dir.join("queue.db"), QueueSettings::from(&config.queue)).unwrap(),
        ),
        jobs: Arc::new(SqliteJobStore::open(&dir.join("jobs.db")).unwrap()),
        records: None,
        notifier: Arc::new(TopicNotifier::from_config(
            &config.notify,
            weir_backends::local_secrets(std::time::Duration::from_secs(300)),
        )),
        warehouses: Default::default(),
    };
    let credentials = Credentials::resolve(&config.server, dir, |_| None).unwrap();
    Context { ports, config: Arc::new(config), data_dir: dir.to_owned(), credentials: Arc::new(credentials) }
}

fn config(max_connections: usize, idle_secs: u64) -> Config {
    let mut c = Config::bundled();
    c.server.s3_listen = "127.0.0.1:0".into();
    c.server.api_listen = "127.0.0.1:0".into();
    c.server.max_connections = max_connections;
    c.server.idle_timeout_secs = idle_secs;
    c
}

/// One HTTP/1.1 request on a fresh connection; the status line.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_and_idle_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let running = weir_server::start(context(dir.path(), config(1, 1)).await, stop.clone()).await.unwrap();
    let api = running.api_addr.unwrap();
    let status = tokio::task::spawn_blocking(move || get(api, "/healthz")).await.unwrap();
    assert!(status.contains("200"), "{status}");

    // A client that connects and sends nothing holds the only slot until the header timeout.
    let idle = TcpStream::connect(api).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let status = tokio::task::spawn_blocking(move || get(api, "/healthz")).await.unwrap();
    let waited = start.elapsed();
    assert!(status.contains("200"), "{status}");
    assert!(waited >= Duration::from_millis(700), "the second client got in after {waited:?}");
    drop(idle);

    // Unsigned S3 requests are refused.
    let s3 = running.s3_addr.unwrap();
    let status = tokio::task::spawn_blocking(move || get(s3, "/weir-input/x")).await.unwrap();
    assert!(status.contains("403"), "{status}");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), running.stopped()).await.expect("servers stop");
    assert!(TcpStream::connect(api).is_err(), "the listener is closed after the stop");
}

#[tokio::test]
async fn a_port_in_use_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config(8, 5);
    c.server.api_listen = taken.local_addr().unwrap().to_string();
    let e = weir_server::start(context(dir.path(), c).await, CancellationToken::new()).await.err().unwrap();
    assert!(e.to_string().contains("cannot listen"), "{e}");
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn a_certificate_without_tls_support_is_an_error_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(8, 5);
    c.server.tls_cert = Some(dir.path().join("cert.pem"));
    c.server.tls_key = Some(dir.path().join("key.pem"));
    let e = weir_server::start(context(dir.path(), c).await, CancellationToken::new()).await.err().unwrap();
    assert!(e.to_string().contains("--features tls"), "{e}");
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for this test");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut c = config(8, 5);
    c.server.tls_cert = Some(cert.clone());
    c.server.tls_key = Some(key);
    let stop = CancellationToken::new();
    let running = weir_server::start(context(dir.path(), c).await, stop.clone()).await.unwrap();
    assert!(running.tls);
    let url = format!("https://{}/healthz", running.api_addr.unwrap());
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&cert)
        .arg(&url)
        .output()
        .await
        .expect("curl is needed for this test");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"status\":\"ok\"}");
    stop.cancel();
    running.stopped().await;
}
