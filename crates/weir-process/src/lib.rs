//! weir's processing core: one streaming pass over a CSV or JSON byte stream.
//!
//! A [`Plan`] is compiled once from a pipeline's configuration. [`process()`] then reads a file
//! (any `std::io::Read`, never wholly in memory; gzip/zstd and other text encodings decoded on
//! the way) and in a single pass checks its header against the schema, validates and types every
//! row, computes derived fields, writes valid rows as NDJSON, a JSON document or Parquet and
//! invalid ones to an error report, and returns the [`weir_core::Summary`]. [`check_header`]
//! reads only the header, for the `validate-schema` step.
//!
//! This crate knows nothing of queues, buckets or async: callers hand it byte streams.
//!
//! Memory is bounded by the input buffer (256 KiB, growing only for a record up to
//! `format.max_record_bytes`), the output chunks (64 KiB; one Parquet row group), the summary
//! caps and the `unique` sets, whatever the file size. The row loop allocates nothing for a valid
//! row of the common types; `bench/process.sh` measures it against DuckDB.
//!
//! Modules, one concern each, from the top down; a module uses only modules below it (no
//! cycles):
//!
//! - `process`: the entry points: open the input, pick the reader and the sink, run the pass.
//! - `parallel`: one CSV file on N threads, cut at record boundaries, merged in file order.
//! - `pass`: the row loop (validate, derive, write, summarise) and the error report.
//! - `binding`: the plan bound to one file's header: what each column is, the output layout.
//! - `formats`: bytes to records: `csv`, `json` (flattened onto the columns) and transcoding,
//!   both readers on one `refill` buffer. `output`: where valid rows go (`ndjson`, `json`,
//!   `parquet`, and typed `rows` for a warehouse load beside them). `summary`: the aggregates, within their caps.
//! - `error` (why a file fails) and `header` (matching a header with the schema).
//! - `plan`: the configuration compiled once, and `ConfigError` for what is wrong with it;
//!   `expr`: derived-field expressions; `schema`: the column language (`types` to type a field,
//!   rules, defaults, `unique` sets).
//! - Leaves: `slot` (a row's typed values), `json_text` (values as JSON text), `swar` (eight
//!   bytes at a time), `decompress` (gzip/zstd with a size ceiling).

mod binding;
mod decompress;
mod error;
mod expr;
mod formats;
mod header;
mod json_text;
mod output;
mod parallel;
mod pass;
mod plan;
mod process;
mod schema;
mod slot;
mod summary;
mod swar;

pub use error::ProcessError;
pub use header::HeaderCheck;
pub use output::rows::EmitRows;
pub use plan::{ConfigError, Plan};
pub use process::{
    check_header, check_header_named, check_header_with, process, process_many, process_with, Options,
};
pub use summary::{NULL_GROUP, OTHER_GROUP};

/// The parse, validate and serialize loops, exposed for the criterion benches (not an API).
#[doc(hidden)]
pub mod bench {
    pub use crate::formats::csv::bench_parse;
    pub use crate::json_text::bench_write_str;
    pub use crate::schema::types::bench_validate;
}
