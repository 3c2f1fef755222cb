//! weir's processing core: one streaming pass over a CSV byte stream.
//!
//! A [`Plan`] is compiled once from a pipeline's configuration. [`process`] then reads a file
//! (any `std::io::Read`, never wholly in memory) and in a single pass checks its header against
//! the schema, validates and types every row, computes derived fields, writes valid rows as
//! NDJSON and invalid ones to an error report, and returns the [`weir_core::Summary`].
//! [`check_header`] reads only the header, for the `validate-schema` step.
//!
//! This crate knows nothing of queues, buckets or async: callers hand it byte streams.
//!
//! Memory is bounded by the input buffer (256 KiB, growing only for a record up to
//! `format.max_record_bytes`), two 64 KiB output chunks and the summary caps, whatever the file
//! size. The row loop allocates nothing for a valid row; `examples/gen_sales.rs` and
//! `examples/process_file.rs` generate and time a sales file of any size.
//!
//! Modules, one concern each: `reader` (CSV records with bounded memory and exact
//! positions), `header` (schema matching), `plan` (compiled configuration), `expr` (derived
//! field expressions), `validate` (typing a field), `ndjson` (output), `summary` (aggregates),
//! `process` (the pass that ties them together), `error`.

mod error;
mod expr;
mod header;
mod ndjson;
mod plan;
mod process;
mod reader;
mod summary;
mod validate;

pub use error::{ConfigError, ProcessError};
pub use header::HeaderCheck;
pub use plan::Plan;
pub use process::{check_header, process};
pub use summary::{NULL_GROUP, OTHER_GROUP};
