//! Finding and reading the configuration the command line points at.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use weir_core::Config;

use crate::cli::Global;

/// The configuration in force and where it came from.
pub struct Loaded {
    pub config: Config,
    pub source: String,
    pub data_dir: PathBuf,
    /// Where the config's secret settings are read (see [`crate::secrets`]).
    pub secrets: std::sync::Arc<weir_ports::Secrets>,
}

/// [`read`]s the configuration and refuses it, with every problem on its own line, unless
/// [`weir_pipeline::check::problems`] finds none.
pub fn load(global: &Global) -> Result<Loaded> {
    let loaded = read(global)?;
    let problems = weir_pipeline::check::problems(&loaded.config);
    if !problems.is_empty() {
        bail!("{} has problems:\n{}", loaded.source, weir_core::problem::lines(&problems));
    }
    Ok(loaded)
}

/// Finds and reads the configuration: `--config`, else `weir.toml` in the data dir or the
/// current folder, else the bundled pipelines.
pub fn read(global: &Global) -> Result<Loaded> {
    let default_dir = global.data_dir.clone().unwrap_or_else(|| PathBuf::from("weir-data"));
    let candidates = [default_dir.join("weir.toml"), PathBuf::from("weir.toml")];
    let path = match &global.config {
        Some(p) => Some(p.clone()),
        None => candidates.into_iter().find(|p| p.is_file()),
    };
    let (config, source) = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading config {}", p.display()))?;
            let mut config = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            // A config with keys, a token or a webhook is held to the rule of credentials.toml.
            let secrets = config.secrets();
            if !secrets.is_empty() {
                if let Err(problem) = weir_server::credentials::check_private_file(&p) {
                    bail!(
                        "{} holds secrets ({}) and is {problem}; or move them to the environment (WEIR_SECRET_ACCESS_KEY, WEIR_API_TOKEN, WEIR_SMTP_PASSWORD, WEIR_POSTGRES_URL)",
                        p.display(),
                        secrets.join(", ")
                    );
                }
            }
            // Files the config names are relative to the config file, not to where weir runs.
            let base = p.parent().unwrap_or(Path::new("."));
            for pipeline in &mut config.pipelines {
                if let Some(file) = &mut pipeline.workflow.file {
                    if file.is_relative() {
                        *file = base.join(&*file);
                    }
                }
                if let Some(file) = pipeline.sinks.postgres.as_mut().and_then(|pg| pg.url_file.as_mut()) {
                    if file.is_relative() {
                        *file = base.join(&*file);
                    }
                }
            }
            for (_, secret) in config.secret_settings_mut() {
                if let weir_core::SecretValue::File(f) = secret {
                    if f.file.is_relative() {
                        f.file = base.join(&f.file);
                    }
                }
            }
            (config, p.display().to_string())
        }
        None => (Config::bundled(), "bundled pipelines (no weir.toml found)".to_string()),
    };
    let data_dir = global.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or(default_dir);
    crate::private::warn_if_open(&data_dir);
    let secrets = crate::secrets::for_config(&config, None);
    Ok(Loaded { config, source, data_dir, secrets })
}
