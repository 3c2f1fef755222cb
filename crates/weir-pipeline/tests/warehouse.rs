//! The transform's warehouse load against the port's in-memory table (the PostgreSQL adapter
//! has its own tests against a real server, and `crates/weir/tests/postgres.rs` runs both
//! together): what the checkpoint saves and what a retry redoes.
//!
//! - a failure after the load committed (the archive move): the job resumes after the
//!   transform, and the load is not made again;
//! - a failure after the commit but before the checkpoint (storing the outputs): the retry
//!   loads the file again, replacing its rows: each row once;
//! - a refused row in a file large enough to be streamed: the job fails with the row's line in
//!   the file (found by reading the file again), and nothing is loaded;
//! - a newer version uploaded while an older one is loading: the older job is superseded
//!   before it commits, and the table holds the newer version's rows only.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{fast_config, put_event, Harness};
use weir_core::JobId;
use weir_core::JobStatus;
use weir_pipeline::faults::{self, Fault, FaultPlan};
use weir_ports::memory::MemoryWarehouse;
use weir_ports::{LoadError, LoadTarget, Metadata, Ports, Warehouse, WarehouseInfo, WarehouseTx, Warehouses};

/// Fails the first `op` after the table's first commit.
struct AfterLoad {
    op: &'static str,
    table: Arc<MemoryWarehouse>,
    fired: AtomicBool,
}

impl FaultPlan for AfterLoad {
    fn decide(&self, op: &'static str, _: &str) -> Option<Fault> {
        (op == self.op && self.table.commits() >= 1 && !self.fired.swap(true, Ordering::SeqCst))
            .then_some(Fault::Before)
    }
}

fn with_table(table: &Arc<MemoryWarehouse>, fail: Option<&'static str>) -> impl FnOnce(Ports) -> Ports {
    let table = table.clone();
    move |ports| {
        let mut ports = match fail {
            Some(op) => faults::wrap(
                ports,
                Arc::new(AfterLoad { op, table: table.clone(), fired: AtomicBool::new(false) }),
            ),
            None => ports,
        };
        ports.warehouses =
            Warehouses::new(BTreeMap::from([("sales".to_string(), Arc::new(table) as Arc<dyn Warehouse>)]));
        ports
    }
}

fn sales(rows: usize, bad_at: Option<usize>) -> String {
    let mut csv = String::from("order_id,customer_name,product,quantity,price,date\n");
    for i in 0..rows {
        let product = if bad_at == Some(i) { "Forbidden" } else { "Widget" };
        csv.push_str(&format!("O{i},customer {i},{product},{},1.50,2024-01-01\n", i % 5 + 1));
        if i % 100 == 7 {
            csv.push_str("X,,Widget,1,1.50,2024-01-01\n"); // invalid: no customer name
        }
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_resumed_after_its_load_does_not_load_again() {
    let table = Arc::new(MemoryWarehouse::new(true));
    let h = Harness::start_with(fast_config(), with_table(&table, Some("objects.move"))).await;
    let job = h.run("raw/sales.csv", sales(50, None)).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(job.attempts >= 2, "the archive move failed once: {job:?}");
    assert_eq!(table.commits(), 1, "the resumed job went on after the transform");
    assert_eq!(job.warehouse.as_ref().map(|w| w.rows), Some(50), "the checkpoint kept the load's record");
    assert_eq!(table.rows().len(), 50);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_before_the_checkpoint_replaces_the_rows_it_loaded() {
    let table = Arc::new(MemoryWarehouse::new(true));
    // Large enough to be streamed through the pass (not read whole).
    let body = sales(2000, None);
    assert!(body.len() > 16 << 10);
    let h = Harness::start_with(fast_config(), with_table(&table, Some("objects.put_file"))).await;
    let job = h.run("raw/sales.csv", body).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(table.commits(), 2, "storing the outputs failed after the commit: the retry loaded again");
    let rows = table.rows();
    assert_eq!(rows.len(), 2000, "each row once");
    let lines: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines.len(), 2000);
    assert_eq!(job.warehouse.as_ref().map(|w| w.rows), Some(2000));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_of_a_streamed_file_fails_it_with_its_line() {
    let table = Arc::new(MemoryWarehouse::new(true).refuse("Forbidden"));
    // Row 1500 of the data is refused; invalid rows before it shift its line in the file.
    let body = sales(2000, Some(1500));
    let line = 1 + body.lines().skip(1).position(|l| l.contains("Forbidden")).unwrap() as u64 + 1;
    let h = Harness::start_with(fast_config(), with_table(&table, None)).await;
    let job = h.run("raw/sales.csv", body).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "Weir.LoadRefused: weir-input/raw/sales.csv line {line}: the row contains"
        )),
        "{error}"
    );
    assert_eq!(job.attempts, 1, "a refused row is not retried");
    assert!(job.warehouse.as_ref().is_some_and(|w| w.rows == 0 && w.error.is_some()), "{job:?}");
    assert_eq!((table.commits(), table.rows().len()), (0, 0));
    h.stop().await;
}

/// The in-memory table, with a newer version of the key uploaded (object and event) the first
/// time a load begins: as if the upload came while the older version was being loaded.
struct NewerUploadDuringLoad {
    table: Arc<MemoryWarehouse>,
    raw: std::sync::Mutex<Option<Ports>>,
    newer: String,
}

#[async_trait::async_trait]
impl Warehouse for NewerUploadDuringLoad {
    fn info(&self) -> WarehouseInfo {
        self.table.info()
    }

    async fn begin(&self, target: &LoadTarget) -> Result<Box<dyn WarehouseTx>, LoadError> {
        let raw = self.raw.lock().unwrap().take();
        if let Some(raw) = raw {
            let v2 = raw
                .objects
                .put("weir-input", &target.source_key, self.newer.clone().into(), Metadata::new())
                .await
                .unwrap();
            raw.queue.send(&put_event(&target.source_key, &v2.etag, v2.size, 20)).await.unwrap();
        }
        self.table.begin(target).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_version_uploaded_during_a_load_is_the_one_in_the_table() {
    let table = Arc::new(MemoryWarehouse::new(true));
    let racing = Arc::new(NewerUploadDuringLoad {
        table: table.clone(),
        raw: std::sync::Mutex::new(None),
        newer: sales(3, None).replace(",customer ", ",newer customer "),
    });
    let h = Harness::start_with(fast_config(), {
        let racing = racing.clone();
        move |mut ports| {
            ports.warehouses =
                Warehouses::new(BTreeMap::from([("sales".to_string(), racing as Arc<dyn Warehouse>)]));
            ports
        }
    })
    .await;
    *racing.raw.lock().unwrap() = Some(h.raw.clone());
    let key = "raw/versions.csv";
    let v1 = h.raw.objects.put("weir-input", key, sales(40, None).into(), Metadata::new()).await.unwrap();
    h.raw.queue.send(&put_event(key, &v1.etag, v1.size, 10)).await.unwrap();

    let older = h.wait(&JobId::for_object("weir-input", key, &v1.etag)).await;
    assert_eq!(older.status, JobStatus::Superseded, "{older:?}");
    assert_eq!(older.attempts, 1, "it ran, and stopped before its commit: {older:?}");
    assert!(older.error.as_deref().unwrap_or_default().contains("newer upload"), "{older:?}");
    let v2 = h.raw.objects.head("weir-input", key).await.ok().map(|o| o.etag);
    let v2 = match v2 {
        Some(etag) if etag != v1.etag => etag,
        _ => h.raw.objects.head("weir-archive", key).await.unwrap().etag,
    };
    let newer = h.wait(&JobId::for_object("weir-input", key, &v2)).await;
    assert_eq!(newer.status, JobStatus::Succeeded, "{newer:?}");
    assert_eq!(table.commits(), 1, "the older version's load never committed");
    let rows = table.rows();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.job_id == newer.job_id.to_string() && r.json.contains("newer customer")));
    assert_eq!(newer.warehouse.as_ref().map(|w| w.rows), Some(3));
    h.stop().await;
}
