//! The daily report as a piece of work: compute it ([`weir_report::daily`]), write its HTML and
//! its JSON twin to the reports bucket, and publish it to the configured topics. The same
//! function serves `weir report daily`, the scheduler of `weir run` and the Lambda function's
//! scheduled event, on either backend (it only uses the ports).
//!
//! Where reports go: `<report.prefix>YYYY-MM-DD/daily_report.html` and `daily_report.json` in
//! `report.bucket` (default: the output bucket); a report restricted to one pipeline goes one
//! folder down, `<prefix>YYYY-MM-DD/<pipeline>/`. The HTML is written first, so a JSON twin
//! that is there means both are.
//!
//! The report history is those objects: [`list_reports`] lists the JSON twins under the
//! prefix (a listing per year, so the jobs' own `reports/<bucket>/...` summaries that share the
//! default prefix are never walked), and [`read_report`] reads one back. Keeping reports for
//! a while and then removing them is the retention rules' work on that prefix, as for any
//! object.

use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use weir_core::Config;
use weir_ports::{Metadata, Notification, PortError, Ports, PutBody, PutItem};
pub use weir_report::{AlarmChange, Headline, Report};

/// The alarm history `weir run` keeps in its data dir (the last changes of state, oldest
/// first), which an embedded report lists; written by weir-server's alarm monitor.
pub const ALARM_HISTORY_FILE: &str = "alarm_history.json";

/// The alarm history of a data dir (empty before the first change).
pub fn read_alarm_history(data_dir: &std::path::Path) -> std::io::Result<Vec<AlarmChange>> {
    match std::fs::read(data_dir.join(ALARM_HISTORY_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes (or, with `dry_run`, only lists) the reports of the history dated before `cutoff`,
/// a few at a time; returns the reports that went. Their HTML goes first, then the JSON twin
/// that makes them part of the history.
pub async fn expire_history(
    ports: &Ports,
    config: &Config,
    cutoff: NaiveDate,
    dry_run: bool,
) -> Result<Vec<ReportEntry>, ReportRunError> {
    let old: Vec<ReportEntry> =
        list_reports(ports, config, usize::MAX).await?.into_iter().filter(|r| r.date < cutoff).collect();
    if !dry_run {
        for r in &old {
            for key in [&r.html_key, &r.json_key] {
                ports.objects.delete(&r.bucket, key).await.map_err(|source| ReportRunError::Store {
                    what: format!("removing {}/{key}", r.bucket),
                    source,
                })?;
            }
        }
    }
    Ok(old)
}

/// The file names of a report in its folder.
pub const HTML_NAME: &str = "daily_report.html";
pub const JSON_NAME: &str = "daily_report.json";

/// A stored report JSON twin larger than this is not read back (a report is tens of KiB).
const MAX_REPORT_BYTES: u64 = 16 << 20;

/// How many years back [`list_reports`] looks.
const HISTORY_YEARS: i32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ReportRunError {
    #[error("no pipeline named {0:?} in the configuration")]
    UnknownPipeline(String),
    #[error(transparent)]
    Figures(#[from] weir_report::ReportError),
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: PortError,
    },
}

/// What else a run takes besides the ports, the config and the date.
#[derive(Debug, Clone, Default)]
pub struct DailyOptions {
    /// Only this pipeline's files.
    pub pipeline: Option<String>,
    /// The alarms' recent changes of state, where the backend keeps them (embedded: the data
    /// dir's alarm history); `None` says the report cannot tell.
    pub alarm_changes: Option<Vec<AlarmChange>>,
    /// Write the report but publish nothing.
    pub quiet: bool,
}

/// A report written: where it is and what it said. What `weir report daily` prints and the
/// scheduler records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub date: NaiveDate,
    pub pipeline: Option<String>,
    pub bucket: String,
    pub html_key: String,
    pub json_key: String,
    pub generated_at: DateTime<Utc>,
    /// Where readers are sent: the dashboard's `<report.link_base_url>/#/reports/<date>`, else
    /// `s3://bucket/key`.
    pub link: String,
    pub headline: Headline,
    /// Topics the report was published to.
    pub published_to: Vec<String>,
}

/// The folder of a report: `<prefix>YYYY-MM-DD/` or `<prefix>YYYY-MM-DD/<pipeline>/`.
pub fn report_folder(config: &Config, date: NaiveDate, pipeline: Option<&str>) -> String {
    match pipeline {
        Some(p) => format!("{}{date}/{}/", config.report.prefix, folder_name(p)),
        None => format!("{}{date}/", config.report.prefix),
    }
}

/// A pipeline name as one key segment (names are free text in the config).
fn folder_name(pipeline: &str) -> String {
    let name: String = pipeline
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .take(100)
        .collect();
    if name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name
    }
}

/// Where the report of `date` is linked from messages.
pub fn report_link(config: &Config, date: NaiveDate, pipeline: Option<&str>) -> String {
    let bucket = config.report.bucket(&config.buckets.output);
    match &config.report.link_base_url {
        // The dashboard opens the report once signed in (a link from an email is a
        // cross-site navigation, which does not carry the SameSite=Strict session).
        Some(base) => {
            let tail = pipeline.map(|p| format!("/{}", folder_name(p))).unwrap_or_default();
            format!("{}/#/reports/{date}{tail}", base.trim_end_matches('/'))
        }
        None => format!("s3://{bucket}/{}{HTML_NAME}", report_folder(config, date, pipeline)),
    }
}

/// Computes the daily report of `date` (UTC), writes it to the reports bucket and publishes it
/// to `report.topics`.
pub async fn run_daily(
    ports: &Ports,
    config: &Config,
    date: NaiveDate,
    options: &DailyOptions,
) -> Result<ReportRecord, ReportRunError> {
    let pipeline = options.pipeline.as_deref();
    if let Some(p) = pipeline {
        if !config.pipelines.iter().any(|c| c.name == p) {
            return Err(ReportRunError::UnknownPipeline(p.to_owned()));
        }
    }
    let inputs = weir_report::DailyInputs {
        config,
        jobs: ports.jobs.as_ref(),
        objects: ports.objects.as_ref(),
        queue: ports.queue.as_ref(),
        alarm_changes: options.alarm_changes.as_deref(),
        limits: weir_report::Limits::from_config(config),
    };
    let report = weir_report::daily(&inputs, date, pipeline, Utc::now()).await?;
    let html = weir_report::render_html(&report);
    let json = serde_json::to_vec_pretty(&report).expect("a report serializes");
    let bucket = config.report.bucket(&config.buckets.output).to_owned();
    let folder = report_folder(config, date, pipeline);
    let (html_key, json_key) = (format!("{folder}{HTML_NAME}"), format!("{folder}{JSON_NAME}"));
    let store = |what: String| move |source| ReportRunError::Store { what, source };
    ports
        .objects
        .create_bucket(&bucket)
        .await
        .map_err(store(format!("creating the reports bucket {bucket}")))?;
    let metadata = |kind: &str| {
        Metadata::from([
            ("weir-report".to_string(), "daily".to_string()),
            ("weir-report-date".to_string(), date.to_string()),
            ("weir-content".to_string(), kind.to_string()),
        ])
    };
    ports
        .objects
        .put_all(
            &bucket,
            vec![
                PutItem {
                    key: html_key.clone(),
                    body: PutBody::Bytes(Bytes::from(html.clone())),
                    metadata: metadata("html"),
                },
                PutItem {
                    key: json_key.clone(),
                    body: PutBody::Bytes(Bytes::from(json)),
                    metadata: metadata("json"),
                },
            ],
        )
        .await
        .map_err(store(format!("writing the report to {bucket}/{folder}")))?;
    let link = report_link(config, date, pipeline);
    let mut published_to = Vec::new();
    if !options.quiet {
        for topic in &config.report.topics {
            let n = notification(&report, topic, &link, &html);
            match ports.notifier.publish(&n).await {
                Ok(()) => published_to.push(topic.clone()),
                Err(e) => tracing::warn!(topic = %topic, error = %e, "could not publish the daily report"),
            }
        }
    }
    tracing::info!(date = %date, bucket = %bucket, key = %html_key, "daily report written");
    Ok(ReportRecord {
        date,
        pipeline: pipeline.map(str::to_owned),
        bucket,
        html_key,
        json_key,
        generated_at: report.generated_at,
        link,
        headline: report.headline.clone(),
        published_to,
    })
}

/// The report's message on one topic: the HTML document for email (with the text as its
/// plain part), the text and the headline figures with the link for webhooks.
pub fn notification(report: &Report, topic: &str, link: &str, html: &str) -> Notification {
    let mut attributes = std::collections::BTreeMap::from([
        ("status".to_string(), "report".to_string()),
        ("report".to_string(), "daily".to_string()),
        ("date".to_string(), report.date.to_string()),
        (
            "id".to_string(),
            format!(
                "report:daily:{}:{}:{}",
                report.date,
                report.pipeline.as_deref().unwrap_or("*"),
                report.generated_at.timestamp_millis()
            ),
        ),
    ]);
    if let Some(p) = &report.pipeline {
        attributes.insert("pipeline".into(), p.clone());
    }
    Notification {
        topic: topic.to_owned(),
        subject: Notification::clamp_subject(&weir_report::subject(report)),
        text: weir_report::render_text(report, Some(link)),
        attributes,
        payload: weir_report::headline_json(report, Some(link)),
        html: Some(html.to_owned()),
    }
}

/// One report in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportEntry {
    pub date: NaiveDate,
    pub pipeline: Option<String>,
    pub bucket: String,
    pub html_key: String,
    pub json_key: String,
    /// When its JSON twin was written.
    pub written_at: DateTime<Utc>,
}

/// The reports in the history, newest date first, at most `limit`.
pub async fn list_reports(
    ports: &Ports,
    config: &Config,
    limit: usize,
) -> Result<Vec<ReportEntry>, ReportRunError> {
    let bucket = config.report.bucket(&config.buckets.output).to_owned();
    let prefix = &config.report.prefix;
    let this_year = Utc::now().year();
    let mut out = Vec::new();
    for year in (this_year - HISTORY_YEARS..=this_year + 1).rev() {
        let listed = match ports.objects.list(&bucket, &format!("{prefix}{year:04}-")).await {
            Ok(l) => l,
            Err(e) if e.is_not_found() => return Ok(out),
            Err(e) => {
                return Err(ReportRunError::Store { what: format!("listing reports in {bucket}"), source: e })
            }
        };
        let mut of_year: Vec<ReportEntry> = listed
            .into_iter()
            .filter_map(|o| {
                let (date, pipeline) = parse_json_key(o.key.strip_prefix(prefix.as_str())?)?;
                let folder = o.key.strip_suffix(JSON_NAME)?;
                Some(ReportEntry {
                    date,
                    pipeline,
                    bucket: bucket.clone(),
                    html_key: format!("{folder}{HTML_NAME}"),
                    json_key: o.key.clone(),
                    written_at: o.last_modified,
                })
            })
            .collect();
        of_year.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.pipeline.cmp(&b.pipeline)));
        out.extend(of_year);
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}

/// `YYYY-MM-DD/daily_report.json` or `YYYY-MM-DD/<pipeline>/daily_report.json`.
fn parse_json_key(rest: &str) -> Option<(NaiveDate, Option<String>)> {
    let mut parts = rest.split('/');
    let date = NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
    match (parts.next()?, parts.next(), parts.next()) {
        (JSON_NAME, None, None) => Some((date, None)),
        (pipeline, Some(JSON_NAME), None) if !pipeline.is_empty() => Some((date, Some(pipeline.to_owned()))),
        _ => None,
    }
}

/// Which of a stored report's two documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportDocument {
    Html,
    Json,
}

/// The stored document of the report of `date` (and `pipeline`), `None` if there is none.
pub async fn read_report(
    ports: &Ports,
    config: &Config,
    date: NaiveDate,
    pipeline: Option<&str>,
    document: ReportDocument,
) -> Result<Option<Vec<u8>>, ReportRunError> {
    let bucket = config.report.bucket(&config.buckets.output);
    let name = match document {
        ReportDocument::Html => HTML_NAME,
        ReportDocument::Json => JSON_NAME,
    };
    let key = format!("{}{name}", report_folder(config, date, pipeline));
    let store = |source| ReportRunError::Store { what: format!("reading {bucket}/{key}"), source };
    let (info, mut stream) = match ports.objects.get(bucket, &key).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(store(e)),
    };
    if info.size > MAX_REPORT_BYTES {
        return Err(store(PortError::Invalid(format!("{} bytes, more than a report holds", info.size))));
    }
    let mut bytes = Vec::with_capacity(info.size as usize);
    while let Some(chunk) = stream.try_next().await.map_err(store)? {
        if (bytes.len() + chunk.len()) as u64 > MAX_REPORT_BYTES {
            return Err(store(PortError::Invalid("the object grew past what a report holds".into())));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keys_parse_back_and_names_stay_one_segment() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(parse_json_key("2026-03-01/daily_report.json"), Some((d, None)));
        assert_eq!(parse_json_key("2026-03-01/sales/daily_report.json"), Some((d, Some("sales".into()))));
        assert_eq!(parse_json_key("2026-03-01/daily_report.html"), None);
        assert_eq!(parse_json_key("2026-03-01/a/b/daily_report.json"), None);
        assert_eq!(parse_json_key("2026-13-01/daily_report.json"), None);
        assert_eq!(folder_name("a/../b c"), "a_.._b_c");
        assert_eq!(folder_name(".."), "_..");
        let config = Config::default();
        assert_eq!(report_folder(&config, d, Some("sales")), "reports/2026-03-01/sales/");
        assert_eq!(report_link(&config, d, None), "s3://weir-output/reports/2026-03-01/daily_report.html");
    }
}
