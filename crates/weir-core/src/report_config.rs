//! The `[report]` section: where the daily report is written, who is told, and when it is due.
//!
//! ```toml
//! [report]
//! bucket = "weir-reports"            # default: the output bucket
//! prefix = "reports/"                # reports/YYYY-MM-DD/daily_report.html and .json
//! daily_report_time_utc = "08:00"    # when the scheduled report runs (the seed's setting)
//! topics = ["alerts"]                # notification topics the report is published to
//! link_base_url = "https://weir.example.com"   # links in emails and webhooks; default: none
//! ```

use serde::{Deserialize, Serialize};

use crate::keys::validate_bucket;
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// The bucket reports go to; `None`: the output bucket.
    pub bucket: Option<String>,
    /// Key prefix of the reports: `<prefix>YYYY-MM-DD/daily_report.html`.
    pub prefix: String,
    /// `HH:MM` (UTC): when the day's report of the day before is due.
    pub daily_report_time_utc: String,
    /// Topics the report is published to (email gets the HTML report with a plain-text part,
    /// webhooks a link and the headline figures); empty: nobody is told.
    pub topics: Vec<String>,
    /// Where weir's dashboard is reached from the readers' side (`https://weir.example.com`):
    /// links in the messages open `<link_base_url>/#/reports/YYYY-MM-DD` on the dashboard.
    /// Without it the messages name the report's object (`s3://bucket/key`).
    pub link_base_url: Option<String>,
    /// At most this many job records of the day are read (a page at a time); a bigger day is
    /// reported from its first `max_jobs` jobs and says so. The counters-based figures are
    /// exact whatever the size.
    pub max_jobs: u64,
    /// At most this many job summaries are read for the business aggregates (one object
    /// each); beyond it, the aggregates say over how many files they were summed.
    pub max_summaries: u64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            bucket: None,
            prefix: "reports/".into(),
            daily_report_time_utc: "08:00".into(),
            topics: vec!["alerts".into()],
            link_base_url: None,
            max_jobs: 1_000_000,
            max_summaries: 20_000,
        }
    }
}

impl ReportConfig {
    /// The bucket reports are written to.
    pub fn bucket<'a>(&'a self, output_bucket: &'a str) -> &'a str {
        self.bucket.as_deref().unwrap_or(output_bucket)
    }

    /// `daily_report_time_utc` as (hour, minute), if it is a valid `HH:MM`.
    pub fn daily_time(&self) -> Option<(u32, u32)> {
        parse_hh_mm(&self.daily_report_time_utc)
    }

    /// Every problem, each at its `report.` path.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(b) = &self.bucket {
            if let Err(e) = validate_bucket(b) {
                problems.push(Problem::new("report.bucket", e.to_string()));
            }
        }
        let p = &self.prefix;
        if p.starts_with('/') || p.split('/').any(|seg| seg == "..") || p.contains('\\') || p.len() > 200 {
            problems.push(Problem::new(
                "report.prefix",
                "must be a relative key prefix such as \"reports/\" (no leading `/`, `..` or `\\`, at most 200 bytes)",
            ));
        } else if !p.is_empty() && !p.ends_with('/') {
            problems.push(Problem::new("report.prefix", format!("must end with `/` (\"{p}/\")")));
        }
        if self.daily_time().is_none() {
            problems.push(Problem::new(
                "report.daily_report_time_utc",
                format!(
                    "{:?} is not a time of day as HH:MM (00:00 to 23:59), e.g. \"08:00\"",
                    self.daily_report_time_utc
                ),
            ));
        }
        for (i, t) in self.topics.iter().enumerate() {
            if t.trim().is_empty() {
                problems.push(Problem::new(format!("report.topics[{i}]"), "empty topic name"));
            }
        }
        if let Some(u) = &self.link_base_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(char::is_whitespace) {
                problems.push(Problem::new("report.link_base_url", "must be an http:// or https:// URL"));
            }
        }
        if self.max_jobs == 0 {
            problems.push(Problem::new("report.max_jobs", "must be at least 1"));
        }
        problems
    }
}

fn parse_hh_mm(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        assert!(ReportConfig::default().validate().is_empty());
        assert_eq!(ReportConfig::default().daily_time(), Some((8, 0)));
        let bad = ReportConfig {
            bucket: Some("Bad_Bucket".into()),
            prefix: "reports".into(),
            daily_report_time_utc: "8:00".into(),
            topics: vec![" ".into()],
            link_base_url: Some("ftp://x".into()),
            max_jobs: 0,
            ..ReportConfig::default()
        };
        let paths: Vec<String> = bad.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "report.bucket",
                "report.prefix",
                "report.daily_report_time_utc",
                "report.topics[0]",
                "report.link_base_url",
                "report.max_jobs"
            ]
        );
        for t in ["24:00", "07:60", "0800", "ab:cd", "07:5", ""] {
            assert_eq!(parse_hh_mm(t), None, "{t}");
        }
        assert_eq!(parse_hh_mm("23:59"), Some((23, 59)));
        let dotdot = ReportConfig { prefix: "a/../b/".into(), ..ReportConfig::default() };
        assert_eq!(dotdot.validate()[0].path, "report.prefix");
    }
}
