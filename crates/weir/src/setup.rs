//! Turning command-line options into a configuration and a set of wired ports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use weir_backends::{
    LocalObjectStore, OutboxNotifier, SqliteFile, SqliteJobStore, SqliteQueue, SqliteRecordsSink,
};
use weir_core::config::RecordsSinkKind;
use weir_core::Config;
use weir_pipeline::{Engine, Ports};
use weir_ports::{QueueSettings, RecordsSink};

use crate::cli::Global;

/// The configuration in force and where it came from.
pub struct Loaded {
    pub config: Config,
    pub source: String,
    pub data_dir: PathBuf,
}

/// Finds and reads the configuration: `--config`, else `weir.toml` in the data dir or the
/// current folder, else the bundled sales pipeline.
pub fn load(global: &Global) -> Result<Loaded> {
    let default_dir = global.data_dir.clone().unwrap_or_else(|| PathBuf::from("weir-data"));
    let candidates = [default_dir.join("weir.toml"), PathBuf::from("weir.toml")];
    let path = match &global.config {
        Some(p) => Some(p.clone()),
        None => candidates.into_iter().find(|p| p.is_file()),
    };
    let (config, source) = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading config {}", p.display()))?;
            let mut config = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            // Files the config names are relative to the config file, not to where weir runs.
            let base = p.parent().unwrap_or(Path::new("."));
            for pipeline in &mut config.pipelines {
                if let Some(file) = &mut pipeline.workflow.file {
                    if file.is_relative() {
                        *file = base.join(&*file);
                    }
                }
            }
            (config, p.display().to_string())
        }
        None => (Config::bundled(), "bundled sales pipeline (no weir.toml found)".to_string()),
    };
    let problems = config.validate();
    if !problems.is_empty() {
        bail!("{source} has problems:\n  {}", problems.join("\n  "));
    }
    let data_dir = global.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or(default_dir);
    Ok(Loaded { config, source, data_dir })
}

/// The SQLite file with the queue and the job records of a data dir.
pub fn state_db(data_dir: &Path) -> PathBuf {
    data_dir.join("weir.db")
}

/// The embedded adapters over a data dir: folders for buckets, SQLite for the rest.
pub fn embedded_ports(config: &Config, data_dir: &Path) -> Result<Ports> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let objects = LocalObjectStore::open(data_dir).context("opening the object store")?;
    // The queue and the job store share one file, so the synced delete that ends a job also
    // puts its record on disk (see weir_backends::sqlite).
    let state = SqliteFile::open(&state_db(data_dir)).context("opening the queue and job store")?;
    let queue =
        SqliteQueue::in_file(&state, QueueSettings::from(&config.queue)).context("opening the queue")?;
    let jobs = SqliteJobStore::in_file(&state).context("opening the job store")?;
    let records: Option<Arc<dyn RecordsSink>> = match config.records.sink {
        RecordsSinkKind::None => None,
        RecordsSinkKind::Sqlite => Some(Arc::new(
            SqliteRecordsSink::open(&data_dir.join("records.db")).context("opening the records sink")?,
        )),
    };
    // Email and webhook notifications go through `outbox.db`; any process that opened it (and
    // runs on a tokio runtime) delivers what is due, so a restart does not drop a pending one.
    let notifier = Arc::new(
        OutboxNotifier::open(&data_dir.join("outbox.db"), &config.notify)
            .context("opening the notification outbox")?,
    );
    notifier.spawn_delivery();
    Ok(Ports { objects: Arc::new(objects), queue: Arc::new(queue), jobs: Arc::new(jobs), records, notifier })
}

/// Config, ports and a ready engine (buckets created); on AWS when the config has `[aws]`.
pub async fn engine(global: &Global) -> Result<(Loaded, Arc<Engine>)> {
    let loaded = load(global)?;
    if loaded.config.aws.is_some() {
        // The AWS backend: the resources exist already (`weir setup aws`).
        let engine = crate::aws::engine(&loaded, None).await?;
        return Ok((loaded, engine));
    }
    let ports = embedded_ports(&loaded.config, &loaded.data_dir)?;
    let engine = Engine::new(loaded.config.clone(), ports, loaded.data_dir.join(".tmp"))?;
    engine.ensure_buckets().await.context("creating buckets")?;
    Ok((loaded, Arc::new(engine)))
}
