//! The job store and the records sink on Amazon DynamoDB.
//!
//! Both tables use the seeds' key shape, a string partition key `pk` and sort key `sk`:
//!
//! - **jobs**: one item per job, `pk = JOB#<job id>`, `sk = META`, holding the whole [`Job`] as
//!   JSON (`job`) plus the attributes it is found by: `status`, `created_at` (RFC 3339, UTC, µs)
//!   and `processed_date` (`YYYY-MM-DD`), the partition key of the GSI `processed-date-index`
//!   (sort key `created_at`) that lists a day's jobs newest first, as the seeds' metadata table
//!   did with its processed-at index. Each source key has an item `pk = SRC#<bucket>/<key>`,
//!   `sk = SRC`: the newest event sequencer seen, its job, and the lease of the run that holds
//!   the key (`lease_run`, `lease_job`, `lease_expires` in epoch ms), changed only by writes
//!   conditional on its revision `rev`, so two workers on two machines never run one key at
//!   once; a run's writes of its job go in a transaction with a check of that lease (see
//!   [`weir_ports::jobs`]). `claim_once` keys are items `pk = CLAIM#<key>`, `sk = CLAIM`,
//!   written with `attribute_not_exists(pk)`.
//! - **records**: the valid rows, `pk = CSV#<bucket>/<key>`, `sk = ROW#000042`, written with
//!   BatchWriteItem in groups of 25; the UnprocessedItems DynamoDB hands back under throttling are
//!   retried with exponential backoff.
//!
//! Schedules are items `pk = SCHED#<name>`, `sk = SCHED` (`anchor_ms`, `last_due_ms`,
//! `fired_at_ms`; a firing is an update conditional on `last_due_ms < :due`), lifetime counters
//! items `pk = COUNTERS`, `sk = <name>`. With a retention for job records, a finished job's item
//! carries `expires_at` (epoch seconds), the table's TTL attribute (`weir setup aws` turns TTL
//! on): DynamoDB deletes it some time after, and the counters, items of their own, stay.
//!
//! Listing reads the GSI day by day, back [`LIST_DAYS`] days; counts, totals and the per-minute
//! series are counters in the same table ([`crate::dynamo_stats`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, PointInTimeRecoverySpecification, Projection, ProjectionType, PutRequest, ScalarAttributeType,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{SecondsFormat, Utc};
use weir_core::stats::{JobTotals, Series};
use weir_core::{Backoff, Job, JobId, JobStatus};

use crate::dynamo_stats;
use weir_ports::{
    plan_begin, Begin, ExpiredJobs, JobFilter, JobPage, JobStore, Lease, PortError, RecordItem, RecordsSink,
    ScheduleMark, SourceKey,
};

use crate::client::port_error;

/// The GSI that lists jobs by day.
pub const DATE_INDEX: &str = "processed-date-index";
/// How many days back `list` looks.
pub const LIST_DAYS: i64 = 90;
/// DynamoDB's BatchWriteItem limit.
pub const BATCH: usize = 25;
/// Attempts of one batch before the sink gives up (the job is then retried as a whole).
const BATCH_ATTEMPTS: u32 = 8;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn job_key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(format!("JOB#{id}"))), ("sk".to_string(), s("META"))])
}

fn source_item_key(bucket: &str, key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(format!("SRC#{bucket}/{key}"))), ("sk".to_string(), s("SRC"))])
}

/// Whether a transaction was cancelled because a condition failed (the run's lease check).
fn lost_lease(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            t.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
        }
        _ => false,
    }
}

/// How many times `begin` re-reads and tries again when another writer changed the key first.
const BEGIN_ATTEMPTS: u32 = 16;

/// The update expression that writes a job item's attributes (with [`DynamoJobStore::job_values`]).
const SAVE_JOB: &str =
    "SET job = :job, #st = :status, created_at = :created, processed_date = :date, job_id = :id";

/// The TTL attribute of job items (epoch seconds), set on done jobs when records expire.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// [`SAVE_JOB`] for `job` with the TTL in force: a done job expires (with `:expires`), any
/// other never does, so a job run again loses the expiry it had.
fn save_expression(job: &Job, ttl: Option<chrono::Duration>) -> String {
    match ttl {
        Some(_) if expiry(job, ttl).is_some() => format!("{SAVE_JOB}, {TTL_ATTRIBUTE} = :expires"),
        Some(_) => format!("{SAVE_JOB} REMOVE {TTL_ATTRIBUTE}"),
        None => SAVE_JOB.to_string(),
    }
}

/// When a done job's record expires (epoch seconds).
fn expiry(job: &Job, ttl: Option<chrono::Duration>) -> Option<i64> {
    let finished = job.finished_at.filter(|_| job.is_done())?;
    Some((finished + ttl?).timestamp())
}

/// Whether retention may remove the job: done, and finished before `before_ms`.
fn finished_before(job: &Job, before_ms: i64) -> bool {
    job.is_done() && job.finished_at.is_some_and(|t| t.timestamp_millis() < before_ms)
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn is_condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn created_at(job: &Job) -> String {
    created_at_text(job.created_at)
}

/// A time as the `created_at` attribute holds it (RFC 3339, UTC, µs: sorts as it happened).
fn created_at_text(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn encode(job: &Job) -> Result<String, PortError> {
    serde_json::to_string(job)
        .map_err(|e| PortError::Invalid(format!("job {} cannot be encoded: {e}", job.job_id)))
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<Job, PortError> {
    let json = item
        .get("job")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| PortError::unavailable("reading a job item", "the item has no job attribute"))?;
    serde_json::from_str(json).map_err(|e| PortError::unavailable("decoding a stored job", e))
}

/// Creates the jobs table (with its GSI) and the records table if missing, on-demand billing,
/// and turns on point-in-time recovery.
/// Returns, per table, whether it was created.
pub async fn ensure_tables(
    client: &Client,
    jobs: &str,
    records: Option<&str>,
) -> Result<Vec<(String, bool)>, PortError> {
    let mut out = Vec::new();
    for (name, gsi) in std::iter::once((jobs, true)).chain(records.map(|r| (r, false))) {
        let exists = table_exists(client, name).await?;
        if !exists {
            let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
            let attr = |n: &str| {
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
            };
            let mut req = client
                .create_table()
                .table_name(name)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attr("pk").map_err(invalid)?)
                .attribute_definitions(attr("sk").map_err(invalid)?)
                .key_schema(key("pk", KeyType::Hash).map_err(invalid)?)
                .key_schema(key("sk", KeyType::Range).map_err(invalid)?);
            if gsi {
                req = req
                    .attribute_definitions(attr("processed_date").map_err(invalid)?)
                    .attribute_definitions(attr("created_at").map_err(invalid)?)
                    .global_secondary_indexes(
                        GlobalSecondaryIndex::builder()
                            .index_name(DATE_INDEX)
                            .key_schema(key("processed_date", KeyType::Hash).map_err(invalid)?)
                            .key_schema(key("created_at", KeyType::Range).map_err(invalid)?)
                            .projection(Projection::builder().projection_type(ProjectionType::All).build())
                            .build()
                            .map_err(invalid)?,
                    );
            }
            req.send().await.map_err(|e| port_error(&format!("creating table {name}"), e))?;
        }
        // Point-in-time recovery, as the seeds' table had (idempotent; set on existing tables too).
        client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map_err(|e| port_error(&format!("enabling point-in-time recovery on {name}"), e))?;
        out.push((name.to_string(), !exists));
    }
    Ok(out)
}

/// Whether the table exists.
pub async fn table_exists(client: &Client, name: &str) -> Result<bool, PortError> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(port_error(&format!("describing table {name}"), e)),
    }
}

/// Whether the table's TTL is on, on [`TTL_ATTRIBUTE`].
pub async fn ttl_enabled(client: &Client, table: &str) -> Result<bool, PortError> {
    use aws_sdk_dynamodb::types::TimeToLiveStatus;
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| port_error(&format!("reading the TTL of {table}"), e))?;
    Ok(current.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(TTL_ATTRIBUTE)
            && matches!(d.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
    }))
}

/// Turns on the table's TTL on [`TTL_ATTRIBUTE`] unless it is on; returns whether it turned it on.
pub async fn ensure_ttl(client: &Client, table: &str) -> Result<bool, PortError> {
    use aws_sdk_dynamodb::types::TimeToLiveSpecification;
    if ttl_enabled(client, table).await? {
        return Ok(false);
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(|e| port_error(&format!("turning on the TTL of {table}"), e))?;
    Ok(true)
}

fn invalid(e: impl std::fmt::Display) -> PortError {
    PortError::Invalid(e.to_string())
}

/// Jobs in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    /// How long a done job's record is kept (DynamoDB TTL); `None`: for ever.
    ttl: Option<chrono::Duration>,
}

impl DynamoJobStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoJobStore {
        DynamoJobStore { client, table: table.into(), ttl: None }
    }

    /// Done jobs' records carry an expiry `days` after they finished (`[retention.jobs]`).
    pub fn with_retention_days(mut self, days: Option<i64>) -> DynamoJobStore {
        self.ttl = days.filter(|d| *d > 0).map(chrono::Duration::days);
        self
    }

    /// The attributes a job item is written with (besides its key and lease).
    fn job_values(&self, job: &Job) -> Result<HashMap<String, AttributeValue>, PortError> {
        let mut values = HashMap::from([
            (":job".to_string(), s(encode(job)?)),
            (":status".to_string(), s(job.status.as_str())),
            (":created".to_string(), s(created_at(job))),
            (":date".to_string(), s(job.created_at.format("%Y-%m-%d").to_string())),
            (":id".to_string(), s(job.job_id.0.clone())),
        ]);
        if let Some(at) = expiry(job, self.ttl) {
            values.insert(":expires".to_string(), AttributeValue::N(at.to_string()));
        }
        Ok(values)
    }
}

impl DynamoJobStore {
    /// The key's record and its revision (`None`: no item yet).
    async fn read_source(&self, bucket: &str, key: &str) -> Result<(SourceKey, Option<u64>), PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(source_item_key(bucket, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("reading a source key", e))?;
        let Some(item) = out.item else { return Ok((SourceKey::default(), None)) };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
        let lease = match (text("lease_run"), text("lease_job")) {
            (Some(run), Some(job)) => {
                Some(Lease { run, job: JobId(job), expires_ms: number("lease_expires").unwrap_or(0) })
            }
            _ => None,
        };
        let found = SourceKey {
            newest_sequencer: text("newest_seq"),
            newest_job: text("newest_job").map(JobId),
            lease,
        };
        Ok((found, Some(number("rev").unwrap_or(0) as u64)))
    }

    /// Writes the key's record if its revision is still `rev` (`None`: if there is no item).
    /// Returns false when another writer changed it first.
    async fn write_source(
        &self,
        bucket: &str,
        key: &str,
        record: &SourceKey,
        rev: Option<u64>,
    ) -> Result<bool, PortError> {
        let mut item = source_item_key(bucket, key);
        item.insert("rev".into(), AttributeValue::N((rev.unwrap_or(0) + 1).to_string()));
        if let Some(seq) = &record.newest_sequencer {
            item.insert("newest_seq".into(), s(seq.clone()));
        }
        if let Some(job) = &record.newest_job {
            item.insert("newest_job".into(), s(job.0.clone()));
        }
        if let Some(lease) = &record.lease {
            item.insert("lease_run".into(), s(lease.run.clone()));
            item.insert("lease_job".into(), s(lease.job.0.clone()));
            item.insert("lease_expires".into(), AttributeValue::N(lease.expires_ms.to_string()));
        }
        let mut put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        put = match rev {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(rev) => put
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", AttributeValue::N(rev.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(port_error("recording a source key", e)),
        }
    }

    /// A run's write of its job, in one transaction with the check that the run holds the key
    /// (and, with `release`, giving the key up).
    async fn write_run(&self, job: &Job, run: &str, release: bool) -> Result<(), PortError> {
        // The record before, for the counters (the run holds the key: nobody else writes it).
        let old = self.get(&job.job_id).await?;
        let source = source_item_key(&job.source_bucket, &job.source_key);
        let lease_item = if release {
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(source))
                        .update_expression("REMOVE lease_run, lease_job, lease_expires ADD rev :one")
                        .condition_expression("lease_run = :run")
                        .expression_attribute_values(":run", s(run))
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .build()
                        .map_err(invalid)?,
                )
                .build()
        } else {
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(source))
                        .condition_expression("lease_run = :run")
                        .expression_attribute_values(":run", s(run))
                        .build()
                        .map_err(invalid)?,
                )
                .build()
        };
        let job_item = TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(job_key(&job.job_id.0)))
                    .update_expression(save_expression(job, self.ttl))
                    .expression_attribute_names("#st", "status")
                    .set_expression_attribute_values(Some(self.job_values(job)?))
                    .build()
                    .map_err(invalid)?,
            )
            .build();
        let r = self
            .client
            .transact_write_items()
            .transact_items(lease_item)
            .transact_items(job_item)
            .send()
            .await;
        match r {
            Ok(_) => dynamo_stats::record(&self.client, &self.table, old.as_ref(), job).await,
            Err(e) if lost_lease(&e) => Err(PortError::Conflict(format!(
                "run {run} no longer holds {}/{}: job {} not saved",
                job.source_bucket, job.source_key, job.job_id
            ))),
            Err(e) => Err(port_error("saving a job", e)),
        }
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<bool, PortError> {
        let mut item = job_key(&job.job_id.0);
        for (k, v) in self.job_values(job)? {
            let name = match k.as_str() {
                ":job" => "job",
                ":status" => "status",
                ":created" => "created_at",
                ":date" => "processed_date",
                ":expires" => TTL_ATTRIBUTE,
                _ => "job_id",
            };
            item.insert(name.to_string(), v);
        }
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => {
                dynamo_stats::record(&self.client, &self.table, None, job).await?;
                Ok(true)
            }
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(port_error("creating a job", e)),
        }
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(job_key(&id.0)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("reading a job", e))?;
        out.item.as_ref().map(decode).transpose()
    }

    async fn save(&self, job: &Job) -> Result<(), PortError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(&job.job_id.0)))
            .update_expression(save_expression(job, self.ttl))
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(self.job_values(job)?))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| port_error("saving a job", e))?;
        let old = out.attributes.filter(|a| a.contains_key("job")).as_ref().map(decode).transpose()?;
        dynamo_stats::record(&self.client, &self.table, old.as_ref(), job).await
    }

    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, PortError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let today = Utc::now().date_naive();
        let mut jobs = Vec::new();
        for back in 0..LIST_DAYS {
            let day = (today - chrono::Duration::days(back)).format("%Y-%m-%d").to_string();
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let mut req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(DATE_INDEX)
                    .key_condition_expression("processed_date = :d")
                    .expression_attribute_values(":d", s(day.clone()))
                    .scan_index_forward(false)
                    .set_exclusive_start_key(start.take());
                if let Some(st) = filter.status {
                    req = req
                        .filter_expression("#st = :s")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_values(":s", s(st.as_str()));
                }
                let out = req.send().await.map_err(|e| port_error("listing jobs", e))?;
                for item in out.items.as_deref().unwrap_or_default() {
                    jobs.push(decode(item)?);
                    if jobs.len() >= limit {
                        return Ok(jobs);
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(jobs)
    }

    /// A Query of the date index per day of the window (`processed_date` is the creation
    /// day), `created_at` between the window's ends; the token is the day and the Query's
    /// LastEvaluatedKey.
    async fn list_created(
        &self,
        from: chrono::DateTime<Utc>,
        to: chrono::DateTime<Utc>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<JobPage, PortError> {
        let limit = if limit == 0 { 100 } else { limit };
        if from >= to {
            return Ok(JobPage::default());
        }
        let bad_token = || PortError::Invalid(format!("not a page token of this store: {page_token:?}"));
        let (mut day, mut start) = match page_token {
            None => (from.date_naive(), None),
            Some(t) => {
                let v: serde_json::Value = serde_json::from_str(t).map_err(|_| bad_token())?;
                let day = v["day"]
                    .as_str()
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .ok_or_else(bad_token)?;
                let key: HashMap<String, AttributeValue> = v["key"]
                    .as_object()
                    .ok_or_else(bad_token)?
                    .iter()
                    .map(|(k, v)| Some((k.clone(), s(v.as_str()?))))
                    .collect::<Option<_>>()
                    .ok_or_else(bad_token)?;
                (day, (!key.is_empty()).then_some(key))
            }
        };
        let last_day = (to - chrono::Duration::microseconds(1)).date_naive();
        let (low, high) = (created_at_text(from), created_at_text(to - chrono::Duration::microseconds(1)));
        let mut jobs = Vec::new();
        while day <= last_day {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DATE_INDEX)
                .key_condition_expression("processed_date = :d AND created_at BETWEEN :a AND :b")
                .expression_attribute_values(":d", s(day.format("%Y-%m-%d").to_string()))
                .expression_attribute_values(":a", s(low.clone()))
                .expression_attribute_values(":b", s(high.clone()))
                .scan_index_forward(true)
                .limit(i32::try_from(limit - jobs.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("listing a day of jobs", e))?;
            for item in out.items.as_deref().unwrap_or_default() {
                jobs.push(decode(item)?);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                day = day.succ_opt().unwrap_or(chrono::NaiveDate::MAX);
                if day > last_day {
                    break;
                }
            }
            if jobs.len() >= limit {
                let key: serde_json::Map<String, serde_json::Value> = start
                    .iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), serde_json::Value::from(v.as_s().ok()?.as_str()))))
                    .collect();
                let token = serde_json::json!({ "day": day.format("%Y-%m-%d").to_string(), "key": key });
                return Ok(JobPage { jobs, next: Some(token.to_string()) });
            }
        }
        Ok(JobPage { jobs, next: None })
    }

    /// From the status counters (see [`crate::dynamo_stats`]), not a scan of the table.
    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError> {
        dynamo_stats::status_counts(&self.client, &self.table).await
    }

    async fn totals(&self) -> Result<JobTotals, PortError> {
        dynamo_stats::totals(&self.client, &self.table).await
    }

    async fn series(&self, from: i64, to: i64) -> Result<Series, PortError> {
        dynamo_stats::series(&self.client, &self.table, from, to).await
    }

    /// Reads the job and the key, decides with [`plan_begin`], and writes the key's item on the
    /// condition that its revision is the one read; if another writer got there first, reads
    /// again.
    async fn begin(&self, job: &Job, pipeline: &str, run: &str, ttl: Duration) -> Result<Begin, PortError> {
        for _ in 0..BEGIN_ATTEMPTS {
            let stored = self.get(&job.job_id).await?;
            let (current, rev) = self.read_source(&job.source_bucket, &job.source_key).await?;
            let now = Utc::now().timestamp_millis();
            let plan = plan_begin(stored.clone(), job, pipeline, current.clone(), run, ttl, now);
            let changes = plan.key != current || plan.save.is_some();
            if changes && !self.write_source(&job.source_bucket, &job.source_key, &plan.key, rev).await? {
                continue;
            }
            match &plan.save {
                Some(saved) => self.save(saved).await?,
                None if stored.is_none() => {
                    self.create(job).await?;
                }
                None => {}
            }
            return Ok(plan.outcome);
        }
        Err(PortError::unavailable(
            format!("beginning job {}", job.job_id),
            format!("the key's record changed under {BEGIN_ATTEMPTS} attempts in a row"),
        ))
    }

    async fn renew(&self, bucket: &str, key: &str, run: &str, ttl: Duration) -> Result<bool, PortError> {
        let expires = Utc::now().timestamp_millis() + ttl.as_millis() as i64;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(source_item_key(bucket, key)))
            .update_expression("SET lease_expires = :e")
            .condition_expression("lease_run = :run")
            .expression_attribute_values(":e", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":run", s(run))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(port_error("renewing a lease", e)),
        }
    }

    async fn save_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        self.write_run(job, run, false).await
    }

    async fn finish_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        self.write_run(job, run, true).await
    }

    async fn source_key(&self, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError> {
        let (found, rev) = self.read_source(bucket, key).await?;
        Ok(rev.map(|_| found))
    }

    async fn claim_once(&self, key: &str) -> Result<bool, PortError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CLAIM#{key}")))
            .item("sk", s("CLAIM"))
            .item("claimed_at", s(Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(port_error("claiming a key", e)),
        }
    }

    async fn schedule_mark(&self, name: &str, anchor_ms: i64) -> Result<ScheduleMark, PortError> {
        let key = schedule_key(name);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key.clone()))
            .item("anchor_ms", AttributeValue::N(anchor_ms.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(port_error("recording a schedule", e)),
        }
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("reading a schedule", e))?
            .item
            .unwrap_or_default();
        Ok(ScheduleMark {
            anchor_ms: number(&item, "anchor_ms").unwrap_or(anchor_ms),
            last_due_ms: number(&item, "last_due_ms"),
            fired_at_ms: number(&item, "fired_at_ms"),
        })
    }

    async fn claim_schedule(&self, name: &str, due_ms: i64) -> Result<bool, PortError> {
        let due = AttributeValue::N(due_ms.to_string());
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(schedule_key(name)))
            .update_expression(
                "SET last_due_ms = :due, fired_at_ms = :now, anchor_ms = if_not_exists(anchor_ms, :due)",
            )
            .condition_expression("attribute_not_exists(last_due_ms) OR last_due_ms < :due")
            .expression_attribute_values(":due", due)
            .expression_attribute_values(":now", AttributeValue::N(Utc::now().timestamp_millis().to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(port_error("claiming a schedule", e)),
        }
    }

    /// A scan of the job items (DynamoDB has no order by finish time without another index;
    /// on AWS the TTL removes records, and this serves `weir gc`), keeping the `limit + 1`
    /// smallest ids after `after`.
    async fn finished_before(
        &self,
        before_ms: i64,
        after: Option<&JobId>,
        limit: usize,
    ) -> Result<ExpiredJobs, PortError> {
        let mut found = std::collections::BTreeSet::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :job)")
                .expression_attribute_values(":job", s("JOB#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("finding finished jobs", e))?;
            for item in out.items.as_deref().unwrap_or_default() {
                let job = decode(item)?;
                if finished_before(&job, before_ms) && after.is_none_or(|a| job.job_id > *a) {
                    found.insert(job.job_id);
                    if found.len() > limit + 1 {
                        found.pop_last();
                    }
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let more = found.len() > limit;
        Ok(ExpiredJobs { jobs: found.into_iter().take(limit).collect(), more })
    }

    async fn delete_finished(&self, ids: &[JobId], before_ms: i64) -> Result<u64, PortError> {
        let mut deleted = 0;
        for id in ids {
            let Some(job) = self.get(id).await? else { continue };
            if !finished_before(&job, before_ms) {
                continue;
            }
            // Only the record as read: a job that began again meanwhile changed it.
            let r = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(job_key(&id.0)))
                .condition_expression("job = :job")
                .expression_attribute_values(":job", s(encode(&job)?))
                .send()
                .await;
            match r {
                Ok(_) => {}
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(port_error("deleting a finished job", e)),
            }
            deleted += 1;
            dynamo_stats::forget(&self.client, &self.table, job.status).await?;
            let r = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(source_item_key(&job.source_bucket, &job.source_key)))
                .condition_expression(
                    "newest_job = :id AND (attribute_not_exists(lease_run) OR lease_expires <= :now)",
                )
                .expression_attribute_values(":id", s(id.0.clone()))
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(Utc::now().timestamp_millis().to_string()),
                )
                .send()
                .await;
            match r {
                Ok(_) => {}
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(port_error("deleting a source key", e)),
            }
        }
        Ok(deleted)
    }

    async fn add_to_counter(&self, name: &str, by: u64) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("COUNTERS"))
            .key("sk", s(name))
            .update_expression("ADD n :by")
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
            .send()
            .await
            .map_err(|e| port_error("counting", e))?;
        Ok(())
    }

    async fn counters(&self) -> Result<BTreeMap<String, u64>, PortError> {
        let items = dynamo_stats::query(&self.client, &self.table, "COUNTERS", None).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let name = item.get("sk").and_then(|v| v.as_s().ok())?.clone();
                Some((name, number(item, "n").unwrap_or(0).max(0) as u64))
            })
            .collect())
    }
}

fn schedule_key(name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(format!("SCHED#{name}"))), ("sk".to_string(), s("SCHED"))])
}

/// JSON as a DynamoDB attribute value (numbers keep their decimal text).
pub fn to_attr(v: &serde_json::Value) -> AttributeValue {
    match v {
        serde_json::Value::Null => AttributeValue::Null(true),
        serde_json::Value::Bool(b) => AttributeValue::Bool(*b),
        serde_json::Value::Number(n) => AttributeValue::N(n.to_string()),
        serde_json::Value::String(t) => AttributeValue::S(t.clone()),
        serde_json::Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect()),
        serde_json::Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

/// A DynamoDB attribute value as JSON.
pub fn from_attr(v: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AttributeValue::S(t) => Value::String(t.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attr).collect()),
        AttributeValue::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect()),
        AttributeValue::Ss(x) => Value::from(x.clone()),
        AttributeValue::Ns(x) => {
            Value::Array(x.iter().map(|n| from_attr(&AttributeValue::N(n.clone()))).collect())
        }
        _ => Value::Null,
    }
}

/// Writes `requests` (at most 25) through `write`, which returns the unprocessed ones, retrying
/// those with exponential backoff from `base` until none are left or the attempts run out.
pub async fn write_with_retries<F, Fut>(
    mut requests: Vec<WriteRequest>,
    base: Duration,
    mut write: F,
) -> Result<u32, PortError>
where
    F: FnMut(Vec<WriteRequest>) -> Fut,
    Fut: Future<Output = Result<Vec<WriteRequest>, PortError>>,
{
    let mut attempt = 0;
    while !requests.is_empty() {
        if attempt > 0 {
            tokio::time::sleep(Backoff::new(base, Duration::from_secs(5)).exact().delay(attempt)).await;
        }
        if attempt >= BATCH_ATTEMPTS {
            return Err(PortError::unavailable(
                "writing records",
                format!("{} items still unprocessed after {BATCH_ATTEMPTS} attempts", requests.len()),
            ));
        }
        requests = write(requests).await?;
        attempt += 1;
    }
    Ok(attempt)
}

/// Valid rows in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoRecordsSink {
    client: Client,
    table: String,
}

impl DynamoRecordsSink {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoRecordsSink {
        DynamoRecordsSink { client, table: table.into() }
    }
}

#[async_trait]
impl RecordsSink for DynamoRecordsSink {
    async fn put_batch(&self, items: &[RecordItem]) -> Result<(), PortError> {
        // One request may not name a key twice: the last write of a key wins, as in an upsert.
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, it) in items.iter().enumerate() {
            last.insert((&it.pk, &it.sk), i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_unstable();
        let requests = order
            .into_iter()
            .map(|i| {
                let it = &items[i];
                let mut item: HashMap<String, AttributeValue> = match to_attr(&it.item) {
                    AttributeValue::M(m) => m,
                    other => HashMap::from([("value".to_string(), other)]),
                };
                item.insert("pk".into(), s(it.pk.clone()));
                item.insert("sk".into(), s(it.sk.clone()));
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(invalid)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, PortError>>()?;
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let chunk: Vec<WriteRequest> = requests.by_ref().take(BATCH).collect();
            write_with_retries(chunk, Duration::from_millis(50), |batch| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, batch)
                    .send()
                    .await
                    .map_err(|e| port_error("writing records", e))?;
                Ok(out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default())
            })
            .await?;
        }
        Ok(())
    }

    async fn query(&self, pk: &str, limit: usize) -> Result<Vec<RecordItem>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("querying records", e))?;
            for mut item in r.items.unwrap_or_default() {
                let sk = item.remove("sk").and_then(|v| v.as_s().ok().cloned()).unwrap_or_default();
                item.remove("pk");
                let json = from_attr(&AttributeValue::M(item));
                out.push(RecordItem { pk: pk.to_string(), sk, item: json });
                if limit != 0 && out.len() >= limit {
                    return Ok(out);
                }
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}
