//! The job store's counters ([`weir_core::stats`]) in the jobs table, as DynamoDB counters
//! (`ADD`), so reading them costs a few queries whatever the table holds:
//!
//! - `pk = STATS#DAY#<yyyy-mm-dd>`, `sk = <minute>#<status>#<pipeline>`: the outcomes that
//!   finished in that minute (a window of a day reads at most two partitions);
//! - `pk = STATS#TOTAL`, `sk = <status>#<pipeline>`: the same since the table began;
//! - `pk = STATS#RECEIVED#<yyyy-mm-dd>`, `sk = <minute>`, and `pk = STATS#RECEIVED`,
//!   `sk = TOTAL`: files received;
//! - `pk = STATS#STATUS`, `sk = <status>`: jobs in each status now, as weir wrote and removed
//!   them. DynamoDB's TTL deletes done job records without weir hearing of it (no stream is
//!   read), so for the final statuses these count records the TTL has since removed; queued and
//!   running jobs never carry the TTL attribute, so their counts are exact. What weir shows
//!   therefore takes final statuses from the lifetime outcomes (`STATS#TOTAL`: `/metrics`'
//!   `weir_files_total`, the dashboard's figures) and only queued/running from here
//!   (`weir_jobs`), which no expiry lowers on either backend.
//!
//! The counters are updated right after the job write that changes them (DynamoDB cannot return
//! a transaction's old values), from the record as it was before: a worker that dies between
//! the two leaves one outcome uncounted. On AWS the authoritative metrics are CloudWatch's.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use weir_core::stats::{self, JobTotals, MinuteReceived, MinuteTally, Series, Tally, DURATION_BUCKETS_MS};
use weir_core::{Job, JobStatus};
use weir_ports::PortError;

use crate::client::port_error;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn day_of_minute(minute: i64) -> String {
    DateTime::<Utc>::from_timestamp(minute * 60, 0).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// A tally's counters, by attribute name.
fn counters(t: &Tally) -> Vec<(String, u64)> {
    let mut out = vec![
        ("files".to_string(), t.files),
        ("rows_valid".into(), t.rows_valid),
        ("rows_invalid".into(), t.rows_invalid),
        ("bytes".into(), t.bytes),
        ("timed".into(), t.timed),
        ("duration_ms_sum".into(), t.duration_ms_sum),
        ("rows_loaded".into(), t.rows_loaded),
        ("load_failures".into(), t.load_failures),
    ];
    for (i, v) in t.duration_buckets.iter().enumerate() {
        if *v > 0 {
            out.push((format!("d{i}"), *v));
        }
    }
    out
}

fn tally_of(item: &HashMap<String, AttributeValue>) -> Tally {
    let get =
        |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Tally {
        files: get("files"),
        rows_valid: get("rows_valid"),
        rows_invalid: get("rows_invalid"),
        bytes: get("bytes"),
        timed: get("timed"),
        duration_ms_sum: get("duration_ms_sum"),
        duration_buckets: (0..=DURATION_BUCKETS_MS.len()).map(|i| get(&format!("d{i}"))).collect(),
        rows_loaded: get("rows_loaded"),
        load_failures: get("load_failures"),
    }
}

/// Adds `values` to the counters of item (`pk`, `sk`).
async fn add(
    client: &Client,
    table: &str,
    pk: String,
    sk: String,
    values: &[(String, u64)],
) -> Result<(), PortError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut expr = Vec::new();
    let mut req = client.update_item().table_name(table).key("pk", s(pk)).key("sk", s(sk));
    for (i, (name, v)) in values.iter().enumerate() {
        expr.push(format!("#a{i} :v{i}"));
        req = req
            .expression_attribute_names(format!("#a{i}"), name)
            .expression_attribute_values(format!(":v{i}"), n(*v));
    }
    req.update_expression(format!("ADD {}", expr.join(", ")))
        .send()
        .await
        .map_err(|e| port_error("counting jobs", e))?;
    Ok(())
}

/// Updates the counters for a job write: `old` is the record before it (`None`: a new one).
pub(crate) async fn record(
    client: &Client,
    table: &str,
    old: Option<&Job>,
    new: &Job,
) -> Result<(), PortError> {
    let (finished, received) = stats::change(old, new);
    if received {
        let minute = stats::minute_of(new.created_at);
        let values = [("files".to_string(), 1), ("bytes".to_string(), new.source_size)];
        add(client, table, format!("STATS#RECEIVED#{}", day_of_minute(minute)), minute.to_string(), &values)
            .await?;
        add(client, table, "STATS#RECEIVED".into(), "TOTAL".into(), &values).await?;
    }
    let old_status = old.map(|o| o.status);
    if old_status != Some(new.status) {
        if let Some(o) = old_status {
            // ADD of a negative number: DynamoDB numbers are signed.
            let mut req =
                client.update_item().table_name(table).key("pk", s("STATS#STATUS")).key("sk", s(o.as_str()));
            req = req
                .update_expression("ADD n :d")
                .expression_attribute_values(":d", AttributeValue::N("-1".into()));
            req.send().await.map_err(|e| port_error("counting jobs", e))?;
        }
        add(client, table, "STATS#STATUS".into(), new.status.as_str().into(), &[("n".to_string(), 1)])
            .await?;
    }
    if let Some(m) = finished {
        let values = counters(&m.tally);
        let sk = format!("{:010}#{}#{}", m.minute, m.status.as_str(), m.pipeline);
        add(client, table, format!("STATS#DAY#{}", day_of_minute(m.minute)), sk, &values).await?;
        add(client, table, "STATS#TOTAL".into(), format!("{}#{}", m.status.as_str(), m.pipeline), &values)
            .await?;
    }
    Ok(())
}

/// A job record of `status` was deleted (retention): one fewer now; the lifetime tallies stay.
pub(crate) async fn forget(client: &Client, table: &str, status: JobStatus) -> Result<(), PortError> {
    client
        .update_item()
        .table_name(table)
        .key("pk", s("STATS#STATUS"))
        .key("sk", s(status.as_str()))
        .update_expression("ADD n :d")
        .expression_attribute_values(":d", AttributeValue::N("-1".into()))
        .send()
        .await
        .map_err(|e| port_error("counting jobs", e))?;
    Ok(())
}

/// Every item of partition `pk` (with sk between `from` and `to` when given).
pub(crate) async fn query(
    client: &Client,
    table: &str,
    pk: &str,
    range: Option<(String, String)>,
) -> Result<Vec<HashMap<String, AttributeValue>>, PortError> {
    let mut out = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let mut req = client
            .query()
            .table_name(table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start.take());
        req = match &range {
            Some((from, to)) => req
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":from", s(from.clone()))
                .expression_attribute_values(":to", s(to.clone())),
            None => req.key_condition_expression("pk = :pk"),
        };
        let r = req.send().await.map_err(|e| port_error("reading job counters", e))?;
        out.extend(r.items.unwrap_or_default());
        match r.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

fn sk(item: &HashMap<String, AttributeValue>) -> String {
    item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

pub(crate) async fn status_counts(
    client: &Client,
    table: &str,
) -> Result<BTreeMap<JobStatus, u64>, PortError> {
    let mut out = BTreeMap::new();
    for item in query(client, table, "STATS#STATUS", None).await? {
        let count =
            item.get("n").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        if let (Some(status), true) = (JobStatus::parse(&sk(&item)), count > 0) {
            out.insert(status, count as u64);
        }
    }
    Ok(out)
}

pub(crate) async fn totals(client: &Client, table: &str) -> Result<JobTotals, PortError> {
    let mut out = JobTotals::default();
    for item in query(client, table, "STATS#TOTAL", None).await? {
        let key = sk(&item);
        let Some((status, pipeline)) = key.split_once('#') else { continue };
        if let Some(status) = JobStatus::parse(status) {
            out.finished.insert((pipeline.to_owned(), status), tally_of(&item));
        }
    }
    if let Some(item) = query(client, table, "STATS#RECEIVED", None).await?.first() {
        let t = tally_of(item);
        (out.received_files, out.received_bytes) = (t.files, t.bytes);
    }
    out.current = status_counts(client, table).await?;
    Ok(out)
}

pub(crate) async fn series(client: &Client, table: &str, from: i64, to: i64) -> Result<Series, PortError> {
    let mut out = Series::default();
    if from >= to {
        return Ok(out);
    }
    let mut day = day_of_minute(from);
    let last = day_of_minute(to - 1);
    loop {
        let range = Some((format!("{from:010}"), format!("{:010}~", to - 1)));
        for item in query(client, table, &format!("STATS#DAY#{day}"), range).await? {
            let key = sk(&item);
            let mut parts = key.splitn(3, '#');
            let (Some(minute), Some(status), Some(pipeline)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(minute), Some(status)) = (minute.parse::<i64>(), JobStatus::parse(status)) else {
                continue;
            };
            if (from..to).contains(&minute) {
                out.finished.push(MinuteTally {
                    minute,
                    pipeline: pipeline.to_owned(),
                    status,
                    tally: tally_of(&item),
                });
            }
        }
        for item in query(client, table, &format!("STATS#RECEIVED#{day}"), None).await? {
            let Ok(minute) = sk(&item).parse::<i64>() else { continue };
            if (from..to).contains(&minute) {
                let t = tally_of(&item);
                out.received.push(MinuteReceived { minute, files: t.files, bytes: t.bytes });
            }
        }
        if day == last {
            break;
        }
        let next = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|e| PortError::Invalid(e.to_string()))?
            + chrono::Duration::days(1);
        day = next.format("%Y-%m-%d").to_string();
    }
    out.finished.sort_by_key(|m| m.minute);
    out.received.sort_by_key(|m| m.minute);
    Ok(out)
}
