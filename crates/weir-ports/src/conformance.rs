//! Conformance suites: behaviour every adapter of a port must show, the same way.
//!
//! Adapters call these from their own tests (`weir_ports::conformance::queue::run_all(...)`),
//! with the `conformance` feature of this crate on in their dev-dependencies: the suites are
//! not part of a production build. The in-memory adapters ([`crate::memory`]) pass them too.

pub mod jobs;
pub mod objects;
pub mod queue;
pub mod records;
