//! Structured logs: human-readable on a terminal, one JSON object per line otherwise.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "weir=info,weir_pipeline=info,weir_backends=info,weir_server=info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.compact().init();
    } else {
        builder.json().flatten_event(true).with_current_span(false).init();
    }
}
