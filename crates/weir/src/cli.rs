//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "An event-driven file pipeline: validate, transform, summarise and load every file that lands in a bucket."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, so several instances can live side by side.
#[derive(Debug, Args)]
pub struct Global {
    /// Where buckets, queue and job store live [default: the config's data_dir, else ./weir-data]
    #[arg(long, global = true, env = "WEIR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: <data dir>/weir.toml or ./weir.toml if present, else the bundled pipelines]
    #[arg(long, short = 'c', global = true, env = "WEIR_CONFIG")]
    pub config: Option<PathBuf>,
    /// More logging (-v debug, -vv trace); WEIR_LOG takes a tracing filter
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the workers of the embedded pipeline and run until Ctrl-C / SIGTERM
    Run(RunArgs),
    /// Print the S3 keys and API token as environment variables (eval "$(weir credentials)")
    Credentials(CredentialsArgs),
    /// Upload files into the input bucket (each upload emits an S3 event)
    Put(PutArgs),
    /// Run the pipeline on one local file now, without a queue or server; prints the summary
    Process(ProcessArgs),
    /// List jobs, or show one
    Jobs(JobsArgs),
    /// Write a commented weir.toml and the sample files into a folder, or (--from) a weir.toml
    /// whose pipeline fits your own CSV/JSON/NDJSON files
    Init(InitArgs),
    /// Print the pipeline weir infers from sample files (format, columns, types) without writing anything
    Infer(InferArgs),
    /// Validate a configuration and print every problem with its location; a warehouse sink's
    /// database is reached and its table compared with the schema
    Check,
    /// Start weir on a temporary data dir, upload the samples, show what happened
    Demo(DemoArgs),
    /// Inspect, replay or purge the dead-letter queue
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Send events for objects already in a bucket (backfill), or re-run finished jobs with --force
    Reprocess(ReprocessArgs),
    /// The alarms with their state (OK, ALARM, INSUFFICIENT_DATA) and why, as weir run evaluated them
    Alarms(AlarmsArgs),
    /// The daily report: write one now, or list the reports written
    #[command(subcommand)]
    Report(ReportCommand),
    /// Create or verify the cloud resources a configuration names
    #[command(subcommand)]
    Setup(SetupCommand),
    /// Run workers only, on the AWS backend ([aws] in the config): any number of processes share the SQS queue
    Worker(WorkerArgs),
    /// The [[schedule]]s with their next and last run
    Schedules(SchedulesArgs),
    /// Apply the [retention] rules now: expire old objects, job records and notifications
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct SchedulesArgs {
    /// One JSON object per schedule, one per line (NDJSON)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Print what would go, delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Write the daily report of a day (reports/YYYY-MM-DD/daily_report.html and .json) and
    /// publish it to the [report] topics
    Daily(ReportDailyArgs),
    /// The reports written, newest first
    List(ReportListArgs),
}

#[derive(Debug, Args)]
pub struct ReportDailyArgs {
    /// The day (UTC) [default: yesterday]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<chrono::NaiveDate>,
    /// Only this pipeline's files
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Write the report but tell nobody
    #[arg(long)]
    pub no_notify: bool,
    /// Print the record of the report as one line of JSON
    #[arg(long)]
    pub json: bool,
    /// Another endpoint for every AWS service (moto, LocalStack) [default: aws.endpoint_url, AWS_ENDPOINT_URL]
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportListArgs {
    /// At most this many
    #[arg(long, default_value_t = 30)]
    pub limit: usize,
    /// One JSON object per report, one per line (NDJSON)
    #[arg(long)]
    pub json: bool,
    /// Another endpoint for every AWS service (moto, LocalStack) [default: aws.endpoint_url, AWS_ENDPOINT_URL]
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Buckets, queues with redrive, queue policy, bucket notifications, SNS topics and DynamoDB
    /// tables; safe to run again (prints what it created and what was there)
    Aws(SetupAwsArgs),
    /// The warehouse table of each pipeline with [pipeline.sinks.postgres]: created, or its
    /// missing columns added; a column whose type differs is reported, never changed. Safe to
    /// run again
    Postgres,
}

#[derive(Debug, Args)]
pub struct SetupAwsArgs {
    /// Another endpoint for every AWS service (moto, LocalStack) [default: aws.endpoint_url, AWS_ENDPOINT_URL]
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Print what would be created, updated or removed, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Jobs at once [default: worker.concurrency from the config]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Another endpoint for every AWS service (moto, LocalStack) [default: aws.endpoint_url, AWS_ENDPOINT_URL]
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct AlarmsArgs {
    /// One JSON object per alarm, one per line (NDJSON)
    #[arg(long)]
    pub json: bool,
    /// Another endpoint for every AWS service, with [aws] in the config (moto, LocalStack) [default: aws.endpoint_url, AWS_ENDPOINT_URL]
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead letters, oldest first
    List {
        /// One JSON object per dead letter, one per line (NDJSON)
        #[arg(long)]
        json: bool,
    },
    /// One dead letter with its event body and its job
    Show { message_id: String },
    /// Put dead letters back on the main queue with a fresh receive count
    Replay {
        /// Message ids to replay
        ids: Vec<String>,
        /// Replay every dead letter
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete every dead letter
    Purge {
        /// Required: purging cannot be undone
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReprocessArgs {
    /// Key prefix to reprocess
    #[arg(long)]
    pub prefix: String,
    /// Bucket [default: the input bucket]; the archive bucket restores files into the input bucket
    #[arg(long)]
    pub bucket: Option<String>,
    /// Only objects whose job has this status (objects without a job count as queued)
    #[arg(long)]
    pub status: Option<String>,
    /// Re-run jobs that already finished
    #[arg(long)]
    pub force: bool,
    /// Events per second at most
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Start over instead of continuing an interrupted run
    #[arg(long)]
    pub restart: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Jobs at once [default: worker.concurrency from the config]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Address of the S3-compatible endpoint, "" for none [default: server.s3_listen, 127.0.0.1:9000]
    #[arg(long, env = "WEIR_S3_LISTEN")]
    pub s3_listen: Option<String>,
    /// Address of the HTTP API, "" for none [default: server.api_listen, 127.0.0.1:8080]
    #[arg(long, env = "WEIR_API_LISTEN")]
    pub api_listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    /// Print `aws configure set` commands for this profile instead of environment variables
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Files to upload
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Object key (one file only) [default: <prefix><file name>]
    #[arg(long, conflicts_with = "prefix")]
    pub key: Option<String>,
    /// Key prefix each file is uploaded under [default: the source prefix of the first pipeline
    /// on the bucket that takes the file's name, else of the bucket's first pipeline]
    #[arg(long)]
    pub prefix: Option<String>,
    /// Bucket [default: the input bucket]
    #[arg(long)]
    pub bucket: Option<String>,
    /// Wait until every job has finished; exit non-zero unless every file made a job and all
    /// succeeded
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The file to process
    pub file: PathBuf,
    /// Folder for the outputs
    #[arg(long, default_value = "weir-out")]
    pub out: PathBuf,
    /// Pipeline to use [default: the first whose source suffix matches the file, else the first]
    #[arg(long)]
    pub pipeline: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub show: Option<JobsCommand>,
    /// Only jobs in this status (queued, running, succeeded, rejected, failed, skipped)
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many, newest first
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per job, one per line (NDJSON)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// One job: counts, outputs, error and workflow steps
    Show {
        job_id: String,
        /// The job as one line of JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write into
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Sample files of one kind (CSV, JSON or NDJSON, gzip'ed or not): write a weir.toml whose
    /// pipeline fits them instead of the bundled samples
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub from: Vec<PathBuf>,
    #[command(flatten)]
    pub read: InferReadArgs,
}

/// Rows of each sample file inference reads unless told otherwise.
pub const DEFAULT_SAMPLE_ROWS: u64 = 100_000;

/// How much of the sample files inference reads.
#[derive(Debug, Args)]
pub struct InferReadArgs {
    /// Read every row (default: the first --sample-rows rows of each file)
    #[arg(long)]
    pub full: bool,
    /// Rows read from each file unless --full
    #[arg(long, default_value_t = DEFAULT_SAMPLE_ROWS, value_name = "N")]
    pub sample_rows: u64,
}

#[derive(Debug, Args)]
pub struct InferArgs {
    /// Sample files of one kind (CSV, JSON or NDJSON, gzip'ed or not)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one line of JSON (the format, and each column with its type, counts and example) for scripts
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub read: InferReadArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Exit after showing the jobs instead of running until Ctrl-C
    #[arg(long)]
    pub exit: bool,
}
