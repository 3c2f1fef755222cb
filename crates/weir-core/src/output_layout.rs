//! Where each pipeline's outputs go: its key templates resolved (the user's, or the defaults,
//! which are the keys weir has always written), and the checks `weir check` makes on them.
//!
//! The checks, each with the setting's path and a sentence:
//! - a template that does not parse (an unknown placeholder, an unclosed `{`);
//! - a template that could give two different sources the same key
//!   ([`KeyTemplate::identifies`]);
//! - two outputs that could meet in one bucket: different roles of one pipeline, or outputs of
//!   two pipelines, whose fixed beginnings and ends are compatible ([`could_overlap`]);
//! - an output that could write a daily report's key (`<report.prefix>YYYY-MM-DD/daily_report.html`
//!   or `.json` in the reports' bucket);
//! - an output that could land under a watched source filter (weir would process its own
//!   output, an endless loop);
//! - templates an image pipeline has no use for, and a result format written twice.

use chrono::NaiveDate;

use crate::config::{Config, OutputConfig, OutputFormat, PipelineConfig, PipelineKind};
use crate::key_template::{could_match_source, could_overlap, KeyTemplate, SourceFacts};
use crate::keys::KeyError;
use crate::problem::Problem;

pub const DEFAULT_SUMMARY_KEY: &str = "reports/{bucket}/{key}.summary.json";
pub const DEFAULT_ERRORS_KEY: &str = "errors/{bucket}/{key}.errors.json";
pub const DEFAULT_ARCHIVE_KEY: &str = "{key}";
pub const DEFAULT_FAILED_KEY: &str = "failed/{yyyy}/{mm}/{dd}/{key}";

/// The default key template of results in `format`.
pub fn default_results_key(format: OutputFormat) -> String {
    format!("processed/{{bucket}}/{{key}}.{}", format.extension())
}

/// One pipeline's key templates.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTemplates {
    /// Every result format with its template, `output.format` first.
    pub results: Vec<(OutputFormat, KeyTemplate)>,
    pub summary: KeyTemplate,
    pub errors: KeyTemplate,
    pub archive: KeyTemplate,
    pub failed: KeyTemplate,
}

/// The keys of one job's data outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedKeys {
    pub results: Vec<(OutputFormat, String)>,
    pub summary: String,
    pub errors: String,
}

/// One template of a pipeline: the setting it comes from and its text (the default's when unset).
struct Setting {
    path: String,
    text: String,
    written: bool,
}

fn settings(o: &OutputConfig) -> Vec<Setting> {
    let one = |path: &str, v: &Option<String>, default: String| Setting {
        path: path.to_owned(),
        text: v.clone().unwrap_or(default),
        written: v.is_some(),
    };
    let mut out = vec![one("output.results_key", &o.results_key, default_results_key(o.format))];
    for (j, a) in o.also.iter().enumerate() {
        out.push(one(&format!("output.also[{j}].key"), &a.key, default_results_key(a.format)));
    }
    out.push(one("output.summary_key", &o.summary_key, DEFAULT_SUMMARY_KEY.into()));
    out.push(one("output.errors_key", &o.errors_key, DEFAULT_ERRORS_KEY.into()));
    out.push(one("output.archive_key", &o.archive_key, DEFAULT_ARCHIVE_KEY.into()));
    out.push(one("output.failed_key", &o.failed_key, DEFAULT_FAILED_KEY.into()));
    out
}

impl OutputTemplates {
    /// The pipeline's templates, or what is wrong with them (paths under `output.`).
    pub fn of(p: &PipelineConfig) -> Result<OutputTemplates, Vec<Problem>> {
        let mut parsed = Vec::new();
        let mut problems = Vec::new();
        for s in settings(&p.output) {
            match KeyTemplate::parse(&s.text) {
                Ok(t) => parsed.push(t),
                Err(e) => problems.push(Problem::new(s.path, format!("{:?}: {e}", s.text))),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut it = parsed.into_iter();
        let mut next = || it.next().expect("one template per setting");
        let results = p.output.formats().into_iter().map(|f| (f, next())).collect();
        Ok(OutputTemplates { results, summary: next(), errors: next(), archive: next(), failed: next() })
    }

    /// The data outputs' keys for one job.
    pub fn render(&self, facts: &SourceFacts<'_>) -> Result<RenderedKeys, KeyError> {
        Ok(RenderedKeys {
            results: self
                .results
                .iter()
                .map(|(f, t)| Ok((*f, t.render(facts)?)))
                .collect::<Result<_, KeyError>>()?,
            summary: self.summary.render(facts)?,
            errors: self.errors.render(facts)?,
        })
    }
}

/// The date a job's templates use: its creation date (RFC 3339) in UTC, or today if unreadable.
pub fn job_date(created_at: &str) -> NaiveDate {
    chrono::DateTime::parse_from_rfc3339(created_at)
        .map(|d| d.with_timezone(&chrono::Utc).date_naive())
        .unwrap_or_else(|_| chrono::Utc::now().date_naive())
}

/// One place weir writes, for the checks.
struct Output {
    /// `pipeline[0] (sales).output.summary_key`.
    path: String,
    pipeline: usize,
    /// The bucket it writes into.
    bucket: String,
    /// The bucket of the sources it is written for.
    source_bucket: String,
    template: KeyTemplate,
    written: bool,
}

/// Every problem with the pipelines' output keys (see the module's docs).
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut outputs: Vec<Output> = Vec::new();
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = format!("pipeline[{i}] ({})", p.name);
        let source_bucket = p.source.bucket.clone().unwrap_or_else(|| config.buckets.input.clone());
        let o = &p.output;
        if p.kind == PipelineKind::Image {
            for (set, path) in [
                (o.results_key.is_some(), "output.results_key"),
                (o.summary_key.is_some(), "output.summary_key"),
                (o.errors_key.is_some(), "output.errors_key"),
                (!o.also.is_empty(), "output.also"),
            ] {
                if set {
                    problems.push(Problem::new(
                        format!("{at}.{path}"),
                        "an image pipeline writes thumbnails and a metadata document, not results, summaries or error reports; only archive_key and failed_key apply",
                    ));
                }
            }
        }
        let mut seen = vec![o.format];
        for (j, a) in o.also.iter().enumerate() {
            if seen.contains(&a.format) {
                problems.push(Problem::new(
                    format!("{at}.output.also[{j}].format"),
                    format!("{} results are already written (each format once)", a.format.extension()),
                ));
            }
            seen.push(a.format);
        }
        let templates = match OutputTemplates::of(p) {
            Ok(t) => t,
            Err(found) => {
                problems.extend(found.into_iter().map(|e| e.under(&at)));
                continue;
            }
        };
        let data = p.kind == PipelineKind::Data;
        let mut add = |path: String, bucket: &str, template: KeyTemplate, written: bool| {
            outputs.push(Output {
                path: format!("{at}.{path}"),
                pipeline: i,
                bucket: bucket.to_owned(),
                source_bucket: source_bucket.clone(),
                template,
                written,
            })
        };
        let written: Vec<Setting> = settings(o);
        let mut by_setting = written.iter();
        let mut setting = || by_setting.next().expect("one setting per template");
        for (_, t) in templates.results {
            let s = setting();
            if data {
                add(s.path.clone(), &config.buckets.output, t, s.written);
            }
        }
        for (t, bucket) in
            [(templates.summary, &config.buckets.output), (templates.errors, &config.buckets.output)]
        {
            let s = setting();
            if data {
                add(s.path.clone(), bucket, t, s.written);
            }
        }
        let s = setting();
        add(s.path.clone(), &config.buckets.archive, templates.archive, s.written);
        let s = setting();
        add(s.path.clone(), &source_bucket, templates.failed, s.written);
        if !data {
            for fixed in ["thumbnails/{key}", "metadata/{bucket}/{key}.json"] {
                let t = KeyTemplate::parse(fixed).expect("fixed templates parse");
                add(format!("image ({fixed})"), &config.buckets.output, t, false);
            }
        }
    }
    for o in outputs.iter().filter(|o| o.written) {
        if let Err(why) = o.template.identifies() {
            problems.push(Problem::new(&o.path, format!("{:?}: {why}", o.template.as_str())));
        }
    }
    // Two outputs that could write one key.
    for (b, ob) in outputs.iter().enumerate() {
        for oa in &outputs[..b] {
            if oa.bucket != ob.bucket || !(oa.written || ob.written) {
                continue;
            }
            let same_text = oa.template == ob.template;
            if same_text
                && oa.pipeline != ob.pipeline
                && oa.source_bucket == ob.source_bucket
                && oa.template.identifies().is_ok()
            {
                // One template for sources of one bucket: a key belongs to one pipeline only.
                continue;
            }
            let (sa, ea) =
                (oa.template.fixed_start(&oa.source_bucket), oa.template.fixed_end(&oa.source_bucket));
            let (sb, eb) =
                (ob.template.fixed_start(&ob.source_bucket), ob.template.fixed_end(&ob.source_bucket));
            if could_overlap(&sa, &ea, &sb, &eb) {
                problems.push(Problem::new(
                    &ob.path,
                    format!(
                        "{:?} could write the same key in {} as {} ({:?}): give one of them a different fixed beginning or ending (such as \"summaries/\" or \".summary.json\")",
                        ob.template.as_str(),
                        ob.bucket,
                        oa.path,
                        oa.template.as_str()
                    ),
                ));
            }
        }
    }
    let report_bucket = config.report.bucket.clone().unwrap_or_else(|| config.buckets.output.clone());
    problems.extend(report_collisions(config, &outputs, &report_bucket));
    // Outputs under a watched source filter.
    for (q, p) in config.pipelines.iter().enumerate() {
        let watched = p.source.bucket.as_deref().unwrap_or(&config.buckets.input);
        let (prefix, suffix) = (&p.source.prefix, &p.source.suffix);
        let mut said_default = false;
        for o in outputs.iter().filter(|o| o.bucket == watched) {
            let (start, end) =
                (o.template.fixed_start(&o.source_bucket), o.template.fixed_end(&o.source_bucket));
            let loops = could_match_source(&start, &end, prefix, suffix);
            if loops && !o.written {
                // A default key (the `failed/` copies, the archive in the input bucket): the
                // source's prefix is what to change, as weir check has always said.
                if !said_default {
                    problems.push(Problem::new(
                        format!("pipeline[{q}] ({}).source", p.name),
                        format!(
                            "prefix {prefix:?} would match the {:?} keys weir writes into {watched} ({}), an endless loop; use a prefix such as \"raw/\"",
                            o.template.as_str(),
                            o.path
                        ),
                    ));
                    said_default = true;
                }
            } else if loops {
                problems.push(Problem::new(
                    &o.path,
                    format!(
                        "keys from {:?} in {watched} could match pipeline[{q}] ({})'s source (prefix {prefix:?}, suffix {suffix:?}): weir would process what it wrote, an endless loop; start the template with a folder the source does not watch, or use a source prefix such as \"raw/\"",
                        o.template.as_str(),
                        p.name,
                    ),
                ));
            }
        }
        if report_bucket == watched && could_match_source(&config.report.prefix, "", prefix, suffix) {
            problems.push(Problem::new(
                format!("pipeline[{q}] ({}).source", p.name),
                format!(
                    "the daily reports go to {report_bucket}/{}, which the source (prefix {prefix:?}) watches: an endless loop",
                    config.report.prefix
                ),
            ));
        }
    }
    problems
}

/// The endings of the daily reports' keys: `<report.prefix>YYYY-MM-DD/daily_report.html` and
/// `.json`, and `<report.prefix>YYYY-MM-DD/<pipeline>/daily_report.json`.
const REPORT_ENDINGS: [&str; 2] = ["/daily_report.html", "/daily_report.json"];

/// Outputs in the reports' bucket whose keys could be a daily report's: said at the output's
/// setting, or at `report.prefix` when the output is a default key. A `{key}` where a
/// template's fixed text stops brings the pipeline's source prefix (or suffix), which every
/// such key has.
fn report_collisions(config: &Config, outputs: &[Output], report_bucket: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let prefix = &config.report.prefix;
    for o in outputs.iter().filter(|o| o.bucket == report_bucket) {
        let source = &config.pipelines[o.pipeline].source;
        let text = o.template.as_str();
        let start = o.template.start_for_source(&o.source_bucket, &source.prefix);
        let end = o.template.end_for_source(&o.source_bucket, &source.suffix.to_ascii_lowercase());
        if !REPORT_ENDINGS.iter().any(|ending| could_overlap(&start, &end, prefix, ending)) {
            continue;
        }
        let reports = format!("{report_bucket}/{prefix}YYYY-MM-DD/daily_report.html and .json");
        problems.push(match o.written {
            true => Problem::new(
                &o.path,
                format!(
                    "{text:?} could write the same key as a daily report ({reports}): give it a different fixed beginning or ending, or move the reports with report.prefix"
                ),
            ),
            false => Problem::new(
                "report.prefix",
                format!(
                    "{prefix:?} puts the daily reports ({reports}) where {} ({text:?}) could write: use another prefix such as \"daily-reports/\", or report.bucket",
                    o.path
                ),
            ),
        });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml(toml).unwrap()
    }

    fn problems(c: &Config) -> Vec<String> {
        validate(c).iter().map(ToString::to_string).collect()
    }

    /// A config `weir check` takes as it is, and its first pipeline's templates.
    fn accepted(toml: &str) -> (Config, OutputTemplates) {
        let c = config(toml);
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
        let t = OutputTemplates::of(&c.pipelines[0]).unwrap();
        (c, t)
    }

    fn facts<'a>(bucket: &'a str, key: &'a str, date: (i32, u32, u32)) -> SourceFacts<'a> {
        SourceFacts {
            bucket,
            key,
            job_id: "j-0123456789abcdef01234567",
            date: NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap(),
        }
    }

    #[test]
    fn the_defaults_are_the_keys_weir_always_wrote() {
        let c = Config::bundled();
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
        let t = OutputTemplates::of(&c.pipelines[0]).unwrap();
        let keys = t.render(&facts("weir-input", "raw/a.csv", (2026, 1, 2))).unwrap();
        let old = crate::keys::OutputKeys::for_source("weir-input", "raw/a.csv", "ndjson");
        assert_eq!(keys.results, [(OutputFormat::Ndjson, old.results)]);
        assert_eq!((keys.summary, keys.errors), (old.summary, old.errors));
        let date = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let f = facts("weir-input", "raw/a.csv", (2026, 1, 2));
        assert_eq!(t.failed.render(&f).unwrap(), crate::keys::failed_key("raw/a.csv", date));
        assert_eq!(t.archive.render(&f).unwrap(), "raw/a.csv");
    }

    /// Seed 002 (the Thai workshop) writes `processed/YYYY/MM/DD/<file>_summary.json` and
    /// `..._result.json`: dated prefixes, with the source's folder kept so two files of one
    /// name in different folders stay apart.
    #[test]
    fn seed_002_dated_prefixes() {
        let (_, t) = accepted(
            r#"
[buckets]
input = "pipeline-raw"
output = "pipeline-processed"
[[pipeline]]
name = "sales"
source = { prefix = "uploads/", suffix = ".csv" }
[pipeline.output]
format = "json"
results_key = "processed/{yyyy}/{mm}/{dd}/{dir}/{name}_result.json"
summary_key = "processed/{yyyy}/{mm}/{dd}/{dir}/{name}_summary.json"
errors_key = "processed/{yyyy}/{mm}/{dd}/{dir}/{name}_errors.json"
"#,
        );
        let keys = t.render(&facts("pipeline-raw", "uploads/sample_sales.csv", (2024, 1, 15))).unwrap();
        assert_eq!(keys.results[0].1, "processed/2024/01/15/uploads/sample_sales.csv_result.json");
        assert_eq!(keys.summary, "processed/2024/01/15/uploads/sample_sales.csv_summary.json");
    }

    /// Seed 003 (the portfolio README): one bucket, `raw-data/` in, processed sources to
    /// `processed-data/`, rejected ones to `failed-data/`, outputs beside them.
    #[test]
    fn seed_003_one_bucket() {
        let (c, t) = accepted(
            r#"
[buckets]
input = "pipeline-data"
output = "pipeline-data"
archive = "pipeline-data"
[[pipeline]]
name = "orders"
source = { prefix = "raw-data/", suffix = ".csv" }
[pipeline.output]
results_key = "results/{dir}/{name}.ndjson"
summary_key = "results/{dir}/{name}.summary.json"
errors_key = "results/{dir}/{name}.errors.json"
archive_key = "processed-data/{key}"
failed_key = "failed-data/{yyyy}-{mm}-{dd}/{key}"
"#,
        );
        let f = facts("pipeline-data", "raw-data/orders.csv", (2025, 6, 1));
        assert_eq!(t.archive.render(&f).unwrap(), "processed-data/raw-data/orders.csv");
        assert_eq!(t.failed.render(&f).unwrap(), "failed-data/2025-06-01/raw-data/orders.csv");
        assert_eq!(t.render(&f).unwrap().results[0].1, "results/raw-data/orders.csv.ndjson");
        // The same bucket with the default archive key would archive a source onto itself.
        let mut looped = c.clone();
        looped.pipelines[0].output.archive_key = None;
        let found = problems(&looped);
        assert!(
            found.iter().any(|p| p.starts_with(
                "pipeline[0] (orders).source: prefix \"raw-data/\" would match the \"{key}\" keys"
            ) && p.contains("output.archive_key")
                && p.contains("endless loop")),
            "{found:?}"
        );
    }

    /// Seed 004 writes Parquet and JSON of the same rows: two formats, one pass.
    #[test]
    fn seed_004_parquet_and_json() {
        let (_, t) = accepted(
            r#"
[[pipeline]]
name = "events"
[pipeline.output]
format = "parquet"
results_key = "curated/{yyyy}/{mm}/{dd}/{stem}-{job_id}.parquet"
[[pipeline.output.also]]
format = "json"
key = "curated/{yyyy}/{mm}/{dd}/{stem}-{job_id}.json"
[[pipeline.output.also]]
format = "ndjson"
"#,
        );
        let keys = t.render(&facts("weir-input", "raw/e.csv", (2025, 6, 1))).unwrap();
        let formats: Vec<_> = keys.results.iter().map(|(f, _)| *f).collect();
        assert_eq!(formats, [OutputFormat::Parquet, OutputFormat::Json, OutputFormat::Ndjson]);
        assert_eq!(keys.results[1].1, "curated/2025/06/01/e-j-0123456789abcdef01234567.json");
        assert_eq!(keys.results[2].1, "processed/weir-input/raw/e.csv.ndjson");
    }

    /// A daily report's key (`reports/YYYY-MM-DD/daily_report.json` in the output bucket) is
    /// nobody else's: a template that could write one is refused at its setting, a report
    /// prefix that a default key could reach at `report.prefix`; a `{key}` brings the source's
    /// prefix, so `reports/{key}.json` with a `raw/` source is no collision.
    #[test]
    fn check_refuses_templates_that_could_write_a_daily_report() {
        let base = "[[pipeline]]\nname = \"sales\"\n[pipeline.output]\n";
        let found =
            problems(&config(&format!("{base}summary_key = \"reports/{{job_id}}/daily_report.json\"\n")));
        assert!(
            found.iter().any(|p| p.starts_with("pipeline[0] (sales).output.summary_key: \"reports/{job_id}/daily_report.json\" could write the same key as a daily report (weir-output/reports/YYYY-MM-DD/daily_report.html and .json)")),
            "{found:?}"
        );
        let found = problems(&config(&format!(
            "{base}results_key = \"{{yyyy}}-{{mm}}-{{dd}}/{{job_id}}.json\"\n[report]\nprefix = \"\"\n"
        )));
        assert!(found.iter().any(|p| p.starts_with("pipeline[0] (sales).output.results_key:")), "{found:?}");
        // A default key reached by a report prefix: said at the prefix (the pictures of
        // `images/` are archived under their own keys, of any name; the sales files end in .csv).
        let mut c = Config::bundled();
        c.report.bucket = Some(c.buckets.archive.clone());
        c.report.prefix = "images/".into();
        let found = problems(&c);
        assert!(
            found.iter().any(|p| p.starts_with("report.prefix: \"images/\" puts the daily reports (weir-archive/images/YYYY-MM-DD/daily_report.html and .json) where pipeline[1] (images).output.archive_key (\"{key}\") could write")),
            "{found:?}"
        );
        accepted(&format!("{base}summary_key = \"reports/{{key}}.json\"\n"));
        accepted(&format!("{base}summary_key = \"reports/{{bucket}}/{{key}}.summary.json\"\n"));
    }

    #[test]
    fn check_refuses_templates_that_collide_or_loop() {
        let base = "[[pipeline]]\nname = \"sales\"\n[pipeline.output]\n";
        let refused = |extra: &str| problems(&config(&format!("{base}{extra}")));
        let one = |extra: &str, path: &str, words: &str| {
            let found = refused(extra);
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with(&format!("pipeline[0] (sales).{path}: ")) && p.contains(words)),
                "{extra}: {found:?}"
            );
        };
        one(
            "results_key = \"out/{stem}.ndjson\"",
            "output.results_key",
            "two different sources the same key",
        );
        one("results_key = \"out/{name}.ndjson\"", "output.results_key", "raw/a/x.csv and raw/b/x.csv");
        one("summary_key = \"daily/{yyyy}/{mm}/{dd}.json\"", "output.summary_key", "a date is shared");
        one("errors_key = \"e/{dir}-{key}\"", "output.errors_key", "{dir} around the source's key");
        one("results_key = \"out/{file}\"", "output.results_key", "unknown placeholder {file}");
        one("results_key = \"out/{key\"", "output.results_key", "not closed");
        // Two roles of one source in one key, or sets of keys that could meet.
        one(
            "summary_key = \"processed/{bucket}/{key}.ndjson\"",
            "output.summary_key",
            "could write the same key",
        );
        one(
            "summary_key = \"out/{key}.json\"\nerrors_key = \"out/{key}.errors.json\"",
            "output.errors_key",
            "output.summary_key",
        );
        // Into the watched input: the failed copies, and the archive in the input bucket.
        one("failed_key = \"raw/failed/{key}\"", "output.failed_key", "endless loop");
        one(
            "format = \"ndjson\"\n[[pipeline.output.also]]\nformat = \"ndjson\"",
            "output.also[0].format",
            "each format once",
        );
        let c = config("[buckets]\narchive = \"weir-input\"\n[[pipeline]]\nname = \"sales\"\n");
        assert!(problems(&c).iter().any(|p| p.contains("output.archive_key") && p.contains("endless loop")));
        let photos = "[[pipeline]]\nname = \"photos\"\nkind = \"image\"\nsource = { prefix = \"images/\" }\n[pipeline.output]\nsummary_key = \"s/{key}\"\n";
        assert!(problems(&config(photos))
            .iter()
            .any(|p| p.contains("only archive_key and failed_key apply")));
        // Another pipeline's outputs: one template for two source buckets needs {bucket}.
        let two = "[[pipeline]]\nname = \"a\"\n[pipeline.output]\nresults_key = \"out/{key}.ndjson\"\n\
                   [[pipeline]]\nname = \"b\"\nsource = { bucket = \"other-in\" }\n[pipeline.output]\nresults_key = \"out/{key}.ndjson\"\n";
        assert!(problems(&config(two)).iter().any(|p| p.starts_with("pipeline[1] (b).output.results_key")
            && p.contains("pipeline[0] (a).output.results_key")));
        let apart = two.replace("out/{key}", "out/{bucket}/{key}");
        assert!(problems(&config(&apart)).is_empty(), "{:?}", problems(&config(&apart)));
    }
}
