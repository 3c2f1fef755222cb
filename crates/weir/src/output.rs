//! Standard output for the commands. `outln!` and `out!` return an error where `println!` and
//! `print!` panic, and [`reader_gone`] tells `main` that the error only means the reader closed
//! the pipe (`weir jobs --json | head -1`): weir then ends quietly with status 0, as ripgrep does
//! (coreutils die of SIGPIPE instead, 141 in the shell; weir keeps SIGPIPE ignored, as Rust sets
//! it, so that a closed socket or child pipe in a server never kills the process).

use std::fmt;
use std::io::{self, Write};

/// Writing to standard output failed.
#[derive(Debug)]
pub struct StdoutError(pub io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("writing to standard output")
    }
}

impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Writes `text` (and a newline with `newline`) to standard output.
pub fn write(text: fmt::Arguments<'_>, newline: bool) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    out.write_fmt(text).map_err(StdoutError)?;
    if newline {
        out.write_all(b"\n").map_err(StdoutError)?;
    }
    Ok(())
}

/// Whether `e` is standard output's reader having gone away (EPIPE), not a failure of the command.
pub fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<StdoutError>().is_some_and(|s| s.0.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that returns a [`StdoutError`] instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}

/// `print!` that returns a [`StdoutError`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), false)
    };
}
