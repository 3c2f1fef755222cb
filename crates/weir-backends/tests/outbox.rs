//! The notification outbox against real servers on loopback: a webhook receiver (a few lines of
//! HTTP over a tokio listener) and an SMTP server (Python `aiosmtpd`, installed into `.venv` by
//! `scripts/test`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use weir_backends::deliver::EmailSender;
use weir_backends::{OutboxNotifier, OutboxStats};
use weir_core::config::{NotifyConfig, SmtpSecurity, SubscriptionConfig, SubscriptionKind, WebhookFormat};
use weir_ports::{Notification, Notifier};

fn notification(id: &str, status: &str) -> Notification {
    Notification {
        html: None,
        topic: "alerts".into(),
        subject: format!("weir: sales.csv {status} — {}", "x".repeat(120)),
        text: format!("File: raw/sales.csv\nJob: {id}\nStatus: {status}"),
        attributes: BTreeMap::from([
            ("id".into(), format!("notify:{id}:{status}")),
            ("status".into(), status.into()),
            ("pipeline".into(), "sales".into()),
        ]),
        payload: serde_json::json!({ "job_id": id, "rows": 3 }),
    }
}

/// Secret settings as `weir run` reads them, with no Secrets Manager.
fn secrets() -> Arc<weir_ports::Secrets> {
    weir_backends::local_secrets(Duration::from_secs(300))
}

fn webhook(url: &str, format: WebhookFormat) -> SubscriptionConfig {
    SubscriptionConfig {
        kind: SubscriptionKind::Webhook,
        url: Some(url.into()),
        format,
        ..SubscriptionConfig::log("alerts")
    }
}

fn config(subscriptions: Vec<SubscriptionConfig>, max_attempts: u32) -> NotifyConfig {
    NotifyConfig { subscriptions, max_attempts, retry_initial_ms: 100, retry_max_ms: 200 }
}

/// Accepts HTTP requests on `listener` and sends each JSON body to the channel (answers 200).
fn serve_webhook(listener: TcpListener) -> mpsc::UnboundedReceiver<serde_json::Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before a whole request");
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    assert!(head.starts_with("post "), "{head}");
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break buf[end + 4..end + 4 + len].to_vec();
                    }
                };
                sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tx.send(serde_json::from_slice(&body).unwrap());
            });
        }
    });
    rx
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<serde_json::Value>) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("no webhook within 20 s").unwrap()
}

/// Polls the outbox's counts until `want` holds (30 s at most; then the last counts, for the
/// caller's assertion to show).
async fn wait_stats(outbox: &OutboxNotifier, want: impl Fn(&OutboxStats) -> bool) -> OutboxStats {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = outbox.stats().await.unwrap();
        if want(&s) || std::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_posted_as_json_and_slack_text_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let mut rx = serve_webhook(listener);
    let mut filtered = webhook(&url, WebhookFormat::Json);
    filtered.filter = BTreeMap::from([("status".into(), vec!["rejected".into(), "failed".into()])]);
    let outbox = Arc::new(
        OutboxNotifier::open(
            &dir.path().join("outbox.db"),
            &config(vec![filtered, webhook(&url, WebhookFormat::Slack)], 3),
            secrets(),
        )
        .unwrap(),
    );
    outbox.spawn_delivery().expect("a delivery loop");

    // Not matching the filter: only the Slack subscription gets it.
    outbox.publish(&notification("j1", "succeeded")).await.unwrap();
    let slack = recv(&mut rx).await;
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("Job: j1") && text.starts_with("*weir: sales.csv succeeded"), "{slack}");
    assert_eq!(slack.as_object().unwrap().len(), 1, "{slack}");

    outbox.publish(&notification("j2", "rejected")).await.unwrap();
    let mut got = [recv(&mut rx).await, recv(&mut rx).await];
    got.sort_by_key(|v| v.get("topic").is_none());
    let json = &got[0];
    assert_eq!(json["topic"], "alerts");
    assert_eq!(json["attributes"]["status"], "rejected");
    assert_eq!(json["payload"]["job_id"], "j2");
    assert!(json["text"].as_str().unwrap().contains("Job: j2"));
    assert!(got[1]["text"].as_str().unwrap().contains("Job: j2"));

    // The same message again (a retried job) is not sent again: the pipeline relies on that.
    assert!(outbox.idempotent(), "the outbox says it is idempotent");
    outbox.publish(&notification("j2", "rejected")).await.unwrap();
    // Stored once: nothing is pending after the repeat, so nothing more can be delivered.
    let stats = wait_stats(&outbox, |s| s.delivered == 3).await;
    assert_eq!(stats, OutboxStats { pending: 0, delivered: 3, failed: 0 });
    assert!(rx.try_recv().is_err(), "a duplicate was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_down_is_retried_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    // A port nobody listens on (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{addr}/hook");
    let cfg = config(vec![webhook(&url, WebhookFormat::Json)], 50);

    let first = OutboxNotifier::open(&path, &cfg, secrets()).unwrap();
    first.publish(&notification("j3", "failed")).await.unwrap();
    assert_eq!(first.deliver_due().await.unwrap(), 1);
    let stats = first.stats().await.unwrap();
    assert_eq!(stats, OutboxStats { pending: 1, delivered: 0, failed: 0 });
    assert!(first.last_error("notify:j3:failed").await.unwrap().is_some());
    drop(first); // a restart with the notification still pending

    let mut rx = serve_webhook(TcpListener::bind(addr).await.unwrap());
    let second = Arc::new(OutboxNotifier::open(&path, &cfg, secrets()).unwrap());
    second.spawn_delivery().unwrap();
    let got = recv(&mut rx).await;
    assert_eq!(got["payload"]["job_id"], "j3");
    let stats = wait_stats(&second, |s| s.delivered == 1).await;
    assert_eq!(stats, OutboxStats { pending: 0, delivered: 1, failed: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_keeps_failing_is_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cfg = config(vec![webhook(&format!("http://{addr}/hook"), WebhookFormat::Json)], 2);
    let outbox = Arc::new(OutboxNotifier::open(&dir.path().join("outbox.db"), &cfg, secrets()).unwrap());
    outbox.spawn_delivery().unwrap();
    // Publishing succeeds although nothing can be delivered: a notification never fails a job.
    outbox.publish(&notification("j4", "failed")).await.unwrap();
    let stats = wait_stats(&outbox, |s| s.failed == 1).await;
    assert_eq!(stats, OutboxStats { pending: 0, delivered: 0, failed: 1 });
}

/// The Python of the `.venv` that `scripts/test` builds (or `WEIR_TEST_PYTHON`).
fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

const SMTP_SERVER: &str = r#"
import email, email.policy, json, sys
from aiosmtpd.controller import Controller
class Handler:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print(json.dumps({
            "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "subject": m["subject"], "to": m["to"], "from": m["from"],
            "text": m.get_body(("plain",)).get_content(), "html": m.get_body(("html",)).get_content(),
        }), flush=True)
        return "250 OK"
c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_is_delivered_to_a_real_smtp_server() {
    let py = python();
    let probe = Command::new(&py).args(["-c", "import aiosmtpd"]).output();
    assert!(
        matches!(&probe, Ok(o) if o.status.success()),
        "Python aiosmtpd is missing ({py}): run scripts/test, which installs it into .venv, or set WEIR_TEST_PYTHON"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(&py)
        .args(["-c", SMTP_SERVER, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");

    let dir = tempfile::tempdir().unwrap();
    let sub = SubscriptionConfig {
        kind: SubscriptionKind::Email,
        host: Some("127.0.0.1".into()),
        port: Some(port),
        security: SmtpSecurity::None,
        from: Some("weir <weir@example.com>".into()),
        to: vec!["ops@example.com".into(), "data@example.com".into()],
        ..SubscriptionConfig::log("alerts")
    };
    let outbox = Arc::new(
        OutboxNotifier::open(&dir.path().join("outbox.db"), &config(vec![sub], 3), secrets()).unwrap(),
    );
    outbox.spawn_delivery().unwrap();
    let n = notification("j5", "rejected");
    outbox.publish(&n).await.unwrap();

    let line = tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap()).await.unwrap();
    let got: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(got["mail_from"], "weir@example.com");
    assert_eq!(got["rcpt_tos"], serde_json::json!(["ops@example.com", "data@example.com"]));
    let subject = got["subject"].as_str().unwrap();
    assert_eq!(subject.chars().count(), 100, "{subject}");
    assert!(subject.starts_with("weir: sales.csv rejected — xxx"), "{subject}");
    let text = got["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(text.contains("Job: j5\nStatus: rejected"), "{got}");
    let html = got["html"].as_str().unwrap();
    assert!(html.contains("<h2>weir: sales.csv rejected") && html.contains("<td>sales</td>"), "{html}");
    let stats = wait_stats(&outbox, |s| s.delivered == 1).await;
    assert_eq!(stats.delivered, 1);

    drop(server.stdin.take().unwrap().write_all(b""));
    let _ = server.kill();
    let _ = server.wait();
}

/// An SMTP server that speaks only TLS: STARTTLS required before anything (`starttls`) or TLS
/// from the first byte (`tls`), with the given certificate, and a login required over it.
const TLS_SMTP_SERVER: &str = r#"
import email, email.policy, json, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, mode, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
# A context both sides can use: the controller's readiness probe wraps its own client socket in it.
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS)
ctx.load_cert_chain(cert, key)
def login(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"weir" and auth_data.password == b"relay-password"
    return AuthResult(success=ok)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print(json.dumps({"subject": m["subject"], "tls": session.ssl is not None or mode == "tls",
                          "authenticated": session.authenticated}), flush=True)
        return "250 OK"
if mode == "starttls":
    c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                   authenticator=login, auth_required=True, auth_require_tls=True)
else:
    # The socket speaks TLS from the first byte (aiosmtpd does not mark such sessions as TLS, so
    # it would not offer AUTH with auth_require_tls).
    c = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=ctx,
                   authenticator=login, auth_required=True, auth_require_tls=False)
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
"#;

/// A TLS-only SMTP server on loopback, killed when dropped.
struct TlsSmtp {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    port: u16,
}

impl TlsSmtp {
    fn start(mode: &str, cert: &std::path::Path, key: &std::path::Path) -> TlsSmtp {
        let py = python();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(&py)
            .args(["-c", TLS_SMTP_SERVER, &port.to_string(), mode])
            .arg(cert)
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{py}: {e} (run scripts/test, which builds .venv)"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "READY");
        TlsSmtp { child, lines, port }
    }
}

impl Drop for TlsSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a certificate it signed for 127.0.0.1 (openssl, which scripts/test installs):
/// `(ca.pem, relay.pem, relay.key)`.
fn private_ca(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl is needed for this test (scripts/test installs it)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=weir test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "relay.key",
        "-out",
        "relay.csr",
    ]);
    std::fs::write(path("relay.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "relay.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "relay.ext",
        "-out",
        "relay.pem",
    ]);
    (path("ca.pem"), path("relay.pem"), path("relay.key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_over_starttls_and_tls_to_a_relay_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    for (mode, security) in [("starttls", SmtpSecurity::Starttls), ("tls", SmtpSecurity::Tls)] {
        let mut server = TlsSmtp::start(mode, &cert, &key);
        let sub = SubscriptionConfig {
            kind: SubscriptionKind::Email,
            host: Some("127.0.0.1".into()),
            port: Some(server.port),
            security,
            username: Some("weir".into()),
            password: Some("relay-password".into()),
            from: Some("weir@example.com".into()),
            to: vec!["ops@example.com".into()],
            ..SubscriptionConfig::log("alerts")
        };

        // Without the relay's CA the certificate is not trusted: nothing is sent in clear instead.
        let untrusted = EmailSender::from_config(&sub, secrets()).unwrap();
        let e = untrusted.publish(&notification("j1", "failed")).await.unwrap_err();
        assert!(e.to_string().to_lowercase().contains("certificate"), "{mode}: {e}");

        let trusted =
            EmailSender::from_config(&SubscriptionConfig { ca_file: Some(ca.clone()), ..sub }, secrets())
                .unwrap();
        trusted.publish(&notification("j2", "failed")).await.unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let line = server.lines.next().unwrap().unwrap();
            (line, server)
        })
        .await
        .unwrap()
        .0;
        let got: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(got["tls"], true, "{mode}: {got}");
        assert_eq!(got["authenticated"], true, "{mode}: {got}");
        assert!(got["subject"].as_str().unwrap().starts_with("weir: sales.csv failed"), "{mode}: {got}");
    }
}

#[test]
fn an_unreadable_ca_file_is_named() {
    let sub = SubscriptionConfig {
        kind: SubscriptionKind::Email,
        host: Some("127.0.0.1".into()),
        security: SmtpSecurity::Starttls,
        ca_file: Some("/nonexistent/relay-ca.pem".into()),
        from: Some("weir@example.com".into()),
        to: vec!["ops@example.com".into()],
        ..SubscriptionConfig::log("alerts")
    };
    let e = EmailSender::from_config(&sub, secrets()).err().expect("a missing ca_file is an error");
    assert!(e.to_string().contains("ca_file /nonexistent/relay-ca.pem"), "{e}");
}
