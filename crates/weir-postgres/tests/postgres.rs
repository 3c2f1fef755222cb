//! The PostgreSQL adapter against a real server each test starts (`weir_postgres::testing`):
//! the table `weir setup postgres` makes and completes, typed values through binary COPY read
//! back with psql, loads that replace instead of adding, rollbacks, refused rows, and
//! connection failures (auth, network, TLS) said clearly.

use weir_core::rows::{Cell, CellType, RowBatch, TableColumn};
use weir_core::sink_config::{LoadMode, PostgresSinkConfig};
use weir_ports::{LoadError, LoadTarget, Warehouse};
use weir_postgres::testing::{give_to_server, TestServer, TlsFiles};
use weir_postgres::{ConnectFailure, PostgresWarehouse};

fn columns() -> Vec<TableColumn> {
    let c = |name: &str, ty| TableColumn { name: name.into(), ty };
    vec![
        c("order_id", CellType::Text),
        c("customer_name", CellType::Text),
        c("quantity", CellType::Int),
        c("price", CellType::Decimal { precision: 10, scale: 2 }),
        c("date", CellType::Date),
        c("shipped_at", CellType::DateTime),
        c("gift", CellType::Bool),
        c("revenue", CellType::Float),
    ]
}

fn sink(url: &str, table: &str, mode: LoadMode) -> PostgresSinkConfig {
    PostgresSinkConfig {
        url: Some(url.into()),
        table: Some(table.into()),
        mode,
        connect_timeout_secs: 5,
        ..PostgresSinkConfig::default()
    }
}

fn warehouse(url: &str, table: &str, mode: LoadMode) -> PostgresWarehouse {
    PostgresWarehouse::new("sales", &sink(url, table, mode), &columns()).unwrap()
}

fn target(job: &str, key: &str) -> LoadTarget {
    LoadTarget { job_id: job.into(), source_bucket: "weir-input".into(), source_key: key.into() }
}

/// Rows `first..first + n` of a sales file (line = i + 2), order ids `<prefix><i>`.
fn batch(prefix: &str, first: u64, n: u64) -> RowBatch {
    let mut b = RowBatch::new(columns().len());
    for i in first..first + n {
        b.push_text(format!("{prefix}{i}").as_bytes());
        b.push_text("สมชาย".as_bytes());
        b.push_cell(Cell::Int(i as i64));
        b.push_cell(Cell::Decimal(1230 + i as i128)); // 12.30, 12.31, ...
        b.push_cell(Cell::Date(19737)); // 2024-01-15
        b.push_cell(if i % 2 == 0 { Cell::DateTime(1_705_312_800_000_000) } else { Cell::Null });
        b.push_cell(Cell::Bool(i % 3 == 0));
        b.push_cell(Cell::Float(i as f64 * 12.3));
        let json = format!(
            r#"{{"order_id":"{prefix}{i}","product":"{}","quantity":{i}}}"#,
            ["Widget", "Gadget"][i as usize % 2]
        );
        b.end_row(i + 2, json.as_bytes());
    }
    b
}

async fn load(w: &PostgresWarehouse, t: &LoadTarget, batches: &[RowBatch]) -> Result<u64, LoadError> {
    let mut tx = w.begin(t).await?;
    for b in batches {
        tx.write(b).await?;
    }
    tx.commit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_the_table_then_completes_it_and_reports_conflicts() {
    let pg = TestServer::start();
    let url = pg.url();
    let w = warehouse(&url, "analytics.sales", LoadMode::Replace);
    assert!(!w.check().await.unwrap().exists);

    let first = w.setup().await.unwrap();
    assert!(first.created && first.added.is_empty() && first.conflicts.is_empty(), "{first:?}");
    let again = w.setup().await.unwrap();
    assert!(!again.created && again.added.is_empty() && again.conflicts.is_empty(), "{again:?}");
    assert_eq!(again.other_primary_key, None);
    assert!(w.check().await.unwrap().loadable());
    let types = pg.psql(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
         FROM pg_attribute WHERE attrelid = 'analytics.sales'::regclass AND attnum > 0",
    );
    assert_eq!(
        types,
        "order_id text, customer_name text, quantity bigint, price numeric(10,2), date date, \
         shipped_at timestamp with time zone, gift boolean, revenue double precision, data jsonb, \
         weir_source_bucket text, weir_source_key text, weir_job_id text, weir_line bigint, \
         weir_processed_at timestamp with time zone"
    );
    let pk = pg.psql(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'analytics.sales'::regclass AND indisprimary",
    );
    assert!(pk.ends_with("(weir_job_id, weir_line)"), "{pk}");
    assert_eq!(pg.psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'sales'"), "2");

    // Rows in it, then a schema with a new column, and a column someone changed.
    load(&w, &target("j-1", "raw/a.csv"), &[batch("A", 0, 3)]).await.unwrap();
    pg.psql("ALTER TABLE analytics.sales ALTER COLUMN quantity TYPE integer");
    let mut wider = columns();
    wider.push(TableColumn { name: "region".into(), ty: CellType::Text });
    let w2 =
        PostgresWarehouse::new("sales", &sink(&url, "analytics.sales", LoadMode::Replace), &wider).unwrap();
    let check = w2.check().await.unwrap();
    let problems = check.problems("analytics.sales");
    assert!(problems.iter().any(|p| p.contains("no column \"region\" (text)")), "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"quantity\" is integer in the table but the pipeline loads bigint")),
        "{problems:?}"
    );
    let report = w2.setup().await.unwrap();
    assert_eq!(report.added, [("region".to_string(), "text".to_string())]);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(
        (report.conflicts[0].column.as_str(), report.conflicts[0].table_type.as_str()),
        ("quantity", "integer")
    );
    // Nothing dropped or converted.
    assert_eq!(pg.psql("SELECT count(*), min(quantity)::text FROM analytics.sales"), "3|0");
    assert_eq!(pg.psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'analytics.sales'::regclass AND attname = 'quantity'"), "integer");
    // A load into a table that disagrees is refused as a retryable failure, with the reason.
    match load(&w2, &target("j-2", "raw/b.csv"), &[]).await {
        Err(LoadError::Port(e)) => {
            let e = e.to_string();
            assert!(e.contains("\"quantity\" is integer in the table"), "{e}");
        }
        other => panic!("expected a table mismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_arrive_typed_and_a_reload_replaces_instead_of_adding() {
    let pg = TestServer::start();
    let url = pg.url();
    let w = warehouse(&url, "sales", LoadMode::Replace);
    w.setup().await.unwrap();

    let t1 = target("j-v1", "raw/sales.csv");
    let n = load(&w, &t1, &[batch("A", 0, 1000), batch("A", 1000, 500)]).await.unwrap();
    assert_eq!(n, 1500);
    let row = pg.psql(
        "SELECT order_id, customer_name, quantity, pg_typeof(quantity), price::text, pg_typeof(price), \
         date::text, shipped_at AT TIME ZONE 'UTC', gift, revenue, weir_line, weir_source_key, weir_job_id \
         FROM sales WHERE order_id = 'A2'",
    );
    assert_eq!(
        row,
        "A2|สมชาย|2|bigint|12.32|numeric|2024-01-15|2024-01-15 10:00:00|f|24.6|4|raw/sales.csv|j-v1"
    );
    assert_eq!(pg.psql("SELECT shipped_at IS NULL FROM sales WHERE order_id = 'A1'"), "t");
    // The seed's query, unchanged.
    assert_eq!(
        pg.psql("SELECT data ->> 'product', count(*) FROM sales GROUP BY 1 ORDER BY 1"),
        "Gadget|750\nWidget|750"
    );

    // The same version again (a redelivery), in full: still one copy of each row.
    load(&w, &t1, &[batch("A", 0, 1500)]).await.unwrap();
    assert_eq!(pg.psql("SELECT count(*), count(DISTINCT (weir_job_id, weir_line)) FROM sales"), "1500|1500");

    // A new version of the key replaces the key's rows; another key's stay.
    load(&w, &target("j-other", "raw/other.csv"), &[batch("O", 0, 10)]).await.unwrap();
    load(&w, &target("j-v2", "raw/sales.csv"), &[batch("B", 0, 20)]).await.unwrap();
    assert_eq!(
        pg.psql("SELECT weir_job_id, count(*) FROM sales GROUP BY 1 ORDER BY 1"),
        "j-other|10\nj-v2|20"
    );

    // Append keeps every version's rows, and a version loaded again still replaces its own.
    let a = warehouse(&url, "sales_log", LoadMode::Append);
    a.setup().await.unwrap();
    load(&a, &target("j-v1", "raw/log.csv"), &[batch("A", 0, 5)]).await.unwrap();
    load(&a, &target("j-v2", "raw/log.csv"), &[batch("B", 0, 7)]).await.unwrap();
    load(&a, &target("j-v1", "raw/log.csv"), &[batch("A", 0, 5)]).await.unwrap();
    assert_eq!(
        pg.psql("SELECT weir_job_id, count(*) FROM sales_log GROUP BY 1 ORDER BY 1"),
        "j-v1|5\nj-v2|7"
    );
}

/// Polls `probe` until it gives a value, failing the test after `secs` seconds.
async fn until<T>(what: &str, secs: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two loads of one source at the same time (a run that lost its lease still loading while the
/// run that took over starts, or two versions of a key in replace mode): the second waits for
/// the first to end, then replaces what it committed. Without that turn, the same version's
/// second load collides with the first's rows on the primary key (and would fail the file as a
/// refused row), and in replace mode a newer version's load cannot see, so cannot delete, the
/// rows an older one is committing: both versions would stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_loads_of_one_source_take_turns() {
    let pg = TestServer::start();
    let cases = [
        (LoadMode::Replace, "j-v1", "j-v1"),
        (LoadMode::Append, "j-v1", "j-v1"),
        (LoadMode::Replace, "j-v1", "j-v2"),
    ];
    for (i, (mode, first_job, second_job)) in cases.into_iter().enumerate() {
        let table = format!("overlap_{i}");
        let w = std::sync::Arc::new(warehouse(&pg.url(), &table, mode));
        w.setup().await.unwrap();
        let mut first = w.begin(&target(first_job, "raw/a.csv")).await.unwrap();
        first.write(&batch("A", 0, 2000)).await.unwrap();
        until("the first load's rows on the server", 30, || {
            let n = pg.psql("SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy");
            (n.parse::<u64>().unwrap() > 0).then_some(())
        })
        .await;
        let second = tokio::spawn({
            let w = w.clone();
            async move { load(&w, &target(second_job, "raw/a.csv"), &[batch("B", 0, 1500)]).await }
        });
        until("the second load to wait for the first (or to end)", 30, || {
            let waiting = pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'weir'",
            );
            (waiting == "1" || second.is_finished()).then_some(())
        })
        .await;
        assert_eq!(first.commit().await.unwrap(), 2000);
        let loaded = second.await.unwrap();
        assert_eq!(loaded.unwrap_or_else(|e| panic!("case {i}: {e}")), 1500, "case {i}");
        assert_eq!(
            pg.psql(&format!(
                "SELECT weir_job_id, count(*), count(DISTINCT weir_line), min(order_id) FROM {table} GROUP BY 1"
            )),
            format!("{second_job}|1500|1500|B0"),
            "case {i}: the second load's rows only, each once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numerics_dates_and_times_round_trip_exactly() {
    let pg = TestServer::start();
    let cols = |scale| {
        vec![
            TableColumn { name: "n".into(), ty: CellType::Decimal { precision: 38, scale } },
            TableColumn { name: "d".into(), ty: CellType::Date },
            TableColumn { name: "t".into(), ty: CellType::DateTime },
        ]
    };
    let cases: [(u8, &[(i128, &str)]); 4] = [
        (0, &[(0, "0"), (7, "7"), (-10_000, "-10000"), (123_456_789_012_345_678, "123456789012345678")]),
        (2, &[(1230, "12.30"), (-5, "-0.05"), (100, "1.00"), (99_999_999, "999999.99")]),
        (4, &[(1_234_567_891_234, "123456789.1234"), (1, "0.0001"), (-100_000_000, "-10000.0000")]),
        (5, &[(1, "0.00001"), (-123_456, "-1.23456"), (i64::MAX as i128, "92233720368547.75807")]),
    ];
    for (scale, values) in cases {
        let table = format!("n{scale}");
        let w =
            PostgresWarehouse::new("p", &sink(&pg.url(), &table, LoadMode::Append), &cols(scale)).unwrap();
        w.setup().await.unwrap();
        let mut b = RowBatch::new(3);
        for (i, (v, _)) in values.iter().enumerate() {
            b.push_cell(Cell::Decimal(*v));
            b.push_cell(Cell::Date([-719_162, 0, 19_737, 2_932_896][i % 4])); // 0001-01-01 .. 9999-12-31
            b.push_cell(Cell::DateTime([0, -1, 1_705_312_800_123_456, 253_402_300_799_999_999][i % 4]));
            b.end_row(i as u64 + 2, b"{}");
        }
        load(&w, &target("j", "k"), &[b]).await.unwrap();
        let got = pg.psql(&format!(
            "SELECT n::text, d::text, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM {table} ORDER BY weir_line"
        ));
        let dates = ["0001-01-01", "1970-01-01", "2024-01-15", "9999-12-31"];
        let times = [
            "1970-01-01 00:00:00.000000",
            "1969-12-31 23:59:59.999999",
            "2024-01-15 10:00:00.123456",
            "9999-12-31 23:59:59.999999",
        ];
        let expected: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, (_, text))| format!("{text}|{}|{}", dates[i % 4], times[i % 4]))
            .collect();
        assert_eq!(got, expected.join("\n"), "scale {scale}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_load_leaves_nothing_and_a_refused_row_commits_nothing() {
    let pg = TestServer::start();
    let w = warehouse(&pg.url(), "sales", LoadMode::Replace);
    w.setup().await.unwrap();
    load(&w, &target("j-v1", "raw/sales.csv"), &[batch("A", 0, 10)]).await.unwrap();

    // Written, never committed (a pass that failed, a worker that died): rolled back, and the
    // earlier version's rows are still there.
    {
        let mut tx = w.begin(&target("j-v2", "raw/sales.csv")).await.unwrap();
        tx.write(&batch("B", 0, 3000)).await.unwrap();
    }
    assert_eq!(pg.psql("SELECT weir_job_id, count(*) FROM sales GROUP BY 1"), "j-v1|10");

    // A constraint the third row breaks: refused, which row, why; nothing of the file stays.
    pg.psql("ALTER TABLE sales ADD CONSTRAINT quantity_small CHECK (quantity < 1002)");
    let e = load(&w, &target("j-v2", "raw/sales.csv"), &[batch("B", 1000, 5)]).await.unwrap_err();
    match e {
        LoadError::Refused { row, reason } => {
            assert_eq!(row, Some(3), "{reason}");
            assert!(reason.contains("quantity_small") && reason.contains("23514"), "{reason}");
        }
        other => panic!("expected a refused row, got {other:?}"),
    }
    // A NUL in a text value: PostgreSQL's text cannot hold it.
    let mut b = RowBatch::new(columns().len());
    b.push_text(b"nul\0here");
    for cell in [Cell::Null, Cell::Int(1), Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null] {
        b.push_cell(cell);
    }
    b.end_row(2, b"{}");
    match load(&w, &target("j-v3", "raw/sales.csv"), &[b]).await.unwrap_err() {
        LoadError::Refused { row, reason } => {
            assert_eq!(row, Some(1));
            assert!(reason.contains("0x00"), "{reason}");
        }
        other => panic!("expected a refused row, got {other:?}"),
    }
    assert_eq!(pg.psql("SELECT weir_job_id, count(*) FROM sales GROUP BY 1"), "j-v1|10");
    // The pool is not poisoned by the failures.
    load(&w, &target("j-v4", "raw/sales.csv"), &[batch("C", 0, 2)]).await.unwrap();
    assert_eq!(pg.psql("SELECT weir_job_id, count(*) FROM sales GROUP BY 1"), "j-v4|2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_say_host_port_and_kind() {
    let pg = TestServer::start();
    let port = pg.port();
    let wrong = format!("postgres://weir:wrong@127.0.0.1:{port}/postgres?sslmode=disable");
    let e = warehouse(&wrong, "sales", LoadMode::Replace).check().await.err().unwrap();
    assert_eq!(e.failure, ConnectFailure::Auth, "{e}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}/postgres")) && e.message.contains("(auth)"), "{e}");
    assert!(!e.message.contains("wrong"), "the password is never shown: {e}");

    let nodb = pg.url_for("nope");
    let e = warehouse(&nodb, "sales", LoadMode::Replace).check().await.err().unwrap();
    assert_eq!(e.failure, ConnectFailure::Database, "{e}");
    assert!(e.message.contains("\"nope\" does not exist"), "{e}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = format!("postgres://weir:x@127.0.0.1:{closed}/postgres?sslmode=disable");
    let w = warehouse(&gone, "sales", LoadMode::Replace);
    let e = w.check().await.err().unwrap();
    assert_eq!(e.failure, ConnectFailure::Network, "{e}");
    assert!(e.message.contains(&format!("127.0.0.1:{closed}")) && e.message.contains("(network)"), "{e}");
    // A load meets the same as a retryable failure.
    match w.begin(&target("j", "k")).await.err().unwrap() {
        LoadError::Port(p) => {
            assert_eq!(p.class(), weir_core::ErrorClass::Transient);
            assert!(p.to_string().contains("(network)"), "{p}");
        }
        other => panic!("{other:?}"),
    }
    // The password can come from PGPASSWORD-style environment too: from a URL file here,
    // which like any secret file must be private.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("{}\n", pg.url())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let from_file =
        PostgresSinkConfig { url_file: Some(file.clone()), table: Some("t".into()), ..Default::default() };
    let e = PostgresWarehouse::new("p", &from_file, &columns()).err().unwrap();
    assert!(e.0.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let w = PostgresWarehouse::new("p", &from_file, &columns()).unwrap();
    assert!(w.setup().await.unwrap().created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_check_what_libpq_checks() {
    let certs = tempfile::tempdir().unwrap();
    let tls = TlsFiles::make(certs.path(), "DNS:localhost,IP:127.0.0.1");
    give_to_server(certs.path());
    let settings = tls.server_settings();
    let pg = TestServer::start_with(&settings.iter().map(String::as_str).collect::<Vec<_>>());
    let (pw, port, ca) = (pg.password().to_string(), pg.port(), tls.ca.display().to_string());
    let url = |host: &str, query: &str| format!("postgres://weir:{pw}@{host}:{port}/postgres?{query}");
    let ok = |u: String| async move {
        let w = warehouse(&u, "sales", LoadMode::Replace);
        w.check().await.map(|_| ())
    };
    ok(url("127.0.0.1", "sslmode=require")).await.unwrap();
    ok(url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"))).await.unwrap();
    ok(url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"))).await.unwrap();
    // The connection really is encrypted.
    let w = warehouse(&url("127.0.0.1", "sslmode=require"), "sales", LoadMode::Replace);
    w.setup().await.unwrap();
    let ssl = pg.psql("SELECT bool_or(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'weir'");
    assert_eq!(ssl, "t");

    // A CA the client does not know: verify-full says it is TLS that failed.
    let other = tempfile::tempdir().unwrap();
    let stranger = TlsFiles::make(other.path(), "DNS:localhost");
    let e = ok(url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", stranger.ca.display())))
        .await
        .unwrap_err();
    assert_eq!(e.failure, ConnectFailure::Tls, "{e}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}")) && e.message.contains("(TLS)"), "{e}");

    // A name the certificate does not carry (the right address under another name, through
    // hostaddr): verify-full refuses, verify-ca accepts, as libpq.
    let named = |mode: &str| {
        format!(
            "postgres://weir:{pw}@db.elsewhere.example:{port}/postgres?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}"
        )
    };
    let e = ok(named("verify-full")).await.unwrap_err();
    assert_eq!(e.failure, ConnectFailure::Tls, "{e}");
    assert!(e.message.to_lowercase().contains("name"), "{e}");
    ok(named("verify-ca")).await.unwrap();
    // A server without TLS when TLS is required.
    let plain = TestServer::start();
    let e = ok(format!(
        "postgres://weir:{}@127.0.0.1:{}/postgres?sslmode=require",
        plain.password(),
        plain.port()
    ))
    .await
    .unwrap_err();
    assert_eq!(e.failure, ConnectFailure::Tls, "{e}");
}
