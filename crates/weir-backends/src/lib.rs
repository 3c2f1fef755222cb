//! The embedded adapters: every port of weir implemented with nothing but this machine.
//!
//! The queue, the job store and the records sink are SQLite files ([`sqlite`]); `weir run`
//! needs nothing else installed.

pub mod sqlite;

pub use sqlite::{SqliteJobStore, SqliteQueue, SqliteRecordsSink};
