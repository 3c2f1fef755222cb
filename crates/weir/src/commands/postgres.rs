//! `weir setup postgres` and the warehouse part of `weir check`: each pipeline with a
//! `[pipeline.sinks.postgres]` has its table made or completed, or compared with its schema.

use anyhow::Result;
use weir_core::{Config, Problem};
use weir_postgres::PostgresWarehouse;
use weir_process::Plan;

use crate::cli::Global;
use crate::config;

/// The pipelines with a PostgreSQL sink: index, name, and the warehouse (or why there is none).
fn warehouses(config: &Config) -> Vec<(usize, String, Result<PostgresWarehouse, String>)> {
    config
        .pipelines
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let sink = p.sinks.postgres.as_ref()?;
            let warehouse = Plan::compile(p).map_err(|e| e.to_string()).and_then(|plan| {
                PostgresWarehouse::new(&p.name, sink, &plan.table_columns()).map_err(|e| e.0)
            });
            Some((i, p.name.clone(), warehouse))
        })
        .collect()
}

pub async fn setup(global: &Global) -> Result<u8> {
    let loaded = config::load(global)?;
    let config = crate::secrets::at_start(&loaded).await?;
    let all = warehouses(&config);
    if all.is_empty() {
        outln!("{}: no pipeline has a [pipeline.sinks.postgres] section; nothing to set up", loaded.source)?;
        return Ok(0);
    }
    let mut failed = false;
    for (i, name, warehouse) in all {
        let at = format!("pipeline[{i}] ({name})");
        let warehouse = match warehouse {
            Ok(w) => w,
            Err(e) => {
                outln!("{at}: {e}")?;
                failed = true;
                continue;
            }
        };
        match warehouse.setup().await {
            Ok(report) => {
                let table = format!("{} at {}", report.table, report.target);
                if report.created {
                    outln!("{at}: created table {table}")?;
                } else if report.added.is_empty() {
                    outln!("{at}: table {table} already there")?;
                }
                for (column, ty) in &report.added {
                    outln!("{at}: added column {column:?} {ty} to {table}")?;
                }
                if let Some(key) = &report.other_primary_key {
                    let key = if key.is_empty() { "none".to_string() } else { format!("({key})") };
                    outln!(
                        "{at}: note: {table} has primary key {key}, not (weir_job_id, weir_line); loads still replace their rows, but nothing stops a duplicate written by hand"
                    )?;
                }
                for conflict in &report.conflicts {
                    outln!("{at}: cannot reconcile {table}: {conflict}; change the column or the schema (weir never converts or drops data)")?;
                    failed = true;
                }
            }
            Err(e) => {
                outln!("{at}: {e}")?;
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// The problems `weir check` reports for the warehouse sinks: an unreachable database (with
/// host, port and whether it was the network, TLS or authentication), a missing table, missing
/// columns, columns of another type.
pub async fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, name, warehouse) in warehouses(config) {
        let at = format!("pipeline[{i}] ({name}).sinks.postgres");
        match warehouse {
            Err(e) => problems.push(Problem::new(&at, e)),
            Ok(w) => match w.check().await {
                Ok(differences) => {
                    let table = w.spec().display();
                    problems.extend(differences.problems(&table).into_iter().map(|p| Problem::new(&at, p)));
                }
                Err(e) => problems.push(Problem::new(&at, e.to_string())),
            },
        }
    }
    problems
}
