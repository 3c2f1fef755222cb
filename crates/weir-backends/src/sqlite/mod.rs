//! SQLite plumbing shared by the embedded queue, job store and records sink.
//!
//! The embedded backends keep their state in SQLite files under the data dir, and several
//! processes open the same files at once (`weir run` and CLI commands such as `weir put` or
//! `weir jobs`). Everything here is therefore about doing that safely and fast:
//!
//! - **Opening** ([`Db::open`]): WAL journal (readers never block the writer), `synchronous=FULL`
//!   (each commit is fsynced, so an acknowledged send survives a power cut — the SPEC asks for a
//!   durable queue), a busy timeout so that two processes wait for each other instead of failing,
//!   and a `weir_schema` table that records which migrations of each component have run. Several
//!   components may share one file.
//! - **Three connections per file**: a writer, owned by a thread of its own, and two readers. A
//!   read never waits behind a commit's fsync (WAL readers see the last commit). Point reads by
//!   key ([`Db::lookup`], a few microseconds) run on the calling task's thread with one reader;
//!   scans ([`Db::read`]: listings, counts) run on `spawn_blocking` with the other, so a long
//!   listing never holds up a point read on an async thread. At a thousand jobs a second, a
//!   thread handoff per SQLite call cost more CPU than the calls themselves.
//! - **Group commit** ([`Db::write`]): every write is one closure queued for the writer thread,
//!   which runs everything queued in one `IMMEDIATE` transaction, each write inside its own
//!   savepoint, so one fsync acknowledges many sends/deletes while each operation still succeeds
//!   or fails on its own. Writes that arrive while a commit is being fsynced make the next
//!   group. Nothing is acknowledged before its transaction has committed.
//! - **Durability per write** ([`Durability`]): a write the caller acknowledges to someone else
//!   (a queue send, a delete that ends a job) commits with `synchronous=FULL` and is fsynced
//!   before it returns. Bookkeeping that is redone anyway if it is lost — a receive, a lease, a
//!   checkpoint — commits with `synchronous=NORMAL`: it survives a crash of the process at once
//!   (it is in the OS's cache) and reaches the disk with the next synced commit on the same file,
//!   because the WAL is appended in order and one fsync covers every frame before it. A group
//!   with any synced write is synced as a whole.
//! - **One file, several stores** ([`SqliteFile`]): the queue and the job store share a file in
//!   `weir run`, so the synced delete that ends a job also makes that job's record durable, and
//!   the job's own writes need no fsync of their own.
//! - **Errors**: rusqlite errors become [`PortError::Unavailable`] (transient: the database was
//!   busy, the disk full, ...) with the file and the operation as context.

mod jobs;
mod queue;
mod records;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;
use weir_ports::PortError;

pub use jobs::SqliteJobStore;
pub use queue::SqliteQueue;
pub use records::SqliteRecordsSink;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many queued writes share one transaction.
const MAX_GROUP: usize = 256;

/// Why a database could not be used, as the source of a [`PortError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "schema of {component} is at version {found}, newer than the {known} this weir knows; upgrade weir"
    )]
    SchemaTooNew { component: &'static str, found: i64, known: i64 },
    #[error("journal_mode is {0:?}, not WAL (the file system may not support shared memory)")]
    NoWal(String),
    #[error("the database writer stopped before answering (a panic in a write)")]
    WriterGone,
    #[error("could not begin a write transaction: {0}")]
    BeginFailed(String),
    #[error("commit failed: {0}")]
    CommitFailed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What is wrong with the file system holding `path`, when something obvious is: SQLite reports
/// a full disk or a read-only one as "disk I/O error" in several of its paths, which tells the
/// user nothing. Empty when the file system looks fine (or cannot be asked).
pub(crate) fn fs_trouble(path: &Path) -> String {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(st) = rustix::fs::statvfs(dir) else { return String::new() };
    if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return format!("; the file system holding {} is read-only", dir.display());
    }
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if free < 1 << 20 {
        return format!("; the file system holding {} is full ({free} bytes free)", dir.display());
    }
    String::new()
}

/// Maps a rusqlite error to a transient [`PortError`] with context, for `map_err`.
pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> PortError {
    move |e| PortError::unavailable(context, DbError::Sqlite(e))
}

/// Milliseconds since the Unix epoch, the time unit stored in every table.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A duration in whole milliseconds, saturating (retention periods of years still fit).
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A stored millisecond timestamp as a `DateTime`.
pub(crate) fn datetime(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// When a write's commit must be on disk (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Fsynced before the write returns.
    Synced,
    /// Committed and visible at once; on disk with the next synced commit on the same file.
    Deferred,
}

/// One SQLite file opened for one or more stores: the writer thread with its connection and
/// queue of pending writes, and the reader connections.
#[derive(Clone)]
pub(crate) struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The write connection. The writer thread holds it while it runs a group; migrations of
    /// stores joining the file take it between groups.
    conn: Arc<Mutex<Connection>>,
    /// Reads only (`query_only`), so a read never queues behind a write: point reads on the
    /// caller's thread...
    lookups: Mutex<Connection>,
    /// ...and scans on blocking threads.
    scans: Mutex<Connection>,
    writes: Arc<WriteQueue>,
}

/// Writes waiting for the writer thread.
#[derive(Default)]
struct WriteQueue {
    state: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    ops: Vec<Box<dyn PendingWrite>>,
    /// The last handle on the file is gone: finish what is queued and stop.
    closed: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.writes.lock().closed = true;
        self.writes.wake.notify_one();
    }
}

/// An SQLite file that several embedded stores share (one connection, one group commit), so
/// that their writes commit together: see [`crate::SqliteQueue::in_file`] and
/// [`crate::SqliteJobStore::in_file`].
#[derive(Clone)]
pub struct SqliteFile {
    pub(crate) db: Db,
}

impl SqliteFile {
    /// Opens (creating if needed) the file; each store brings its own schema up to date when it
    /// is opened in it.
    pub fn open(path: &Path) -> Result<SqliteFile, PortError> {
        Ok(SqliteFile { db: Db::open(path, "file", &[])? })
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }
}

impl std::fmt::Debug for SqliteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFile").field("path", &self.db.path()).finish()
    }
}

impl Db {
    /// Opens (creating if needed) the file and brings `component`'s schema up to date:
    /// `migrations[i]` is the SQL that takes the schema from version `i` to `i + 1`. Runs in an
    /// `IMMEDIATE` transaction, so two processes opening a new file at once migrate it once.
    pub(crate) fn open(path: &Path, component: &'static str, migrations: &[&str]) -> Result<Db, PortError> {
        let fail = |e: DbError| {
            PortError::unavailable(format!("opening {component} {}{}", path.display(), fs_trouble(path)), e)
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.into()))?;
        }
        let conn = open_configured(path, component, migrations).map_err(fail)?;
        let (lookups, scans) = (open_reader(path).map_err(fail)?, open_reader(path).map_err(fail)?);
        let conn = Arc::new(Mutex::new(conn));
        let writes = Arc::new(WriteQueue::default());
        let writer = Writer { conn: conn.clone(), writes: writes.clone(), synced: true };
        std::thread::Builder::new()
            .name("weir-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| fail(e.into()))?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                conn,
                lookups: Mutex::new(lookups),
                scans: Mutex::new(scans),
                writes,
            }),
        })
    }

    /// Brings `component`'s schema up to date in a file that is already open (a store joining
    /// a [`SqliteFile`]).
    pub(crate) fn migrate(&self, component: &'static str, migrations: &[&str]) -> Result<(), PortError> {
        let mut conn = lock(&self.inner.conn);
        migrate(&mut conn, component, migrations).map_err(|e| {
            PortError::unavailable(format!("opening {component} {}", self.inner.path.display()), e)
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a read that may take a while (a scan, a listing) off the runtime.
    pub(crate) async fn read<R, F>(&self, what: &'static str, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || f(&lock(&inner.scans)))
            .await
            .map_err(|e| PortError::unavailable(what, e))?;
        result.map_err(|e| self.with_path(what, e))
    }

    /// Runs a point read (one row by its key, an `EXISTS`) on the calling thread: it takes
    /// microseconds, less than handing it to another thread would.
    pub(crate) fn lookup<R>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> Result<R, PortError>,
    ) -> Result<R, PortError> {
        f(&lock(&self.inner.lookups)).map_err(|e| self.with_path(what, e))
    }

    /// Runs `f` in a write transaction on the writer thread and returns its result once the
    /// transaction has committed (fsynced). Concurrent writes are grouped into one transaction
    /// (see the module docs); `f` runs inside a savepoint, so when it returns an error its own
    /// changes are rolled back and the others' still commit.
    pub(crate) async fn write<R, F>(&self, what: &'static str, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        self.write_with(Durability::Synced, what, f).await
    }

    /// [`Db::write`] with the durability the caller needs (see the module docs).
    pub(crate) async fn write_with<R, F>(
        &self,
        durability: Durability,
        what: &'static str,
        f: F,
    ) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let idle = {
            let mut pending = self.inner.writes.lock();
            pending.ops.push(Box::new(Op { f, tx, durability }));
            pending.ops.len() == 1
        };
        // The writer looks at the queue again after every group, so only an idle writer needs
        // waking.
        if idle {
            self.inner.writes.wake.notify_one();
        }
        let result = rx.await.unwrap_or_else(|_| Err(PortError::unavailable(what, DbError::WriterGone)));
        result.map_err(|e| self.with_path(what, e))
    }

    /// Prefixes a transient error's context with the operation and the file.
    fn with_path(&self, what: &'static str, e: PortError) -> PortError {
        match e {
            PortError::Unavailable { context, source } => PortError::Unavailable {
                context: format!(
                    "{what} ({}{}): {context}",
                    self.inner.path.display(),
                    fs_trouble(&self.inner.path)
                ),
                source,
            },
            other => other,
        }
    }
}

/// Locks a connection. A panic while holding the lock leaves the connection usable: its
/// transaction was rolled back when the guard's owner unwound.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The writer thread: runs queued writes in groups until the file's last handle is dropped.
struct Writer {
    conn: Arc<Mutex<Connection>>,
    writes: Arc<WriteQueue>,
    /// Whether the connection is set to `synchronous=FULL` now.
    synced: bool,
}

impl Writer {
    fn run(mut self) {
        loop {
            let ops: Vec<Box<dyn PendingWrite>> = {
                let mut pending = self.writes.lock();
                while pending.ops.is_empty() && !pending.closed {
                    pending = self.writes.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
                if pending.ops.is_empty() {
                    return;
                }
                let n = pending.ops.len().min(MAX_GROUP);
                pending.ops.drain(..n).collect()
            };
            let conn = self.conn.clone();
            let conn = lock(&conn);
            self.run_group(&conn, ops);
        }
    }

    /// Switches the connection between `synchronous=FULL` and `NORMAL` when it is not already so.
    fn set_synced(&mut self, conn: &Connection, synced: bool) -> rusqlite::Result<()> {
        if self.synced != synced {
            // A cached statement: groups switch often, and preparing a PRAGMA each time shows.
            let pragma = if synced { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
            conn.prepare_cached(pragma)?.execute([])?;
            self.synced = synced;
        }
        Ok(())
    }

    /// Runs `ops` in one transaction, synced if any of them must be.
    fn run_group(&mut self, conn: &Connection, ops: Vec<Box<dyn PendingWrite>>) {
        let synced = ops.iter().any(|op| op.durability() == Durability::Synced);
        let begun = self
            .set_synced(conn, synced)
            .and_then(|()| conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut st| st.execute([])));
        if let Err(e) = begun {
            let msg = e.to_string();
            for op in ops {
                op.fail(PortError::unavailable("writing", DbError::BeginFailed(msg.clone())));
            }
            return;
        }
        let mut done = Vec::with_capacity(ops.len());
        for op in ops {
            done.push(op.run(conn));
        }
        let commit_error = match conn.prepare_cached("COMMIT").and_then(|mut st| st.execute([])) {
            Ok(_) => None,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Some(e.to_string())
            }
        };
        for d in done {
            d.finish(commit_error.as_deref());
        }
    }
}

/// A queued write: run it inside the group's transaction, or fail it without running.
trait PendingWrite: Send {
    fn durability(&self) -> Durability;
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn FinishWrite>;
    fn fail(self: Box<Self>, error: PortError);
}

/// A write that ran, waiting for its transaction's commit to answer its caller.
trait FinishWrite {
    fn finish(self: Box<Self>, commit_error: Option<&str>);
}

struct Op<F, R> {
    f: F,
    tx: oneshot::Sender<Result<R, PortError>>,
    durability: Durability,
}

impl<F, R> PendingWrite for Op<F, R>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn FinishWrite> {
        let Op { f, tx, .. } = *self;
        let exec = |sql_text: &str| conn.prepare_cached(sql_text).and_then(|mut st| st.execute([]));
        let result = match exec("SAVEPOINT op") {
            Ok(_) => match f(conn) {
                Ok(value) => exec("RELEASE op").map(|_| value).map_err(sql("releasing a savepoint")),
                // Rolls back this write's changes only.
                Err(e) => match exec("ROLLBACK TO op").and_then(|_| exec("RELEASE op")) {
                    Ok(_) => Err(e),
                    Err(rollback) => {
                        tracing::error!(error = %rollback, "could not roll a failed write back to its savepoint");
                        Err(e)
                    }
                },
            },
            Err(e) => Err(PortError::unavailable("creating a savepoint", DbError::Sqlite(e))),
        };
        Box::new(Done { result, tx })
    }

    fn fail(self: Box<Self>, error: PortError) {
        let _ = self.tx.send(Err(error));
    }
}

struct Done<R> {
    result: Result<R, PortError>,
    tx: oneshot::Sender<Result<R, PortError>>,
}

impl<R> FinishWrite for Done<R> {
    fn finish(self: Box<Self>, commit_error: Option<&str>) {
        let result = match (commit_error, self.result) {
            (None, result) => result,
            // The write's own error says more than the commit's.
            (Some(_), Err(e)) => Err(e),
            (Some(msg), Ok(_)) => {
                Err(PortError::unavailable("committing", DbError::CommitFailed(msg.to_owned())))
            }
        };
        let _ = self.tx.send(result);
    }
}

/// Opens, configures and migrates the file, retrying while another process holds a lock.
///
/// The busy timeout covers ordinary reads and writes, but SQLite returns `SQLITE_BUSY` at once,
/// without calling the busy handler, on some paths taken only while opening: switching a new
/// file to WAL while another connection does the same, and the recovery of a WAL left by a
/// process that died. Two processes starting at the same moment (`weir run` and `weir jobs`)
/// hit exactly those, so the whole open is retried for as long as the busy timeout.
fn open_configured(path: &Path, component: &'static str, migrations: &[&str]) -> Result<Connection, DbError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        let attempt = Connection::open(path).map_err(DbError::from).and_then(|mut conn| {
            configure(&conn)?;
            migrate(&mut conn, component, migrations)?;
            Ok(conn)
        });
        match attempt {
            Err(DbError::Sqlite(e)) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// The read connection: the file exists and is in WAL mode by now.
fn open_reader(path: &Path) -> Result<Connection, DbError> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn configure(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::NoWal(mode));
    }
    // FULL: the WAL is fsynced at every commit, so a committed send survives a power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints keep the WAL short; this bounds the file it leaves behind after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn migrate(conn: &mut Connection, component: &'static str, migrations: &[&str]) -> Result<(), DbError> {
    let known = migrations.len() as i64;
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    txn.execute_batch(
        "CREATE TABLE IF NOT EXISTS weir_schema (
             component TEXT PRIMARY KEY,
             version INTEGER NOT NULL
         )",
    )?;
    let found: i64 = txn
        .query_row("SELECT version FROM weir_schema WHERE component = ?1", [component], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if found > known {
        return Err(DbError::SchemaTooNew { component, found, known });
    }
    for (i, step) in migrations.iter().enumerate().skip(found as usize) {
        txn.execute_batch(step)?;
        txn.execute(
            "INSERT INTO weir_schema (component, version) VALUES (?1, ?2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            rusqlite::params![component, i as i64 + 1],
        )?;
        tracing::debug!(component, version = i + 1, "applied schema migration");
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_run_once_and_newer_schemas_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/db.sqlite");
        let steps = ["CREATE TABLE t (x INTEGER)", "ALTER TABLE t ADD COLUMN y INTEGER"];
        let db = Db::open(&path, "test", &steps[..1]).expect("open v1");
        drop(db);
        // Reopening with one more step runs only the new one.
        let db = Db::open(&path, "test", &steps).expect("open v2");
        let n = db
            .write("insert", |c| c.execute("INSERT INTO t (x, y) VALUES (1, 2)", []).map_err(sql("insert")))
            .await
            .expect("insert");
        assert_eq!(n, 1);
        drop(db);
        let err = Db::open(&path, "test", &steps[..1]).err().expect("older code must refuse a newer schema");
        assert!(err.to_string().contains("newer"), "{err}");
        // Another component in the same file has its own version.
        Db::open(&path, "other", &["CREATE TABLE u (x INTEGER)"]).expect("second component");
    }

    #[tokio::test]
    async fn connections_are_durable_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db"), "test", &[]).expect("open");
        let (mode, sync): (String, i64) = db
            .write("pragmas", |c| {
                let mode =
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(sql("journal_mode"))?;
                let sync = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).map_err(sql("synchronous"))?;
                Ok((mode, sync))
            })
            .await
            .expect("pragmas");
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL: the WAL is fsynced at every commit");
    }

    /// A deferred write commits with `synchronous=NORMAL` (no fsync), a synced one with `FULL`,
    /// and a group holding both is synced; every write is visible to another connection at once.
    #[tokio::test]
    async fn deferred_writes_commit_without_fsync_and_synced_ones_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let db = Db::open(&path, "test", &["CREATE TABLE t (x INTEGER)"]).expect("open");
        // What the writer's connection is set to while it runs a write of this durability.
        let insert_and_mode = |x: i64| {
            move |c: &Connection| {
                c.execute("INSERT INTO t VALUES (?1)", [x]).map_err(sql("insert"))?;
                c.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0)).map_err(sql("synchronous"))
            }
        };
        let mode = db.write_with(Durability::Deferred, "insert", insert_and_mode(1)).await.expect("deferred");
        assert_eq!(mode, 1, "a deferred write commits with synchronous=NORMAL");
        let mode = db.write("insert", insert_and_mode(2)).await.expect("synced");
        assert_eq!(mode, 2, "a synced write commits with synchronous=FULL");
        let insert =
            |x: i64| move |c: &Connection| c.execute("INSERT INTO t VALUES (?1)", [x]).map_err(sql("insert"));
        // Many at once: they share groups, and any group with a synced write is synced.
        let writes: Vec<_> = (3..40)
            .map(|x| {
                let db = db.clone();
                let durability = if x == 39 { Durability::Synced } else { Durability::Deferred };
                tokio::spawn(async move { db.write_with(durability, "insert", insert(x)).await })
            })
            .collect();
        for w in writes {
            w.await.expect("join").expect("write");
        }
        let other = Connection::open(&path).expect("second connection");
        let n: i64 = other.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(n, 39, "deferred and synced writes are all committed and visible");
    }

    #[tokio::test]
    async fn a_failing_write_does_not_undo_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db"), "test", &["CREATE TABLE t (x INTEGER PRIMARY KEY)"])
            .expect("open");
        let mut tasks = Vec::new();
        for i in 0..50i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write("insert", move |c| {
                    c.execute("INSERT INTO t (x) VALUES (?1)", [i]).map_err(sql("insert"))?;
                    if i % 2 == 1 {
                        return Err(PortError::Invalid(format!("odd {i}")));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.await.expect("join");
            assert_eq!(r.is_ok(), i % 2 == 0, "write {i}: {r:?}");
        }
        let rows: i64 = db
            .read("count", |c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).map_err(sql("count")))
            .await
            .expect("count");
        assert_eq!(rows, 25, "only the successful writes are kept");
    }

    /// Processes starting together (`weir run` beside `weir jobs`) open a new file at once; here
    /// threads stand in for them, each with its own connection, on many fresh files.
    #[test]
    fn concurrent_opens_of_a_new_file_all_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let steps = ["CREATE TABLE t (x INTEGER)"];
        for round in 0..30 {
            let path = dir.path().join(format!("db-{round}.sqlite"));
            let barrier = Arc::new(std::sync::Barrier::new(6));
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Db::open(&path, "test", &steps).map(drop)
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("join").unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
    }
}
