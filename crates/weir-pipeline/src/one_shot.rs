//! `weir process FILE`: the pipeline's transform on a local file, now, with no queue or store.
//!
//! The same processing core and the same output documents as a queued job; outputs go to a
//! folder as `<file>.ndjson` (or `.json`/`.parquet`, as the pipeline's output format says; one
//! file per format when `[[output.also]]` adds formats, all from one pass),
//! `<file>.summary.json` and, when rows are invalid, `<file>.errors.json`; for an image pipeline,
//! `<file>_<size>.jpg` (or `.webp`/`.png`) per thumbnail size and the metadata document
//! `<file>.json`. Nothing is archived or moved: the file is the user's.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use weir_core::config::PipelineKind;
use weir_core::image::ImageSummary;
use weir_core::summary::SourceRef;
use weir_core::{ErrorClass, PipelineConfig, Summary};
use weir_process::{Options, Plan, ProcessError};

use crate::tasks::{error_report, run_transform};

/// How a one-shot run ended, with the exit code the CLI uses.
#[derive(Debug)]
pub enum OneShot {
    Succeeded {
        summary: Box<Summary>,
        outputs: Vec<PathBuf>,
    },
    /// An image pipeline's picture: its metadata (thumbnail keys are the files written).
    Image {
        image: Box<ImageSummary>,
        outputs: Vec<PathBuf>,
    },
    /// The header does not fit the schema, the file cannot be read as the format, or it is not
    /// a picture weir reads safely.
    Rejected {
        reason: String,
    },
}

impl OneShot {
    pub fn exit_code(&self) -> i32 {
        match self {
            OneShot::Succeeded { .. } | OneShot::Image { .. } => 0,
            OneShot::Rejected { .. } => 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    #[error("pipeline {0:?}: {1}")]
    Config(String, String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Process { path: PathBuf, source: ProcessError },
}

/// The pipeline `weir process FILE` uses when none is named: one whose source takes the file's
/// name and whose kind fits its content (a picture, by its magic bytes, goes to an image
/// pipeline), else the first whose source takes the name, else the first.
pub fn pipeline_for_file<'a>(pipelines: &'a [PipelineConfig], file: &Path) -> Option<&'a PipelineConfig> {
    let mut head = Vec::with_capacity(16);
    if let Ok(f) = File::open(file) {
        let _ = f.take(16).read_to_end(&mut head);
    }
    let picture = weir_image::sniff(&head).is_ok();
    let name = file.to_string_lossy();
    let takes = |p: &&PipelineConfig| p.source.matches_name(&name);
    pipelines
        .iter()
        .filter(takes)
        .find(|p| (p.kind == PipelineKind::Image) == picture)
        .or_else(|| pipelines.iter().find(takes))
        .or(pipelines.first())
}

pub fn process_file(
    pipeline: &PipelineConfig,
    input: &Path,
    out_dir: &Path,
) -> Result<OneShot, OneShotError> {
    process_file_with_progress(pipeline, input, out_dir, None)
}

/// [`process_file`], calling `progress` with the input bytes read so far (for a progress bar).
pub fn process_file_with_progress(
    pipeline: &PipelineConfig,
    input: &Path,
    out_dir: &Path,
    progress: Option<&dyn Fn(u64)>,
) -> Result<OneShot, OneShotError> {
    if pipeline.kind == PipelineKind::Image {
        return process_image_file(pipeline, input, out_dir);
    }
    let plan =
        Plan::compile(pipeline).map_err(|e| OneShotError::Config(pipeline.name.clone(), e.to_string()))?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OneShotError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
    let file = File::open(input).map_err(io(input))?;
    let stem = format!(".{name}.{}", std::process::id());
    let size_hint = file.metadata().ok().map(|m| m.len());
    let options = Options { source_name: Some(&name), progress, size_hint, ..Options::default() };
    let mut output = match run_transform(&plan, file, out_dir, &stem, &options) {
        Ok(o) => o,
        Err(e) if e.class() == ErrorClass::Permanent => {
            return Ok(OneShot::Rejected { reason: format!("{}: {e}", input.display()) });
        }
        Err(source) => return Err(OneShotError::Process { path: input.to_owned(), source }),
    };
    output.summary.source = Some(SourceRef {
        bucket: None,
        key: input.display().to_string(),
        job_id: None,
        pipeline: Some(pipeline.name.clone()),
    });

    let summary_path = out_dir.join(format!("{name}.summary.json"));
    let errors_path = out_dir.join(format!("{name}.errors.json"));
    let mut outputs = Vec::new();
    for (format, spooled) in &output.results {
        let results = out_dir.join(format!("{name}.{}", format.extension()));
        std::fs::rename(spooled, &results).map_err(io(&results))?;
        outputs.push(results);
    }
    if output.summary.invalid_rows > 0 {
        let file = File::create(&errors_path).map_err(io(&errors_path))?;
        error_report(&output.summary, &output.errors, &pipeline.summary, std::io::BufWriter::new(file))
            .map_err(io(&errors_path))?;
        outputs.push(errors_path);
    } else if errors_path.exists() {
        std::fs::remove_file(&errors_path).map_err(io(&errors_path))?;
    }
    let _ = std::fs::remove_file(&output.errors);
    let summary_json = serde_json::to_vec_pretty(&output.summary).expect("summary serializes");
    std::fs::write(&summary_path, summary_json).map_err(io(&summary_path))?;
    outputs.push(summary_path);
    Ok(OneShot::Succeeded { summary: Box::new(output.summary), outputs })
}

/// An image pipeline's thumbnails and metadata document for a local picture.
fn process_image_file(
    pipeline: &PipelineConfig,
    input: &Path,
    out_dir: &Path,
) -> Result<OneShot, OneShotError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OneShotError::Io { path, source }
    };
    let config = &pipeline.image;
    let limit = config.max_input_bytes.min(pipeline.source.max_size_bytes);
    let file = File::open(input).map_err(io(input))?;
    let size = file.metadata().map_err(io(input))?.len();
    let rejected =
        |e: weir_image::ImageError| Ok(OneShot::Rejected { reason: format!("{}: {e}", input.display()) });
    if size > limit {
        return rejected(weir_image::ImageError::TooLarge { size, limit });
    }
    // At most one byte more than the limit, whatever the file grew to since it was measured.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io(input))?;
    let mut made = match weir_image::process(&bytes, config) {
        Ok(made) => made,
        Err(e) => return rejected(e),
    };
    drop(bytes);
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
    let mut outputs = Vec::new();
    for (info, thumbnail) in made.summary.thumbnails.iter_mut().zip(&made.thumbnails) {
        let path = out_dir.join(format!("{name}_{}.{}", info.name, config.format.extension()));
        std::fs::write(&path, &thumbnail.bytes).map_err(io(&path))?;
        info.key = path.display().to_string();
        outputs.push(path);
    }
    made.summary.source = Some(SourceRef {
        bucket: None,
        key: input.display().to_string(),
        job_id: None,
        pipeline: Some(pipeline.name.clone()),
    });
    let metadata = out_dir.join(format!("{name}.json"));
    let document = serde_json::to_vec_pretty(&made.summary).expect("an image summary serializes");
    std::fs::write(&metadata, document).map_err(io(&metadata))?;
    outputs.push(metadata);
    Ok(OneShot::Image { image: Box::new(made.summary), outputs })
}
