//! The queue conformance suite (`weir_ports::conformance::queue`) against the SQLite queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use weir_backends::SqliteQueue;
use weir_ports::conformance::queue;
use weir_ports::Queue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_queue_passes_the_queue_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    queue::run_all(|settings| {
        // A fresh file per case, all under one directory that outlives the suite.
        let path = dir.path().join(format!("queue-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move {
            let q = SqliteQueue::open(&path, settings).expect("open the queue");
            Arc::new(q) as Arc<dyn Queue>
        }
    })
    .await;
}
