//! The PostgreSQL warehouse sink: a pipeline's valid rows in a typed table, loaded with binary
//! `COPY` in one transaction per file ([`weir_ports::Warehouse`]).
//!
//! - `settings`: the connection URL from `[pipeline.sinks.postgres]` (inline, environment, a
//!   secret file) and libpq's conventions (`PGPASSWORD`, `.pgpass`, `sslmode`, `sslrootcert`);
//!   `tls`: rustls for `sslmode`; `error`: failures said with host, port and kind (network,
//!   TLS, auth), and which of them are the file's fault.
//! - `table`: the table's columns from the pipeline's schema, its DDL, and how a table in the
//!   database differs from it; `encode`: row values in PostgreSQL's binary formats.
//! - [`PostgresWarehouse`]: a connection pool (deadpool) whose connections are made from the
//!   settings read again each time, `setup` (create or complete the table), `check`, and the
//!   loads.
//! - `testing` (feature `testing`): a throwaway server for tests.

pub mod encode;
pub mod error;
pub mod settings;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::{self, Metrics, Object, Pool, PoolError, RecycleError, RecycleResult, Timeouts};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::Client;
use weir_core::rows::{Cell, CellType, RowBatch, TableColumn};
use weir_core::sink_config::{LoadMode, PostgresSinkConfig};
use weir_ports::{LoadError, LoadTarget, PortError, Warehouse, WarehouseInfo, WarehouseTx, Warehouses};

pub use error::{ConnectError, ConnectFailure};
pub use settings::{Settings, SettingsError};
pub use table::{Conflict, Differences, TableSpec};

use encode::PgValue;

/// The warehouse of every pipeline of `config` with a `[pipeline.sinks.postgres]`;
/// `columns_of` gives a pipeline's typed columns (`weir_process::Plan::table_columns`).
pub fn open_all<E: std::fmt::Display>(
    config: &weir_core::Config,
    columns_of: impl Fn(&weir_core::PipelineConfig) -> Result<Vec<TableColumn>, E>,
) -> Result<Warehouses, SettingsError> {
    let mut by_pipeline = std::collections::BTreeMap::new();
    for p in &config.pipelines {
        let Some(sink) = &p.sinks.postgres else { continue };
        let columns = columns_of(p).map_err(|e| SettingsError(format!("pipeline {:?}: {e}", p.name)))?;
        let warehouse = PostgresWarehouse::new(&p.name, sink, &columns)
            .map_err(|e| SettingsError(format!("pipeline {:?}, sinks.postgres: {e}", p.name)))?;
        by_pipeline.insert(p.name.clone(), Arc::new(warehouse) as Arc<dyn Warehouse>);
    }
    Ok(Warehouses::new(by_pipeline))
}

/// Makes connections from the sink's settings, resolved again for each one (a URL file a
/// secrets agent rewrites takes effect at the next connection).
pub struct Manager {
    sink: PostgresSinkConfig,
}

impl Manager {
    async fn connect(&self) -> Result<Client, ConnectError> {
        let settings = Settings::resolve(&self.sink)
            .map_err(|e| ConnectError { failure: ConnectFailure::Server, message: e.0 })?;
        connect(&settings).await
    }
}

/// One connection made with `settings`; its I/O runs on a task of its own.
pub async fn connect(settings: &Settings) -> Result<Client, ConnectError> {
    let tls =
        tls::connector(settings).map_err(|e| ConnectError { failure: ConnectFailure::Tls, message: e.0 })?;
    let user = settings.config.get_user().unwrap_or_default().to_string();
    let (client, connection) =
        settings.config.connect(tls).await.map_err(|e| ConnectError::new(&e, &settings.target, &user))?;
    let target = settings.target.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(target = %target, error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

impl managed::Manager for Manager {
    type Type = Client;
    type Error = ConnectError;

    async fn create(&self) -> Result<Client, ConnectError> {
        self.connect().await
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<ConnectError> {
        if client.is_closed() {
            return Err(RecycleError::message("the connection is closed"));
        }
        Ok(())
    }
}

/// A pipeline's PostgreSQL table.
pub struct PostgresWarehouse {
    pool: Pool<Manager>,
    spec: Arc<TableSpec>,
    mode: LoadMode,
    info: WarehouseInfo,
    /// Set once the table was found to match the pipeline; cleared when a load says it no
    /// longer does.
    verified: Arc<AtomicBool>,
    copy_sql: String,
    delete_sql: String,
    types: Vec<Type>,
}

/// What `weir setup postgres` did to a table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetupReport {
    pub table: String,
    pub target: String,
    pub created: bool,
    /// Columns added, with their types.
    pub added: Vec<(String, String)>,
    /// Columns whose type differs; left as they are (weir never drops or converts data).
    pub conflicts: Vec<Conflict>,
    /// The table's primary key when it is not weir's (`weir_job_id, weir_line`).
    pub other_primary_key: Option<String>,
}

impl PostgresWarehouse {
    /// The warehouse of `pipeline`, whose table has `columns` (the schema's columns then the
    /// derived fields). Connects lazily; fails now only when the settings cannot be made
    /// (no URL where the section says, a URL file others can read, a bad URL).
    pub fn new(
        pipeline: &str,
        sink: &PostgresSinkConfig,
        columns: &[TableColumn],
    ) -> Result<PostgresWarehouse, SettingsError> {
        let settings = Settings::resolve(sink)?;
        let (schema, name) = sink.table_name(pipeline);
        let spec = Arc::new(TableSpec::new(schema, name, columns));
        let timeout = Duration::from_secs(sink.connect_timeout_secs.max(1));
        let pool = Pool::builder(Manager { sink: sink.clone() })
            .max_size(sink.pool_size.max(1))
            .runtime(deadpool::Runtime::Tokio1)
            .timeouts(Timeouts { wait: None, create: Some(timeout * 2), recycle: Some(timeout) })
            .build()
            .map_err(|e| SettingsError(format!("connection pool: {e}")))?;
        let info = WarehouseInfo {
            sink: "postgres".into(),
            target: settings.target.clone(),
            table: spec.display(),
            mode: sink.mode.as_str().into(),
        };
        Ok(PostgresWarehouse {
            pool,
            copy_sql: spec.copy_sql(),
            delete_sql: spec.delete_sql(sink.mode),
            types: spec.types(),
            spec,
            mode: sink.mode,
            info,
            verified: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// A connection from the pool.
    pub async fn connection(&self) -> Result<Object<Manager>, ConnectError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => ConnectError {
                failure: ConnectFailure::Timeout,
                message: format!("PostgreSQL at {}: no connection within the timeout", self.info.target),
            },
            other => ConnectError {
                failure: ConnectFailure::Server,
                message: format!("PostgreSQL at {}: {other}", self.info.target),
            },
        })
    }

    /// How the table in the database differs from the pipeline's (`weir check`).
    pub async fn check(&self) -> Result<Differences, ConnectError> {
        let client = self.connection().await?;
        let found = self.spec.inspect(&*client).await.map_err(|e| self.query_failed(&e))?;
        Ok(self.spec.compare(&found))
    }

    /// Creates the table and its index, or adds the columns an existing one lacks; reports
    /// the columns whose type differs, and changes nothing else. Safe to run again, and by two
    /// processes at once (they take turns on an advisory lock).
    pub async fn setup(&self) -> Result<SetupReport, ConnectError> {
        let mut client = self.connection().await?;
        let fail = |e: tokio_postgres::Error| self.query_failed(&e);
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", &[&self.spec.qualified()])
            .await
            .map_err(fail)?;
        if let Some(schema) = &self.spec.schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", table::quote(schema)))
                .await
                .map_err(fail)?;
        }
        let found = self.spec.inspect(&tx).await.map_err(fail)?;
        let mut report = SetupReport {
            table: self.spec.display(),
            target: self.info.target.clone(),
            ..SetupReport::default()
        };
        if !found.exists {
            tx.batch_execute(&self.spec.create_sql()).await.map_err(fail)?;
            report.created = true;
        } else {
            let differences = self.spec.compare(&found);
            for c in &differences.missing {
                tx.batch_execute(&self.spec.add_column_sql(c)).await.map_err(fail)?;
                report.added.push((c.name.clone(), c.sql_type.clone()));
            }
            report.conflicts = differences.conflicts;
            report.other_primary_key =
                Some(found.primary_key.unwrap_or_default()).filter(|k| k != table::PRIMARY_KEY);
        }
        tx.batch_execute(&self.spec.index_sql()).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        self.verified.store(false, Ordering::Relaxed);
        Ok(report)
    }

    fn query_failed(&self, e: &tokio_postgres::Error) -> ConnectError {
        ConnectError {
            failure: ConnectFailure::Server,
            message: format!(
                "PostgreSQL at {}, table {}: {}",
                self.info.target,
                self.info.table,
                error::innermost(e)
            ),
        }
    }

    fn unavailable(&self, doing: &str, why: impl Into<String>) -> LoadError {
        LoadError::Port(PortError::unavailable(format!("{doing} {}", self.info.table), why.into()))
    }

    /// Checks the table once (and again after a load found it changed).
    async fn verify(&self, client: &Client) -> Result<(), LoadError> {
        if self.verified.load(Ordering::Relaxed) {
            return Ok(());
        }
        let found = self
            .spec
            .inspect(client)
            .await
            .map_err(|e| error::load_error(e, "inspecting", &self.info.table, &self.info.target))?;
        let differences = self.spec.compare(&found);
        if !differences.loadable() {
            let problems = differences.problems(&self.info.table).join("; ");
            return Err(self.unavailable("loading into", format!("at {}: {problems}", self.info.target)));
        }
        self.verified.store(true, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl Warehouse for PostgresWarehouse {
    fn info(&self) -> WarehouseInfo {
        self.info.clone()
    }

    async fn begin(&self, target: &LoadTarget) -> Result<Box<dyn WarehouseTx>, LoadError> {
        let conn = self.connection().await.map_err(|e| self.unavailable("loading into", e.message))?;
        // Until the COPY runs, a failure leaves the connection in an unknown state: it is
        // dropped, not returned to the pool.
        let conn = Discard(Some(conn));
        self.verify(conn.client()).await?;
        let fail = |e| error::load_error(e, "loading into", &self.info.table, &self.info.target);
        conn.client().batch_execute("BEGIN").await.map_err(fail)?;
        // Loads of one source take turns, whichever process runs them: a second load waits
        // here until the first commits or rolls back, then its DELETE sees (and removes) what
        // the first committed. Without it, a run that lost its lease and the run that took
        // over would collide on the primary key, and in replace mode a newer version's DELETE
        // could not see the rows an older one is still loading.
        let turn = format!("{}|{}/{}", self.info.table, target.source_bucket, target.source_key);
        conn.client()
            .execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", &[&turn])
            .await
            .map_err(fail)?;
        match self.mode {
            LoadMode::Append => conn.client().execute(&self.delete_sql, &[&target.job_id]).await,
            LoadMode::Replace => {
                conn.client().execute(&self.delete_sql, &[&target.source_bucket, &target.source_key]).await
            }
        }
        .map_err(fail)?;
        let sink = conn.client().copy_in(&self.copy_sql).await.map_err(fail)?;
        let writer = Box::pin(BinaryCopyInWriter::new(sink, &self.types));
        let processed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Ok(Box::new(PgTx {
            conn,
            writer,
            cell_types: self.spec.cell_types(),
            target: target.clone(),
            processed_at,
            rows: 0,
            table: self.info.table.clone(),
            database: self.info.target.clone(),
            verified: self.verified.clone(),
        }))
    }
}

/// A pooled connection that goes back to the pool only when [`Discard::keep`] says so; else
/// it is closed when dropped, which makes the server roll back whatever it was doing.
struct Discard(Option<Object<Manager>>);

impl Discard {
    fn client(&self) -> &Client {
        self.0.as_deref().expect("connection held until dropped")
    }

    fn keep(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Object::take(conn));
        }
    }
}

/// One file's load: a transaction with a binary COPY open.
struct PgTx {
    conn: Discard,
    writer: Pin<Box<BinaryCopyInWriter>>,
    cell_types: Vec<CellType>,
    target: LoadTarget,
    processed_at: i64,
    rows: u64,
    table: String,
    database: String,
    verified: Arc<AtomicBool>,
}

impl PgTx {
    fn fail(&self, e: tokio_postgres::Error) -> LoadError {
        let table_problem = e.as_db_error().is_some();
        let out = error::load_error(e, "loading into", &self.table, &self.database);
        if table_problem && matches!(out, LoadError::Port(_)) {
            // Look at the table again before the next load.
            self.verified.store(false, Ordering::Relaxed);
        }
        out
    }
}

/// A cell as the column's type has it.
fn value<'a>(cell: &Cell, ty: CellType, text: impl Fn(&Cell) -> &'a [u8]) -> Option<PgValue<'a>> {
    Some(match (*cell, ty) {
        (Cell::Null, _) => PgValue::Null,
        (Cell::Int(v), CellType::Int) => PgValue::Int8(v),
        (Cell::Int(v), CellType::Float) => PgValue::Float8(v as f64),
        (Cell::Float(v), CellType::Float) => PgValue::Float8(v),
        (Cell::Bool(v), CellType::Bool) => PgValue::Bool(v),
        (c @ Cell::Text { .. }, CellType::Text) => PgValue::Text(text(&c)),
        (Cell::Decimal(v), CellType::Decimal { scale, .. }) => PgValue::Numeric { scaled: v, scale },
        (Cell::Date(d), CellType::Date) => PgValue::Date(d),
        (Cell::DateTime(t), CellType::DateTime) => PgValue::Timestamptz(t),
        _ => return None,
    })
}

#[async_trait]
impl WarehouseTx for PgTx {
    async fn write(&mut self, batch: &RowBatch) -> Result<(), LoadError> {
        let width = self.cell_types.len();
        if batch.width() != width {
            return Err(LoadError::Port(PortError::unavailable(
                format!("loading into {}", self.table),
                format!("rows of {} cells for a table of {width} typed columns", batch.width()),
            )));
        }
        let lineage = (
            self.target.source_bucket.as_bytes(),
            self.target.source_key.as_bytes(),
            self.target.job_id.as_bytes(),
        );
        let mut values: Vec<PgValue<'_>> = Vec::with_capacity(width + 6);
        for row in batch.rows() {
            values.clear();
            for (i, (cell, ty)) in row.cells.iter().zip(&self.cell_types).enumerate() {
                let v = value(cell, *ty, |c| row.text(c)).ok_or_else(|| LoadError::Refused {
                    row: Some(self.rows + 1),
                    reason: format!("column {} is {ty} but the row has {cell:?}", i + 1),
                })?;
                values.push(v);
            }
            values.push(PgValue::Jsonb(row.json));
            values.push(PgValue::Text(lineage.0));
            values.push(PgValue::Text(lineage.1));
            values.push(PgValue::Text(lineage.2));
            values.push(PgValue::Int8(row.line as i64));
            values.push(PgValue::Timestamptz(self.processed_at));
            if let Err(e) = self.writer.as_mut().write_raw(values.iter()).await {
                return Err(self.fail(e));
            }
            self.rows += 1;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, LoadError> {
        let copied = match self.writer.as_mut().finish().await {
            Ok(n) => n,
            Err(e) => return Err(self.fail(e)),
        };
        if let Err(e) = self.conn.client().batch_execute("COMMIT").await {
            return Err(self.fail(e));
        }
        self.conn.keep();
        Ok(copied)
    }
}
