//! The store's folder for files that are not objects yet: staged writes and the pipeline's
//! spooled outputs, in `<root>/.tmp/p<pid>-<nonce>/`, one folder per process.
//!
//! A process killed in the middle of a write leaves its staged file behind. With every process's
//! files in a folder named after it, the next store to open the data dir removes the folders of
//! processes that no longer run, and nothing half-written ever sits beside the objects in a
//! bucket's folder. A folder whose process id was reused by another process stays until that one
//! ends too.

use std::io;
use std::path::{Path, PathBuf};

/// Under the store's root: not a valid bucket name, so never listed as one.
const TMP: &str = ".tmp";

/// This process's scratch folder; removed when the store (its last clone) is dropped.
#[derive(Debug)]
pub(crate) struct ProcessDir {
    path: PathBuf,
}

impl ProcessDir {
    /// Creates this process's folder under `root`, after removing those of processes gone.
    pub(crate) fn create(root: &Path) -> io::Result<ProcessDir> {
        let tmp = root.join(TMP);
        std::fs::create_dir_all(&tmp)?;
        sweep(&tmp);
        let path = tmp.join(format!("p{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&path)?;
        Ok(ProcessDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProcessDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the folders of processes that no longer run (best effort: a folder that cannot be
/// removed now is tried again at the next start).
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else { continue };
        if !process_runs(pid) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(folder = %entry.path().display(), "removed the scratch files of a process that ended")
                }
                Err(e) => {
                    tracing::warn!(folder = %entry.path().display(), error = %e, "could not remove the scratch files of a process that ended")
                }
            }
        }
    }
}

/// The process id in a folder name `p<pid>-<nonce>`.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix('p')?.split_once('-')?.0.parse().ok()
}

#[cfg(target_os = "linux")]
fn process_runs(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Elsewhere there is no cheap way to ask; nothing is removed.
#[cfg(not(target_os = "linux"))]
fn process_runs(_: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_ended_processes_are_removed_and_ours_goes_with_the_store() {
        let root = tempfile::tempdir().unwrap();
        let tmp = root.path().join(TMP);
        // A process id that no process has (above the kernel's pid_max).
        let dead = tmp.join("p4194305-0123");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("staged"), b"half").unwrap();
        let alive = tmp.join(format!("p{}-other", std::process::id()));
        std::fs::create_dir_all(&alive).unwrap();
        std::fs::write(tmp.join("not-a-process-folder"), b"kept").unwrap();

        let dir = ProcessDir::create(root.path()).unwrap();
        assert!(!dead.exists(), "the ended process's files are gone");
        assert!(alive.exists(), "a running process's folder is kept");
        assert!(tmp.join("not-a-process-folder").exists());
        let ours = dir.path().to_owned();
        assert!(ours.is_dir());
        drop(dir);
        assert!(!ours.exists());
    }
}
