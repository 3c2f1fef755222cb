//! Conformance suites: behaviour every adapter of a port must show.
//!
//! Adapters call these from their own tests (`weir_ports::conformance::queue::run_all(...)`).

pub mod jobs;
pub mod queue;
