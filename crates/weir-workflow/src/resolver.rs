//! Finding tasks for `Resource` strings: aliases, so the seed's Lambda ARNs run unchanged.
//!
//! A definition written for AWS names its tasks by Lambda ARN
//! (`arn:aws:lambda:ap-southeast-1:[ACCOUNT-ID]:function:validate-schema`). A
//! [`MappedResolver`] maps such names to the tasks weir has (`weir:validate-schema`) from a
//! configured table, and passes every other name through to the inner resolver. A key may use
//! `*` wildcards (`arn:aws:lambda:*:function:parse-csv`); exact keys win over patterns. It also
//! answers [`PASS_THROUGH`] itself (unless the inner resolver has it), for states that have
//! nothing to do in weir, like the seed's `ParseCSV`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::choice::Pattern;
use crate::{Task, TaskError, TaskResolver};

/// The resource name of the built-in task that returns its input.
pub const PASS_THROUGH: &str = "weir:pass";

/// A table of resource aliases: exact names, then `*` patterns in the order given.
#[derive(Debug, Clone, Default)]
pub struct ResourceAliases {
    exact: BTreeMap<String, String>,
    patterns: Vec<(Pattern, String)>,
}

impl ResourceAliases {
    /// `aliases` maps a resource name (or a `*` pattern) to the name it stands for.
    pub fn new(aliases: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut table = ResourceAliases::default();
        for (from, to) in aliases {
            match from.contains('*').then(|| Pattern::parse(&from).ok()).flatten() {
                Some(p) => table.patterns.push((p, to)),
                None => {
                    table.exact.insert(from, to);
                }
            }
        }
        table
    }

    /// The name `resource` stands for (itself if no alias applies).
    pub fn target<'r>(&'r self, resource: &'r str) -> &'r str {
        if let Some(to) = self.exact.get(resource) {
            return to;
        }
        self.patterns.iter().find(|(p, _)| p.matches(resource)).map(|(_, to)| to.as_str()).unwrap_or(resource)
    }
}

/// A resolver that first translates `Resource` names through an alias table.
pub struct MappedResolver<R> {
    inner: R,
    aliases: ResourceAliases,
}

impl<R: TaskResolver> MappedResolver<R> {
    /// `aliases` maps a resource name (or a `*` pattern) to the name `inner` knows.
    pub fn new(inner: R, aliases: impl IntoIterator<Item = (String, String)>) -> Self {
        MappedResolver::with_aliases(inner, ResourceAliases::new(aliases))
    }

    pub fn with_aliases(inner: R, aliases: ResourceAliases) -> Self {
        MappedResolver { inner, aliases }
    }

    /// The name `resource` is resolved as, after aliasing.
    pub fn target<'r>(&'r self, resource: &'r str) -> &'r str {
        self.aliases.target(resource)
    }

    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: TaskResolver> TaskResolver for MappedResolver<R> {
    fn resolve(&self, resource: &str) -> Option<&dyn Task> {
        let target = self.target(resource);
        self.inner.resolve(target).or_else(|| (target == PASS_THROUGH).then_some(&PassThrough as &dyn Task))
    }
}

/// A task that returns its input: for states that do nothing in weir (the seed's `ParseCSV`,
/// whose work the streaming transform does).
pub struct PassThrough;

#[async_trait]
impl Task for PassThrough {
    async fn run(&self, input: Value) -> Result<Value, TaskError> {
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;

    impl TaskResolver for Names {
        fn resolve(&self, resource: &str) -> Option<&dyn Task> {
            (resource == "weir:known").then_some(&PassThrough as &dyn Task)
        }
    }

    #[test]
    fn exact_then_patterns_then_through() {
        let r = MappedResolver::new(
            Names,
            [
                ("arn:aws:lambda:eu:1:function:parse-csv".to_string(), "weir:pass".to_string()),
                ("arn:aws:lambda:eu:1:function:known".to_string(), "weir:known".to_string()),
                ("arn:aws:lambda:*:function:parse-*".to_string(), "weir:other".to_string()),
            ],
        );
        assert_eq!(r.target("arn:aws:lambda:eu:1:function:parse-csv"), "weir:pass");
        assert_eq!(r.target("arn:aws:lambda:us:2:function:parse-json"), "weir:other");
        assert_eq!(r.target("weir:pass"), "weir:pass");
        assert!(r.resolve("arn:aws:lambda:eu:1:function:parse-csv").is_some());
        assert!(r.resolve("weir:pass").is_some(), "built in");
        assert!(r.resolve("arn:aws:lambda:eu:1:function:known").is_some());
        assert!(r.resolve("weir:known").is_some());
        assert!(r.resolve("arn:aws:lambda:us:2:function:parse-json").is_none());
    }
}
