//! The configuration a user writes in `weir.toml`.
//!
//! Plain data with defaults, so a missing file means the bundled sales pipeline and a partial
//! file means "the defaults, except for what I wrote". Loading the file and checking it against
//! the machine (paths, ports) is the binary's job; [`Config::validate`] checks what can be
//! checked from the text alone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::keys::validate_bucket;
use crate::problem::Problem;
pub use crate::report_config::ReportConfig;

/// The configuration `weir init` writes and zero-config runs use: a sales pipeline on `raw/*.csv`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default_weir.toml");

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where buckets (as folders), the queue and the job store live. CLI `--data-dir` wins.
    pub data_dir: Option<PathBuf>,
    pub buckets: BucketsConfig,
    pub queue: QueueConfig,
    pub worker: WorkerConfig,
    #[serde(rename = "pipeline")]
    pub pipelines: Vec<PipelineConfig>,
    pub notify: NotifyConfig,
    pub records: RecordsConfig,
    pub server: ServerConfig,
    /// The AWS backend (S3, SQS, DynamoDB, SNS) for `weir worker`; absent: embedded.
    pub aws: Option<AwsConfig>,
    pub alarms: AlarmsConfig,
    /// The daily report: where it goes, who is told, when it is due.
    pub report: ReportConfig,
    /// Work on a clock (`[[schedule]]`): the daily report, backfills, the retention sweep.
    #[serde(rename = "schedule", skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<crate::schedule_config::ScheduleConfig>,
    /// How long objects and weir's own records are kept (`[retention]`).
    pub retention: crate::schedule_config::RetentionConfig,
    /// How often secrets read from Secrets Manager or files are read again (`[secrets]`).
    pub secrets: crate::secret::SecretsConfig,
}

/// Alarm rules: the five defaults unless turned off, plus the user's own (`[[alarms.rule]]`),
/// where a rule named like a default replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlarmsConfig {
    pub defaults: bool,
    #[serde(rename = "rule")]
    pub rules: Vec<crate::alarms::AlarmRule>,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig { defaults: true, rules: Vec::new() }
    }
}

impl AlarmsConfig {
    /// The rules in force: the defaults (unless turned off) in their order, each replaced by a
    /// configured rule of the same name, then the other configured rules.
    pub fn rules(&self) -> Vec<crate::alarms::AlarmRule> {
        let mut rules = if self.defaults { crate::alarms::default_rules() } else { Vec::new() };
        for rule in &self.rules {
            match rules.iter_mut().find(|r| r.name == rule.name) {
                Some(slot) => *slot = rule.clone(),
                None => rules.push(rule.clone()),
            }
        }
        rules
    }

    fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            if !alarm_name_ok(&r.name) {
                problems.push(Problem::new(
                    format!("alarms.rule[{i}].name"),
                    format!(
                        "{:?} is not a name weir can show everywhere (metrics labels, \
                     logs, mail): use 1-64 letters, digits, spaces and - _ . : /",
                        r.name
                    ),
                ));
                continue;
            }
            let at = format!("alarms.rule[{i}] ({})", r.name);
            if !names.insert(r.name.as_str()) {
                problems.push(Problem::new(format!("{at}.name"), "duplicate alarm name"));
            }
            if !crate::alarms::metrics::ALL.contains(&r.metric.as_str()) {
                problems.push(Problem::new(
                    format!("{at}.metric"),
                    format!(
                        "unknown metric {:?}; one of {}",
                        r.metric,
                        crate::alarms::metrics::ALL.join(", ")
                    ),
                ));
            }
            if r.period_secs == 0 {
                problems.push(Problem::new(format!("{at}.period_secs"), "must be at least 1"));
            }
            if r.evaluation_periods == 0 {
                problems.push(Problem::new(format!("{at}.evaluation_periods"), "must be at least 1"));
            }
            if !r.threshold.is_finite() {
                problems.push(Problem::new(format!("{at}.threshold"), "must be a number"));
            }
        }
        problems
    }
}

/// An alarm name: 1-64 characters of `[A-Za-z0-9 _.:/-]`, starting with a letter or digit.
fn alarm_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ':' | '/'))
}

impl Config {
    /// What weir runs with when no config file is given: the bundled sales pipeline.
    pub fn bundled() -> Config {
        Config::from_toml(DEFAULT_CONFIG_TOML).expect("the bundled default config is valid")
    }

    /// Parses TOML; fields left out take their defaults. An empty document has no pipelines,
    /// so zero-config callers use [`Config::bundled`] instead.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        let mut config: Config = toml::from_str(text)?;
        // An image pipeline takes every file under its prefix unless its source names a suffix
        // (pictures are told apart by their content): the `.csv` default is the data pipelines'.
        if config.pipelines.iter().any(|p| p.kind == PipelineKind::Image) {
            let raw: toml::Table = toml::from_str(text)?;
            let written = raw.get("pipeline").and_then(|p| p.as_array());
            for (i, p) in config.pipelines.iter_mut().enumerate() {
                let source = written.and_then(|w| w.get(i)).and_then(|t| t.get("source"));
                if p.kind == PipelineKind::Image && source.and_then(|s| s.get("suffix")).is_none() {
                    p.source.suffix.clear();
                }
            }
        }
        Ok(config)
    }

    /// The settings written inline that hold a secret, by their path (`server.api_token`,
    /// `notify.subscriptions[1].password`, a webhook's `url`, whose path is often its secret):
    /// a file holding any must be private to weir's user, as `credentials.toml` is. A reference
    /// (`{ secret = ... }`, `{ file = ... }`) is no secret.
    pub fn secrets(&self) -> Vec<String> {
        let mut found: Vec<String> = self
            .secret_settings()
            .into_iter()
            .filter(|(_, v)| v.inline().is_some())
            .map(|(path, _)| path)
            .collect();
        for (i, p) in self.pipelines.iter().enumerate() {
            if p.sinks.postgres.as_ref().is_some_and(|pg| pg.inline_password()) {
                found.push(format!("pipeline[{i}].sinks.postgres.url"));
            }
        }
        found
    }

    /// Every secret setting that is set, inline or a reference, by its path; the PostgreSQL
    /// sink's `url` is one (inline, it counts as a secret only with a password in it).
    pub fn secret_settings(&self) -> Vec<(String, &crate::secret::SecretValue)> {
        let mut found = Vec::new();
        if let Some(v) = &self.server.secret_access_key {
            found.push(("server.secret_access_key".to_string(), v));
        }
        if let Some(v) = &self.server.api_token {
            found.push(("server.api_token".to_string(), v));
        }
        for (i, sub) in self.notify.subscriptions.iter().enumerate() {
            if let Some(v) = &sub.password {
                found.push((format!("notify.subscriptions[{i}].password"), v));
            }
            if let Some(v) = &sub.url {
                found.push((format!("notify.subscriptions[{i}].url"), v));
            }
        }
        for (i, p) in self.pipelines.iter().enumerate() {
            if let Some(v) = p.sinks.postgres.as_ref().and_then(|pg| pg.url.as_ref()) {
                if v.inline().is_none() {
                    found.push((format!("pipeline[{i}].sinks.postgres.url"), v));
                }
            }
        }
        found
    }

    /// [`Config::secret_settings`], to change (the binary makes relative file paths absolute
    /// and puts the values read at start in place of references that are read once).
    pub fn secret_settings_mut(&mut self) -> Vec<(String, &mut crate::secret::SecretValue)> {
        let mut found = Vec::new();
        if let Some(v) = &mut self.server.secret_access_key {
            found.push(("server.secret_access_key".to_string(), v));
        }
        if let Some(v) = &mut self.server.api_token {
            found.push(("server.api_token".to_string(), v));
        }
        for (i, sub) in self.notify.subscriptions.iter_mut().enumerate() {
            if let Some(v) = &mut sub.password {
                found.push((format!("notify.subscriptions[{i}].password"), v));
            }
            if let Some(v) = &mut sub.url {
                found.push((format!("notify.subscriptions[{i}].url"), v));
            }
        }
        for (i, p) in self.pipelines.iter_mut().enumerate() {
            if let Some(v) = p.sinks.postgres.as_mut().and_then(|pg| pg.url.as_mut()) {
                if v.inline().is_none() {
                    found.push((format!("pipeline[{i}].sinks.postgres.url"), v));
                }
            }
        }
        found
    }

    /// Every problem that can be found without touching the machine, one line each.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (role, b) in [
            ("input", &self.buckets.input),
            ("output", &self.buckets.output),
            ("archive", &self.buckets.archive),
        ] {
            if let Err(e) = validate_bucket(b) {
                problems.push(Problem::new(format!("buckets.{role}"), e.to_string()));
            }
        }
        problems.extend(self.notify.validate(self.aws.as_ref().map(|a| &a.topics)));
        problems.extend(self.alarms.validate());
        problems.extend(self.report.validate());
        let pipeline_names: Vec<String> = self.pipelines.iter().map(|p| p.name.clone()).collect();
        problems.extend(crate::schedule_config::validate_schedules(
            &self.schedules,
            &pipeline_names,
            self.aws.is_some(),
        ));
        problems.extend(self.retention.validate());
        problems.extend(self.secrets.validate());
        if self.queue.max_receive_count == 0 {
            problems.push(Problem::new("queue.max_receive_count", "must be at least 1"));
        }
        if self.worker.concurrency == 0 {
            problems.push(Problem::new("worker.concurrency", "must be at least 1"));
        }
        // The records sink of the backend that runs: DynamoDB on AWS, else records.sink.
        let records_sink = match &self.aws {
            Some(aws) => aws.records_table.as_ref().map(|t| format!("aws.records_table = \"{t}\"")),
            None => {
                (self.records.sink != RecordsSinkKind::None).then(|| "records.sink = \"sqlite\"".to_string())
            }
        };
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.pipelines.iter().enumerate() {
            let at = format!("pipeline[{i}] ({})", p.name);
            if !names.insert(p.name.as_str()) {
                problems.push(Problem::new(format!("{at}.name"), "duplicate pipeline name"));
            }
            if let Some(b) = &p.source.bucket {
                if let Err(e) = validate_bucket(b) {
                    problems.push(Problem::new(format!("{at}.source.bucket"), e.to_string()));
                }
            }
            let bucket = p.source.bucket.as_deref().unwrap_or(&self.buckets.input);
            match (p.source.archive, p.source.keep_input_minutes) {
                (ArchiveMode::Move, Some(_)) => problems.push(Problem::new(
                    format!("{at}.source.keep_input_minutes"),
                    "applies only with archive = \"copy\" (with \"move\", the input object goes as soon as its job is done)",
                )),
                (_, Some(0)) => problems.push(Problem::new(
                    format!("{at}.source.keep_input_minutes"),
                    "0 minutes would remove the input as soon as its job is done, which is archive = \"move\"; at least 1",
                )),
                (_, Some(m)) if self.aws.is_some() => problems.push(Problem::new(
                    format!("{at}.source.keep_input_minutes"),
                    format!("is for `weir run`; on AWS the input is removed by an S3 lifecycle rule, in days: remove keep_input_minutes ({m}) and add a [[retention.rule]] with bucket = {bucket:?}, prefix = {:?} and expire_after_days", p.source.prefix),
                )),
                _ => {}
            }
            let mut cols = std::collections::HashSet::new();
            for (j, c) in p.columns.iter().enumerate() {
                if !cols.insert(normalize_field_name(&c.name)) {
                    problems.push(Problem::new(
                        format!("{at}.columns[{j}]"),
                        format!("duplicate column {:?}", c.name),
                    ));
                }
            }
            for (j, d) in p.derived.iter().enumerate() {
                if d.expr.trim().is_empty() {
                    problems
                        .push(Problem::new(format!("{at}.derived[{j}] ({})", d.name), "empty expression"));
                }
            }
            if p.kind == PipelineKind::Image {
                problems.extend(p.image.validate().into_iter().map(|e| e.under(&format!("{at}.image"))));
                if !p.columns.is_empty() || !p.derived.is_empty() {
                    problems.push(Problem::new(
                        at.clone(),
                        "an image pipeline has no columns or derived fields (they describe rows of data)",
                    ));
                }
                if p.sinks.postgres.is_some() {
                    problems.push(Problem::new(
                        format!("{at}.sinks.postgres"),
                        "an image pipeline has no rows to load into a table",
                    ));
                }
            } else if let Some(pg) = &p.sinks.postgres {
                let columns: Vec<String> = p
                    .columns
                    .iter()
                    .map(|c| normalize_field_name(&c.name))
                    .chain(p.derived.iter().map(|d| normalize_field_name(&d.name)))
                    .collect();
                let section = format!("{at}.sinks.postgres");
                problems.extend(pg.validate(&p.name, &columns).into_iter().map(|e| e.under(&section)));
            }
            if let Some(sink) = records_sink.as_ref().filter(|_| p.kind != PipelineKind::Image) {
                if !p.output.formats().contains(&OutputFormat::Ndjson) {
                    problems.push(Problem::new(
                        format!("{at}.output.format"),
                        format!("the records sink ({sink}) loads NDJSON results, and every job would fail loading them; use format = \"ndjson\" or turn the sink off"),
                    ));
                }
            }
        }
        // The recursion guard (nothing weir writes may match a source) and the output keys.
        problems.extend(crate::output_layout::validate(self));
        problems.extend(self.server.validate());
        if let Some(aws) = &self.aws {
            problems.extend(aws.validate());
        }
        problems
    }

    /// The first pipeline whose source matches the object, if any.
    pub fn pipeline_for(&self, bucket: &str, key: &str) -> Option<&PipelineConfig> {
        self.pipelines.iter().find(|p| {
            p.source.bucket.as_deref().unwrap_or(&self.buckets.input) == bucket && p.source.matches(key)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketsConfig {
    pub input: String,
    pub output: String,
    pub archive: String,
}

impl Default for BucketsConfig {
    fn default() -> Self {
        BucketsConfig {
            input: "weir-input".into(),
            output: "weir-output".into(),
            archive: "weir-archive".into(),
        }
    }
}

/// Queue attributes, as an SQS queue has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub visibility_timeout_secs: u64,
    /// Receives after which a message is moved to the DLQ (SQS `maxReceiveCount`).
    pub max_receive_count: u32,
    pub retention_secs: u64,
    pub dlq_retention_secs: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            visibility_timeout_secs: 30,
            max_receive_count: 3,
            retention_secs: 4 * 24 * 3600,
            dlq_retention_secs: 14 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Jobs in flight at once. A job waiting for the disk or the network is a task, not a
    /// thread, and the streaming pass over a large file takes one of as many slots as the
    /// machine has cores, so this can be well above the number of cores.
    pub concurrency: usize,
    /// Seconds a shutting-down worker waits for in-flight jobs before releasing them.
    pub shutdown_grace_secs: u64,
    /// First retry delay after a transient failure; doubles per receive (with jitter).
    pub retry_base_ms: u64,
    /// The longest retry delay.
    pub retry_max_secs: u64,
    /// How often the dead-letter queue is checked for new arrivals to alert on.
    pub dlq_scan_secs: u64,
    /// On start, queue events for objects already waiting under a source prefix that have no
    /// job yet (an upload whose event was lost in a crash, files from before weir ran).
    pub reconcile_on_start: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 32,
            shutdown_grace_secs: 30,
            retry_base_ms: 1000,
            retry_max_secs: 300,
            dlq_scan_secs: 5,
            reconcile_on_start: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub name: String,
    /// What the pipeline makes of a file: rows (`data`, the default) or thumbnails (`image`).
    #[serde(default, skip_serializing_if = "PipelineKind::is_data")]
    pub kind: PipelineKind,
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub format: FormatConfig,
    #[serde(default)]
    pub columns: Vec<ColumnConfig>,
    #[serde(default)]
    pub derived: Vec<DerivedConfig>,
    /// Row-level rules: unknown columns, the invalid-row ratio that rejects a file.
    #[serde(default, skip_serializing_if = "ValidationConfig::is_default")]
    pub validation: ValidationConfig,
    #[serde(default)]
    pub summary: SummaryConfig,
    #[serde(default)]
    pub output: OutputConfig,
    /// The workflow the pipeline's files run through (the built-in one by default).
    #[serde(default, skip_serializing_if = "WorkflowConfig::is_default")]
    pub workflow: WorkflowConfig,
    /// Warehouse tables the valid rows are loaded into (`[pipeline.sinks.postgres]`).
    #[serde(default, skip_serializing_if = "SinksConfig::is_default")]
    pub sinks: SinksConfig,
    /// An image pipeline's thumbnails and limits.
    #[serde(default, skip_serializing_if = "ImageConfig::is_default")]
    pub image: ImageConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineKind {
    /// CSV, JSON or NDJSON: checked, typed and summarised row by row.
    #[default]
    Data,
    /// JPEG, PNG, GIF or WebP pictures: thumbnails and a metadata document (`[pipeline.image]`).
    Image,
}

impl PipelineKind {
    pub fn is_data(&self) -> bool {
        *self == PipelineKind::Data
    }
}

/// `[pipeline.workflow]`: an Amazon States Language definition, and what its task resources
/// mean in weir.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// The definition's file (absolute, or relative to the current folder); unset: the
    /// built-in workflow.
    pub file: Option<PathBuf>,
    /// Task resources the definition names, mapped to weir tasks, e.g.
    /// `"arn:aws:lambda:eu-west-1:123456789012:function:validate-schema" = "weir:validate-schema"`.
    /// A name may contain `*` wildcards; `weir:pass` passes its input through.
    pub resources: std::collections::BTreeMap<String, String>,
}

impl WorkflowConfig {
    pub fn is_default(&self) -> bool {
        self == &WorkflowConfig::default()
    }
}

/// Which objects a pipeline takes: the filter rules of an S3 bucket notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// Defaults to `buckets.input`.
    pub bucket: Option<String>,
    pub prefix: String,
    pub suffix: String,
    /// Larger files are rejected without being read.
    pub max_size_bytes: u64,
    /// What becomes of a source once its job is done: `"move"` (the default) takes it out of the
    /// input, into the archive bucket (or `failed/`); `"copy"` puts a copy there and leaves the
    /// input object in place, for clients that check what they uploaded (rclone, `aws s3 sync`).
    #[serde(skip_serializing_if = "ArchiveMode::is_move")]
    pub archive: ArchiveMode,
    /// With `archive = "copy"`: the input object is removed this many minutes after its upload,
    /// once its job is done. Unset: it stays until a `[[retention.rule]]` removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_input_minutes: Option<u64>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            bucket: None,
            prefix: "raw/".into(),
            suffix: ".csv".into(),
            max_size_bytes: 5 << 30,
            archive: ArchiveMode::Move,
            keep_input_minutes: None,
        }
    }
}

/// How a finished job's source leaves the input (`[pipeline.source] archive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveMode {
    /// Moved to the archive bucket (or `failed/`): the input prefix holds only files waiting.
    #[default]
    Move,
    /// Copied there; the input object stays (until `keep_input_minutes` or a retention rule),
    /// and an unchanged re-upload of it makes no job.
    Copy,
}

impl ArchiveMode {
    pub fn is_move(&self) -> bool {
        *self == ArchiveMode::Move
    }
}

/// Suffixes of compressed files weir reads (gzip, zstd): `raw/*.csv` also takes `raw/x.csv.gz`.
pub const COMPRESSED_SUFFIXES: [&str; 4] = [".gz", ".gzip", ".zst", ".zstd"];

impl SourceConfig {
    /// Whether a finished job's source stays in the input (`archive = "copy"`).
    pub fn keeps_input(&self) -> bool {
        self.archive == ArchiveMode::Copy
    }

    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && key.len() >= self.prefix.len() + self.suffix.len() && {
            let name = &key[self.prefix.len()..];
            self.matches_name(name)
        }
    }

    /// Whether a file name ends with the suffix, optionally followed by a compression suffix.
    pub fn matches_name(&self, name: &str) -> bool {
        if name.ends_with(&self.suffix) {
            return true;
        }
        COMPRESSED_SUFFIXES.iter().any(|c| {
            name.len() >= c.len()
                && name[name.len() - c.len()..].eq_ignore_ascii_case(c)
                && name[..name.len() - c.len()].ends_with(&self.suffix)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormatConfig {
    #[serde(rename = "type")]
    pub kind: FormatKind,
    /// One ASCII character.
    pub delimiter: char,
    pub quote: char,
    pub has_header: bool,
    /// A record larger than this is an invalid row, not an out-of-memory.
    pub max_record_bytes: usize,
    /// Text encoding of the input: `utf-8` (default; a bad byte is reported with its offset), or
    /// any WHATWG label such as `latin-1`, `iso-8859-1`, `windows-1252`, `utf-16le`.
    pub encoding: String,
    /// Compression of the input: `auto` (by suffix or magic bytes), `none`, `gzip`, `zstd`.
    pub compression: Compression,
    /// The decimal point of `float` and `decimal` values: `.` (default) or `,` (`12,50`, as
    /// files from locales that write decimal commas have it, usually `;`-delimited).
    pub decimal_separator: char,
    /// A compressed input that inflates past this many bytes is refused (a decompression bomb).
    /// Unset: `source.max_size_bytes`, what the file could have been uncompressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_decompressed_bytes: Option<u64>,
}

impl Default for FormatConfig {
    fn default() -> Self {
        FormatConfig {
            kind: FormatKind::Csv,
            delimiter: ',',
            quote: '"',
            has_header: true,
            max_record_bytes: 16 << 20,
            encoding: "utf-8".into(),
            compression: Compression::Auto,
            decimal_separator: '.',
            max_decompressed_bytes: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatKind {
    #[default]
    Csv,
    /// One JSON object, an array of objects, or objects one after another.
    Json,
    /// One JSON object per line (read exactly as `json`).
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Gzip or zstd when the name ends with `.gz`/`.zst` or the content starts with their magic bytes.
    #[default]
    Auto,
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    pub name: String,
    #[serde(rename = "type", default)]
    pub ty: ColumnType,
    /// Present in the header (else the file is rejected) and, unless `nullable`, non-empty in
    /// every row (else the row is invalid).
    #[serde(default)]
    pub required: bool,
    /// Whether an empty (or JSON `null`) value is allowed; defaults to `!required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    /// For `date` and `datetime`: a chrono format string (`%Y-%m-%d`; RFC 3339 for datetime).
    #[serde(default)]
    pub format: Option<String>,
    /// Smallest and largest allowed value: numbers for numeric columns, text in the column's
    /// format for `date`/`datetime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Scalar>,
    /// Length limits in characters, for text columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// The whole value must match this regular expression (Rust `regex` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// No two valid rows may share a value (checked exactly for up to `summary.max_unique_values`
    /// distinct values; past that only against the values already seen, with a warning).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    /// The value used when the field is empty or missing (parsed as the column's type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Scalar>,
    /// For `enum`: the allowed values (compared exactly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// For `decimal`: total significant digits (at most 38) and digits after the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
}

impl ColumnConfig {
    /// A column with only a name and a type, everything else default.
    pub fn new(name: &str, ty: ColumnType) -> ColumnConfig {
        ColumnConfig {
            name: name.into(),
            ty,
            required: false,
            nullable: None,
            format: None,
            min: None,
            max: None,
            min_length: None,
            max_length: None,
            regex: None,
            unique: false,
            default: None,
            values: Vec::new(),
            precision: None,
            scale: None,
        }
    }

    pub fn is_nullable(&self) -> bool {
        self.nullable.unwrap_or(!self.required)
    }
}

/// A value written in the configuration: a bound, a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(v) => write!(f, "{v}"),
            Scalar::Text(t) => f.write_str(t),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    #[default]
    String,
    Integer,
    Float,
    /// Exact decimal with `precision`/`scale` (default 18/2), e.g. money.
    Decimal,
    Boolean,
    Date,
    /// A date and time: RFC 3339 by default, or `format`.
    Datetime,
    Email,
    /// One of `values`.
    Enum,
}

impl ColumnType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float | ColumnType::Decimal)
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Decimal => "decimal",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
            ColumnType::Email => "email",
            ColumnType::Enum => "enum",
        }
    }
}

/// `[pipeline.validation]`: rules about whole rows and the whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Columns (or JSON keys) the schema does not name: `keep` (as strings) or `drop`.
    pub unknown_columns: UnknownColumns,
    /// Reject the whole file (a permanent error) when more than this share of its rows is
    /// invalid: by default 0.5, a file where most rows are invalid; `1.0` accepts any share.
    pub max_invalid_ratio: f64,
    /// Reject the whole file (a permanent error) when it has fewer data rows (valid or not) than
    /// this: by default 1, so a file with a header and no rows is not a silent success; `0`
    /// accepts an empty file.
    pub min_rows: u64,
}

/// The share of invalid rows that rejects a file unless `validation.max_invalid_ratio` says otherwise.
pub const DEFAULT_MAX_INVALID_RATIO: f64 = 0.5;

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            unknown_columns: UnknownColumns::default(),
            max_invalid_ratio: DEFAULT_MAX_INVALID_RATIO,
            min_rows: 1,
        }
    }
}

impl ValidationConfig {
    pub fn is_default(&self) -> bool {
        self == &ValidationConfig::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownColumns {
    #[default]
    Keep,
    Drop,
}

/// A field computed from others, e.g. `revenue = quantity * price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedConfig {
    pub name: String,
    /// Arithmetic over numeric columns and literals (`+ - * /`, parentheses), and functions:
    /// `concat(a, "-", b)`, `upper(x)`, `lower(x)`, `trim(x)`, `length(x)`, `substr(x, start, len)`,
    /// `coalesce(a, b)`, `round(x, digits)`, `abs(x)`.
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    /// Columns whose value counts are reported (top `top_n`).
    pub categorical: Vec<String>,
    pub top_n: usize,
    /// Distinct values counted per categorical column before counting stops growing.
    pub max_distinct: usize,
    /// Aggregates per group, e.g. revenue and quantity per product.
    pub group_by: Vec<GroupByConfig>,
    /// A numeric field whose sum is quoted in the success notification (e.g. `revenue`).
    pub total: Option<String>,
    /// Invalid rows described in the error report (the count is always exact).
    pub max_errors_in_report: usize,
    /// The error report's descriptions stop at this many bytes (the report says so). Each
    /// description quotes the row's schema columns and at most 16 other fields.
    pub max_error_report_bytes: u64,
    /// Fields whose distinct values are counted (e.g. unique users): exact up to
    /// `max_unique_values`, then a HyperLogLog estimate (about 1 % error), flagged as such.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<String>,
    /// Fields whose smallest and largest value are reported (e.g. the time range of `timestamp`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub range: Vec<String>,
    /// Distinct values remembered per `unique` summary field or `unique = true` column (16 bytes
    /// each, so the default bounds each set to about 16 MiB).
    pub max_unique_values: usize,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            categorical: Vec::new(),
            top_n: 10,
            max_distinct: 10_000,
            group_by: Vec::new(),
            total: None,
            max_errors_in_report: 1000,
            max_error_report_bytes: 8 << 20,
            unique: Vec::new(),
            range: Vec::new(),
            max_unique_values: 500_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupByConfig {
    pub by: String,
    /// Numeric fields aggregated per group (count, sum, min, max, avg).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Groups tracked before further new groups are counted under `(other)`.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
}

fn default_max_groups() -> usize {
    10_000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    pub format: OutputFormat,
    /// Parquet: rows per row group (each is buffered in memory before it is written).
    pub parquet_row_group_rows: usize,
    /// Threads one large file is processed on (NDJSON output, uncompressed CSV input, no
    /// `unique` column); 1 is a single pass.
    pub threads: usize,
    /// A job whose results and error report pass this many bytes is rejected (a small file can
    /// describe a huge one). Unset: 4 × `source.max_size_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Where the results (in `format`) go, as a key template in the output bucket (see
    /// [`crate::key_template`]); unset: `processed/{bucket}/{key}.<format's extension>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results_key: Option<String>,
    /// Where the summary goes; unset: `reports/{bucket}/{key}.summary.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_key: Option<String>,
    /// Where the error report goes; unset: `errors/{bucket}/{key}.errors.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_key: Option<String>,
    /// Where a processed source goes in the archive bucket; unset: `{key}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_key: Option<String>,
    /// Where a rejected source goes in its own bucket; unset: `failed/{yyyy}/{mm}/{dd}/{key}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_key: Option<String>,
    /// More result formats written from the same pass (`[[pipeline.output.also]]`), each
    /// with its own key: the rows are read and validated once and go to every format.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<AlsoResults>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            format: OutputFormat::Ndjson,
            parquet_row_group_rows: 65_536,
            threads: 1,
            max_bytes: None,
            results_key: None,
            summary_key: None,
            errors_key: None,
            archive_key: None,
            failed_key: None,
            also: Vec::new(),
        }
    }
}

impl OutputConfig {
    /// Every result format, `format` first, then the `also` ones in their order.
    pub fn formats(&self) -> Vec<OutputFormat> {
        std::iter::once(self.format).chain(self.also.iter().map(|a| a.format)).collect()
    }
}

/// `[[pipeline.output.also]]`: one more result format from the same pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsoResults {
    pub format: OutputFormat,
    /// Key template in the output bucket; unset: `processed/{bucket}/{key}.<extension>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON object per valid row.
    #[default]
    Ndjson,
    /// One document: `{source_file, processed_at, data: [...], total_records, valid_records,
    /// invalid_records}`.
    Json,
    /// Apache Parquet with typed columns.
    Parquet,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Ndjson => "ndjson",
            OutputFormat::Json => "json",
            OutputFormat::Parquet => "parquet",
        }
    }
}

pub use crate::aws_config::AwsConfig;
pub use crate::image_config::{ExifPolicy, ImageConfig, ThumbnailFormat, ThumbnailSize};
pub use crate::notify_config::{
    NotifyConfig, SmtpSecurity, SubscriptionConfig, SubscriptionKind, WebhookFormat,
};
pub use crate::sink_config::{LoadMode, PostgresSinkConfig, SinksConfig};

/// Where valid records are loaded besides the results object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    pub sink: RecordsSinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordsSinkKind {
    #[default]
    None,
    /// A `records` table (pk, sk, item JSON) in `records.db` in the data dir.
    Sqlite,
}

/// The S3-compatible endpoint and the HTTP API that `weir run` serves.
///
/// Credentials left out here come from the environment (`WEIR_ACCESS_KEY_ID`,
/// `WEIR_SECRET_ACCESS_KEY`, `WEIR_API_TOKEN`), else from `<data dir>/credentials.toml`, which
/// weir creates (mode 0600) on first start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the S3-compatible endpoint; an empty string turns it off.
    pub s3_listen: String,
    /// Address of the HTTP API; an empty string turns it off.
    pub api_listen: String,
    /// Domains under which buckets are addressed virtual-host style (`<bucket>.localhost:9000`);
    /// path style (`localhost:9000/<bucket>`) always works.
    pub s3_domains: Vec<String>,
    pub access_key_id: Option<String>,
    /// A string or a reference (`{ secret = "arn:...", key = "..." }`, `{ file = "/path" }`).
    pub secret_access_key: Option<crate::secret::SecretValue>,
    pub api_token: Option<crate::secret::SecretValue>,
    /// Largest object accepted through the S3 endpoint (one PUT, or all parts of a multipart
    /// upload together).
    pub max_object_bytes: u64,
    /// Largest request body the HTTP API accepts.
    pub max_api_body_bytes: u64,
    /// Open connections per listener; further clients wait to be accepted.
    pub max_connections: usize,
    /// Longest an HTTP API request may take.
    pub request_timeout_secs: u64,
    /// Longest wait for a request's headers, or between two pieces of an upload's body.
    pub idle_timeout_secs: u64,
    /// PEM certificate chain and private key: both set serves HTTPS on both listeners.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Multipart uploads neither completed nor aborted for this long are removed.
    pub multipart_expiry_secs: u64,
    /// Accept SigV2 header-signed requests on the S3 endpoint (legacy clients; their `Date` must
    /// be within 15 minutes). Off: the AWS CLI, boto3 and current SDKs sign with SigV4.
    pub sigv2: bool,
    /// Accept SigV2 presigned URLs (valid for at most 7 days), which `aws s3 presign` of the AWS
    /// CLI v1 makes.
    pub sigv2_presigned: bool,
    /// How long a dashboard session (the cookie a sign-in sets) lasts.
    pub session_ttl_secs: u64,
    /// Serve HTML, SVG and XML objects inline from the S3 endpoint (a browser then runs their
    /// scripts on the endpoint's origin). Off: they are sent as attachments.
    pub inline_active_content: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            s3_listen: "127.0.0.1:9000".into(),
            api_listen: "127.0.0.1:8080".into(),
            s3_domains: vec!["localhost".into()],
            access_key_id: None,
            secret_access_key: None,
            api_token: None,
            max_object_bytes: 5 << 30,
            max_api_body_bytes: 64 << 20,
            max_connections: 512,
            request_timeout_secs: 300,
            idle_timeout_secs: 30,
            tls_cert: None,
            tls_key: None,
            multipart_expiry_secs: 7 * 24 * 3600,
            sigv2: false,
            sigv2_presigned: true,
            session_ttl_secs: 12 * 3600,
            inline_active_content: false,
        }
    }
}

impl ServerConfig {
    fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, addr) in [("s3_listen", &self.s3_listen), ("api_listen", &self.api_listen)] {
            if !addr.is_empty() && addr.parse::<std::net::SocketAddr>().is_err() {
                problems.push(Problem::new(
                    format!("server.{name}"),
                    format!("{addr:?} is not an address such as \"127.0.0.1:9000\" (\"\" turns it off)"),
                ));
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            problems.push(Problem::new("server", "access_key_id and secret_access_key go together"));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            problems.push(Problem::new("server", "tls_cert and tls_key go together"));
        }
        for (name, secret) in [("secret_access_key", &self.secret_access_key), ("api_token", &self.api_token)]
        {
            if let Some(secret) = secret {
                problems.extend(secret.validate().into_iter().map(|p| p.under(&format!("server.{name}"))));
            }
        }
        for (name, value) in [
            ("max_object_bytes", self.max_object_bytes),
            ("max_api_body_bytes", self.max_api_body_bytes),
            ("max_connections", self.max_connections as u64),
            ("request_timeout_secs", self.request_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("session_ttl_secs", self.session_ttl_secs),
        ] {
            if value == 0 {
                problems.push(Problem::new(format!("server.{name}"), "must be at least 1"));
            }
        }
        problems
    }
}

/// Field names as they appear in the output: trimmed, lowercased, spaces as `_`.
pub fn normalize_field_name(name: &str) -> String {
    name.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_the_sales_pipeline_and_valid() {
        let c = Config::bundled();
        assert_eq!(c.pipelines.len(), 3);
        assert_eq!(c.pipelines[0].columns.len(), 6);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert!(c.pipeline_for("weir-input", "raw/sales.csv").is_some());
        assert!(c.pipeline_for("weir-input", "failed/2024/01/01/sales.csv").is_none());
        assert!(c.pipeline_for("weir-input", "raw/notes.txt").is_none());
        // The image pipeline takes any name under images/ (the content decides), nothing else.
        let images = &c.pipelines[1];
        assert_eq!((images.kind, images.source.suffix.as_str()), (PipelineKind::Image, ""));
        assert_eq!(images.image, ImageConfig::default());
        assert_eq!(c.pipeline_for("weir-input", "images/cat.JPG").map(|p| p.name.as_str()), Some("images"));
        assert_eq!(c.pipeline_for("weir-input", "images/notes.txt").map(|p| p.name.as_str()), Some("images"));
        assert!(c.pipeline_for("weir-input", "failed/2024/01/01/images/cat.jpg").is_none());
        // The records the HTTP API ingests.
        assert_eq!(
            c.pipeline_for("weir-input", "records/ingest/a.ndjson").map(|p| p.name.as_str()),
            Some("records")
        );
    }

    #[test]
    fn an_image_pipeline_takes_any_suffix_unless_it_names_one() {
        let c = Config::from_toml(
            "[[pipeline]]\nname = \"sales\"\n[[pipeline]]\nname = \"photos\"\nkind = \"image\"\nsource = { prefix = \"in/\" }\n\
             [[pipeline]]\nname = \"jpegs\"\nkind = \"image\"\nsource = { prefix = \"j/\", suffix = \".jpg\" }\n\
             [pipeline.image]\nsizes = { banner = \"1200x400\" }\nexif = \"keep\"\n",
        )
        .unwrap();
        let suffixes: Vec<_> = c.pipelines.iter().map(|p| p.source.suffix.as_str()).collect();
        assert_eq!(suffixes, [".csv", "", ".jpg"]);
        assert_eq!(c.pipelines[2].image.exif, ExifPolicy::Keep);
        assert_eq!(c.pipelines[2].image.boxes().unwrap(), [("banner".to_string(), 1200, 400)]);
        assert!(c.validate().is_empty(), "{:?}", c.validate());

        let mut bad = c.clone();
        bad.pipelines[1].columns = Config::bundled().pipelines[0].columns.clone();
        bad.pipelines[1].image.quality = 101;
        bad.pipelines[1].sinks.postgres = Some(crate::sink_config::PostgresSinkConfig::default());
        let problems: Vec<String> = bad.validate().iter().map(ToString::to_string).collect();
        assert!(
            problems
                .iter()
                .any(|p| p == "pipeline[1] (photos).image.quality: 101 is not a quality; use 1-100"),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("pipeline[1] (photos): an image pipeline has no columns")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p
                == "pipeline[1] (photos).sinks.postgres: an image pipeline has no rows to load into a table"),
            "{problems:?}"
        );
        assert!(Config::from_toml("[[pipeline]]\nname = \"x\"\nkind = \"video\"\n").is_err());
        assert!(Config::from_toml(
            "[[pipeline]]\nname = \"x\"\nkind = \"image\"\nimage = { exif = \"gps\" }\n"
        )
        .is_err());
    }

    #[test]
    fn partial_files_keep_defaults_and_unknown_keys_are_errors() {
        let c = Config::from_toml("[queue]\nmax_receive_count = 5\n").unwrap();
        assert_eq!(c.queue.max_receive_count, 5);
        assert_eq!(c.queue.visibility_timeout_secs, 30);
        assert!(Config::from_toml("[queue]\nmax_recieve_count = 5\n").is_err());
    }

    #[test]
    fn validation_finds_loops_and_duplicates() {
        let mut c = Config::bundled();
        c.pipelines[0].source.prefix = String::new();
        let first = c.pipelines[0].columns[0].clone();
        c.pipelines[0].columns.push(first);
        let problems = c.validate();
        assert!(problems.iter().any(|p| p.to_string().contains("failed/")), "{problems:?}");
        assert!(problems.iter().any(|p| p.to_string().contains("duplicate column")), "{problems:?}");
    }

    #[test]
    fn the_schema_language_parses_and_unknown_keys_are_errors() {
        let c = Config::from_toml(
            r#"
[[pipeline]]
name = "events"
source = { suffix = ".json" }
format = { type = "json", compression = "auto", encoding = "latin-1" }
validation = { unknown_columns = "drop", max_invalid_ratio = 0.05 }
output = { format = "parquet", threads = 2 }
[[pipeline.columns]]
name = "amount"
type = "decimal"
precision = 10
scale = 2
min = 0
max = 1e6
default = "0.00"
nullable = false
[[pipeline.columns]]
name = "code"
regex = "[A-Z]{3}"
min_length = 3
unique = true
[[pipeline.columns]]
name = "kind"
type = "enum"
values = ["a", "b"]
"#,
        )
        .unwrap();
        let p = &c.pipelines[0];
        assert_eq!(p.format.kind, FormatKind::Json);
        assert_eq!(p.output.format, OutputFormat::Parquet);
        assert_eq!(p.validation.unknown_columns, UnknownColumns::Drop);
        assert_eq!(p.validation.max_invalid_ratio, 0.05);
        assert_eq!(p.validation.min_rows, 1);
        assert_eq!(p.columns[0].min, Some(Scalar::Int(0)));
        assert_eq!(p.columns[0].max, Some(Scalar::Float(1e6)));
        assert!(!p.columns[0].is_nullable() && p.columns[2].is_nullable());
        assert!(p.columns[1].unique);
        assert!(Config::from_toml(
            "[[pipeline]]\nname = \"x\"\n[[pipeline.columns]]\nname = \"a\"\nregexp = \"x\"\n"
        )
        .is_err());
        assert!(Config::from_toml("[[pipeline]]\nname = \"x\"\nvalidation = { max_invalid = 1 }\n").is_err());
        let mut c = Config::bundled();
        c.records.sink = RecordsSinkKind::Sqlite;
        c.pipelines[0].output.format = OutputFormat::Parquet;
        assert!(c.validate().iter().any(|p| p
            .to_string()
            .contains("output.format: the records sink (records.sink = \"sqlite\") loads NDJSON")));
        // On AWS the sink is the DynamoDB table: JSON results are refused there too.
        let mut c = Config::bundled();
        c.pipelines[0].output.format = OutputFormat::Json;
        let mut aws = AwsConfig::default();
        assert!(c.validate().is_empty(), "no sink, any format: {:?}", c.validate());
        aws.records_table = Some("weir-records".into());
        c.aws = Some(aws);
        let problems: Vec<String> = c.validate().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            ["pipeline[0] (sales).output.format: the records sink (aws.records_table = \"weir-records\") loads NDJSON results, and every job would fail loading them; use format = \"ndjson\" or turn the sink off"]
        );
        c.pipelines[0].output.format = OutputFormat::Ndjson;
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn archive_by_copy_reads_and_its_keep_time_is_checked() {
        let c = Config::from_toml(
            "[[pipeline]]\nname = \"s\"\n[pipeline.source]\narchive = \"copy\"\nkeep_input_minutes = 60\n",
        )
        .unwrap();
        assert!(c.pipelines[0].source.keeps_input());
        assert_eq!(c.pipelines[0].source.keep_input_minutes, Some(60));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert!(!SourceConfig::default().keeps_input(), "move is the default");
        assert!(
            Config::from_toml("[[pipeline]]\nname = \"s\"\n[pipeline.source]\narchive = \"keep\"\n").is_err()
        );

        let problems = |c: &Config| c.validate().iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let mut moved = c.clone();
        moved.pipelines[0].source.archive = ArchiveMode::Move;
        assert_eq!(problems(&moved), ["pipeline[0] (s).source.keep_input_minutes: applies only with archive = \"copy\" (with \"move\", the input object goes as soon as its job is done)"]);
        let mut zero = c.clone();
        zero.pipelines[0].source.keep_input_minutes = Some(0);
        assert!(problems(&zero)[0].contains("at least 1"), "{:?}", problems(&zero));
        // On AWS the input goes by an S3 lifecycle rule: weir check says which one to write.
        let mut aws = c.clone();
        aws.aws = Some(AwsConfig::default());
        assert_eq!(problems(&aws), ["pipeline[0] (s).source.keep_input_minutes: is for `weir run`; on AWS the input is removed by an S3 lifecycle rule, in days: remove keep_input_minutes (60) and add a [[retention.rule]] with bucket = \"weir-input\", prefix = \"raw/\" and expire_after_days"]);
        aws.pipelines[0].source.keep_input_minutes = None;
        assert!(problems(&aws).is_empty(), "archive = \"copy\" itself works on AWS: {:?}", problems(&aws));
    }

    #[test]
    fn compressed_files_match_their_suffix() {
        let s = SourceConfig::default();
        assert!(s.matches("raw/a.csv") && s.matches("raw/a.csv.gz") && s.matches("raw/a.csv.ZST"));
        assert!(!s.matches("raw/a.gz") && !s.matches("raw/a.csv.bz2") && !s.matches("raw/.gz"));
        assert!(s.matches_name("sales.csv.gzip"));
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_field_name("  Customer Name "), "customer_name");
        assert_eq!(normalize_field_name("ORDER_ID"), "order_id");
    }

    #[test]
    fn server_defaults_are_loopback_and_problems_are_found() {
        let c = Config::bundled();
        assert_eq!(c.server.s3_listen, "127.0.0.1:9000");
        assert_eq!(c.server.api_listen, "127.0.0.1:8080");
        let c = Config::from_toml("[server]\ns3_listen = \"nowhere\"\ntls_cert = \"c.pem\"\n").unwrap();
        let problems = c.validate();
        assert!(problems.iter().any(|p| p.to_string().contains("server.s3_listen")), "{problems:?}");
        assert!(problems.iter().any(|p| p.to_string().contains("tls_key")), "{problems:?}");
        assert!(Config::from_toml("[server]\ns3_listn = \"x\"\n").is_err());
    }

    #[test]
    fn alarm_rules_from_the_config_replace_and_extend_the_defaults() {
        let bundled = Config::bundled();
        assert_eq!(bundled.alarms.rules(), crate::alarms::default_rules());
        let c = Config::from_toml(
            r#"
            [[alarms.rule]]
            name = "queue-backlog"
            metric = "queue_messages"
            statistic = "Maximum"
            period_secs = 60
            evaluation_periods = 2
            threshold = 1000
            comparison = "GreaterThanThreshold"

            [[alarms.rule]]
            name = "slow-p90"
            metric = "job_duration_seconds"
            statistic = "p90"
            period_secs = 60
            evaluation_periods = 1
            threshold = 5
            comparison = "GreaterThanThreshold"
            "#,
        )
        .unwrap();
        assert!(c.validate().iter().all(|p| !p.to_string().contains("alarms")), "{:?}", c.validate());
        let rules = c.alarms.rules();
        let names: Vec<_> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["dlq-not-empty", "queue-backlog", "error-rate", "slow-jobs", "stale-data", "slow-p90"]
        );
        assert_eq!((rules[1].threshold, rules[1].period_secs), (1000.0, 60));
        assert_eq!(rules[5].statistic, crate::alarms::Statistic::Percentile(90.0));

        let only = Config::from_toml("[alarms]\ndefaults = false\n").unwrap();
        assert!(only.alarms.rules().is_empty());

        let bad = Config::from_toml(
            r#"
            [[alarms.rule]]
            name = "x"
            metric = "queue_depth"
            statistic = "Maximum"
            period_secs = 0
            evaluation_periods = 1
            threshold = 1
            comparison = "GreaterThanThreshold"
            "#,
        )
        .unwrap();
        let problems = bad.validate();
        let bad_config = bad;
        assert!(
            problems
                .iter()
                .any(|p| p.to_string().contains("alarms.rule[0] (x).metric: unknown metric \"queue_depth\"")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.to_string().contains("alarms.rule[0] (x).period_secs")),
            "{problems:?}"
        );
        // Names end up in metrics labels, logs and mail: no quotes, newlines or braces.
        for bad in
            ["", " x", "x\"} 1\nweir_files_total{status=\"succeeded\"} 999999", "a{b}", &"x".repeat(65)]
        {
            let mut config = bad_config.clone();
            config.alarms.rules[0].name = bad.to_string();
            let problems = config.validate();
            assert!(
                problems.iter().any(|p| p.to_string().starts_with("alarms.rule[0].name: ")),
                "{bad:?}: {problems:?}"
            );
        }
        assert!(alarm_name_ok("queue-backlog") && alarm_name_ok("errors: api/v1 5xx"));
        assert!(!alarm_name_ok("errors (5xx)"));
        let err = Config::from_toml("[[alarms.rule]]\nname = \"x\"\nstatistic = \"Median\"\n").unwrap_err();
        assert!(err.to_string().contains("statistic"), "{err}");
    }
}
