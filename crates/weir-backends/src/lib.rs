//! The embedded adapters: every port of weir implemented with nothing but this machine.
//!
//! Buckets are folders ([`objects`]), the queue, the job store and the records sink are SQLite
//! files ([`sqlite`]), and notifications go to the log ([`notify`]). `weir run` needs nothing
//! else installed.

pub mod notify;
pub mod objects;
pub mod sqlite;

pub use notify::{LogNotifier, TopicNotifier};
pub use objects::LocalObjectStore;
pub use sqlite::{SqliteJobStore, SqliteQueue, SqliteRecordsSink};
