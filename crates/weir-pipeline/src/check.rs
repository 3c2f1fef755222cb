//! Everything wrong with a configuration, found before any file is read: the config's own
//! rules ([`Config::validate`]), each pipeline's schema and expressions ([`Plan::compile`]) and
//! its workflow ([`crate::workflow::load`]), as [`Problem`]s located by their path in
//! `weir.toml`. `weir check` prints them; every command that runs pipelines (and the Lambda
//! function) refuses a config that has any, with the same lines.

use weir_core::{Config, Problem};
use weir_process::Plan;

/// Every problem of `config`, config-wide ones first, then pipeline by pipeline.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut problems = config.validate();
    for (i, p) in config.pipelines.iter().enumerate() {
        let section = format!("pipeline[{i}] ({})", p.name);
        if let Err(e) = Plan::compile(p) {
            problems.extend(e.problems.into_iter().map(|problem| problem.under(&section)));
        }
        if let Err(e) = crate::workflow::load(p) {
            problems.extend(e.problems().into_iter().map(|problem| problem.under(&section)));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_plan_and_workflow_problems_come_out_alike() {
        let text = r#"
[queue]
max_receive_count = 0

[[pipeline]]
name = "p"
[pipeline.source]
prefix = "raw/"
[[pipeline.columns]]
name = "a"
type = "string"
regex = "("
[pipeline.workflow]
file = "/nonexistent/flow.json"
"#;
        let config = Config::from_toml(text).unwrap();
        let lines: Vec<String> = problems(&config).iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!(lines[0], "queue.max_receive_count: must be at least 1");
        assert!(lines[1].starts_with("pipeline[0] (p).columns[0].regex: "), "{lines:#?}");
        assert!(
            lines[2].starts_with("pipeline[0] (p).workflow.file: /nonexistent/flow.json: "),
            "{lines:#?}"
        );
        assert!(problems(&Config::bundled()).is_empty());
    }
}
