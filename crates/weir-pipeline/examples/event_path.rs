//! The embedded event path, measured: upload → job `succeeded`, with the durable queue.
//!
//! ```text
//! cargo run --release -p weir-pipeline --example event_path -- [--steady-files N] [--rate R]
//!     [--burst-files N] [--uploaders U] [--concurrency C] [--soak-files N --failure-rate P]
//!     [--backlog-files N] [--data-dir DIR]
//! ```
//!
//! * steady: 1 KB CSV files uploaded at a fixed rate (default 50/s); latency percentiles.
//! * burst: files uploaded as fast as `--uploaders` clients (default 32) can; sustained files/s
//!   until all finish.
//! * soak (optional): the burst with random transient failures injected into every port; checks
//!   the invariants afterwards (one terminal state each, all succeeded, queue empty, DLQ empty).
//! * backlog (optional, `--backlog-files N`): N uploads queued before the worker starts, then
//!   drained, after the same with N/10: the resident set's growth while draining, for both.
//!
//! Uploads go through `ingest::put_object`, the path the S3 endpoint and `weir put` use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use weir_backends::{LocalObjectStore, SqliteFile, SqliteJobStore, SqliteQueue};
use weir_core::{Config, Job, JobId, JobStatus};
use weir_pipeline::faults::{self, Fault, FaultPlan};
use weir_pipeline::{ingest, Engine, Ports, Worker};
use weir_ports::{
    Begin, JobFilter, JobStore, Metadata, Notification, Notifier, PortError, QueueSettings, SourceKey,
};

/// As in the weir binary (crates/weir/src/allocator.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
const MI_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Records when each job was saved as succeeded.
struct Timed {
    inner: Arc<dyn JobStore>,
    done: Mutex<HashMap<JobId, Instant>>,
}

#[async_trait]
impl JobStore for Timed {
    async fn create(&self, job: &Job) -> Result<bool, PortError> {
        self.inner.create(job).await
    }
    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        self.inner.get(id).await
    }
    async fn save(&self, job: &Job) -> Result<(), PortError> {
        self.inner.save(job).await?;
        self.saw(job);
        Ok(())
    }
    async fn list(&self, f: &JobFilter) -> Result<Vec<Job>, PortError> {
        self.inner.list(f).await
    }
    async fn list_created(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<weir_ports::JobPage, PortError> {
        self.inner.list_created(from, to, page_token, limit).await
    }
    async fn counts(&self) -> Result<std::collections::BTreeMap<JobStatus, u64>, PortError> {
        self.inner.counts().await
    }
    async fn totals(&self) -> Result<weir_core::stats::JobTotals, PortError> {
        self.inner.totals().await
    }
    async fn series(&self, from: i64, to: i64) -> Result<weir_core::stats::Series, PortError> {
        self.inner.series(from, to).await
    }
    async fn begin(&self, job: &Job, pipeline: &str, run: &str, ttl: Duration) -> Result<Begin, PortError> {
        self.inner.begin(job, pipeline, run, ttl).await
    }
    async fn renew(&self, bucket: &str, key: &str, run: &str, ttl: Duration) -> Result<bool, PortError> {
        self.inner.renew(bucket, key, run, ttl).await
    }
    async fn save_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        self.inner.save_run(job, run).await
    }
    async fn finish_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        self.inner.finish_run(job, run).await?;
        self.saw(job);
        Ok(())
    }
    async fn source_key(&self, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError> {
        self.inner.source_key(bucket, key).await
    }
    async fn claim_once(&self, key: &str) -> Result<bool, PortError> {
        self.inner.claim_once(key).await
    }
    async fn schedule_mark(&self, name: &str, anchor_ms: i64) -> Result<weir_ports::ScheduleMark, PortError> {
        self.inner.schedule_mark(name, anchor_ms).await
    }
    async fn claim_schedule(&self, name: &str, due_ms: i64) -> Result<bool, PortError> {
        self.inner.claim_schedule(name, due_ms).await
    }
    async fn finished_before(
        &self,
        before_ms: i64,
        after: Option<&JobId>,
        limit: usize,
    ) -> Result<weir_ports::ExpiredJobs, PortError> {
        self.inner.finished_before(before_ms, after, limit).await
    }
    async fn delete_finished(&self, ids: &[JobId], before_ms: i64) -> Result<u64, PortError> {
        self.inner.delete_finished(ids, before_ms).await
    }
    async fn add_to_counter(&self, name: &str, by: u64) -> Result<(), PortError> {
        self.inner.add_to_counter(name, by).await
    }
    async fn counters(&self) -> Result<std::collections::BTreeMap<String, u64>, PortError> {
        self.inner.counters().await
    }
}

impl Timed {
    /// Notes when a job was first recorded as succeeded.
    fn saw(&self, job: &Job) {
        if job.status == JobStatus::Succeeded {
            self.done.lock().unwrap().entry(job.job_id.clone()).or_insert_with(Instant::now);
        }
    }
}

struct Quiet;

#[async_trait]
impl Notifier for Quiet {
    async fn publish(&self, _: &Notification) -> Result<(), PortError> {
        Ok(())
    }
}

/// Fails a share of calls at random, before or after the work.
struct RandomFaults {
    rate: f64,
    injected: AtomicU64,
}

impl FaultPlan for RandomFaults {
    fn decide(&self, _op: &'static str, _detail: &str) -> Option<Fault> {
        let r: f64 = rand::random();
        if r >= self.rate {
            return None;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(if r < self.rate / 2.0 { Fault::Before } else { Fault::After })
    }
}

fn csv_1kb(i: usize) -> Bytes {
    let mut s = String::from("order_id,customer_name,product,quantity,price,date\n");
    let mut r = 0;
    while s.len() < 1000 {
        s.push_str(&format!(
            "O-{i}-{r},Customer {r},Widget,{},{}.99,2024-01-{:02}\n",
            r % 9 + 1,
            r % 50,
            r % 28 + 1
        ));
        r += 1;
    }
    Bytes::from(s)
}

/// Where a run keeps its data: a fresh folder under `--data-dir` (kept) or a temporary one.
enum DataDir {
    Kept(std::path::PathBuf),
    Temporary(tempfile::TempDir),
}

impl DataDir {
    fn new() -> DataDir {
        match Self::kept_base() {
            Some(base) => {
                std::fs::create_dir_all(&base).unwrap();
                DataDir::Kept(tempfile::Builder::new().prefix("run-").tempdir_in(base).unwrap().keep())
            }
            None => DataDir::Temporary(tempfile::tempdir().unwrap()),
        }
    }

    /// `--data-dir`, where runs keep their data.
    fn kept_base() -> Option<std::path::PathBuf> {
        let args: Vec<String> = std::env::args().collect();
        args.iter().position(|a| a == "--data-dir").and_then(|i| args.get(i + 1)).map(Into::into)
    }

    /// Where data dirs are made.
    fn base() -> std::path::PathBuf {
        Self::kept_base().unwrap_or_else(std::env::temp_dir)
    }

    fn path(&self) -> &std::path::Path {
        match self {
            DataDir::Kept(p) => p,
            DataDir::Temporary(t) => t.path(),
        }
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds this process has used so far (user, system), from /proc/self/stat.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    let tick = 100.0; // USER_HZ on Linux
    (f.get(11).copied().unwrap_or(0.0) / tick, f.get(12).copied().unwrap_or(0.0) / tick)
}

/// CPU seconds the whole machine has spent busy (every core; user, system, interrupts), from
/// /proc/stat: it counts the kernel's writeback threads that a sync sets to work, which the
/// process's own figure does not.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = stat.lines().next().unwrap_or_default();
    let f: Vec<f64> = cpu.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0.0)).collect();
    // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
    let busy: f64 = f.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    busy / 100.0
}

/// The file system holding `path`, as /proc/self/mountinfo names it (type and source).
fn file_system_of(path: &std::path::Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let (Some(mount), Some(fstype), Some(source)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 2))
        else {
            continue;
        };
        if path.starts_with(mount) && best.as_ref().is_none_or(|(len, _)| mount.len() > *len) {
            best = Some((mount.len(), format!("{fstype} on {source}, mounted at {mount}")));
        }
    }
    best.map(|(_, d)| d).unwrap_or_else(|| "unknown".into())
}

/// A memory figure of this process from /proc/self/status (`VmHWM`: peak, `VmRSS`: now).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Setup {
    _dir: DataDir,
    engine: Arc<Engine>,
    timed: Arc<Timed>,
    raw: Ports,
    stop: CancellationToken,
    worker: Option<tokio::task::JoinHandle<()>>,
    concurrency: usize,
}

impl Setup {
    fn start_worker(&mut self) {
        let worker = Worker::new(self.engine.clone(), self.concurrency, Duration::from_secs(5));
        let token = self.stop.clone();
        self.worker = Some(tokio::spawn(async move { worker.run(token).await }));
    }

    async fn stop(self) {
        self.stop.cancel();
        if let Some(w) = self.worker {
            w.await.unwrap();
        }
    }
}

async fn setup(concurrency: usize, failure_rate: f64) -> (Setup, Arc<RandomFaults>) {
    let (mut s, plan) = setup_idle(concurrency, failure_rate).await;
    s.start_worker();
    (s, plan)
}

/// [`setup`] without a worker yet.
async fn setup_idle(concurrency: usize, failure_rate: f64) -> (Setup, Arc<RandomFaults>) {
    let dir = DataDir::new();
    let mut config = Config::bundled();
    if failure_rate > 0.0 {
        config.queue.visibility_timeout_secs = 2;
        config.queue.max_receive_count = 10;
        config.worker.retry_base_ms = 20;
        config.worker.retry_max_secs = 1;
    }
    // As `weir run` opens them: queue and job store in one file.
    let state = SqliteFile::open(&dir.path().join("weir.db")).unwrap();
    let timed = Arc::new(Timed {
        inner: Arc::new(SqliteJobStore::in_file(&state).unwrap()),
        done: Mutex::new(HashMap::new()),
    });
    let raw = Ports {
        objects: Arc::new(LocalObjectStore::open(dir.path()).unwrap()),
        queue: Arc::new(SqliteQueue::in_file(&state, QueueSettings::from(&config.queue)).unwrap()),
        jobs: timed.clone(),
        records: None,
        notifier: Arc::new(Quiet),
        warehouses: Default::default(),
    };
    let plan = Arc::new(RandomFaults { rate: failure_rate, injected: AtomicU64::new(0) });
    let ports = if failure_rate > 0.0 { faults::wrap(raw.clone(), plan.clone()) } else { raw.clone() };
    let engine = Arc::new(Engine::new(config, ports, dir.path().join(".tmp")).unwrap());
    engine.ensure_buckets().await.unwrap();
    let stop = CancellationToken::new();
    (Setup { _dir: dir, engine, timed, raw, stop, worker: None, concurrency }, plan)
}

async fn upload(s: &Setup, key: &str, body: Bytes) -> (JobId, Instant) {
    let start = Instant::now();
    let (_, job) = ingest::put_object(&s.raw, s.engine.config(), "weir-input", key, body, Metadata::new())
        .await
        .unwrap();
    (job.unwrap().job_id, start)
}

async fn wait_all(s: &Setup, ids: &[JobId], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let done = s.timed.done.lock().unwrap().len();
        if done >= ids.len() && ids.iter().all(|id| s.timed.done.lock().unwrap().contains_key(id)) {
            return;
        }
        if Instant::now() > deadline {
            panic!("only {done} of {} jobs succeeded in {timeout:?}", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn steady(files: usize, rate: f64, concurrency: usize) {
    let (s, _) = setup(concurrency, 0.0).await;
    let mut started = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for i in 0..files {
        ticks.tick().await;
        started.push(upload(&s, &format!("raw/steady-{i}.csv"), csv_1kb(i)).await);
    }
    let ids: Vec<JobId> = started.iter().map(|(id, _)| id.clone()).collect();
    wait_all(&s, &ids, Duration::from_secs(120)).await;
    let done = s.timed.done.lock().unwrap().clone();
    let mut lat: Vec<Duration> = started.iter().map(|(id, t)| done[id] - *t).collect();
    lat.sort();
    println!(
        "steady  {files} files of 1 KB at {rate}/s, concurrency {concurrency}: upload→succeeded p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.9)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    s.stop().await;
}

async fn burst(files: usize, concurrency: usize, failure_rate: f64) {
    let (s, plan) = setup(concurrency, failure_rate).await;
    let s = Arc::new(s);
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let machine_start = machine_busy_seconds();
    let mut uploaders = Vec::new();
    let uploaders_n = arg("--uploaders", 32.0) as usize;
    for u in 0..uploaders_n {
        let s = s.clone();
        uploaders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (u..files).step_by(uploaders_n) {
                ids.push(upload(&s, &format!("raw/burst-{i}.csv"), csv_1kb(i)).await.0);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for u in uploaders {
        ids.extend(u.await.unwrap());
    }
    let uploaded = start.elapsed();
    wait_all(&s, &ids, Duration::from_secs(600)).await;
    let elapsed = start.elapsed();
    let label = if failure_rate > 0.0 { "soak " } else { "burst" };
    println!(
        "{label}   {files} files of 1 KB, concurrency {concurrency}: uploaded in {:.2} s, all succeeded in {:.2} s: {:.0} files/s sustained",
        uploaded.as_secs_f64(),
        elapsed.as_secs_f64(),
        files as f64 / elapsed.as_secs_f64()
    );
    let cpu = cpu_seconds();
    let machine = (machine_busy_seconds() - machine_start) / files as f64;
    let (user, system) = ((cpu.0 - cpu_start.0) / files as f64, (cpu.1 - cpu_start.1) / files as f64);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "        CPU per file (uploaders included): {:.2} ms user + {:.2} ms system = {:.2} ms in this process, {:.2} ms on the whole machine (kernel writeback included); {cores} cores bound the rate at {:.0} files/s",
        user * 1e3,
        system * 1e3,
        (user + system) * 1e3,
        machine * 1e3,
        cores / machine.max(user + system)
    );
    if failure_rate > 0.0 {
        // The invariants: one job each, all succeeded, nothing left on the queue or in the DLQ.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let counts = s.timed.inner.counts().await.unwrap();
        let stats = s.raw.queue.stats().await.unwrap();
        let total: u64 = counts.values().sum();
        let ok = total == files as u64
            && counts.get(&JobStatus::Succeeded) == Some(&(files as u64))
            && stats.visible + stats.in_flight + stats.dead_letters == 0;
        println!(
            "soak    failure rate {failure_rate}: {} failures injected; jobs {counts:?}; queue {stats:?}; invariants {}",
            plan.injected.load(Ordering::Relaxed),
            if ok { "HELD" } else { "VIOLATED" }
        );
        if !ok {
            std::process::exit(1);
        }
    }
    let s = Arc::try_unwrap(s).ok().expect("uploaders are done");
    s.stop().await;
}

/// The resident set now.
fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// A backlog: `files` uploads queued while no worker runs, then drained. Reports the resident
/// set before the worker starts and its peak while it drains: bounded in-flight work keeps the
/// second close to the first whatever the backlog.
async fn backlog(files: usize, concurrency: usize) -> f64 {
    let (mut s, _) = setup_idle(concurrency, 0.0).await;
    let mut ids = Vec::with_capacity(files);
    for i in 0..files {
        ids.push(upload(&s, &format!("raw/backlog-{i}.csv"), csv_1kb(i)).await.0);
    }
    let queued = s.raw.queue.stats().await.unwrap().visible;
    let before = rss_mib();
    let peak = Arc::new(Mutex::new(before));
    let sampling = CancellationToken::new();
    let sampler = {
        let (peak, stop) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let now = rss_mib();
                {
                    let mut p = peak.lock().unwrap();
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let start = Instant::now();
    s.start_worker();
    wait_all(&s, &ids, Duration::from_secs(900)).await;
    let elapsed = start.elapsed();
    sampling.cancel();
    sampler.await.unwrap();
    let peak = *peak.lock().unwrap();
    println!(
        "backlog {files} files queued ({queued} messages) before the worker started: drained in {:.2} s ({:.0} files/s); resident set {before:.1} MiB before, at most {peak:.1} MiB while draining (+{:.1} MiB)",
        elapsed.as_secs_f64(),
        files as f64 / elapsed.as_secs_f64(),
        peak - before
    );
    s.stop().await;
    peak - before
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // SAFETY: as in the weir binary, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_PURGE_DELAY, 0) };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let concurrency = arg("--concurrency", Config::bundled().worker.concurrency as f64) as usize;
    println!("data dir on {}", file_system_of(&DataDir::base()));
    let steady_files = arg("--steady-files", 500.0) as usize;
    let rate = arg("--rate", 50.0);
    let burst_files = arg("--burst-files", 3000.0) as usize;
    let soak_files = arg("--soak-files", 0.0) as usize;
    let failure_rate = arg("--failure-rate", 0.02);
    if steady_files > 0 {
        steady(steady_files, rate, concurrency).await;
    }
    if burst_files > 0 {
        burst(burst_files, concurrency, 0.0).await;
    }
    if soak_files > 0 {
        burst(soak_files, concurrency, failure_rate).await;
    }
    let backlog_files = arg("--backlog-files", 0.0) as usize;
    if backlog_files > 0 {
        // The same drain with a tenth of the backlog first, for comparison.
        let small = backlog((backlog_files / 10).max(1), concurrency).await;
        let large = backlog(backlog_files, concurrency).await;
        println!(
            "backlog growth while draining: {small:.1} MiB for {} files, {large:.1} MiB for {backlog_files}",
            (backlog_files / 10).max(1)
        );
    }
    println!("peak RSS {:.1} MiB", peak_rss_mib());
}
