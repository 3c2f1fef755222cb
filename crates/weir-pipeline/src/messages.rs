//! What notifications say, in the shape the seeds' `send-notification` Lambda wrote them.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use weir_core::image::ImageSummary;
use weir_core::Summary;
use weir_ports::Notification;

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Attributes of a job's message; `id` names the message, so that an idempotent notifier stores
/// it once however often a retried job publishes it.
fn attributes(job_id: &str, pipeline: &str, status: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("id".to_string(), format!("notify:{job_id}:{status}")),
        ("job_id".to_string(), job_id.to_string()),
        ("pipeline".to_string(), pipeline.to_string()),
        ("status".to_string(), status.to_string()),
    ])
}

/// "1 row", "3 rows".
fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}

/// The success message: file, job id, finished at, rows, the configured total, output key.
pub fn success(
    job_id: &str,
    pipeline: &str,
    source_key: &str,
    summary: &Summary,
    total: Option<(&str, f64)>,
    output_key: &str,
) -> Notification {
    let file = file_name(source_key);
    let finished_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut text = format!(
        "weir processed a file.\n\nFile: {file}\nJob ID: {job_id}\nFinished at: {finished_at}\n\n\
         Rows: {} total, {} valid, {} invalid ({}% valid)\n",
        summary.total_rows, summary.valid_rows, summary.invalid_rows, summary.success_rate
    );
    if summary.invalid_rows > 0 {
        text.push_str(&format!(
            "{} invalid: left out of the results, each described in the error report\n",
            rows(summary.invalid_rows)
        ));
    }
    if let Some((field, value)) = total {
        text.push_str(&format!("Total {field}: {value:.2}\n"));
    }
    text.push_str(&format!("\nResults: {output_key}\n"));
    let mut payload = json!({
        "event": "job_succeeded",
        "file": file,
        "source_key": source_key,
        "job_id": job_id,
        "pipeline": pipeline,
        "finished_at": finished_at,
        "total_rows": summary.total_rows,
        "valid_rows": summary.valid_rows,
        "invalid_rows": summary.invalid_rows,
        "output_key": output_key,
    });
    if let Some((field, value)) = total {
        payload[format!("total_{field}")] = json!(value);
    }
    Notification {
        html: None,
        topic: "success".into(),
        subject: Notification::clamp_subject(&if summary.invalid_rows > 0 {
            format!(
                "✅ weir: {file} processed ({}; {} invalid)",
                rows(summary.valid_rows),
                rows(summary.invalid_rows)
            )
        } else {
            format!("✅ weir: {file} processed ({})", rows(summary.valid_rows))
        }),
        text,
        attributes: attributes(job_id, pipeline, "succeeded"),
        payload,
    }
}

/// The success message of an image job: file, job id, the picture, its thumbnails.
pub fn image_success(job_id: &str, pipeline: &str, source_key: &str, image: &ImageSummary) -> Notification {
    let file = file_name(source_key);
    let finished_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let thumbnails: Vec<String> =
        image.thumbnails.iter().map(|t| format!("{} {}x{}: {}", t.name, t.width, t.height, t.key)).collect();
    let text = format!(
        "weir processed a picture.\n\nFile: {file}\nJob ID: {job_id}\nFinished at: {finished_at}\n\n\
         Picture: {} {}x{} ({}), {} bytes\n\nThumbnails:\n  {}\n",
        image.format,
        image.display_width,
        image.display_height,
        image.mode,
        image.file_size,
        thumbnails.join("\n  ")
    );
    Notification {
        html: None,
        topic: "success".into(),
        subject: Notification::clamp_subject(&format!(
            "✅ weir: {file} processed ({}x{} {})",
            image.display_width, image.display_height, image.format
        )),
        text,
        attributes: attributes(job_id, pipeline, "succeeded"),
        payload: json!({
            "event": "job_succeeded",
            "file": file,
            "source_key": source_key,
            "job_id": job_id,
            "pipeline": pipeline,
            "finished_at": finished_at,
            "image": image,
        }),
    }
}

/// The rejection message: file, job id, reason, missing columns, where the file went.
pub fn rejected(
    job_id: &str,
    pipeline: &str,
    source_key: &str,
    reason: &str,
    missing_columns: &[String],
    failed_key: &str,
) -> Notification {
    let file = file_name(source_key);
    let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let missing = if missing_columns.is_empty() { "none".to_string() } else { missing_columns.join(", ") };
    let text = format!(
        "weir rejected a file.\n\nFile: {file}\nJob ID: {job_id}\nAt: {at}\n\nReason: {reason}\n\
         Missing columns: {missing}\n\nThe file was moved to: {failed_key}\n\
         Fix the file and upload it again.\n"
    );
    Notification {
        html: None,
        topic: "alerts".into(),
        subject: Notification::clamp_subject(&format!("❌ weir: {file} rejected")),
        text,
        attributes: attributes(job_id, pipeline, "rejected"),
        payload: json!({
            "event": "job_rejected",
            "file": file,
            "source_key": source_key,
            "job_id": job_id,
            "pipeline": pipeline,
            "at": at,
            "reason": reason,
            "missing_columns": missing_columns,
            "failed_key": failed_key,
        }),
    }
}

/// The failure message: a job that could not be processed (retries exhausted, or a source that
/// vanished), with its reason and what to do.
pub fn failed(job: &weir_core::Job, dead_lettered: bool) -> Notification {
    let file = file_name(&job.source_key);
    let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let reason = job.error.as_deref().unwrap_or("no reason was recorded");
    let pipeline = job.pipeline.as_deref().unwrap_or("-");
    let next = if dead_lettered {
        "Its message is in the dead-letter queue: fix the cause, then `weir dlq replay`."
    } else {
        "Nothing will retry it: upload the file again once the cause is fixed."
    };
    let text = format!(
        "weir could not process a file.\n\nFile: {file}\nObject: {}/{}\nJob ID: {}\nAt: {at}\n\
         Attempts: {}\n\nReason: {reason}\n\n{next}\n",
        job.source_bucket, job.source_key, job.job_id, job.attempts
    );
    Notification {
        html: None,
        topic: "alerts".into(),
        subject: Notification::clamp_subject(&format!("🚨 weir: {file} failed")),
        text,
        attributes: attributes(&job.job_id.0, pipeline, "failed"),
        payload: json!({
            "event": "job_failed",
            "file": file,
            "bucket": job.source_bucket,
            "source_key": job.source_key,
            "job_id": job.job_id,
            "pipeline": pipeline,
            "at": at,
            "attempts": job.attempts,
            "reason": reason,
            "dead_lettered": dead_lettered,
        }),
    }
}

/// The dead-letter alert, as the seeds' DLQ processor sent it.
pub fn dead_letter(
    message_id: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    last_error: &str,
    receive_count: u32,
    at: &str,
) -> Notification {
    let object = match (bucket, key) {
        (Some(b), Some(k)) => format!("{b}/{k}"),
        _ => "(unknown: the message is not an S3 event)".into(),
    };
    let file = key.map(file_name).unwrap_or("message");
    let text = format!(
        "A message reached the dead-letter queue.\n\nAlert: dead_letter\nTime: {at}\nMessage ID: {message_id}\n         Object: {object}\nReceive count: {receive_count}\nLast error: {last_error}\n\n         Fix the cause, then: weir dlq replay {message_id}\n"
    );
    Notification {
        html: None,
        topic: "alerts".into(),
        subject: Notification::clamp_subject(&format!("🚨 weir: {file} dead-lettered")),
        text,
        attributes: BTreeMap::from([
            ("alert".to_string(), "dead_letter".to_string()),
            ("status".to_string(), "failed".to_string()),
        ]),
        payload: json!({
            "alert_type": "dead_letter",
            "time": at,
            "message_id": message_id,
            "bucket": bucket,
            "key": key,
            "last_error": last_error,
            "receive_count": receive_count,
        }),
    }
}

/// Reads a string array field from a state.
pub fn strings(state: &Value, field: &str) -> Vec<String> {
    state
        .get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(Into::into)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_stay_within_100_characters() {
        let long = format!("raw/{}.csv", "ก".repeat(200));
        let n = rejected("j-1", "sales", &long, "missing", &[], "failed/x");
        assert!(n.subject.chars().count() <= 100);
        let s =
            success("j-1", "sales", "raw/a.csv", &Summary::default(), Some(("revenue", 12.5)), "processed/x");
        assert!(s.text.contains("Total revenue: 12.50"));
        assert_eq!(s.payload["total_revenue"], json!(12.5));
    }

    #[test]
    fn the_success_subject_and_text_say_how_many_rows_were_invalid() {
        let clean = Summary { total_rows: 8, valid_rows: 8, ..Summary::default() };
        let s = success("j-1", "sales", "raw/a.csv", &clean, None, "processed/x");
        assert_eq!(s.subject, "✅ weir: a.csv processed (8 rows)");
        assert!(!s.text.contains("invalid:"), "{}", s.text);
        let some_bad = Summary { total_rows: 9, valid_rows: 5, invalid_rows: 4, ..Summary::default() };
        let s = success("j-1", "sales", "raw/a.csv", &some_bad, None, "processed/x");
        assert_eq!(s.subject, "✅ weir: a.csv processed (5 rows; 4 rows invalid)");
        assert!(s.text.contains("4 rows invalid: left out of the results"), "{}", s.text);
        let one_bad = Summary { total_rows: 2, valid_rows: 1, invalid_rows: 1, ..Summary::default() };
        let s = success("j-1", "sales", "raw/a.csv", &one_bad, None, "processed/x");
        assert_eq!(s.subject, "✅ weir: a.csv processed (1 row; 1 row invalid)");
    }
}
