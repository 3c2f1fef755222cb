//! The daily report: what a day of files came to, compared with the day before.
//!
//! * [`model`] — the figures ([`Report`]), plain serde data: the JSON twin of the report is
//!   this type serialized, so the HTML and the JSON always say the same thing.
//! * [`collect`] — [`daily`] computes a [`Report`] from the ports: the day's job records read a
//!   page at a time ([`weir_ports::JobStore::list_created`], never all history), the job
//!   store's per-minute counters for the hourly throughput, the jobs' summary objects for the
//!   business aggregates and row errors, and the dead-letter queue. Every input is bounded
//!   ([`Limits`]); a cap reached is written in the report's notes.
//! * [`html`] — [`render_html`]: one self-contained document (inline CSS and SVG charts, no
//!   script, nothing fetched), light and dark, readable in an email client; every text that
//!   came from a user (keys, reasons, pipeline and group names) is escaped.
//! * [`text`] — [`render_text`], the plain-text part of the email, and the headline figures
//!   a webhook gets.
//!
//! Writing the report somewhere, keeping its history and telling people is the pipeline's
//! (`weir_pipeline::report`); this crate only reads.

pub mod collect;
pub mod html;
pub mod model;
mod svg;
pub mod text;

pub use collect::{daily, DailyInputs, Limits, ReportError};
pub use html::render_html;
pub use model::{AlarmChange, DayFigures, Delta, Headline, Report};
pub use text::{headline_json, render_text, subject};
