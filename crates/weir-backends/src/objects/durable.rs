//! Group commit for the object store's durability: one `syncfs(2)` for every write that is
//! waiting for one.
//!
//! Every write to the store has points where something must be on disk before it goes on: a
//! staged file's bytes before it is renamed to its key, a link under the new key before the old
//! one is removed, the rename itself before the write is acknowledged. A write that needs such a
//! point asks [`Durability::sync`], which returns once a sync that *started after the call* has
//! finished. One thread runs the syncs back to back, each for everyone who asked while the last
//! one ran, so a busy store makes hundreds of writes durable with one call and one device cache
//! flush, where an `fsync` per file and per folder costs a flush each.
//!
//! `syncfs` writes back everything dirty on the data dir's file system, not only weir's files:
//! on a file system that other programs write heavily, a sync waits for their data too. A data
//! dir on a volume of its own avoids that. Off Linux, `sync(2)` stands in for it.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The answer to one sync: shared by everyone it covered.
type Outcome = Result<(), Arc<io::Error>>;

/// Makes the store's writes durable, many at a time. Cheap to clone; the thread stops when the
/// last clone is dropped.
#[derive(Clone)]
pub(crate) struct Durability {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<Waiting>,
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    waiters: Vec<oneshot::Sender<Outcome>>,
    closed: bool,
    /// Syncs run so far (for tests and the log).
    rounds: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

impl Durability {
    /// Starts the sync thread for the file system that holds `root`.
    pub(crate) fn start(root: &Path) -> io::Result<Durability> {
        let dir = File::open(root)?;
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("weir-objects-sync".into())
            .spawn(move || run(&dir, &thread_shared))?;
        Ok(Durability { handle: Arc::new(Handle { shared }) })
    }

    /// Returns once every write that returned before this call is on disk.
    pub(crate) async fn sync(&self) -> io::Result<()> {
        let rx = self.enqueue();
        match rx.await {
            Ok(outcome) => outcome.map_err(|e| io::Error::new(e.kind(), e.to_string())),
            Err(_) => Err(io::Error::other("the object store's sync thread stopped")),
        }
    }

    /// How many syncs have run.
    #[cfg(test)]
    pub(crate) fn rounds(&self) -> u64 {
        self.handle.shared.lock().rounds
    }

    fn enqueue(&self) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let shared = &self.handle.shared;
        let idle = {
            let mut waiting = shared.lock();
            waiting.waiters.push(tx);
            waiting.waiters.len() == 1
        };
        // The thread looks again after every sync, so only an idle one needs waking.
        if idle {
            shared.wake.notify_one();
        }
        rx
    }
}

/// The sync thread: whoever is waiting when a sync starts is answered by it.
fn run(dir: &File, shared: &Shared) {
    loop {
        let covered = {
            let mut waiting = shared.lock();
            while waiting.waiters.is_empty() && !waiting.closed {
                waiting = shared.wake.wait(waiting).unwrap_or_else(|p| p.into_inner());
            }
            if waiting.waiters.is_empty() {
                return;
            }
            waiting.rounds += 1;
            std::mem::take(&mut waiting.waiters)
        };
        let outcome = sync_file_system(dir).map_err(Arc::new);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = covered.len(), "syncing the data dir failed; the writes waiting for it fail");
        }
        for waiter in covered {
            let _ = waiter.send(outcome.clone());
        }
    }
}

#[cfg(target_os = "linux")]
fn sync_file_system(dir: &File) -> io::Result<()> {
    rustix::fs::syncfs(dir).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(dir: &File) -> io::Result<()> {
    rustix::fs::sync();
    dir.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many writers asking at once are all answered, by fewer syncs than writers; a caller
    /// always gets a sync that started after it asked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_syncs_share_rounds_and_each_caller_is_covered() {
        let dir = tempfile::tempdir().unwrap();
        let d = Durability::start(dir.path()).unwrap();
        d.sync().await.unwrap();
        assert_eq!(d.rounds(), 1, "a lone caller gets a sync of its own");
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let d = d.clone();
                tokio::spawn(async move {
                    let before = d.rounds();
                    d.sync().await.unwrap();
                    // Covered by a round that started after the call: at least one more ran.
                    assert!(d.rounds() > before);
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
    }

    #[test]
    fn the_thread_stops_with_the_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let d = Durability::start(dir.path()).unwrap();
        let shared = d.handle.shared.clone();
        drop(d);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // The thread holds a reference to the shared state until it returns.
        while Arc::strong_count(&shared) > 1 {
            assert!(std::time::Instant::now() < deadline, "the sync thread did not stop");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
