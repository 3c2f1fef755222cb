//! The report as plain text (the email's text part, and what a chat webhook shows) and its
//! headline figures as JSON (a webhook's payload).

use std::fmt::Write;

use crate::model::{Delta, Report};

fn figure(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.fract() == 0.0 => format!("{}{unit}", v as i64),
        Some(v) => format!("{v:.2}{unit}"),
    }
}

fn line(out: &mut String, label: &str, d: &Delta, unit: &str) {
    let change = match d.change {
        Some(c) => {
            let pct = d.change_percent.map(|p| format!(", {p:+.2}%")).unwrap_or_default();
            format!(
                " ({}{}{pct} vs {})",
                if c > 0.0 { "+" } else { "" },
                figure(Some(c), unit),
                figure(d.previous, unit)
            )
        }
        None => format!(" (day before: {})", figure(d.previous, unit)),
    };
    let _ = writeln!(out, "{label:<18} {}{change}", figure(d.value, unit));
}

/// The subject line of the report's messages.
pub fn subject(r: &Report) -> String {
    let scope = r.pipeline.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
    format!(
        "weir daily report {}{scope}: {} received, {} succeeded, {} rejected, {} failed",
        r.date, r.day.files.received, r.day.files.succeeded, r.day.files.rejected, r.day.files.failed
    )
}

/// The report in a few lines: the headline figures with their change, the top reasons, and
/// where the whole report is (`link`).
pub fn render_text(r: &Report, link: Option<&str>) -> String {
    let mut out = String::new();
    let scope = r.pipeline.as_deref().map(|p| format!(", pipeline {p}")).unwrap_or_default();
    let _ = writeln!(out, "weir daily report for {} (UTC{scope}), compared with {}", r.date, r.previous_date);
    out.push('\n');
    let x = &r.headline;
    line(&mut out, "Files received", &x.received, "");
    line(&mut out, "Succeeded", &x.succeeded, "");
    line(&mut out, "Rejected", &x.rejected, "");
    line(&mut out, "Failed", &x.failed, "");
    line(&mut out, "Success rate", &x.success_rate, "%");
    line(&mut out, "Rows valid", &x.rows_valid, "");
    line(&mut out, "Rows invalid", &x.rows_invalid, "");
    line(&mut out, "Duration p50", &x.duration_p50_ms, " ms");
    line(&mut out, "Duration p99", &x.duration_p99_ms, " ms");
    line(&mut out, "Dead letters", &x.dead_letters, "");
    if !r.day.rejection_reasons.is_empty() {
        out.push_str("\nTop rejection reasons:\n");
        for reason in r.day.rejection_reasons.iter().take(5) {
            let example = reason
                .examples
                .first()
                .map(|f| format!(" (e.g. {}/{})", f.bucket, f.key))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} x {}{example}", reason.count, reason.reason);
        }
    }
    if !r.day.row_errors.is_empty() {
        out.push_str("\nInvalid rows by field:\n");
        for reason in r.day.row_errors.iter().take(5) {
            let _ = writeln!(out, "  {} rows: {} ({} files)", reason.count, reason.reason, reason.files);
        }
    }
    if !r.day.alarm_changes.is_empty() {
        out.push_str("\nAlarm changes:\n");
        for c in &r.day.alarm_changes {
            let _ = writeln!(out, "  {} {}: {} -> {}", c.at.format("%H:%M"), c.alarm, c.from, c.to);
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "\nNote: {n}");
    }
    if let Some(link) = link {
        let _ = writeln!(out, "\nThe whole report: {link}");
    }
    out
}

/// The figures a webhook gets: the date, the headline with changes, and the link.
pub fn headline_json(r: &Report, link: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "report": "daily",
        "date": r.date,
        "pipeline": r.pipeline,
        "link": link,
        "headline": r.headline,
    })
}
