//! The receive loop: bounded concurrency, long polling, graceful shutdown.
//!
//! A worker never holds more messages than it has free slots, so memory stays bounded however
//! long the backlog. On shutdown it stops receiving, gives jobs in flight the grace period to
//! finish, and releases what is still running (visible again at once) so another worker can
//! take it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Disposition, Engine};

/// How long one receive waits for messages: SQS's longest long poll, so an idle worker on SQS
/// asks three times a minute. Shutdown does not wait for it: the receive is dropped (on SQS,
/// messages in a response that was never read come back after their visibility timeout).
const POLL_WAIT: Duration = Duration::from_secs(20);

pub struct Worker {
    engine: Arc<Engine>,
    concurrency: usize,
    grace: Duration,
}

impl Worker {
    pub fn new(engine: Arc<Engine>, concurrency: usize, grace: Duration) -> Self {
        Worker { engine, concurrency: concurrency.max(1), grace }
    }

    /// Runs until `shutdown` is cancelled, then drains as described above. Alongside, the DLQ
    /// is scanned every `worker.dlq_scan_secs` for new dead letters to alert on.
    pub async fn run(&self, shutdown: CancellationToken) {
        let scanner = {
            let engine = self.engine.clone();
            let stop = shutdown.clone();
            let every = Duration::from_secs(engine.config().worker.dlq_scan_secs.max(1));
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = ticks.tick() => {
                            if let Err(e) = crate::dlq::scan_once(&engine).await {
                                tracing::warn!(error = %e, "scanning the dead-letter queue failed");
                            }
                        }
                    }
                }
            })
        };
        self.receive_loop(shutdown).await;
        let _ = scanner.await;
    }

    async fn receive_loop(&self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let in_flight: Arc<Mutex<HashMap<String, String>>> = Default::default();
        let mut jobs = JoinSet::new();
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let free = (slots.available_permits() + 1).min(10);
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.engine.ports().queue.receive(free, POLL_WAIT) => r,
            };
            let messages = match received {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving from the queue failed; trying again shortly");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut first = Some(first);
            for message in messages {
                let permit = match first.take() {
                    Some(p) => p,
                    None => slots.clone().acquire_owned().await.expect("the semaphore is never closed"),
                };
                let engine = self.engine.clone();
                let in_flight = in_flight.clone();
                in_flight.lock().unwrap().insert(message.message_id.clone(), message.receipt_handle.clone());
                jobs.spawn(async move {
                    let disposition = engine.handle_message(&message).await;
                    settle(&engine, &message.receipt_handle, disposition).await;
                    in_flight.lock().unwrap().remove(&message.message_id);
                    drop(permit);
                });
            }
            while jobs.try_join_next().is_some() {}
        }
        tracing::info!(
            in_flight = jobs.len(),
            grace_secs = self.grace.as_secs(),
            "stopping: waiting for jobs in flight"
        );
        let drained =
            tokio::time::timeout(self.grace, async { while jobs.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            // Released means released: each job's lease goes with its message, so the next
            // start (or another worker) takes the job at once instead of waiting for the lease
            // to lapse. The leases first: a run still going writes nothing once its lease is gone.
            let released = self.engine.abandon_runs().await;
            jobs.abort_all();
            let handles: Vec<String> = in_flight.lock().unwrap().values().cloned().collect();
            for handle in handles {
                let _ = self.engine.ports().queue.change_visibility(&handle, Duration::ZERO).await;
            }
            tracing::warn!(
                jobs = released,
                "grace period over: released the jobs still running back to the queue"
            );
        }
    }
}

async fn settle(engine: &Engine, receipt_handle: &str, disposition: Disposition) {
    let queue = &engine.ports().queue;
    let result = match disposition {
        Disposition::Delete => queue.delete(receipt_handle).await,
        Disposition::Retry { after } => queue.change_visibility(receipt_handle, after).await,
        Disposition::DeadLetter => queue.dead_letter(receipt_handle).await,
    };
    if let Err(e) = result {
        // The message comes back after its visibility timeout and the job store makes the
        // redelivery a no-op (finished) or a retry (not finished).
        tracing::warn!(error = %e, "could not settle a message; it will be redelivered");
    }
}
