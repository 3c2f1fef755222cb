//! The summary a job writes next to its results, and `weir process` prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Filled in by whoever knows the source (the pipeline, or `weir process`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// Data rows (the header is not a row).
    pub total_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    /// `valid_rows / total_rows` in percent, rounded to 2 decimals; 100 for an empty file.
    pub success_rate: f64,
    /// Stats over the valid rows, per numeric column and numeric derived field.
    pub numeric: BTreeMap<String, NumericStats>,
    /// Value counts per configured categorical column, over the valid rows.
    pub categorical: BTreeMap<String, CategoricalCounts>,
    /// Configured group-by aggregates: group-by field → group value → stats.
    pub group_by: BTreeMap<String, BTreeMap<String, GroupStats>>,
    /// Invalid rows per field that failed (a row can count under several fields).
    pub errors_by_field: BTreeMap<String, u64>,
    /// Invalid rows described in the error report (at most the configured maximum).
    pub errors_reported: u64,
    /// Distinct values per configured `summary.unique` field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unique: BTreeMap<String, UniqueCount>,
    /// Smallest and largest value per configured `summary.range` field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ranges: BTreeMap<String, ValueRange>,
    /// Things the reader should know about the figures (a cap reached, an estimate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Every result object the job wrote, one per format (filled in by the pipeline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ResultObject>,
}

/// One result object of a job: its format and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResultObject {
    /// `ndjson`, `json` or `parquet`.
    pub format: String,
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UniqueCount {
    pub count: u64,
    /// False when the count is a HyperLogLog estimate (more values than were remembered).
    pub exact: bool,
}

/// The smallest and largest value as text, in the column's own order (numbers numerically,
/// dates and datetimes chronologically, text by bytes); absent when no valid row had one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ValueRange {
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub avg: f64,
}

impl Default for NumericStats {
    fn default() -> Self {
        NumericStats { count: 0, min: 0.0, max: 0.0, sum: 0.0, avg: 0.0 }
    }
}

impl NumericStats {
    pub fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
    }

    /// Computes `avg` and rounds the floating sums for display (1e-9), once, at the end.
    pub fn finish(&mut self) {
        self.avg = if self.count == 0 { 0.0 } else { round_to(self.sum / self.count as f64, 9) };
        self.sum = round_to(self.sum, 9);
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CategoricalCounts {
    /// Distinct values seen (exact unless `distinct_capped`).
    pub distinct: u64,
    /// True when more distinct values arrived than were counted; `top` is then approximate.
    pub distinct_capped: bool,
    /// Most frequent values first; ties by value.
    pub top: Vec<ValueCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupStats {
    pub count: u64,
    #[serde(flatten)]
    pub fields: BTreeMap<String, NumericStats>,
}

/// The success rate in percent with two decimals, as the seeds report it.
pub fn success_rate(valid: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        round_to(valid as f64 * 100.0 / total as f64, 2)
    }
}

pub fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    let r = (v * f).round() / f;
    if r.is_finite() {
        r
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_rates() {
        let mut s = NumericStats::default();
        for v in [0.1, 0.2, 3.0] {
            s.add(v);
        }
        s.finish();
        assert_eq!((s.count, s.min, s.max, s.sum), (3, 0.1, 3.0, 3.3));
        assert_eq!(s.avg, 1.1);
        assert_eq!(success_rate(2, 3), 66.67);
        assert_eq!(success_rate(0, 0), 100.0);
    }
}
