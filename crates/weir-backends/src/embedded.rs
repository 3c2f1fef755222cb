//! The embedded backend as a whole: every port over one data dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_core::config::RecordsSinkKind;
use weir_core::Config;
use weir_ports::{PortError, Ports, QueueSettings, RecordsSink, Secrets};

use crate::{LocalObjectStore, OutboxNotifier, SqliteFile, SqliteJobStore, SqliteQueue, SqliteRecordsSink};

/// The SQLite file with the queue and the job records of a data dir.
pub fn state_db(data_dir: &Path) -> PathBuf {
    data_dir.join("weir.db")
}

/// The embedded adapters over `data_dir`: folders for buckets, SQLite for the queue, the job
/// store, the records sink and the notification outbox. The queue and the job store share one
/// file, so the synced delete that ends a job also puts its record on disk (see
/// [`crate::sqlite`]). Email and webhook deliveries start on the current tokio runtime, if any:
/// any process that opened the outbox delivers what is due, so a restart drops nothing.
/// Secret settings of the notifications are read through `secrets`.
pub fn open_embedded(config: &Config, data_dir: &Path, secrets: Arc<Secrets>) -> Result<Ports, PortError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| PortError::unavailable(format!("creating data dir {}", data_dir.display()), e))?;
    let objects = LocalObjectStore::open(data_dir)?;
    let state = SqliteFile::open(&state_db(data_dir))?;
    let queue = SqliteQueue::in_file(&state, QueueSettings::from(&config.queue))?;
    let jobs = SqliteJobStore::in_file(&state)?;
    let records: Option<Arc<dyn RecordsSink>> = match config.records.sink {
        RecordsSinkKind::None => None,
        RecordsSinkKind::Sqlite => Some(Arc::new(SqliteRecordsSink::open(&data_dir.join("records.db"))?)),
    };
    let notifier = Arc::new(OutboxNotifier::open(&data_dir.join("outbox.db"), &config.notify, secrets)?);
    notifier.spawn_delivery();
    Ok(Ports {
        objects: Arc::new(objects),
        queue: Arc::new(queue),
        jobs: Arc::new(jobs),
        records,
        notifier,
        warehouses: Default::default(),
    })
}
