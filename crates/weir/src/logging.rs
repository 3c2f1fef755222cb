//! Structured logs: human-readable on a terminal, one JSON object per line otherwise.
//!
//! No level prints a secret. weir's own events never carry one (secrets live in
//! `weir_server::credentials::Secret`, which prints `***`); the libraries below are held to
//! `info` whatever `-v` or `WEIR_LOG` asks, because their debug and trace output does:
//! s3s logs every request with its `Authorization` header and presigned query string and, when a
//! signature does not match, the signature it expected, which is all it takes to forge the
//! request.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Targets whose events below `info` can carry credentials.
const SECRET_BEARING: &[&str] = &["s3s"];

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "weir=info,weir_pipeline=info,weir_backends=info,weir_server=info,weir_aws=warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let registry = tracing_subscriber::registry().with(filter).with(never_secrets());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        registry.with(fmt.compact()).init();
    } else {
        registry.with(fmt.json().flatten_event(true).with_current_span(false)).init();
    }
}

/// A filter applied on top of any `WEIR_LOG`: everything, except [`SECRET_BEARING`] targets
/// below `info`.
fn never_secrets() -> Targets {
    SECRET_BEARING.iter().fold(Targets::new().with_default(LevelFilter::TRACE), |t, target| {
        t.with_target(*target, LevelFilter::INFO)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bearing_targets_stay_at_info() {
        let f = never_secrets();
        assert!(!f.would_enable("s3s::ops::signature", &tracing::Level::DEBUG));
        assert!(!f.would_enable("s3s", &tracing::Level::TRACE));
        assert!(f.would_enable("s3s::ops", &tracing::Level::ERROR));
        assert!(f.would_enable("weir_server::s3", &tracing::Level::TRACE));
    }
}
