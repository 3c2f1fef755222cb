//! `weir jobs` and `weir jobs show ID`: what happened to each file.

use anyhow::{Context, Result};
use weir_core::{Job, JobId, JobStatus};
use weir_ports::JobFilter;

use crate::cli::{Global, JobsArgs, JobsCommand};
use crate::config;

pub async fn run(global: &Global, args: JobsArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let store = crate::backend::job_store(&loaded).await?;
    match args.show {
        Some(JobsCommand::Show { job_id, json }) => {
            let job = store.get(&JobId(job_id.clone())).await?.with_context(|| format!("no job {job_id}"))?;
            if json {
                outln!("{}", serde_json::to_string(&job)?)?;
            } else {
                out!("{}", describe(&job))?;
            }
        }
        None => {
            let status = match &args.status {
                Some(s) => Some(JobStatus::parse(s).with_context(|| {
                    let all: Vec<_> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    format!("unknown status {s:?}; use one of {}", all.join(", "))
                })?),
                None => None,
            };
            let jobs = store.list(&JobFilter { status, limit: args.limit }).await?;
            if args.json {
                // One compact object per line (NDJSON), newest first: `jq`, `grep`, `head` work.
                for job in &jobs {
                    outln!("{}", serde_json::to_string(job)?)?;
                }
            } else {
                out!("{}", table(&jobs))?;
            }
        }
    }
    Ok(0)
}

/// A fixed-width table: job, status, file, rows, outputs, error.
pub fn table(jobs: &[Job]) -> String {
    let mut rows = vec![[
        "JOB".to_string(),
        "STATUS".into(),
        "FILE".into(),
        "VALID".into(),
        "INVALID".into(),
        "OUTPUT / ERROR".into(),
    ]];
    for j in jobs {
        let output = j.output_keys.get("results").or_else(|| j.output_keys.get("metadata"));
        let detail = match (&j.error, output) {
            (Some(e), _) => e.chars().take(100).collect(),
            (None, Some(r)) => r.clone(),
            (None, None) => String::new(),
        };
        rows.push([
            j.job_id.to_string(),
            j.status.to_string(),
            j.source_key.clone(),
            j.valid_rows.to_string(),
            j.invalid_rows.to_string(),
            detail,
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, (w, c)) in widths.iter().zip(r).enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// One job, readable: facts, outputs, and the workflow trace.
pub fn describe(j: &Job) -> String {
    let mut s = format!(
        "job       {}\nstatus    {}\nsource    {}/{} ({} bytes, etag {})\npipeline  {}\nrows      {} total, {} valid, {} invalid\nattempts  {}\ncreated   {}\n",
        j.job_id,
        j.status,
        j.source_bucket,
        j.source_key,
        j.source_size,
        j.source_etag,
        j.pipeline.as_deref().unwrap_or("-"),
        j.total_rows,
        j.valid_rows,
        j.invalid_rows,
        j.attempts,
        j.created_at.to_rfc3339(),
    );
    if let Some(image) = &j.image {
        s.push_str(&describe_image(image));
    }
    if let Some(f) = j.finished_at {
        s.push_str(&format!("finished  {} ({} ms)\n", f.to_rfc3339(), j.duration_ms.unwrap_or_default()));
    }
    if let Some(e) = &j.error {
        s.push_str(&format!("error     {e}\n"));
    }
    if let Some(load) = &j.warehouse {
        s.push_str(&format!("loaded    {}\n", load.describe()));
    }
    if !j.output_keys.is_empty() {
        s.push_str("outputs\n");
        for (role, key) in &j.output_keys {
            s.push_str(&format!("  {role:<9} {key}\n"));
        }
    }
    if !j.steps.is_empty() {
        s.push_str("workflow\n");
        for step in &j.steps {
            let mark = if step.outcome == "ok" { "✓" } else { "✗" };
            let error = step.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default();
            s.push_str(&format!(
                "  {mark} {:<26} {:>6} ms  {}{error}\n",
                step.state, step.duration_ms, step.outcome
            ));
        }
    }
    s
}

/// An image job's picture: format and size, what the EXIF says, the thumbnails.
fn describe_image(image: &weir_core::image::ImageSummary) -> String {
    let mut s = format!(
        "image     {} {}x{} ({}), {} bytes{}{}\n",
        image.format,
        image.width,
        image.height,
        image.mode,
        image.file_size,
        if (image.display_width, image.display_height) != (image.width, image.height) {
            format!(", shown {}x{}", image.display_width, image.display_height)
        } else {
            String::new()
        },
        if image.animated { ", animated (first frame)" } else { "" },
    );
    if let Some(exif) = &image.exif {
        let mut facts = Vec::new();
        let camera: Vec<&str> = [&exif.make, &exif.model].into_iter().flatten().map(String::as_str).collect();
        if !camera.is_empty() {
            facts.push(camera.join(" "));
        }
        if let Some(taken) = exif.datetime_original.as_ref().or(exif.datetime.as_ref()) {
            facts.push(format!("taken {taken}"));
        }
        if let Some(o) = exif.orientation {
            facts.push(format!("orientation {o}"));
        }
        match (&exif.gps, exif.has_gps) {
            (Some(g), _) => facts.push(format!("at {:.5}, {:.5}", g.latitude, g.longitude)),
            (None, true) => facts.push("location withheld".into()),
            (None, false) => {}
        }
        s.push_str(&format!("exif      {}\n", facts.join(", ")));
    }
    let thumbnails: Vec<String> =
        image.thumbnails.iter().map(|t| format!("{} {}x{}", t.name, t.width, t.height)).collect();
    s.push_str(&format!("thumbs    {}\n", thumbnails.join(", ")));
    s
}

#[cfg(test)]
mod tests {
    use weir_core::image::{ExifSummary, ImageSummary, ThumbnailInfo};
    use weir_core::Job;

    #[test]
    fn an_image_job_shows_its_picture() {
        let mut job = Job::queued("weir-input", "images/a.jpg", "e", 10, Some("images"));
        job.image = Some(ImageSummary {
            format: "JPEG".into(),
            mode: "RGB".into(),
            width: 4000,
            height: 3000,
            display_width: 3000,
            display_height: 4000,
            file_size: 10,
            exif: Some(ExifSummary {
                make: Some("Weirphone".into()),
                model: Some("W 12".into()),
                orientation: Some(6),
                datetime_original: Some("2024:05:01 12:29:58".into()),
                has_gps: true,
                ..Default::default()
            }),
            thumbnails: vec![ThumbnailInfo {
                name: "small".into(),
                width: 113,
                height: 150,
                ..Default::default()
            }],
            ..Default::default()
        });
        let shown = super::describe(&job);
        assert!(shown.contains("image     JPEG 4000x3000 (RGB), 10 bytes, shown 3000x4000\n"), "{shown}");
        assert!(
            shown.contains(
                "exif      Weirphone W 12, taken 2024:05:01 12:29:58, orientation 6, location withheld\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("thumbs    small 113x150\n"), "{shown}");
    }
}
