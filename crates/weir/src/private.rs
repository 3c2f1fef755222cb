//! Private by default: what weir writes is its user's alone.
//!
//! A data dir holds uploaded files, error reports that quote rows, the job store, the
//! notification outbox and the credentials. weir runs with umask 077 whatever it was started
//! with, so every folder it creates is 0700 and every file 0600 (SQLite's files, spooled
//! uploads and outputs included), the data dir itself 0700. A data dir made earlier, or by hand,
//! that others can enter is reported with the command that fixes it.

use std::path::Path;

/// Sets the process's umask to 077 (before anything is created).
pub fn umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Warns when others can read or enter an existing data dir.
pub fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(dir) else { return };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() && mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %dir.display(),
                "the data dir is open to other users (mode {mode:o}): its uploads, reports and job records can be read; run `chmod 700 {}`",
                dir.display()
            );
        }
    }
}
