//! Locks on keys, shared by every process that opens the data dir.
//!
//! A write replaces whatever a key names (a rename or link over it); a move removes the source
//! key's name only if it still names the file that was moved. Between that look and the
//! removal no write may land, or the removal takes a newer upload with it: an acknowledged
//! upload lost. Both take the key's lock — a mutex per stripe within the process, then an
//! advisory `flock` on the stripe's file in `<root>/.locks/` for the other processes on the
//! data dir (`weir put` or `weir reprocess` beside `weir run`). A lock is held for one or two
//! syscalls, never across a sync.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Mutex;

/// Under the store's root: not a valid bucket name, so never listed as one.
const LOCKS: &str = ".locks";

/// How many locks the keys are spread over.
const STRIPES: usize = 32;

pub(crate) struct KeyLocks {
    stripes: Vec<Stripe>,
}

struct Stripe {
    /// Threads of this process (`flock` does not exclude holders of the same open file).
    local: Mutex<()>,
    /// Other processes.
    file: File,
}

impl KeyLocks {
    /// Opens (creating) the lock files under `root`.
    pub(crate) fn open(root: &Path) -> io::Result<KeyLocks> {
        let dir = root.join(LOCKS);
        std::fs::create_dir_all(&dir)?;
        let stripes = (0..STRIPES)
            .map(|i| {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dir.join(format!("{i:02}")))?;
                Ok(Stripe { local: Mutex::new(()), file })
            })
            .collect::<io::Result<_>>()?;
        Ok(KeyLocks { stripes })
    }

    /// Runs `f` holding the lock of the object file `path`.
    pub(crate) fn with<T>(&self, path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let stripe = &self.stripes[stripe_of(path)];
        let _local = stripe.local.lock().unwrap_or_else(|p| p.into_inner());
        flock(&stripe.file, true)?;
        let result = f();
        let unlocked = flock(&stripe.file, false);
        let value = result?;
        unlocked?;
        Ok(value)
    }
}

/// FNV-1a of the path's bytes: the same stripe in every process and build.
fn stripe_of(path: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let hash = path
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % STRIPES as u64) as usize
}

fn flock(file: &File, lock: bool) -> io::Result<()> {
    use rustix::fs::FlockOperation;
    let op = if lock { FlockOperation::LockExclusive } else { FlockOperation::Unlock };
    loop {
        match rustix::fs::flock(file, op) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Two holders of one key's lock — one per store, as two processes would have — never
    /// overlap.
    #[test]
    fn one_holder_at_a_time_across_openers() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) =
            (Arc::new(KeyLocks::open(dir.path()).unwrap()), Arc::new(KeyLocks::open(dir.path()).unwrap()));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (locks, inside) = (if i % 2 == 0 { a.clone() } else { b.clone() }, inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        locks
                            .with(Path::new("/data/in/raw/x.csv"), || {
                                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                                std::hint::spin_loop();
                                inside.fetch_sub(1, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
