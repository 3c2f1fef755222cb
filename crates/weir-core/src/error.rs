//! Error classes: the one fact about a failure that decides what happens to its message.

use serde::{Deserialize, Serialize};

/// Whether retrying can help.
///
/// * `Permanent` — the input itself is wrong (schema mismatch, undecodable bytes, unsupported
///   format, file too large, malformed event). The job ends at once and is never retried.
/// * `Transient` — the environment failed (store unavailable, I/O error, timeout, notifier down).
///   The message is left on the queue to be retried with backoff and, after the queue's
///   `max_receive_count`, dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Permanent,
    Transient,
}
