//! The S3 event notification, in the exact JSON shape that Amazon S3 sends to SQS.
//!
//! weir emits these for its own buckets and consumes them from real S3, so the shape must match
//! AWS field for field: `Records[].eventName`, `eventTime`, `s3.bucket.name`, `s3.object.key`
//! (URL-encoded, spaces as `+`), `size`, `eTag`, `sequencer`. S3 also sends a bare
//! `s3:TestEvent` when a notification configuration is saved; that is not work.

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// A notification body as it arrives on the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueEvent {
    /// `{"Records": [...]}`: one or more object events.
    Records(S3Event),
    /// `{"Event": "s3:TestEvent", ...}`: sent by S3 when notifications are configured.
    TestEvent,
}

/// Why a queue message could not be understood as an S3 event.
#[derive(Debug, thiserror::Error)]
#[error("malformed event message: {reason}")]
pub struct MalformedEvent {
    pub reason: String,
}

impl QueueEvent {
    /// Parses a queue message body. An SNS envelope (`{"Type":"Notification","Message":"..."}`)
    /// is unwrapped first, as happens when S3 notifies SNS which fans out to SQS.
    pub fn parse(body: &str) -> Result<QueueEvent, MalformedEvent> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| MalformedEvent { reason: format!("not JSON: {e}") })?;
        if let Some(inner) = value.get("Message").and_then(|m| m.as_str()) {
            if value.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
                return QueueEvent::parse(inner);
            }
        }
        if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
            return Ok(QueueEvent::TestEvent);
        }
        if value.get("Records").is_none() {
            return Err(MalformedEvent { reason: "no `Records` array and not an s3:TestEvent".into() });
        }
        let event: S3Event = serde_json::from_value(value)
            .map_err(|e| MalformedEvent { reason: format!("bad S3 event: {e}") })?;
        Ok(QueueEvent::Records(event))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records")]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    #[serde(default = "default_event_version")]
    pub event_version: String,
    #[serde(default = "default_event_source")]
    pub event_source: String,
    #[serde(default)]
    pub aws_region: String,
    pub event_time: String,
    /// e.g. `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`.
    pub event_name: String,
    #[serde(default)]
    pub user_identity: Option<PrincipalId>,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalId {
    pub principal_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    #[serde(default = "default_schema_version")]
    pub s3_schema_version: String,
    #[serde(default)]
    pub configuration_id: String,
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Bucket {
    pub name: String,
    #[serde(default)]
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Object {
    /// URL-encoded as S3 sends it; use [`S3EventRecord::key`] for the real key.
    pub key: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub e_tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default)]
    pub sequencer: String,
}

fn default_event_version() -> String {
    "2.1".into()
}
fn default_event_source() -> String {
    "aws:s3".into()
}
fn default_schema_version() -> String {
    "1.0".into()
}

/// Characters S3 leaves unencoded in event keys (besides alphanumerics).
const KEY_ENCODE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/').remove(b' ');

impl S3EventRecord {
    /// Builds an `ObjectCreated:*` record for an object weir stored itself.
    pub fn object_created(
        event_name: &str,
        bucket: &str,
        key: &str,
        size: u64,
        etag: &str,
        sequencer: u64,
        at: DateTime<Utc>,
    ) -> Self {
        let encoded = utf8_percent_encode(key, KEY_ENCODE).to_string().replace(' ', "+");
        S3EventRecord {
            event_version: default_event_version(),
            event_source: default_event_source(),
            aws_region: "local".into(),
            event_time: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            event_name: format!("ObjectCreated:{event_name}"),
            user_identity: Some(PrincipalId { principal_id: "weir".into() }),
            s3: S3Entity {
                s3_schema_version: default_schema_version(),
                configuration_id: "weir".into(),
                bucket: S3Bucket { name: bucket.into(), arn: format!("arn:aws:s3:::{bucket}") },
                object: S3Object {
                    key: encoded,
                    size,
                    e_tag: etag.trim_matches('"').into(),
                    version_id: None,
                    sequencer: format!("{sequencer:016X}"),
                },
            },
        }
    }

    /// The object key, decoded from the event's URL encoding (`+` is a space).
    pub fn key(&self) -> Result<String, MalformedEvent> {
        let plus_decoded = self.s3.object.key.replace('+', " ");
        percent_decode_str(&plus_decoded).decode_utf8().map(|k| k.into_owned()).map_err(|_| MalformedEvent {
            reason: format!("object key {:?} is not valid UTF-8 once decoded", self.s3.object.key),
        })
    }

    pub fn is_object_created(&self) -> bool {
        self.event_name.starts_with("ObjectCreated:")
    }
}

impl S3Event {
    pub fn single(record: S3EventRecord) -> Self {
        S3Event { records: vec![record] }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("S3 event serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_aws_shape_and_decodes_keys() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
          "eventTime":"2024-01-15T10:30:00.000Z","eventName":"ObjectCreated:Put",
          "s3":{"s3SchemaVersion":"1.0","configurationId":"x","bucket":{"name":"b","arn":"arn:aws:s3:::b"},
          "object":{"key":"raw/my+file%C3%A9.csv","size":12,"eTag":"abc","sequencer":"01"}}}]}"#;
        let QueueEvent::Records(ev) = QueueEvent::parse(body).unwrap() else { panic!("records") };
        assert_eq!(ev.records[0].key().unwrap(), "raw/my fileé.csv");
        assert_eq!(ev.records[0].s3.object.size, 12);
    }

    #[test]
    fn round_trips_keys_through_encoding() {
        let key = "raw/สวัสดี a+b%.csv";
        let rec = S3EventRecord::object_created("Put", "b", key, 1, "\"e\"", 7, Utc::now());
        let json = S3Event::single(rec).to_json();
        let QueueEvent::Records(ev) = QueueEvent::parse(&json).unwrap() else { panic!() };
        assert_eq!(ev.records[0].key().unwrap(), key);
        assert_eq!(ev.records[0].s3.object.e_tag, "e");
        assert!(json.contains("\"eTag\"") && json.contains("\"sequencer\""));
    }

    #[test]
    fn recognises_test_events_and_sns_envelopes() {
        assert_eq!(
            QueueEvent::parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#).unwrap(),
            QueueEvent::TestEvent
        );
        let inner = r#"{"Event":"s3:TestEvent"}"#;
        let env = serde_json::json!({"Type":"Notification","Message": inner}).to_string();
        assert_eq!(QueueEvent::parse(&env).unwrap(), QueueEvent::TestEvent);
    }

    #[test]
    fn malformed_messages_say_why() {
        assert!(QueueEvent::parse("not json").unwrap_err().reason.contains("not JSON"));
        assert!(QueueEvent::parse("{}").unwrap_err().reason.contains("Records"));
        assert!(QueueEvent::parse(r#"{"Records":[{"x":1}]}"#).unwrap_err().reason.contains("bad S3 event"));
    }
}
