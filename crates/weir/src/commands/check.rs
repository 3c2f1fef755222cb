//! `weir check`: validate the configuration and every pipeline's schema and workflow, printing
//! every problem on its own line with its location (`pipeline[0] (sales).columns[3].regex: ...`),
//! read every secret setting (a file, a Secrets Manager secret), and reach each warehouse sink's
//! database to compare its table with the schema. A config
//! without any pipeline is refused here too (it would run and process nothing).

use anyhow::Result;

use crate::cli::Global;
use crate::config;

pub async fn run(global: &Global) -> Result<u8> {
    let loaded = config::read(global)?;
    let mut problems = weir_pipeline::check::problems(&loaded.config);
    if loaded.config.pipelines.is_empty() {
        // `weir run` would start and never process a file.
        problems.insert(
            0,
            weir_core::Problem::new(
                "pipeline",
                "no [[pipeline]]: no file would ever be processed; add one (`weir init` writes an example)",
            ),
        );
    }
    // Every secret setting is read (never printed): a file, a Secrets Manager secret and its key.
    problems.extend(loaded.secrets.check(&loaded.config).await);
    if problems.is_empty() {
        match crate::secrets::at_start(&loaded).await {
            Ok(config) => problems.extend(super::postgres::check(&config).await),
            Err(e) => problems.push(weir_core::Problem::new("", format!("{e:#}"))),
        }
    }
    if problems.is_empty() {
        outln!("{}: ok ({} pipeline(s))", loaded.source, loaded.config.pipelines.len())?;
        Ok(0)
    } else {
        outln!("{}: {} problem(s)", loaded.source, problems.len())?;
        outln!("{}", weir_core::problem::lines(&problems))?;
        Ok(1)
    }
}
