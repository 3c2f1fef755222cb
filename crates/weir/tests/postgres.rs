//! The PostgreSQL warehouse sink end to end (issue #16), against a real PostgreSQL each test
//! starts (`weir_postgres::testing`: initdb + pg_ctl on a free port, stopped when the test
//! ends) and a real `weir run`, files uploaded through its S3 endpoint with the AWS CLI:
//!
//! - typed rows in the table (numeric, date, NULL, non-ASCII), the seed's `data ->> 'field'`
//!   query, `weir setup postgres` twice, `weir check`, a redelivered file, new versions of a
//!   key in replace and append mode, `weir jobs show` and `/metrics`;
//! - `weir run` killed with `kill -9` in the middle of a COPY, then resumed: each row once;
//! - the peak resident memory of `weir run` over four loads in one process: bounded, not growing;
//! - PostgreSQL stopped while files arrive: retried, nothing rejected, each file loaded once
//!   after the restart; dead-lettered after the last receive and loaded by a DLQ replay; a row
//!   PostgreSQL refuses fails the file with its line and reason, and none of its rows stay;
//! - a wrong password and an unreachable host: clear errors, and the worker stays up;
//! - a schema with a new column, and a column whose type changed.
//!
//! The AWS CLI comes from `WEIR_TEST_AWS` (set by `scripts/test`), else the repo's `.venv`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ok, repo, start_moto, tool, until, weir_in, Proc, AWS_ENV};
use serde_json::Value;
use weir_postgres::testing::TestServer;

/// `[[pipeline.columns]]` tables, one per (name, type, settings).
fn columns(list: &[(&str, &str, &str)]) -> String {
    list.iter()
        .map(|(name, ty, settings)| {
            format!("[[pipeline.columns]]\nname = \"{name}\"\ntype = \"{ty}\"\n{settings}\n")
        })
        .collect()
}

const REQUIRED: &str = "required = true";
const NULLABLE: &str = "nullable = true";

/// Two pipelines: `sales` (typed columns, a derived field) into `sales`, replacing a key's
/// rows; `events` into `analytics.events`, appending each version's.
fn config(max_receive_count: u32) -> String {
    let sales = columns(&[
        ("order_id", "string", REQUIRED),
        ("customer_name", "string", REQUIRED),
        ("product", "string", REQUIRED),
        ("quantity", "integer", REQUIRED),
        ("price", "decimal", "precision = 10\nscale = 2\nrequired = true"),
        ("date", "date", REQUIRED),
        ("note", "string", NULLABLE),
    ]);
    let events = columns(&[("id", "string", REQUIRED), ("amount", "integer", REQUIRED)]);
    format!(
        r#"
[queue]
visibility_timeout_secs = 2
max_receive_count = {max_receive_count}

[worker]
retry_base_ms = 100
retry_max_secs = 1
dlq_scan_secs = 1
shutdown_grace_secs = 1

[alarms]
defaults = false

[[pipeline]]
name = "sales"
[pipeline.source]
prefix = "raw/"
suffix = ".csv"
{sales}[[pipeline.derived]]
name = "revenue"
expr = "quantity * price"
[pipeline.sinks.postgres]
table = "sales"
mode = "replace"

[[pipeline]]
name = "events"
[pipeline.source]
prefix = "logs/"
suffix = ".csv"
{events}[pipeline.sinks.postgres]
table = "analytics.events"
mode = "append"
"#
    )
}

const SALES: &str = "order_id,customer_name,product,quantity,price,date,note\n\
    A1,สมชาย,Widget,2,12.30,2024-01-15,\n\
    A2,Zoë,Gadget,1,5.05,2024-01-16,gift wrap\n\
    A3,Bob,Widget,x,1.00,2024-01-16,\n\
    A4,Ann,Widget,3,0.99,2024-01-17,\"two\nlines\"\n";

/// A PostgreSQL, a data dir and a config; `weir` commands with the database URL in
/// `WEIR_POSTGRES_URL`.
struct Env {
    pg: TestServer,
    dir: tempfile::TempDir,
    url: String,
}

/// A running `weir run` and how to reach it.
struct Running {
    proc: Proc,
    s3: String,
    api: String,
}

impl Env {
    fn new(max_receive_count: u32) -> Env {
        let pg = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("weir.toml"), config(max_receive_count)).unwrap();
        let url = pg.url();
        Env { pg, dir, url }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn weir(&self) -> Command {
        let mut c = weir_in(self.data());
        c.arg("--config").arg(self.data().join("weir.toml")).env("WEIR_POSTGRES_URL", &self.url);
        c
    }

    /// `weir ARGS`, which must succeed; its stdout.
    fn succeeds(&self, args: &[&str]) -> String {
        ok(&self.weir().args(args).output().unwrap())
    }

    /// `weir ARGS`, which must exit 1 (a problem found); its stdout.
    fn finds_problems(&self, args: &[&str]) -> String {
        let out = self.weir().args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "weir {args:?}: {text}");
        text
    }

    fn set_config(&self, toml: &str) {
        std::fs::write(self.data().join("weir.toml"), toml).unwrap();
    }

    fn start(&self) -> Running {
        let endpoints = self.data().join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.data().join("run.log")).unwrap();
        let proc =
            Proc::spawn(self.weir().env("WEIR_LOG", "info").arg("run").stdout(Stdio::null()).stderr(log));
        let e: Value = until("weir run's endpoints.json", Duration::from_secs(60), || {
            serde_json::from_slice(&std::fs::read(&endpoints).ok()?).ok()
        });
        Running { proc, s3: e["s3"].as_str().unwrap().into(), api: e["api"].as_str().unwrap().into() }
    }

    fn credential(&self, name: &str) -> String {
        let creds = std::fs::read_to_string(self.data().join("credentials.toml")).unwrap();
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{name} in credentials.toml"))
            .to_owned()
    }

    /// `aws s3 cp` through weir's S3 endpoint.
    fn upload(&self, run: &Running, body: &str, key: &str) {
        let file = self.data().join("upload.tmp");
        std::fs::write(&file, body).unwrap();
        let out = Command::new(tool("WEIR_TEST_AWS", "aws"))
            .args(["--endpoint-url", &run.s3, "s3", "cp"])
            .arg(&file)
            .arg(format!("s3://weir-input/{key}"))
            .env("AWS_ACCESS_KEY_ID", self.credential("access_key_id"))
            .env("AWS_SECRET_ACCESS_KEY", self.credential("secret_access_key"))
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        ok(&out);
    }

    fn jobs(&self) -> Vec<Value> {
        // One JSON object per line.
        self.succeeds(&["jobs", "--json", "--limit", "1000"])
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect()
    }

    /// The newest job of `key` once `done` says it is what the test waits for.
    fn wait_job(&self, key: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        until(&format!("{key}: {what}"), Duration::from_secs(120), || {
            self.jobs().into_iter().find(|j| j["source_key"] == key && done(j))
        })
    }

    fn wait_status(&self, key: &str, etag_of: Option<&str>, status: &str) -> Value {
        self.wait_job(key, status, |j| {
            j["status"] == status && etag_of.is_none_or(|body| j["source_etag"] == md5_hex(body))
        })
    }

    fn show(&self, job: &Value) -> String {
        self.succeeds(&["jobs", "show", job["job_id"].as_str().unwrap()])
    }

    fn metrics(&self, run: &Running) -> String {
        let out = Command::new("curl")
            .args(["-sf", "-H", &format!("Authorization: Bearer {}", self.credential("api_token"))])
            .arg(format!("{}/metrics", run.api))
            .output()
            .unwrap();
        ok(&out)
    }
}

/// A sales CSV of `rows` valid rows.
fn sales_rows(rows: u64) -> String {
    let mut csv = String::from("order_id,customer_name,product,quantity,price,date,note\n");
    for i in 0..rows {
        csv.push_str(&format!("O{i},customer {i},P{},{},{}.25,2024-03-01,n\n", i % 13, i % 7 + 1, i % 100));
    }
    csv
}

fn md5_hex(body: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(body.as_bytes()))
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn uploads_land_typed_in_the_table_once_per_version() {
    let env = Env::new(3);
    let setup = env.succeeds(&["setup", "postgres"]);
    assert!(setup.contains("pipeline[0] (sales): created table sales at 127.0.0.1:"), "{setup}");
    assert!(setup.contains("created table analytics.events"), "{setup}");
    let again = env.succeeds(&["setup", "postgres"]);
    assert!(again.contains("table sales at") && again.contains("already there"), "{again}");
    let check = env.succeeds(&["check"]);
    assert!(check.contains(": ok (2 pipeline(s))"), "{check}");

    let run = env.start();
    env.upload(&run, SALES, "raw/sales.csv");
    let job = env.wait_status("raw/sales.csv", None, "succeeded");
    assert_eq!((job["valid_rows"].as_u64(), job["invalid_rows"].as_u64()), (Some(3), Some(1)));
    assert_eq!(job["warehouse"]["rows"], 3, "{job}");
    let shown = env.show(&job);
    assert!(
        shown.contains(&format!(
            "loaded    3 rows into sales at 127.0.0.1:{}/postgres (postgres, replace)",
            env.pg.port()
        )),
        "{shown}"
    );

    let rows = env.pg.psql(
        "SELECT order_id, customer_name, quantity, pg_typeof(quantity), price::text, pg_typeof(price), \
         date::text, pg_typeof(date), coalesce(note, '<null>'), revenue, pg_typeof(revenue), weir_line \
         FROM sales ORDER BY weir_line",
    );
    assert_eq!(
        rows,
        "A1|สมชาย|2|bigint|12.30|numeric|2024-01-15|date|<null>|24.6|double precision|2\n\
         A2|Zoë|1|bigint|5.05|numeric|2024-01-16|date|gift wrap|5.05|double precision|3\n\
         A4|Ann|3|bigint|0.99|numeric|2024-01-17|date|two\nlines|2.9699999999999998|double precision|5"
    );
    // The seed's queries, unchanged, on the data column.
    assert_eq!(
        env.pg.psql("SELECT data ->> 'product', count(*) FROM sales GROUP BY 1 ORDER BY 1"),
        "Gadget|1\nWidget|2"
    );
    assert_eq!(
        env.pg.psql("SELECT data ->> 'customer_name' FROM sales WHERE data ->> 'order_id' = 'A1'"),
        "สมชาย"
    );

    // Redelivered: the archived file re-run (same version, same job): still each row once.
    let out = env
        .weir()
        .args(["reprocess", "--bucket", "weir-archive", "--prefix", "raw/", "--force"])
        .output()
        .unwrap();
    ok(&out);
    let attempts = job["attempts"].as_u64().unwrap();
    env.wait_job("raw/sales.csv", "re-run", |j| {
        j["status"] == "succeeded" && j["attempts"].as_u64().unwrap_or(0) > attempts
    });
    assert_eq!(env.pg.psql("SELECT count(*), count(DISTINCT (weir_job_id, weir_line)) FROM sales"), "3|3");

    // A new version of the key replaces its rows.
    let v2 = "order_id,customer_name,product,quantity,price,date,note\nB1,Cy,Gizmo,4,2.50,2024-02-01,\n";
    env.upload(&run, v2, "raw/sales.csv");
    let j2 = env.wait_status("raw/sales.csv", Some(v2), "succeeded");
    assert_eq!(
        env.pg.psql("SELECT weir_job_id, string_agg(order_id, ',') FROM sales GROUP BY 1"),
        format!("{}|B1", j2["job_id"].as_str().unwrap())
    );

    // Append: every version's rows stay, in a schema-qualified table.
    let e1 = "id,amount\ne1,10\ne2,20\n";
    let e2 = "id,amount\ne3,30\n";
    env.upload(&run, e1, "logs/day.csv");
    env.wait_status("logs/day.csv", Some(e1), "succeeded");
    env.upload(&run, e2, "logs/day.csv");
    env.wait_status("logs/day.csv", Some(e2), "succeeded");
    assert_eq!(
        env.pg.psql("SELECT string_agg(id, ',' ORDER BY id), sum(amount) FROM analytics.events"),
        "e1,e2,e3|60"
    );

    let metrics = env.metrics(&run);
    assert_eq!(metric(&metrics, "weir_warehouse_rows_loaded_total"), 3 + 3 + 1 + 2 + 1, "{metrics}");
    assert_eq!(metric(&metrics, "weir_warehouse_load_failures_total"), 0);
}

#[test]
fn a_run_killed_in_the_middle_of_a_copy_loads_each_row_once_when_resumed() {
    let env = Env::new(10);
    env.succeeds(&["setup", "postgres"]);
    let rows = 600_000;
    let big = sales_rows(rows);
    let mut run = env.start();
    env.upload(&run, &big, "raw/big.csv");
    // Rows are streaming into the table: kill -9 now.
    until("a COPY in progress", Duration::from_secs(120), || {
        let copied = env.pg.psql("SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy");
        (copied.parse::<u64>().unwrap_or(0) > 1000).then_some(())
    });
    run.proc.kill9();
    // The server rolls the load back when the connection drops.
    until("the killed load's transaction to end", Duration::from_secs(30), || {
        (env.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%' AND state <> 'idle'")
            == "0")
            .then_some(())
    });
    assert_eq!(env.pg.psql("SELECT count(*) FROM sales"), "0");

    let run = env.start();
    let job = env.wait_status("raw/big.csv", None, "succeeded");
    assert!(job["attempts"].as_u64().unwrap() >= 2, "{job}");
    assert_eq!(job["warehouse"]["rows"], rows);
    assert_eq!(
        env.pg.psql("SELECT count(*), count(DISTINCT weir_line), min(weir_line), max(weir_line) FROM sales"),
        format!("{rows}|{rows}|2|{}", rows + 1)
    );
    drop(run);
}

/// A figure of `/proc/<pid>/status` in KiB (`VmHWM`: the peak resident set, `VmRSS`: now).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Peak RSS of `weir run` (the debug build the tests run, about 34 MiB of it the binary's own
/// pages) over four loads of 250,000 rows, and how much higher the peak may be after the last
/// load than after the first. Measured on the shared 2-core machine: 52, 55, 57, 58 MiB after
/// each load; before mimalloc's transparent huge pages were turned off, 84, 98, 119, 120. The
/// bounds leave a third more for a busier or different machine and still fail the old figures.
const LOAD_PEAK_MIB: u64 = 80;
const LOAD_GROWTH_MIB: u64 = 12;

#[test]
fn the_resident_memory_of_loads_stays_bounded_and_does_not_grow_from_load_to_load() {
    let env = Env::new(3);
    env.succeeds(&["setup", "postgres"]);
    let rows = 250_000;
    let csv = sales_rows(rows);
    let run = env.start();
    let pid = run.proc.id();
    let mut peaks = Vec::new();
    for i in 0..4 {
        let key = format!("raw/load-{i}.csv");
        env.upload(&run, &csv, &key);
        let job = env.wait_status(&key, None, "succeeded");
        assert_eq!(job["warehouse"]["rows"], rows, "{job}");
        peaks.push(status_kib(pid, "VmHWM") / 1024);
    }
    assert_eq!(
        env.pg.psql("SELECT count(DISTINCT weir_source_key), count(*) FROM sales"),
        format!("4|{}", 4 * rows)
    );
    let (first, last) = (peaks[0], peaks[peaks.len() - 1]);
    eprintln!("weir run's peak RSS after each load of {rows} rows: {peaks:?} MiB");
    assert!(
        last <= LOAD_PEAK_MIB,
        "peak RSS {last} MiB over {LOAD_PEAK_MIB} MiB (after each load: {peaks:?})"
    );
    assert!(
        last - first <= LOAD_GROWTH_MIB,
        "peak RSS grew {} MiB from the first load to the last (after each load: {peaks:?})",
        last - first
    );
}

#[test]
fn a_database_that_is_down_delays_files_and_a_refused_row_fails_one() {
    let env = Env::new(1000);
    env.succeeds(&["setup", "postgres"]);
    let mut run = env.start();
    env.pg.stop();
    let files: Vec<(String, String)> = (0..3)
        .map(|i| (format!("raw/down{i}.csv"), format!("order_id,customer_name,product,quantity,price,date\nD{i},c,p,1,1.00,2024-01-01\nE{i},c,p,2,2.00,2024-01-02\n")))
        .collect();
    for (key, body) in &files {
        env.upload(&run, body, key);
    }
    for (key, _) in &files {
        let j = env.wait_job(key, "retrying", |j| j["attempts"].as_u64().unwrap_or(0) >= 2);
        let error = j["error"].as_str().unwrap_or_default();
        assert!(j["status"] == "queued" || j["status"] == "running", "{j}");
        assert!(error.contains("will retry") && error.contains("(network)"), "{j}");
    }
    assert!(run.proc.running(), "weir run stays up while the database is down");
    assert!(env.jobs().iter().all(|j| j["status"] != "rejected" && j["status"] != "failed"));
    env.pg.start_again();
    for (key, _) in &files {
        env.wait_status(key, None, "succeeded");
    }
    assert_eq!(
        env.pg.psql("SELECT count(*), count(DISTINCT (weir_source_key, weir_line)) FROM sales"),
        "6|6"
    );

    // A row the database refuses: the job fails with its line and why; none of its rows stay.
    env.pg.psql("ALTER TABLE sales ADD CONSTRAINT quantity_small CHECK (quantity < 1000)");
    let bad = "order_id,customer_name,product,quantity,price,date\nR1,c,p,1,1.00,2024-01-01\nR2,c,p,x,1.00,2024-01-01\nR3,c,p,5000,1.00,2024-01-01\nR4,c,p,2,1.00,2024-01-01\n";
    env.upload(&run, bad, "raw/refused.csv");
    let failed = env.wait_status("raw/refused.csv", None, "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("Weir.LoadRefused: weir-input/raw/refused.csv line 4: PostgreSQL refused the row"),
        "{error}"
    );
    assert!(error.contains("quantity_small"), "{error}");
    assert_eq!(failed["warehouse"]["rows"], 0);
    assert_eq!(env.pg.psql("SELECT count(*) FROM sales WHERE weir_source_key = 'raw/refused.csv'"), "0");
    assert!(env.show(&failed).contains("nothing loaded into sales"), "{}", env.show(&failed));
    assert_eq!(metric(&env.metrics(&run), "weir_warehouse_load_failures_total"), 1);

    // Dead-lettered after the last receive while the database is down, loaded by a replay.
    run.proc.terminate(Duration::from_secs(30));
    env.set_config(&config(2));
    let run = env.start();
    env.pg.stop();
    let late = "order_id,customer_name,product,quantity,price,date\nL1,c,p,1,1.00,2024-01-01\n";
    env.upload(&run, late, "raw/late.csv");
    let dead = env.wait_status("raw/late.csv", None, "failed");
    assert!(dead["error"].as_str().unwrap().contains("retries exhausted"), "{dead}");
    assert!(dead["warehouse"]["error"].as_str().unwrap().contains("(network)"), "{dead}");
    env.pg.start_again();
    until("the dead letter", Duration::from_secs(60), || {
        let out = env.weir().args(["dlq", "list", "--json"]).output().unwrap();
        (!ok(&out).trim().is_empty()).then_some(())
    });
    env.succeeds(&["dlq", "replay", "--all"]);
    let loaded = env.wait_status("raw/late.csv", None, "succeeded");
    assert_eq!(loaded["warehouse"]["rows"], 1);
    assert_eq!(env.pg.psql("SELECT count(*) FROM sales WHERE weir_source_key = 'raw/late.csv'"), "1");
}

#[test]
fn a_wrong_password_or_host_is_said_clearly_and_the_worker_stays_up() {
    let mut env = Env::new(1000);
    env.succeeds(&["setup", "postgres"]);
    let port = env.pg.port();
    env.url = format!("postgres://weir:not-the-password@127.0.0.1:{port}/postgres?sslmode=disable");
    let text = env.finds_problems(&["check"]);
    assert!(
        text.contains(&format!("pipeline[0] (sales).sinks.postgres: PostgreSQL at 127.0.0.1:{port}/postgres refused user \"weir\" (auth)")),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(env.finds_problems(&["setup", "postgres"]).contains("(auth)"));

    let run = env.start();
    env.upload(&run, SALES, "raw/sales.csv");
    let j = env.wait_job("raw/sales.csv", "retrying", |j| j["attempts"].as_u64().unwrap_or(0) >= 2);
    assert!(j["error"].as_str().unwrap().contains("(auth)"), "{j}");
    let mut run = run;
    assert!(run.proc.running(), "weir run stays up");
    let log = std::fs::read_to_string(env.data().join("run.log")).unwrap();
    assert!(!log.contains("not-the-password"), "the password is never logged");
    run.proc.kill9();

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.url = format!("postgres://weir:x@127.0.0.1:{closed}/postgres?sslmode=disable");
    let text = env.finds_problems(&["check"]);
    assert!(
        text.contains(&format!("PostgreSQL at 127.0.0.1:{closed}/postgres is unreachable (network)")),
        "{text}"
    );
}

#[test]
fn setup_adds_a_new_column_and_reports_a_type_conflict() {
    let env = Env::new(3);
    env.succeeds(&["setup", "postgres"]);
    env.pg.psql("ALTER TABLE sales ALTER COLUMN quantity TYPE integer");
    let region = columns(&[("region", "string", NULLABLE)]);
    let wider = config(3).replacen("[[pipeline.derived]]", &format!("{region}[[pipeline.derived]]"), 1);
    env.set_config(&wider);
    let text = env.finds_problems(&["check"]);
    assert!(text.contains("table sales has no column \"region\" (text)"), "{text}");
    assert!(
        text.contains("column \"quantity\" is integer in the table but the pipeline loads bigint"),
        "{text}"
    );
    let text = env.finds_problems(&["setup", "postgres"]);
    assert!(text.contains("added column \"region\" text to sales"), "{text}");
    assert!(text.contains("cannot reconcile sales at") && text.contains("\"quantity\" is integer"), "{text}");
    assert_eq!(
        env.pg.psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sales'::regclass AND attname IN ('quantity', 'region') ORDER BY attname"),
        "integer\ntext"
    );
}

#[test]
fn the_aws_backend_loads_the_same_table_through_s3_sqs_and_a_worker() {
    let (_moto, endpoint) = start_moto();
    let pg = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("deploy/aws/weir.toml")).unwrap();
    let toml = example
        // The section and its table on; its url (a Secrets Manager reference) stays commented:
        // the URL comes from WEIR_POSTGRES_URL.
        .replace("# [pipeline.sinks.postgres]\n", "[pipeline.sinks.postgres]\n")
        .replace("\n# table = \"sales\"", "\ntable = \"sales\"")
        .replace("retry_base_ms = 1000", "retry_base_ms = 200");
    assert!(
        toml.contains("\n[pipeline.sinks.postgres]\n"),
        "the example's commented sink changed; update this test"
    );
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, toml).unwrap();
    let weir = |args: &[&str]| {
        let mut c = common::weir();
        c.arg("--config").arg(&config).args(args).envs(AWS_ENV);
        c.env("AWS_ENDPOINT_URL", &endpoint).env("WEIR_POSTGRES_URL", pg.url());
        c
    };
    ok(&weir(&["setup", "aws"]).output().unwrap());
    let setup = ok(&weir(&["setup", "postgres"]).output().unwrap());
    assert!(setup.contains("created table sales"), "{setup}");
    let log = std::fs::File::create(dir.path().join("worker.log")).unwrap();
    let data = dir.path().join("worker");
    let _worker = Proc::spawn(
        weir(&["--data-dir", data.to_str().unwrap(), "worker", "--concurrency", "2"])
            .stdout(Stdio::null())
            .stderr(log),
    );
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, SALES).unwrap();
    common::aws_cli(
        &endpoint,
        &["s3", "cp", "--quiet", file.to_str().unwrap(), "s3://example-weir-input/raw/sales.csv"],
    );
    let job = until("the job in DynamoDB", Duration::from_secs(120), || {
        let out = weir(&["jobs", "--json"]).output().ok()?;
        let stdout = String::from_utf8(out.stdout).ok()?;
        let jobs: Vec<Value> = stdout.lines().map(serde_json::from_str).collect::<Result<_, _>>().ok()?;
        jobs.iter().find(|j| j["source_key"] == "raw/sales.csv" && j["status"] == "succeeded").cloned()
    });
    assert_eq!(job["warehouse"]["rows"], 3, "{job}");
    assert_eq!(
        pg.psql("SELECT weir_source_bucket, order_id, price::text FROM sales ORDER BY weir_line"),
        "example-weir-input|A1|12.3\nexample-weir-input|A2|5.05\nexample-weir-input|A4|0.99"
    );
    assert_eq!(
        pg.psql("SELECT data ->> 'product', count(*) FROM sales GROUP BY 1 ORDER BY 1"),
        "Gadget|1\nWidget|2"
    );
}
