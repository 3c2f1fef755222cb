//! The report as one HTML document that works where reports are read: in an email client, in
//! a browser from the dashboard, and opened from disk after a download.
//!
//! Self-contained: the CSS is inline (one `<style>` plus the few attributes an email client
//! needs when it drops the style), charts are inline SVG, there is no script and nothing is
//! fetched (no font, no image, no link to a stylesheet). Tables carry the figures, so the
//! report reads well without the CSS too. `prefers-color-scheme: dark` switches the colours;
//! `<meta name="color-scheme">` lets clients that know it do the same. Every text that came
//! from outside weir (object keys, reasons, pipeline, group and alarm names) goes through
//! [`escape`].

use std::fmt::Write;

use crate::model::*;
use crate::svg::{stacked_bars, Series};

pub use weir_core::html::escape;

const STYLE: &str = r#"
:root { color-scheme: light dark; }
body { margin: 0; padding: 24px; background: #f6f7f9; color: #1d2330; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.sub, .muted { color: #5c6575; }
.card { background: #ffffff; border: 1px solid #dde1e7; border-radius: 8px; padding: 14px 16px; margin: 10px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e6e9ee; vertical-align: top; }
th { font-weight: 600; color: #5c6575; font-size: 12px; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.tiles td { border: none; padding: 8px 10px; width: 20%; }
.tile-v { font-size: 22px; font-weight: 600; }
.tile-l { font-size: 12px; color: #5c6575; }
.up { color: #1f7a43; } .down { color: #b3261e; } .flat { color: #5c6575; }
code, .key { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.note { background: #fff7e0; border-color: #ecd9a0; }
@media (prefers-color-scheme: dark) {
  body { background: #12151b; color: #e3e6ec; }
  .card { background: #1b2029; border-color: #2c3340; }
  th, td { border-bottom-color: #2c3340; }
  .sub, .muted, th, .tile-l, .flat { color: #9aa3b2; }
  .up { color: #5fd08a; } .down { color: #ff8a80; }
  .note { background: #2d2614; border-color: #5a4a1f; }
}
"#;

const GREEN: &str = "#2e9d5b";
const AMBER: &str = "#d99a1e";
const RED: &str = "#d64545";
const BLUE: &str = "#3a7bd5";

/// The whole document.
pub fn render_html(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let scope = r.pipeline.as_deref().map(|p| format!(" · pipeline {}", escape(p))).unwrap_or_default();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><meta name="supported-color-schemes" content="light dark"><title>weir daily report {date}{scope}</title><style>{STYLE}</style></head><body data-date="{date}"><main>"#,
        date = r.date
    );
    let _ = write!(
        h,
        r#"<h1>Daily report · {date}{scope}</h1><p class="sub">Files received on {date} (UTC), compared with {prev}. Generated {gen} UTC by weir.</p>"#,
        date = r.date,
        prev = r.previous_date,
        gen = r.generated_at.format("%Y-%m-%d %H:%M")
    );
    headline(&mut h, r);
    charts(&mut h, r);
    groups(&mut h, "pipelines", "Per pipeline", "Pipeline", &r.day.pipelines, &r.previous.pipelines);
    aggregates(&mut h, r);
    reasons(
        &mut h,
        "rejections",
        "Top rejection reasons",
        "Reason",
        "Files",
        &r.day.rejection_reasons,
        "No file was rejected or failed.",
    );
    reasons(
        &mut h,
        "row-errors",
        "Top row errors (invalid rows by field)",
        "Field",
        "Rows",
        &r.day.row_errors,
        "No invalid rows.",
    );
    files(&mut h, "slowest", "Slowest files", &r.day.slowest);
    files(&mut h, "largest", "Largest files", &r.day.largest);
    groups(&mut h, "prefixes", "Per source prefix", "Prefix", &r.day.prefixes, &r.previous.prefixes);
    incidents(&mut h, r);
    if !r.notes.is_empty() {
        h.push_str(r#"<div class="card note" id="notes"><strong>Notes</strong><ul>"#);
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></div>");
    }
    let _ = write!(
        h,
        r#"<p class="muted">{} job records and {} summaries read for {}; the hourly chart is the job store's counters of files finished per hour.</p></main></body></html>"#,
        r.day.jobs_read, r.day.summaries_read, r.date
    );
    h
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        group_thousands(v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn group_thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A figure with its unit, or an em dash when there is none.
fn shown(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{}{unit}", number(v)))
}

/// How the figure moved: `+3 (+50%) vs 6`, coloured by whether the move is good news.
fn delta_html(d: &Delta, unit: &str, higher_is_better: Option<bool>) -> String {
    let Some(change) = d.change else {
        return format!(r#"<span class="flat">vs {} the day before</span>"#, shown(d.previous, unit));
    };
    let class = match (change.partial_cmp(&0.0), higher_is_better) {
        (Some(std::cmp::Ordering::Equal), _) | (_, None) => "flat",
        (Some(std::cmp::Ordering::Greater), Some(true)) | (Some(std::cmp::Ordering::Less), Some(false)) => {
            "up"
        }
        _ => "down",
    };
    let sign = if change > 0.0 { "+" } else { "" };
    let pct = d
        .change_percent
        .map(|p| format!(" ({}{}%)", if p > 0.0 { "+" } else { "" }, number(p)))
        .unwrap_or_default();
    format!(
        r#"<span class="{class}" data-change="{change}">{sign}{}{unit}{pct}</span> <span class="flat">vs {}</span>"#,
        number(change),
        shown(d.previous, unit)
    )
}

fn headline(h: &mut String, r: &Report) {
    let x = &r.headline;
    let tiles: [(&str, &str, &Delta, &str, Option<bool>); 10] = [
        ("received", "Files received", &x.received, "", None),
        ("succeeded", "Succeeded", &x.succeeded, "", Some(true)),
        ("rejected", "Rejected", &x.rejected, "", Some(false)),
        ("failed", "Failed", &x.failed, "", Some(false)),
        ("success_rate", "Success rate", &x.success_rate, "%", Some(true)),
        ("rows_valid", "Rows valid", &x.rows_valid, "", None),
        ("rows_invalid", "Rows invalid", &x.rows_invalid, "", Some(false)),
        ("duration_p50_ms", "Job duration p50", &x.duration_p50_ms, " ms", Some(false)),
        ("duration_p99_ms", "Job duration p99", &x.duration_p99_ms, " ms", Some(false)),
        ("dead_letters", "Dead letters", &x.dead_letters, "", Some(false)),
    ];
    h.push_str(r#"<div class="card" id="headline"><table class="tiles" role="presentation">"#);
    for row in tiles.chunks(5) {
        h.push_str("<tr>");
        for (id, label, d, unit, better) in row {
            let _ = write!(
                h,
                r#"<td data-figure="{id}"><div class="tile-l">{label}</div><div class="tile-v">{v}</div><div class="tile-l">{delta}</div></td>"#,
                v = shown(d.value, unit),
                delta = delta_html(d, unit, *better)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></div>");
}

fn charts(h: &mut String, r: &Report) {
    let labels: Vec<String> = r.day.hourly.iter().map(|x| format!("{:02}h", x.hour)).collect();
    let col = |f: fn(&Hour) -> u64| r.day.hourly.iter().map(f).collect::<Vec<u64>>();
    let throughput = stacked_bars(
        "chart-throughput",
        "Files finished per hour (UTC)",
        &labels,
        &[
            Series { name: "succeeded", class: "s-ok", color: GREEN, values: col(|x| x.succeeded) },
            Series { name: "rejected", class: "s-rejected", color: AMBER, values: col(|x| x.rejected) },
            Series { name: "failed", class: "s-failed", color: RED, values: col(|x| x.failed) },
        ],
    );
    let rows = stacked_bars(
        "chart-rows",
        "Rows valid and invalid per hour (UTC)",
        &labels,
        &[
            Series { name: "valid rows", class: "s-valid", color: BLUE, values: col(|x| x.rows_valid) },
            Series { name: "invalid rows", class: "s-invalid", color: RED, values: col(|x| x.rows_invalid) },
        ],
    );
    let _ = write!(
        h,
        r#"<h2>Throughput by hour</h2><div class="card">{throughput}</div><h2>Valid and invalid rows by hour</h2><div class="card">{rows}</div>"#
    );
}

fn rate(v: Option<f64>) -> String {
    shown(v, "%")
}

fn groups(h: &mut String, id: &str, title: &str, what: &str, day: &[GroupFigures], before: &[GroupFigures]) {
    let _ = write!(h, r#"<h2>{title}</h2><div class="card" id="{id}">"#);
    if day.is_empty() {
        h.push_str(r#"<p class="muted">No files.</p></div>"#);
        return;
    }
    let _ = write!(
        h,
        r#"<table><thead><tr><th>{what}</th><th class="n">Received</th><th class="n">Succeeded</th><th class="n">Rejected</th><th class="n">Failed</th><th class="n">Success rate</th><th class="n">Rows valid</th><th class="n">Rows invalid</th><th class="n">Received the day before</th></tr></thead><tbody>"#
    );
    for g in day {
        let prev = before.iter().find(|p| p.name == g.name).map_or(0, |p| p.files.received);
        let _ = write!(
            h,
            r#"<tr data-name="{name}"><td class="key">{name}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            number(g.files.received as f64),
            number(g.files.succeeded as f64),
            number(g.files.rejected as f64),
            number(g.files.failed as f64),
            rate(g.success_rate),
            number(g.rows.valid as f64),
            number(g.rows.invalid as f64),
            number(prev as f64),
            name = escape(&g.name)
        );
    }
    h.push_str("</tbody></table></div>");
}

fn aggregates(h: &mut String, r: &Report) {
    if r.day.aggregates.is_empty() && r.day.totals.is_empty() {
        return;
    }
    h.push_str(r#"<h2>Business figures</h2><div id="aggregates">"#);
    for t in &r.day.totals {
        let _ = write!(
            h,
            r#"<div class="card" data-pipeline="{p}"><h3>{p}: totals over {files} succeeded files</h3><table><thead><tr><th>Field</th><th class="n">Values</th><th class="n">Sum</th><th class="n">Sum the day before</th></tr></thead><tbody>"#,
            p = escape(&t.pipeline),
            files = t.files
        );
        let before = r.previous.totals.iter().find(|b| b.pipeline == t.pipeline);
        for (field, v) in &t.fields {
            let prev = before.and_then(|b| b.fields.get(field)).map(|f| f.sum);
            let _ = write!(
                h,
                r#"<tr data-field="{f}"><td class="key">{f}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                number(v.count as f64),
                number(v.sum),
                shown(prev, ""),
                f = escape(field)
            );
        }
        h.push_str("</tbody></table></div>");
    }
    for a in &r.day.aggregates {
        let fields: Vec<&String> = {
            let mut f: Vec<&String> =
                a.groups.iter().chain(a.other.iter()).flat_map(|g| g.sums.keys()).collect();
            f.sort();
            f.dedup();
            f
        };
        let _ = write!(
            h,
            r#"<div class="card" data-pipeline="{p}" data-by="{by}"><h3>{p}: per {by} ({files} files)</h3><table><thead><tr><th>{by}</th><th class="n">Rows</th>"#,
            p = escape(&a.pipeline),
            by = escape(&a.by),
            files = a.files
        );
        for f in &fields {
            let _ = write!(h, r#"<th class="n">{}</th>"#, escape(f));
        }
        h.push_str("</tr></thead><tbody>");
        for g in a.groups.iter().chain(a.other.iter()) {
            let _ = write!(
                h,
                r#"<tr data-group="{v}"><td class="key">{v}</td><td class="n">{}</td>"#,
                number(g.rows as f64),
                v = escape(&g.value)
            );
            for f in &fields {
                let _ = write!(h, r#"<td class="n">{}</td>"#, shown(g.sums.get(*f).copied(), ""));
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table></div>");
    }
    h.push_str("</div>");
}

fn examples(list: &[FileRef]) -> String {
    list.iter()
        .map(|f| {
            format!(
                r#"<span class="key" title="{id}">{b}/{k}</span>"#,
                id = escape(&f.job_id),
                b = escape(&f.bucket),
                k = escape(&f.key)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// A table of reasons; `unit` names what `count` counts, and when it counts rows a column
/// says in how many files.
fn reasons(h: &mut String, id: &str, title: &str, what: &str, unit: &str, list: &[Reason], empty: &str) {
    let per_file = unit != "Files";
    let _ = write!(h, r#"<h2>{title}</h2><div class="card" id="{id}">"#);
    if list.is_empty() {
        let _ = write!(h, r#"<p class="muted">{empty}</p></div>"#);
        return;
    }
    let files_th = if per_file { r#"<th class="n">Files</th>"# } else { "" };
    let _ = write!(
        h,
        r#"<table><thead><tr><th>{what}</th><th class="n">{unit}</th>{files_th}<th>Examples</th></tr></thead><tbody>"#
    );
    for r in list {
        let files_td = if per_file {
            format!(r#"<td class="n">{}</td>"#, number(r.files as f64))
        } else {
            String::new()
        };
        let _ = write!(
            h,
            r#"<tr data-count="{c}"><td>{reason}</td><td class="n">{}</td>{files_td}<td>{}</td></tr>"#,
            number(r.count as f64),
            examples(&r.examples),
            c = r.count,
            reason = escape(&r.reason)
        );
    }
    h.push_str("</tbody></table></div>");
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn files(h: &mut String, id: &str, title: &str, list: &[FileRef]) {
    let _ = write!(h, r#"<h2>{title}</h2><div class="card" id="{id}">"#);
    if list.is_empty() {
        h.push_str(r#"<p class="muted">No files.</p></div>"#);
        return;
    }
    h.push_str(r#"<table><thead><tr><th>File</th><th>Pipeline</th><th>Status</th><th class="n">Size</th><th class="n">Duration</th></tr></thead><tbody>"#);
    for f in list {
        let _ = write!(
            h,
            r#"<tr><td class="key" title="{id}">{b}/{k}</td><td>{p}</td><td>{s}</td><td class="n">{size}</td><td class="n">{d}</td></tr>"#,
            id = escape(&f.job_id),
            b = escape(&f.bucket),
            k = escape(&f.key),
            p = escape(f.pipeline.as_deref().unwrap_or("—")),
            s = escape(&f.status),
            size = bytes(f.size),
            d = shown(f.duration_ms.map(|d| d as f64), " ms")
        );
    }
    h.push_str("</tbody></table></div>");
}

fn incidents(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        r#"<h2>Dead letters and alarms</h2><div class="card" id="dead-letters"><p><strong>{}</strong> messages reached the dead-letter queue on {} ({} the day before).</p>"#,
        r.day.dead_letters, r.date, r.previous.dead_letters
    );
    if !r.day.dead_letter_examples.is_empty() {
        h.push_str(r#"<table><thead><tr><th>At (UTC)</th><th>Object</th><th class="n">Receives</th><th>Message</th></tr></thead><tbody>"#);
        for d in &r.day.dead_letter_examples {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td class="key">{}</td><td class="n">{}</td><td class="key">{}</td></tr>"#,
                d.dead_lettered_at.format("%H:%M:%S"),
                escape(d.object.as_deref().unwrap_or("—")),
                d.receive_count,
                escape(&d.message_id)
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str(r#"</div><div class="card" id="alarm-changes">"#);
    if r.day.alarm_changes.is_empty() {
        h.push_str(r#"<p class="muted">No alarm changed state.</p>"#);
    } else {
        h.push_str(r#"<table><thead><tr><th>At (UTC)</th><th>Alarm</th><th>Change</th><th>Reason</th></tr></thead><tbody>"#);
        for c in &r.day.alarm_changes {
            let _ = write!(
                h,
                r#"<tr data-alarm="{a}"><td>{}</td><td>{a}</td><td>{} → {}</td><td>{}</td></tr>"#,
                c.at.format("%H:%M:%S"),
                escape(&c.from),
                escape(&c.to),
                escape(&c.reason),
                a = escape(&c.alarm)
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(66.666), "66.67");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(escape(r#"<a href="x">'&"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
