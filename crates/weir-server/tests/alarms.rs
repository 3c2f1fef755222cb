//! Alarms driven by a real queue: a message dead-lettered → the DLQ alarm goes to ALARM and the
//! transition reaches a webhook subscribed to `alerts` (through the outbox) → replay → OK.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use weir_backends::{LocalObjectStore, OutboxNotifier, SqliteJobStore, SqliteQueue};
use weir_core::alarms::{default_rules, AlarmState};
use weir_core::config::{SubscriptionConfig, SubscriptionKind};
use weir_core::Config;
use weir_pipeline::Ports;
use weir_ports::{Queue, QueueSettings};
use weir_server::alarms::{read_states, AlarmMonitor};
use weir_server::{Context, Credentials};

/// Accepts HTTP POSTs and sends each JSON body to the channel (answers 200).
fn serve_webhook(listener: TcpListener) -> mpsc::UnboundedReceiver<serde_json::Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0);
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_alarm_fires_on_a_dead_letter_and_clears_after_replay() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let mut alerts = serve_webhook(listener);
    let mut config = Config::bundled();
    config.notify.subscriptions.push(SubscriptionConfig {
        kind: SubscriptionKind::Webhook,
        url: Some(url.into()),
        filter: BTreeMap::from([("status".into(), vec!["alarm".into()])]),
        ..SubscriptionConfig::log("alerts")
    });
    let outbox = Arc::new(
        OutboxNotifier::open(
            &dir.path().join("outbox.db"),
            &config.notify,
            weir_backends::local_secrets(std::time::Duration::from_secs(300)),
        )
        .unwrap(),
    );
    outbox.spawn_delivery().unwrap();
    let queue = Arc::new(
        SqliteQueue::open(&dir.path().join("queue.db"), QueueSettings::from(&config.queue)).unwrap(),
    );
    let ports = Ports {
        objects: Arc::new(LocalObjectStore::open(dir.path()).unwrap()),
        queue: queue.clone(),
        jobs: Arc::new(SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap()),
        records: None,
        notifier: outbox,
        warehouses: Default::default(),
    };
    let credentials = Credentials::resolve(&config.server, dir.path(), |_| None).unwrap();
    let ctx = Context {
        ports,
        config: Arc::new(config),
        data_dir: dir.path().to_owned(),
        credentials: Arc::new(credentials),
    };
    // The DLQ rule with a 1 s period, so the test needs no minute-long waits.
    let mut rule = default_rules().remove(0);
    rule.period_secs = 1;
    let monitor = AlarmMonitor::new(vec![rule]);
    let t0 = chrono::Utc::now().timestamp_millis();

    assert!(monitor.tick(&ctx, t0).await.unwrap().iter().all(|t| t.to == AlarmState::Ok));
    assert_eq!(monitor.states()[0].state, AlarmState::Ok);

    queue.send("{\"poison\": true}").await.unwrap();
    let m = queue.receive(1, Duration::from_secs(1)).await.unwrap().remove(0);
    queue.dead_letter(&m.receipt_handle).await.unwrap();
    let t = monitor.tick(&ctx, t0 + 1500).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].from, t[0].to), (AlarmState::Ok, AlarmState::Alarm));
    let got = tokio::time::timeout(Duration::from_secs(20), alerts.recv()).await.unwrap().unwrap();
    assert_eq!(got["attributes"]["state"], "ALARM", "{got}");
    assert!(got["subject"].as_str().unwrap().starts_with("ALARM: \"dlq-not-empty\""), "{got}");
    assert!(got["text"].as_str().unwrap().contains("Reason: threshold crossed"), "{got}");
    let written = read_states(dir.path()).unwrap();
    assert_eq!((written[0].name.as_str(), written[0].state), ("dlq-not-empty", AlarmState::Alarm));

    assert_eq!(queue.dlq_replay(None).await.unwrap(), 1);
    let t = monitor.tick(&ctx, t0 + 3000).await.unwrap();
    assert_eq!(t[0].to, AlarmState::Ok, "{t:?}");
    let got = tokio::time::timeout(Duration::from_secs(20), alerts.recv()).await.unwrap().unwrap();
    assert_eq!(got["attributes"]["state"], "OK", "{got}");
    assert_eq!(read_states(dir.path()).unwrap()[0].state, AlarmState::Ok);
}
