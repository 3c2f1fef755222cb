//! The queue conformance suite: the SQS standard-queue behaviour every [`Queue`] adapter must show.
//!
//! The pipeline's reliability rests on these semantics (visibility timeout, receive count,
//! redrive to the DLQ, long polling, retention), and weir has two queue adapters — SQLite when
//! embedded, SQS on AWS — that must agree on them. The suite is written against the trait only.
//!
//! An adapter's test calls [`run_all`] with a function that opens a *fresh, empty* queue with the
//! given settings; every case opens its own queue. Cases are public so that an adapter can run
//! them one by one (or skip one it cannot honour), and [`run_all_with`] takes a [`Timing`] for
//! backends whose timeouts are coarser than the embedded queue's milliseconds.
//!
//! Notes for the SQS adapter (run against moto or real SQS):
//! - SQS visibility timeouts are whole seconds and retention is at least 60 s: use
//!   [`Timing::WHOLE_SECONDS`]; [`retention_drops_old_messages`] then takes over a minute, so an
//!   adapter may run it only in a slow suite.
//! - SQS answers a delete with a stale receipt handle with success (without deleting), the
//!   embedded queue with an error. The suite accepts either and checks only that the message
//!   is not deleted.
//! - Real SQS stats are approximate and lag; [`stats_are_right`] expects exact numbers, which
//!   moto and the embedded queue give.
//! - A standard SQS queue may, rarely, deliver a message twice even within its visibility
//!   window; [`concurrent_receivers_never_share_a_message`] assumes it does not.
//!
//! Failures panic with `queue conformance <case>: <what went wrong>`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Message, PortError, Queue, QueueSettings};

/// The timeouts the cases use. Short by default so the suite runs in a few seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The visibility timeout of most cases; cases wait for it to expire.
    pub visibility: Duration,
    /// The visibility timeout where a redelivery would be a failure (the concurrency case).
    pub long_visibility: Duration,
    /// The retention period of the retention case.
    pub retention: Duration,
    /// How long the long-poll cases wait.
    pub long_poll: Duration,
    /// How soon a waiting receive must return a message after it was sent.
    pub wake_latency: Duration,
}

impl Timing {
    /// For adapters with millisecond timeouts (the embedded queue).
    pub const FAST: Timing = Timing {
        visibility: Duration::from_millis(300),
        long_visibility: Duration::from_secs(30),
        retention: Duration::from_millis(400),
        long_poll: Duration::from_secs(2),
        wake_latency: Duration::from_millis(500),
    };

    /// For SQS: whole-second visibility timeouts, 60 s minimum retention.
    pub const WHOLE_SECONDS: Timing = Timing {
        visibility: Duration::from_secs(1),
        long_visibility: Duration::from_secs(60),
        retention: Duration::from_secs(60),
        long_poll: Duration::from_secs(2),
        wake_latency: Duration::from_millis(1000),
    };

    /// The settings of a case: this timing's visibility, an hour's retention.
    pub fn settings(&self, max_receive_count: u32) -> QueueSettings {
        QueueSettings {
            visibility_timeout: self.visibility,
            max_receive_count,
            retention: Duration::from_secs(3600),
            dlq_retention: Duration::from_secs(3600),
        }
    }
}

/// Runs every case with [`Timing::FAST`], each on a fresh queue from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    run_all_with(&make, Timing::FAST).await
}

/// Runs every case with the given timing, each on a fresh queue from `make`.
pub async fn run_all_with<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    send_receive_round_trip(make, t).await;
    visibility_timeout_hides_then_redelivers(make, t).await;
    delete_is_final(make, t).await;
    malformed_handles_are_refused(make, t).await;
    change_visibility_releases_and_extends(make, t).await;
    redrive_moves_to_dlq_after_max_receives(make, t).await;
    dlq_replay_and_purge(make, t).await;
    dead_letter_moves_at_once(make, t).await;
    batch_receive_respects_limits(make, t).await;
    send_batch_returns_ids_in_order(make, t).await;
    long_poll_wakes_on_send(make, t).await;
    long_poll_on_empty_queue_waits(make, t).await;
    retention_drops_old_messages(make, t).await;
    stats_are_right(make, t).await;
    concurrent_receivers_never_share_a_message(make, t).await;
}

#[track_caller]
fn ok<T>(case: &str, what: &str, r: Result<T, PortError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("queue conformance {case}: {what} failed: {e}"),
    }
}

/// Receives until `n` messages have come (each at most once), or panics after `within`.
async fn drain(case: &str, q: &dyn Queue, n: usize, within: Duration) -> Vec<Message> {
    let deadline = Instant::now() + within;
    let mut got: Vec<Message> = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "queue conformance {case}: received {} of {n} messages within {within:?}",
            got.len()
        );
        let batch = ok(case, "receive", q.receive(10, left.min(Duration::from_secs(1))).await);
        for m in batch {
            assert!(
                got.iter().all(|g| g.message_id != m.message_id),
                "queue conformance {case}: message {} delivered twice within its visibility timeout",
                m.message_id
            );
            got.push(m);
        }
    }
    got
}

/// Asserts that nothing is receivable right now.
async fn expect_empty(case: &str, q: &dyn Queue, wait: Duration, why: &str) {
    let got = ok(case, "receive", q.receive(10, wait).await);
    assert!(got.is_empty(), "queue conformance {case}: {why}, but received {:?}", bodies(&got));
}

fn bodies(ms: &[Message]) -> Vec<&str> {
    ms.iter().map(|m| m.body.as_str()).collect()
}

/// A sent message comes back with its body and id, receive count 1 and a receipt handle.
pub async fn send_receive_round_trip<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "send_receive_round_trip";
    let q = make(t.settings(3)).await;
    let body = r#"{"Records":[{"s3":{"object":{"key":"raw/ขาย, \"q\".csv","size":42}}}]}"#;
    let before = chrono::Utc::now();
    let id = ok(CASE, "send", q.send(body).await);
    assert!(!id.is_empty(), "queue conformance {CASE}: empty message id");
    let got = ok(CASE, "receive", q.receive(1, t.long_poll).await);
    assert_eq!(
        got.len(),
        1,
        "queue conformance {CASE}: expected the one message sent, got {:?}",
        bodies(&got)
    );
    let m = &got[0];
    assert_eq!(m.message_id, id, "queue conformance {CASE}: message id differs from the id send returned");
    assert_eq!(m.body, body, "queue conformance {CASE}: body changed in transit");
    assert_eq!(m.receive_count, 1, "queue conformance {CASE}: first receive must count 1");
    assert!(!m.receipt_handle.is_empty(), "queue conformance {CASE}: empty receipt handle");
    let skew = chrono::Duration::seconds(60);
    assert!(
        m.sent_at >= before - skew && m.sent_at <= chrono::Utc::now() + skew,
        "queue conformance {CASE}: sent_at {} is not the send time (~{before})",
        m.sent_at
    );
    ok(CASE, "delete", q.delete(&m.receipt_handle).await);
    expect_empty(CASE, &*q, Duration::ZERO, "the queue should be empty after the delete").await;
}

/// A received message is invisible until its visibility timeout expires, then comes back with
/// receive count 2 and a new receipt handle; the old handle no longer deletes it.
pub async fn visibility_timeout_hides_then_redelivers<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "visibility_timeout_hides_then_redelivers";
    let q = make(t.settings(5)).await;
    let id = ok(CASE, "send", q.send("hide me").await);
    let first = ok(CASE, "receive", q.receive(1, t.long_poll).await);
    assert_eq!(first.len(), 1, "queue conformance {CASE}: the message was not received");
    let received_at = Instant::now();
    let first = &first[0];
    expect_empty(
        CASE,
        &*q,
        Duration::ZERO,
        "a received message must be invisible during its visibility timeout",
    )
    .await;

    let again = ok(CASE, "receive", q.receive(1, t.visibility * 6).await);
    let waited = received_at.elapsed();
    assert_eq!(again.len(), 1, "queue conformance {CASE}: not redelivered after the visibility timeout");
    let again = &again[0];
    assert!(
        waited + Duration::from_millis(30) >= t.visibility,
        "queue conformance {CASE}: redelivered after {waited:?}, before the {:?} visibility timeout",
        t.visibility
    );
    assert_eq!(again.message_id, id, "queue conformance {CASE}: a different message came back");
    assert_eq!(again.body, "hide me", "queue conformance {CASE}: body changed on redelivery");
    assert_eq!(again.receive_count, 2, "queue conformance {CASE}: the second receive must count 2");
    assert_ne!(
        again.receipt_handle, first.receipt_handle,
        "queue conformance {CASE}: a new receive must get a new receipt handle"
    );

    // The stale handle may be refused (embedded) or accepted as a no-op (SQS); either way the
    // message must survive.
    let _ = q.delete(&first.receipt_handle).await;
    ok(
        CASE,
        "change_visibility(0) with the current handle after a delete with the stale one",
        q.change_visibility(&again.receipt_handle, Duration::ZERO).await,
    );
    let third = ok(CASE, "receive", q.receive(1, t.long_poll).await);
    assert_eq!(
        third.len(),
        1,
        "queue conformance {CASE}: a delete with a stale receipt handle deleted the message"
    );
    assert_eq!(third[0].receive_count, 3, "queue conformance {CASE}: the third receive must count 3");
    ok(CASE, "delete", q.delete(&third[0].receipt_handle).await);
}

/// Delete removes a message for good; deleting again with the same handle succeeds.
pub async fn delete_is_final<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "delete_is_final";
    let q = make(t.settings(3)).await;
    ok(CASE, "send", q.send("delete me").await);
    ok(CASE, "send", q.send("keep me").await);
    let got = drain(CASE, &*q, 2, t.long_poll * 2).await;
    let del = got.iter().find(|m| m.body == "delete me").expect("sent above");
    let keep = got.iter().find(|m| m.body == "keep me").expect("sent above");
    ok(CASE, "delete", q.delete(&del.receipt_handle).await);
    ok(CASE, "deleting again with the same handle", q.delete(&del.receipt_handle).await);
    // After the visibility timeout only the undeleted message comes back.
    let back = drain(CASE, &*q, 1, t.visibility * 6).await;
    assert_eq!(bodies(&back), ["keep me"], "queue conformance {CASE}: a deleted message came back");
    assert_eq!(back[0].message_id, keep.message_id, "queue conformance {CASE}: wrong message id");
    ok(CASE, "delete", q.delete(&back[0].receipt_handle).await);
    expect_empty(CASE, &*q, t.visibility * 2, "every message was deleted").await;
    let stats = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        (stats.visible, stats.in_flight),
        (0, 0),
        "queue conformance {CASE}: stats after deleting everything: {stats:?}"
    );
}

/// A receipt handle the queue never issued is refused by delete and change_visibility.
pub async fn malformed_handles_are_refused<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "malformed_handles_are_refused";
    let q = make(t.settings(3)).await;
    assert!(
        q.delete("not-a-receipt-handle").await.is_err(),
        "queue conformance {CASE}: delete accepted a junk handle"
    );
    assert!(
        q.change_visibility("not-a-receipt-handle", Duration::ZERO).await.is_err(),
        "queue conformance {CASE}: change_visibility accepted a junk handle"
    );
}

/// change_visibility(0) makes a message visible at once; a longer timeout extends the wait.
pub async fn change_visibility_releases_and_extends<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "change_visibility_releases_and_extends";
    let q = make(t.settings(5)).await;
    ok(CASE, "send", q.send("m").await);
    let m = drain(CASE, &*q, 1, t.long_poll).await.remove(0);

    ok(CASE, "change_visibility(0)", q.change_visibility(&m.receipt_handle, Duration::ZERO).await);
    let start = Instant::now();
    let m2 = drain(CASE, &*q, 1, t.long_poll).await.remove(0);
    assert!(
        start.elapsed() < t.visibility,
        "queue conformance {CASE}: after change_visibility(0) the message took {:?}, as long as the visibility timeout",
        start.elapsed()
    );
    assert_eq!(m2.receive_count, 2, "queue conformance {CASE}: receive count after release");

    // Extend to four timeouts: still hidden after two.
    ok(CASE, "change_visibility(longer)", q.change_visibility(&m2.receipt_handle, t.visibility * 4).await);
    let extended_at = Instant::now();
    tokio::time::sleep(t.visibility * 2).await;
    expect_empty(CASE, &*q, Duration::ZERO, "an extended visibility timeout must keep the message hidden")
        .await;
    let m3 = drain(CASE, &*q, 1, t.visibility * 8).await.remove(0);
    assert!(
        extended_at.elapsed() + Duration::from_millis(30) >= t.visibility * 4,
        "queue conformance {CASE}: came back after {:?}, before the extended timeout {:?}",
        extended_at.elapsed(),
        t.visibility * 4
    );
    assert_eq!(m3.receive_count, 3, "queue conformance {CASE}: receive count after the extension");
    ok(CASE, "delete", q.delete(&m3.receipt_handle).await);
}

/// After `max_receive_count` receives without a delete, the next receive moves the message to
/// the DLQ instead of returning it; the DLQ lists it with its body and receive count.
pub async fn redrive_moves_to_dlq_after_max_receives<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "redrive_moves_to_dlq_after_max_receives";
    let q = make(t.settings(2)).await;
    let poison = ok(CASE, "send", q.send("poison").await);
    for n in 1..=2 {
        let m = drain(CASE, &*q, 1, t.long_poll).await.remove(0);
        assert_eq!(m.receive_count, n, "queue conformance {CASE}: receive count of receive {n}");
        ok(CASE, "change_visibility(0)", q.change_visibility(&m.receipt_handle, Duration::ZERO).await);
    }
    expect_empty(
        CASE,
        &*q,
        t.visibility,
        "a message received max_receive_count times must go to the DLQ, not be returned",
    )
    .await;
    // A message deleted in time never reaches the DLQ.
    ok(CASE, "send", q.send("healthy").await);
    let h = drain(CASE, &*q, 1, t.long_poll).await.remove(0);
    ok(CASE, "delete", q.delete(&h.receipt_handle).await);

    let dead = ok(CASE, "dlq_list", q.dlq_list(100).await);
    assert_eq!(
        dead.len(),
        1,
        "queue conformance {CASE}: the DLQ should hold exactly the poison message: {dead:?}"
    );
    assert_eq!(dead[0].message_id, poison, "queue conformance {CASE}: dead letter id");
    assert_eq!(dead[0].body, "poison", "queue conformance {CASE}: dead letter body");
    assert_eq!(dead[0].receive_count, 2, "queue conformance {CASE}: dead letter receive count");
    assert!(
        dead[0].dead_lettered_at >= dead[0].sent_at,
        "queue conformance {CASE}: dead-lettered before it was sent"
    );
    let stats = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_letters),
        (0, 0, 1),
        "queue conformance {CASE}: stats (visible, in_flight, dead_letters): {stats:?}"
    );
}

/// Moves every sent message to the DLQ (with `max_receive_count` 1).
async fn dead_letter_all(case: &str, q: &dyn Queue, t: Timing, n: usize) {
    for m in drain(case, q, n, t.long_poll * 2).await {
        ok(case, "change_visibility(0)", q.change_visibility(&m.receipt_handle, Duration::ZERO).await);
    }
    expect_empty(case, q, t.visibility, "messages received max_receive_count times must go to the DLQ").await;
}

/// dlq_replay moves chosen (or all) dead letters back with a fresh receive count; dlq_purge
/// empties the DLQ.
pub async fn dlq_replay_and_purge<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "dlq_replay_and_purge";
    let q = make(t.settings(1)).await;
    let ids = ok(CASE, "send_batch", q.send_batch(&["a".into(), "b".into(), "c".into()]).await);
    dead_letter_all(CASE, &*q, t, 3).await;
    let dead = ok(CASE, "dlq_list", q.dlq_list(100).await);
    let mut dead_ids: Vec<_> = dead.iter().map(|d| d.message_id.clone()).collect();
    dead_ids.sort();
    let mut sent = ids.clone();
    sent.sort();
    assert_eq!(dead_ids, sent, "queue conformance {CASE}: the DLQ should hold the three messages");

    let moved =
        ok(CASE, "dlq_replay(Some)", q.dlq_replay(Some(&[ids[0].clone(), "no-such-id".into()])).await);
    assert_eq!(moved, 1, "queue conformance {CASE}: dlq_replay(Some([a, unknown])) should move one");
    let a = drain(CASE, &*q, 1, t.long_poll).await.remove(0);
    assert_eq!(
        (a.message_id.as_str(), a.body.as_str()),
        (ids[0].as_str(), "a"),
        "queue conformance {CASE}: replayed message"
    );
    assert_eq!(
        a.receive_count, 1,
        "queue conformance {CASE}: a replayed message starts a fresh receive count"
    );
    ok(CASE, "delete", q.delete(&a.receipt_handle).await);
    let left: Vec<_> = ok(CASE, "dlq_list", q.dlq_list(100).await).into_iter().map(|d| d.body).collect();
    assert_eq!(left.len(), 2, "queue conformance {CASE}: after replaying one, the DLQ holds {left:?}");

    let moved = ok(CASE, "dlq_replay(None)", q.dlq_replay(None).await);
    assert_eq!(moved, 2, "queue conformance {CASE}: dlq_replay(None) should move the other two");
    assert!(
        ok(CASE, "dlq_list", q.dlq_list(100).await).is_empty(),
        "queue conformance {CASE}: DLQ not empty after replay"
    );
    let back = drain(CASE, &*q, 2, t.long_poll).await;
    let mut got: Vec<_> = back.iter().map(|m| (m.body.as_str(), m.receive_count)).collect();
    got.sort();
    assert_eq!(
        got,
        [("b", 1), ("c", 1)],
        "queue conformance {CASE}: replayed messages and their receive counts"
    );

    // Back to the DLQ, then purge.
    for m in &back {
        ok(CASE, "change_visibility(0)", q.change_visibility(&m.receipt_handle, Duration::ZERO).await);
    }
    expect_empty(CASE, &*q, t.visibility, "replayed messages received again must return to the DLQ").await;
    let purged = ok(CASE, "dlq_purge", q.dlq_purge().await);
    assert_eq!(purged, 2, "queue conformance {CASE}: dlq_purge count");
    assert!(
        ok(CASE, "dlq_list", q.dlq_list(100).await).is_empty(),
        "queue conformance {CASE}: DLQ not empty after purge"
    );
    assert_eq!(
        ok(CASE, "dlq_replay", q.dlq_replay(None).await),
        0,
        "queue conformance {CASE}: replay of an empty DLQ"
    );
}

/// receive returns at most `max` messages and at most 10, and refuses 0 or more than 10.
/// `dead_letter` moves a received message to the DLQ now; a stale handle cannot.
pub async fn dead_letter_moves_at_once<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "dead_letter_moves_at_once";
    let q = make(t.settings(5)).await;
    let id = ok(CASE, "send", q.send("poison").await);
    let m = drain(CASE, &*q, 1, t.long_poll).await.remove(0);
    ok(CASE, "dead_letter", q.dead_letter(&m.receipt_handle).await);
    let dead = ok(CASE, "dlq_list", q.dlq_list(10).await);
    assert_eq!(dead.len(), 1, "queue conformance {CASE}: the DLQ should hold the message");
    assert_eq!((dead[0].message_id.as_str(), dead[0].body.as_str()), (id.as_str(), "poison"));
    let again = ok(CASE, "receive", q.receive(10, Duration::ZERO).await);
    assert!(again.is_empty(), "queue conformance {CASE}: a dead letter is not received from the main queue");
    assert!(
        q.dead_letter(&m.receipt_handle).await.is_err(),
        "queue conformance {CASE}: dead-lettering twice with the same handle should fail"
    );
}

pub async fn batch_receive_respects_limits<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "batch_receive_respects_limits";
    let q = make(t.settings(3)).await;
    let mut sent = HashSet::new();
    for chunk in 0..3 {
        let n = if chunk == 2 { 5 } else { 10 };
        let bodies: Vec<String> = (0..n).map(|i| format!("m{chunk}-{i}")).collect();
        sent.extend(ok(CASE, "send_batch", q.send_batch(&bodies).await));
    }
    assert_eq!(sent.len(), 25, "queue conformance {CASE}: send_batch ids must be distinct");

    let ten = ok(CASE, "receive(10)", q.receive(10, t.long_poll).await);
    assert!(
        (1..=10).contains(&ten.len()),
        "queue conformance {CASE}: receive(10) of 25 returned {}",
        ten.len()
    );
    let three = ok(CASE, "receive(3)", q.receive(3, t.long_poll).await);
    assert!((1..=3).contains(&three.len()), "queue conformance {CASE}: receive(3) returned {}", three.len());
    let rest = drain(CASE, &*q, 25 - ten.len() - three.len(), t.long_poll * 3).await;
    let mut seen = HashSet::new();
    for m in ten.iter().chain(&three).chain(&rest) {
        assert!(
            seen.insert(m.message_id.clone()),
            "queue conformance {CASE}: {} delivered twice",
            m.message_id
        );
        assert_eq!(m.receive_count, 1, "queue conformance {CASE}: receive count of {}", m.body);
    }
    assert_eq!(seen, sent, "queue conformance {CASE}: the received ids are not the sent ones");
    assert!(
        q.receive(0, Duration::ZERO).await.is_err(),
        "queue conformance {CASE}: receive(0) must be refused"
    );
    assert!(
        q.receive(11, Duration::ZERO).await.is_err(),
        "queue conformance {CASE}: receive(11) must be refused"
    );
}

/// send_batch returns one id per body, in order; more than 10 bodies are refused.
pub async fn send_batch_returns_ids_in_order<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "send_batch_returns_ids_in_order";
    let q = make(t.settings(3)).await;
    let bodies: Vec<String> = (0..5).map(|i| format!("body {i}")).collect();
    let ids = ok(CASE, "send_batch", q.send_batch(&bodies).await);
    assert_eq!(ids.len(), 5, "queue conformance {CASE}: one id per body");
    let by_id: HashMap<_, _> =
        drain(CASE, &*q, 5, t.long_poll * 2).await.into_iter().map(|m| (m.message_id, m.body)).collect();
    for (id, body) in ids.iter().zip(&bodies) {
        assert_eq!(by_id.get(id), Some(body), "queue conformance {CASE}: id {id} does not name {body:?}");
    }
    let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    assert!(q.send_batch(&eleven).await.is_err(), "queue conformance {CASE}: a batch of 11 must be refused");
}

/// A receive that is already waiting returns promptly when a message is sent from another task.
pub async fn long_poll_wakes_on_send<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "long_poll_wakes_on_send";
    let q = make(t.settings(3)).await;
    let receiver = {
        let q = q.clone();
        let wait = t.long_poll;
        tokio::spawn(async move {
            let got = q.receive(1, wait).await;
            (got, Instant::now())
        })
    };
    tokio::time::sleep(t.long_poll / 6).await;
    ok(CASE, "send", q.send("wake up").await);
    let sent = Instant::now();
    let (got, returned) =
        receiver.await.unwrap_or_else(|e| panic!("queue conformance {CASE}: receiver task: {e}"));
    let got = ok(CASE, "waiting receive", got);
    assert_eq!(bodies(&got), ["wake up"], "queue conformance {CASE}: the waiting receive missed the message");
    let latency = returned.saturating_duration_since(sent);
    assert!(
        latency < t.wake_latency,
        "queue conformance {CASE}: the waiting receive returned {latency:?} after the send (limit {:?})",
        t.wake_latency
    );
}

/// A receive with a wait on an empty queue returns empty after about the wait.
pub async fn long_poll_on_empty_queue_waits<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "long_poll_on_empty_queue_waits";
    let q = make(t.settings(3)).await;
    let wait = t.long_poll / 2;
    let start = Instant::now();
    let got = ok(CASE, "receive", q.receive(10, wait).await);
    let took = start.elapsed();
    assert!(got.is_empty(), "queue conformance {CASE}: an empty queue returned {:?}", bodies(&got));
    assert!(
        took + Duration::from_millis(50) >= wait && took <= wait + Duration::from_millis(1500),
        "queue conformance {CASE}: a {wait:?} wait on an empty queue took {took:?}"
    );
}

/// Messages older than the retention period are dropped; newer ones are kept.
pub async fn retention_drops_old_messages<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "retention_drops_old_messages";
    let q = make(QueueSettings { retention: t.retention, ..t.settings(3) }).await;
    ok(CASE, "send", q.send("old").await);
    tokio::time::sleep(t.retention + t.retention / 2 + Duration::from_millis(100)).await;
    ok(CASE, "send", q.send("new").await);
    let got = ok(CASE, "receive", q.receive(10, t.long_poll).await);
    assert_eq!(bodies(&got), ["new"], "queue conformance {CASE}: expected only the message within retention");
    ok(CASE, "delete", q.delete(&got[0].receipt_handle).await);
    expect_empty(CASE, &*q, Duration::ZERO, "the expired message must be gone").await;
    let stats = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        stats.visible + stats.in_flight,
        0,
        "queue conformance {CASE}: stats still count messages: {stats:?}"
    );
}

/// stats counts visible, in-flight and dead-lettered messages and the oldest message's age.
pub async fn stats_are_right<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "stats_are_right";
    let q = make(t.settings(1)).await;
    let empty = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        (empty.visible, empty.in_flight, empty.dead_letters),
        (0, 0, 0),
        "queue conformance {CASE}: a new queue: {empty:?}"
    );
    assert!(
        empty.oldest_age.unwrap_or_default().is_zero(),
        "queue conformance {CASE}: oldest age of an empty queue: {empty:?}"
    );

    ok(CASE, "send_batch", q.send_batch(&["1".into(), "2".into(), "3".into(), "4".into()]).await);
    tokio::time::sleep(t.visibility).await;
    let one = ok(CASE, "receive(1)", q.receive(1, t.long_poll).await);
    assert_eq!(one.len(), 1, "queue conformance {CASE}: receive(1) returned {} messages", one.len());
    let one = &one[0];
    let s = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        (s.visible, s.in_flight, s.dead_letters),
        (3, 1, 0),
        "queue conformance {CASE}: after one receive: {s:?}"
    );
    let age = s
        .oldest_age
        .unwrap_or_else(|| panic!("queue conformance {CASE}: no oldest age with messages queued"));
    assert!(
        age + Duration::from_millis(30) >= t.visibility && age < Duration::from_secs(120),
        "queue conformance {CASE}: oldest age {age:?}, expected about {:?}",
        t.visibility
    );
    // Received once with max_receive_count 1: the next receive dead-letters it.
    ok(CASE, "change_visibility(0)", q.change_visibility(&one.receipt_handle, Duration::ZERO).await);
    let rest = drain(CASE, &*q, 3, t.long_poll).await;
    assert!(
        rest.iter().all(|m| m.message_id != one.message_id),
        "queue conformance {CASE}: the dead-lettered message came back"
    );
    let s = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        (s.visible, s.in_flight, s.dead_letters),
        (0, 3, 1),
        "queue conformance {CASE}: after redrive: {s:?}"
    );
    for m in &rest {
        ok(CASE, "delete", q.delete(&m.receipt_handle).await);
    }
    let s = ok(CASE, "stats", q.stats().await);
    assert_eq!(
        (s.visible, s.in_flight, s.dead_letters),
        (0, 0, 1),
        "queue conformance {CASE}: after deletes: {s:?}"
    );
    assert!(
        s.oldest_age.unwrap_or_default().is_zero(),
        "queue conformance {CASE}: oldest age with the main queue empty: {s:?}"
    );
}

/// Four receivers racing over 200 messages, deleting each at once: every message is delivered
/// exactly once.
pub async fn concurrent_receivers_never_share_a_message<F, Fut>(make: &F, t: Timing)
where
    F: Fn(QueueSettings) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    const CASE: &str = "concurrent_receivers_never_share_a_message";
    const N: usize = 200;
    let q = make(QueueSettings { visibility_timeout: t.long_visibility, ..t.settings(3) }).await;
    let mut sent = HashSet::new();
    for chunk in 0..N / 10 {
        let bodies: Vec<String> = (0..10).map(|i| format!("{chunk}-{i}")).collect();
        sent.extend(ok(CASE, "send_batch", q.send_batch(&bodies).await));
    }
    let deliveries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let deadline = Instant::now() + t.long_visibility / 2;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (q, deliveries) = (q.clone(), deliveries.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let done = deliveries.lock().map(|d| d.len() >= N).unwrap_or(true);
                if done || Instant::now() > deadline {
                    return Ok(());
                }
                for m in q.receive(10, Duration::from_millis(200)).await? {
                    if m.receive_count != 1 {
                        return Err(PortError::Invalid(format!(
                            "{} has receive count {}",
                            m.message_id, m.receive_count
                        )));
                    }
                    if let Ok(mut d) = deliveries.lock() {
                        *d.entry(m.message_id.clone()).or_default() += 1;
                    }
                    q.delete(&m.receipt_handle).await?;
                }
            }
        }));
    }
    for task in tasks {
        let r = task.await.unwrap_or_else(|e| panic!("queue conformance {CASE}: receiver task: {e}"));
        ok(CASE, "a racing receiver", r);
    }
    let deliveries = std::mem::take(&mut *deliveries.lock().unwrap_or_else(|e| e.into_inner()));
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "queue conformance {CASE}: delivered more than once within the visibility timeout: {twice:?}"
    );
    let got: HashSet<String> = deliveries.keys().cloned().collect();
    assert_eq!(
        got.len(),
        N,
        "queue conformance {CASE}: {} of {N} messages delivered before the deadline",
        got.len()
    );
    assert_eq!(got, sent, "queue conformance {CASE}: delivered ids differ from the sent ids");
    expect_empty(CASE, &*q, Duration::ZERO, "every message was deleted").await;
}
