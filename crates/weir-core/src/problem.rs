//! One thing wrong with a configuration: where it is (a path in `weir.toml`, or a JSON pointer
//! in a workflow definition) and what is wrong. The config, the plan compiler and the workflow
//! loader all report [`Problem`]s, so `weir check` and every command that refuses a config print
//! them alike, one per line, each with its location.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `pipeline[0] (sales).columns[3].regex`, `server.api_listen`, `/States/Load/Next`.
    pub path: String,
    /// What is wrong, and what to do about it when weir knows.
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into() }
    }

    /// The same problem seen from the section that holds it: `columns[3].regex` under
    /// `pipeline[0] (sales)` is `pipeline[0] (sales).columns[3].regex`; a JSON pointer is
    /// appended as it is (`pipeline[0] (sales).workflow/States/Load`).
    pub fn under(self, section: &str) -> Problem {
        let path = match self.path.chars().next() {
            None => section.to_string(),
            Some('/' | '[') => format!("{section}{}", self.path),
            Some(_) => format!("{section}.{}", self.path),
        };
        Problem { path, ..self }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Problems one per line, each indented by two spaces (as `weir check` prints them).
pub fn lines(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_path_and_message_and_nests_under_its_section() {
        let p = Problem::new("columns[3].regex", "unclosed group");
        assert_eq!(p.to_string(), "columns[3].regex: unclosed group");
        assert_eq!(
            p.clone().under("pipeline[0]").to_string(),
            "pipeline[0].columns[3].regex: unclosed group"
        );
        let pointer = Problem::new("/States/Load", "no Next").under("pipeline[0].workflow");
        assert_eq!(pointer.path, "pipeline[0].workflow/States/Load");
        assert_eq!(Problem::new("", "empty").under("server").to_string(), "server: empty");
        assert_eq!(lines(&[p, pointer]).lines().count(), 2);
    }
}
