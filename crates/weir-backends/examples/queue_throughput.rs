//! Measures the durable SQLite queue (`synchronous=FULL`, an fsync per commit): sends/s and
//! receive+delete/s, sequential and concurrent. Prints; asserts nothing.
//!
//! ```text
//! cargo run --release -p weir-backends --example queue_throughput [-- N [DIR]]
//! ```
//!
//! The product needs at least 1,000 small files/s end to end, and each file costs one send,
//! a tenth of a receive(10) and one delete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_backends::SqliteQueue;
use weir_ports::{Queue, QueueSettings};

const BODY: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"weir-input"},"object":{"key":"raw/sales-000001.csv","size":1024,"eTag":"0123456789abcdef0123456789abcdef","sequencer":"0055AED6DCD90281E5"}}}]}"#;

fn settings() -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(60),
        max_receive_count: 3,
        retention: Duration::from_secs(3600),
        dlq_retention: Duration::from_secs(3600),
    }
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>8.0}/s  ({n} in {:.2} s)", n as f64 / d.as_secs_f64(), d.as_secs_f64())
}

async fn send_all(q: &Arc<SqliteQueue>, n: usize, tasks: usize) -> Duration {
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let q = q.clone();
        let count = n / tasks + usize::from(t < n % tasks);
        handles.push(tokio::spawn(async move {
            for _ in 0..count {
                q.send(BODY).await.expect("send");
            }
        }));
    }
    for h in handles {
        h.await.expect("sender");
    }
    start.elapsed()
}

/// `tasks` consumers, each receiving up to 10 and deleting them (`concurrent_deletes`: all ten
/// deletes at once, as a worker pool would), until `n` messages are gone.
async fn consume_all(q: &Arc<SqliteQueue>, n: usize, tasks: usize, concurrent_deletes: bool) -> Duration {
    let start = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (q, done) = (q.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            while done.load(std::sync::atomic::Ordering::Relaxed) < n {
                let msgs = q.receive(10, Duration::from_millis(50)).await.expect("receive");
                let k = msgs.len();
                if concurrent_deletes {
                    let deletes: Vec<_> = msgs
                        .into_iter()
                        .map(|m| {
                            let q = q.clone();
                            tokio::spawn(async move { q.delete(&m.receipt_handle).await.expect("delete") })
                        })
                        .collect();
                    for d in deletes {
                        d.await.expect("delete task");
                    }
                } else {
                    for m in msgs {
                        q.delete(&m.receipt_handle).await.expect("delete");
                    }
                }
                done.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.expect("consumer");
    }
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let tmp = match args.next() {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let mut case = 0;
    let mut fresh = || {
        case += 1;
        Arc::new(SqliteQueue::open(&tmp.path().join(format!("q{case}.db")), settings()).expect("open"))
    };

    println!(
        "SQLite queue, synchronous=FULL, {n} messages of {} bytes, in {}",
        BODY.len(),
        tmp.path().display()
    );
    let q = fresh();
    println!("send, 1 task                     {}", rate(n, send_all(&q, n, 1).await));
    println!("receive(10)+delete, 1 task       {}", rate(n, consume_all(&q, n, 1, false).await));

    let q = fresh();
    println!("send, 16 tasks                   {}", rate(n, send_all(&q, n, 16).await));
    println!("receive(10)+delete, 4 tasks      {}", rate(n, consume_all(&q, n, 4, true).await));

    // Producers and consumers at once, as in `weir run`: files/s through the queue.
    let q = fresh();
    let start = Instant::now();
    let (sent, consumed) = tokio::join!(send_all(&q, n, 16), consume_all(&q, n, 4, true));
    println!(
        "send ‖ receive+delete (16 ‖ 4)   {}  (sends done after {:.2} s, consumers after {:.2} s)",
        rate(n, start.elapsed()),
        sent.as_secs_f64(),
        consumed.as_secs_f64()
    );
}
