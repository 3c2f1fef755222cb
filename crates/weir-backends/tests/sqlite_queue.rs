//! SQLite-queue behaviour the adapter-agnostic conformance suite cannot see: durability across
//! reopening the file, and several handles (as several processes would) sharing one file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_backends::SqliteQueue;
use weir_ports::{Queue, QueueSettings};

fn settings(visibility: Duration) -> QueueSettings {
    QueueSettings {
        visibility_timeout: visibility,
        max_receive_count: 3,
        retention: Duration::from_secs(3600),
        dlq_retention: Duration::from_secs(3600),
    }
}

fn open(path: &Path, visibility: Duration) -> SqliteQueue {
    SqliteQueue::open(path, settings(visibility)).expect("open the queue")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_messages_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data/queue.db");
    let ids = {
        let q = open(&path, Duration::from_secs(5));
        let mut ids = vec![q.send("a").await.expect("send a")];
        ids.extend(q.send_batch(&["b".into(), "c".into()]).await.expect("send_batch"));
        ids
    };
    // A new handle on the same file, as after a restart.
    let q = open(&path, Duration::from_secs(5));
    let got = q.receive(10, Duration::ZERO).await.expect("receive after reopen");
    let got: Vec<_> = got.iter().map(|m| (m.message_id.clone(), m.body.as_str(), m.receive_count)).collect();
    assert_eq!(
        got,
        [(ids[0].clone(), "a", 1), (ids[1].clone(), "b", 1), (ids[2].clone(), "c", 1)],
        "every sent message, in send order, never received"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_message_comes_back_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let visibility = Duration::from_millis(500);
    {
        let q = open(&path, visibility);
        q.send("in flight at the crash").await.expect("send");
        q.send("waiting at the crash").await.expect("send");
        let got = q.receive(1, Duration::ZERO).await.expect("receive");
        assert_eq!(got[0].body, "in flight at the crash");
        // Dropped without a delete: the worker "crashed".
    }
    let q = open(&path, visibility);
    let now = q.receive(10, Duration::ZERO).await.expect("receive");
    assert_eq!(
        now.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["waiting at the crash"],
        "the in-flight message stays invisible across the reopen"
    );
    let stats = q.stats().await.expect("stats");
    assert_eq!((stats.visible, stats.in_flight), (0, 2), "{stats:?}");
    q.delete(&now[0].receipt_handle).await.expect("delete");
    let back = q.receive(10, Duration::from_secs(3)).await.expect("receive");
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].body.as_str(), back[0].receive_count), ("in flight at the crash", 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let s = QueueSettings { max_receive_count: 1, ..settings(Duration::from_millis(300)) };
    {
        let q = SqliteQueue::open(&path, s).expect("open");
        q.send("poison").await.expect("send");
        let m = q.receive(1, Duration::ZERO).await.expect("receive").remove(0);
        q.change_visibility(&m.receipt_handle, Duration::ZERO).await.expect("release");
        assert!(q.receive(10, Duration::ZERO).await.expect("receive").is_empty());
    }
    let q = SqliteQueue::open(&path, s).expect("reopen");
    let dead = q.dlq_list(0).await.expect("dlq_list");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].body.as_str(), dead[0].receive_count), ("poison", 1));
    assert_eq!(q.dlq_replay(None).await.expect("replay"), 1);
    let m = q.receive(1, Duration::ZERO).await.expect("receive").remove(0);
    assert_eq!((m.body.as_str(), m.receive_count), ("poison", 1));
}

/// Two handles on one file stand for two processes (`weir run` and `weir put`, or two workers):
/// racing receivers never get the same message within its visibility timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_never_deliver_a_message_twice() {
    const N: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let handles = [open(&path, Duration::from_secs(30)), open(&path, Duration::from_secs(30))];
    let mut sent = Vec::new();
    for chunk in 0..N / 10 {
        let bodies: Vec<String> = (0..10).map(|i| format!("{chunk}/{i}")).collect();
        // Alternate the sending handle, as two producers would.
        sent.extend(handles[chunk % 2].send_batch(&bodies).await.expect("send_batch"));
    }
    let deliveries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let q = handles[i % 2].clone();
        let deliveries = deliveries.clone();
        tasks.push(tokio::spawn(async move {
            while deliveries.lock().expect("lock").len() < N && Instant::now() < deadline {
                for m in q.receive(10, Duration::from_millis(100)).await.expect("receive") {
                    *deliveries.lock().expect("lock").entry(m.message_id.clone()).or_default() += 1;
                    q.delete(&m.receipt_handle).await.expect("delete");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("receiver task");
    }
    let deliveries = deliveries.lock().expect("lock");
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(deliveries.len(), N, "all messages delivered");
    assert!(sent.iter().all(|id| deliveries.contains_key(id)));
}

/// A send through one handle reaches a receive waiting on another (another process) by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_receive_sees_sends_from_another_handle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let (a, b) = (open(&path, Duration::from_secs(5)), open(&path, Duration::from_secs(5)));
    let waiter = tokio::spawn(async move {
        let got = b.receive(1, Duration::from_secs(3)).await;
        (got, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send("from the other process").await.expect("send");
    let sent = Instant::now();
    let (got, returned) = waiter.await.expect("waiter");
    let got = got.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "from the other process");
    // Woken by the send (the other handle polls), not by its 3 s wait running out. How fast is a
    // figure for a benchmark, not a timed test on a loaded machine.
    let latency = returned.saturating_duration_since(sent);
    assert!(latency < Duration::from_millis(2500), "the waiting receive missed the send: {latency:?}");
    // The receipt handle works through the other handle too.
    a.delete(&got[0].receipt_handle).await.expect("delete through the other handle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_match_sqs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = open(&dir.path().join("queue.db"), Duration::from_secs(1));
    assert!(q.send(&"x".repeat(256 * 1024 + 1)).await.is_err(), "bodies over 256 KiB are refused");
    assert!(q.send_batch(&[]).await.expect("empty batch").is_empty());
    let m = {
        q.send("m").await.expect("send");
        q.receive(1, Duration::ZERO).await.expect("receive").remove(0)
    };
    assert!(q.change_visibility(&m.receipt_handle, Duration::from_secs(12 * 3600 + 1)).await.is_err());
    q.delete(&m.receipt_handle).await.expect("delete");
    let gone = q.change_visibility(&m.receipt_handle, Duration::ZERO).await.expect_err("deleted");
    assert!(gone.is_not_found(), "{gone}");
}

/// Set in child processes of [`two_processes_share_one_file`]: the queue file to consume from.
const CHILD_ENV: &str = "WEIR_TEST_QUEUE_CHILD";

/// The consumer half of [`two_processes_share_one_file`]; does nothing unless run as its child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_consumer() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let q = open(Path::new(&path), Duration::from_secs(30));
    loop {
        let got = q.receive(10, Duration::from_millis(1500)).await.expect("child receive");
        if got.is_empty() {
            return;
        }
        for m in got {
            q.delete(&m.receipt_handle).await.expect("child delete");
            println!("GOT {} {}", m.message_id, m.receive_count);
        }
    }
}

/// Real processes, not just two handles: two child processes and this one consume one file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_file() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    const N: usize = 400;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let q = open(&path, Duration::from_secs(30));
    for chunk in 0..N / 10 {
        let bodies: Vec<String> = (0..10).map(|i| format!("{chunk}/{i}")).collect();
        q.send_batch(&bodies).await.expect("send_batch");
    }
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["child_consumer", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a child process")
        })
        .collect();
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    loop {
        let got = q.receive(10, Duration::from_millis(1500)).await.expect("receive");
        if got.is_empty() {
            break;
        }
        for m in got {
            assert_eq!(m.receive_count, 1);
            q.delete(&m.receipt_handle).await.expect("delete");
            *deliveries.entry(m.message_id).or_default() += 1;
        }
    }
    let mut by_child = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("child output");
        assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stdout));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut n = 0;
        // The harness writes "test child_consumer ... " before the first line the test prints.
        for line in text.lines().filter_map(|l| l.split_once("GOT ").map(|(_, rest)| rest)) {
            let (id, count) = line.split_once(' ').expect("GOT line");
            assert_eq!(count, "1", "a child got a redelivery of {id}");
            *deliveries.entry(id.to_owned()).or_default() += 1;
            n += 1;
        }
        by_child.push(n);
    }
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once across processes: {twice:?}");
    assert_eq!(deliveries.len(), N, "every message delivered once (children took {by_child:?})");
}
