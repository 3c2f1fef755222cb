//! The embedded adapters: every port of weir implemented with nothing but this machine.
//!
//! Buckets are folders ([`objects`]), the queue, the job store and the records sink are SQLite
//! files ([`sqlite`]), and notifications go to the log ([`notify`]) or, through a SQLite outbox
//! ([`outbox`]), to email and webhooks ([`deliver`]). `weir run` needs nothing else installed.

pub mod data_dir;
pub mod deliver;
pub mod embedded;
pub mod notify;
pub mod objects;
pub mod outbox;
pub mod secrets;
pub mod sqlite;

pub use data_dir::{DataDirError, DataDirLock};
pub use embedded::{open_embedded, state_db};
pub use notify::{LogNotifier, TopicNotifier};
pub use objects::LocalObjectStore;
pub use outbox::{OutboxNotifier, OutboxStats};
pub use secrets::{local_secrets, FileSecrets};
pub use sqlite::{SqliteFile, SqliteJobStore, SqliteQueue, SqliteRecordsSink};
