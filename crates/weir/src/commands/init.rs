//! `weir init [DIR]`: a commented weir.toml with the bundled pipelines (sales CSVs, pictures,
//! NDJSON records), and the samples to try the first two on; `weir init --from FILE...`: a weir.toml whose pipeline is inferred
//! from the user's own files (`weir_infer`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use weir_core::config::DEFAULT_CONFIG_TOML;

use crate::cli::InitArgs;

pub const SAMPLES: [(&str, &str); 3] = [
    ("sales.csv", include_str!("../../../../samples/sales.csv")),
    ("bad_schema.csv", include_str!("../../../../samples/bad_schema.csv")),
    ("bad_rows.csv", include_str!("../../../../samples/bad_rows.csv")),
];

/// Pictures for the image pipeline (`images/`): a phone photo stored on its side (EXIF
/// orientation 6) with a location, made by `samples/make_photo.py`.
pub const IMAGE_SAMPLES: [(&str, &[u8]); 1] =
    [("photo.jpg", include_bytes!("../../../../samples/photo.jpg"))];

pub fn run(args: InitArgs) -> Result<u8> {
    if !args.from.is_empty() {
        return from_samples(&args);
    }
    if args.read.full || args.read.sample_rows != crate::cli::DEFAULT_SAMPLE_ROWS {
        bail!("--full and --sample-rows say how much of the --from files to read; give --from FILE...");
    }
    // The config names the workflow file written beside it, so the path a file takes is there
    // to read and change.
    let config = DEFAULT_CONFIG_TOML.replace(
        "# [pipeline.workflow]\n# file = \"workflow.asl.json\"",
        "[pipeline.workflow]\nfile = \"workflow.asl.json\"",
    );
    let files: Vec<(String, &[u8])> = [
        ("weir.toml".to_string(), config.as_bytes()),
        ("workflow.asl.json".to_string(), weir_pipeline::DEFAULT_WORKFLOW.as_bytes()),
    ]
    .into_iter()
    .chain(SAMPLES.iter().map(|(n, c)| (format!("samples/{n}"), c.as_bytes())))
    .chain(IMAGE_SAMPLES.iter().map(|(n, c)| (format!("samples/{n}"), *c)))
    .collect();
    if !args.force {
        let existing: Vec<_> =
            files.iter().filter(|(n, _)| args.dir.join(n).exists()).map(|(n, _)| n.as_str()).collect();
        if !existing.is_empty() {
            bail!(
                "{} already exist(s) in {}; use --force to overwrite",
                existing.join(", "),
                args.dir.display()
            );
        }
    }
    for (name, content) in &files {
        write(&args.dir.join(name), content)?;
        outln!("wrote {}", args.dir.join(name).display())?;
    }
    outln!("\nnext: `weir run` in one terminal, then `weir put samples/sales.csv --wait` in another")?;
    outln!("      `weir process samples/photo.jpg --out thumbs` makes the thumbnails of a picture now")?;
    Ok(0)
}

fn write(path: &Path, content: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}

/// `weir init --from FILE...`: the weir.toml inferred from the files, checked as `weir check`
/// would check it before it is written.
fn from_samples(args: &InitArgs) -> Result<u8> {
    let inference = weir_infer::infer(&args.from, &super::infer::options(&args.read))?;
    let source = weir_infer::render::source(&inference.files, inference.format.kind);
    let text = weir_infer::render::config_toml(&inference, &source);
    let config = weir_core::Config::from_toml(&text).context("the inferred config does not parse")?;
    let problems = weir_pipeline::check::problems(&config);
    if !problems.is_empty() {
        bail!("the inferred config has problems:\n{}", weir_core::problem::lines(&problems));
    }
    let path = args.dir.join("weir.toml");
    if path.exists() && !args.force {
        bail!("{} already exists; use --force to overwrite", path.display());
    }
    write(&path, text.as_bytes())?;
    out!("{}", weir_infer::render::table(&inference))?;
    outln!("\nwrote {} (pipeline {:?}: {}*{})", path.display(), source.name, source.prefix, source.suffix)?;
    let sample = args.from[0].display();
    outln!(
        "next: `weir check`; `weir process {sample}` to try it now, or `weir run` and `weir put {sample} --wait`"
    )?;
    Ok(0)
}
