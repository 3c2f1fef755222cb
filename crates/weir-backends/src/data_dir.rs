//! One `weir run` per data dir.
//!
//! Everything in a data dir can be shared by several processes (the SQLite files, the object
//! store with its key locks and per-process scratch folders), and CLI commands such as `weir put`
//! or `weir jobs` work beside a running `weir run`. Two `weir run`s on one data dir, though,
//! would both reconcile at start, both serve the same buckets on different ports and both sweep
//! on a clock: the second is refused, by an advisory lock on `<data dir>/run.lock` that the
//! first holds for as long as it runs (the kernel drops it when the process dies, kill -9 too).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "run.lock";

/// Held while this process runs the data dir.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "another `weir run` (pid {pid}) is using the data dir {dir}: stop it first, or give this one a data dir of its own (--data-dir). Commands such as `weir put`, `weir jobs` and `weir dlq` work beside it"
    )]
    InUse { dir: PathBuf, pid: String },
    #[error("locking {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl DataDirLock {
    /// Takes the data dir's lock, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, DataDirError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| DataDirError::Io { path: path.clone(), source };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        use rustix::fs::FlockOperation;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = match pid.trim() {
                    "" => "unknown".to_string(),
                    p => p.to_string(),
                };
                return Err(DataDirError::InUse { dir: dir.to_owned(), pid });
            }
            Err(e) => return Err(io(e.into())),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        match DataDirLock::acquire(dir.path()) {
            Err(DataDirError::InUse { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("a second lock: {other:?}"),
        }
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again");
    }
}
