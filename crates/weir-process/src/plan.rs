//! A pipeline configuration compiled for processing, once, before any file is read.
//!
//! Compiling resolves every name to an index (schema columns first, then derived fields, which
//! share one "slot" numbering so expressions and aggregates address both alike), parses the
//! derived expressions and date formats, and finds every configuration problem at once, each
//! with its location. Per-file work (matching the header) starts from this and never re-parses
//! configuration text.

use weir_core::config::{normalize_field_name, ColumnType, PipelineConfig};

use crate::error::ConfigError;
use crate::expr::{Expr, Scope};
use crate::validate::DateFormat;

/// A compiled pipeline: cheap to share between threads and reuse for every file.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) columns: Vec<ColumnSpec>,
    pub(crate) derived: Vec<DerivedSpec>,
    pub(crate) delimiter: u8,
    pub(crate) quote: u8,
    pub(crate) has_header: bool,
    pub(crate) max_record_bytes: usize,
    /// Schema column indexes whose values are counted.
    pub(crate) categorical: Vec<usize>,
    pub(crate) top_n: usize,
    pub(crate) max_distinct: usize,
    pub(crate) group_by: Vec<GroupSpec>,
    pub(crate) max_errors: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    /// Normalized.
    pub name: String,
    pub ty: ColumnType,
    pub required: bool,
    pub date: DateFormat,
}

#[derive(Debug, Clone)]
pub(crate) struct DerivedSpec {
    pub name: String,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupSpec {
    /// Schema column index of the grouping field.
    pub by: usize,
    /// Aggregated fields: name and slot.
    pub fields: Vec<(String, usize)>,
    pub max_groups: usize,
}

impl Plan {
    /// Compiles a pipeline; every problem is reported, not just the first.
    pub fn compile(p: &PipelineConfig) -> Result<Plan, ConfigError> {
        let mut problems = Vec::new();
        let ascii = |what: &str, c: char, problems: &mut Vec<String>| -> u8 {
            if !c.is_ascii() || c == '\n' || c == '\r' {
                problems.push(format!("format.{what}: must be one ASCII character other than a line break"));
                return 0;
            }
            c as u8
        };
        let delimiter = ascii("delimiter", p.format.delimiter, &mut problems);
        let quote = ascii("quote", p.format.quote, &mut problems);
        if delimiter == quote && delimiter != 0 {
            problems.push("format.quote: must differ from the delimiter".into());
        }
        if p.format.max_record_bytes == 0 {
            problems.push("format.max_record_bytes: must be at least 1".into());
        }

        let mut columns: Vec<ColumnSpec> = Vec::with_capacity(p.columns.len());
        for (i, c) in p.columns.iter().enumerate() {
            let name = normalize_field_name(&c.name);
            let at = format!("columns[{i}] ({})", c.name);
            if name.is_empty() {
                problems.push(format!("{at}: empty column name"));
            } else if columns.iter().any(|o| o.name == name) {
                problems.push(format!("{at}: duplicate column `{name}`"));
            }
            let date = match (c.ty, c.format.as_deref()) {
                (ColumnType::Date, f) => DateFormat::new(f).unwrap_or_else(|e| {
                    problems.push(format!("{at}.format: {e}"));
                    DateFormat::Iso
                }),
                (_, Some(_)) => {
                    problems.push(format!("{at}.format: only date columns take a format"));
                    DateFormat::Iso
                }
                (_, None) => DateFormat::Iso,
            };
            columns.push(ColumnSpec { name, ty: c.ty, required: c.required, date });
        }

        let mut derived: Vec<DerivedSpec> = Vec::with_capacity(p.derived.len());
        for (i, d) in p.derived.iter().enumerate() {
            let name = normalize_field_name(&d.name);
            let at = format!("derived[{i}] ({})", d.name);
            if name.is_empty() {
                problems.push(format!("{at}: empty name"));
            } else if columns.iter().any(|c| c.name == name) {
                problems.push(format!("{at}: name `{name}` is already a column"));
            } else if derived.iter().any(|o| o.name == name) {
                problems.push(format!("{at}: duplicate derived field `{name}`"));
            }
            let scope = Names { columns: &columns, derived: &derived, later: &p.derived[i..] };
            match Expr::parse(&d.expr, &scope) {
                Ok(expr) => derived.push(DerivedSpec { name, expr }),
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    // Keep the indexes of later fields right.
                    derived.push(DerivedSpec {
                        name,
                        expr: Expr { root: crate::expr::Node::Int(0), integer: true },
                    });
                }
            }
        }

        let s = &p.summary;
        let column_index = |name: &str| columns.iter().position(|c| c.name == normalize_field_name(name));
        let mut categorical = Vec::new();
        for (i, name) in s.categorical.iter().enumerate() {
            match column_index(name) {
                Some(c) => categorical.push(c),
                None => problems.push(format!("summary.categorical[{i}]: unknown column `{name}`")),
            }
        }
        let numeric_slot = |name: &str| -> Result<usize, String> {
            let n = normalize_field_name(name);
            if let Some(c) = columns.iter().position(|c| c.name == n) {
                return if columns[c].ty.is_numeric() {
                    Ok(c)
                } else {
                    Err(format!("column `{n}` is not numeric"))
                };
            }
            match derived.iter().position(|d| d.name == n) {
                Some(d) => Ok(columns.len() + d),
                None => Err(format!("unknown field `{name}`")),
            }
        };
        let mut group_by = Vec::new();
        for (i, g) in s.group_by.iter().enumerate() {
            let at = format!("summary.group_by[{i}]");
            let by = column_index(&g.by);
            if by.is_none() {
                problems.push(format!("{at}.by: unknown column `{}`", g.by));
            }
            let mut fields = Vec::new();
            for (j, f) in g.fields.iter().enumerate() {
                match numeric_slot(f) {
                    Ok(slot) => fields.push((normalize_field_name(f), slot)),
                    Err(e) => problems.push(format!("{at}.fields[{j}]: {e}")),
                }
            }
            if let Some(by) = by {
                group_by.push(GroupSpec { by, fields, max_groups: g.max_groups });
            }
        }
        if let Some(total) = &s.total {
            if let Err(e) = numeric_slot(total) {
                problems.push(format!("summary.total: {e}"));
            }
        }

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Plan {
            columns,
            derived,
            delimiter,
            quote,
            has_header: p.format.has_header,
            max_record_bytes: p.format.max_record_bytes,
            categorical,
            top_n: s.top_n,
            max_distinct: s.max_distinct,
            group_by,
            max_errors: s.max_errors_in_report,
        })
    }

    /// Slot of a schema column or derived field: schema columns first, then derived fields.
    pub(crate) fn slot_count(&self) -> usize {
        self.columns.len() + self.derived.len()
    }

    /// Name of a numeric slot.
    pub(crate) fn slot_name(&self, slot: usize) -> &str {
        match slot.checked_sub(self.columns.len()) {
            None => &self.columns[slot].name,
            Some(d) => &self.derived[d].name,
        }
    }
}

/// Names an expression may use: numeric columns and derived fields defined before it.
struct Names<'a> {
    columns: &'a [ColumnSpec],
    derived: &'a [DerivedSpec],
    later: &'a [weir_core::config::DerivedConfig],
}

impl Scope for Names<'_> {
    fn lookup(&self, name: &str) -> Result<(usize, bool), String> {
        let n = normalize_field_name(name);
        if let Some(i) = self.columns.iter().position(|c| c.name == n) {
            let ty = self.columns[i].ty;
            return match ty {
                ColumnType::Integer => Ok((i, true)),
                ColumnType::Float => Ok((i, false)),
                other => Err(format!("field `{n}` is {}, not numeric", format!("{other:?}").to_lowercase())),
            };
        }
        if let Some(d) = self.derived.iter().position(|d| d.name == n) {
            return Ok((self.columns.len() + d, self.derived[d].expr.integer));
        }
        if self.later.iter().any(|d| normalize_field_name(&d.name) == n) {
            return Err(format!("field `{n}` is derived at or after this one; use it only in later fields"));
        }
        Err(format!("unknown field `{name}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::config::{ColumnConfig, DerivedConfig, GroupByConfig};

    fn sales() -> PipelineConfig {
        weir_core::Config::bundled().pipelines.remove(0)
    }

    #[test]
    fn compiles_the_bundled_pipeline() {
        let plan = Plan::compile(&sales()).unwrap();
        assert_eq!(plan.columns.len(), 6);
        assert_eq!(plan.derived[0].name, "revenue");
        assert!(!plan.derived[0].expr.integer);
        assert_eq!(plan.categorical, vec![2]);
        assert_eq!(plan.group_by[0].fields, vec![("revenue".to_string(), 6), ("quantity".to_string(), 3)]);
        assert_eq!(plan.slot_name(6), "revenue");
        assert_eq!(plan.slot_count(), 7);
    }

    #[test]
    fn reports_every_problem_with_its_location() {
        let mut p = sales();
        p.derived[0].expr = "quantty * price".into();
        p.derived.push(DerivedConfig { name: "label".into(), expr: "product + 1".into() });
        p.derived.push(DerivedConfig { name: "Quantity".into(), expr: "1".into() });
        p.derived.push(DerivedConfig { name: "early".into(), expr: "late * 2".into() });
        p.derived.push(DerivedConfig { name: "late".into(), expr: "quantity * 2".into() });
        p.derived.push(DerivedConfig { name: "bad".into(), expr: "(quantity".into() });
        p.columns.push(ColumnConfig {
            name: "when".into(),
            ty: ColumnType::Date,
            required: false,
            format: Some("%Q".into()),
        });
        p.summary.categorical.push("prodcut".into());
        p.summary.group_by.push(GroupByConfig {
            by: "nope".into(),
            fields: vec!["customer_name".into()],
            max_groups: 5,
        });
        p.summary.total = Some("revenu".into());
        p.format.delimiter = '\n';
        let e = Plan::compile(&p).unwrap_err();
        assert_eq!(
            e.problems,
            vec![
                "format.delimiter: must be one ASCII character other than a line break",
                "columns[6] (when).format: invalid date format \"%Q\"",
                "derived[0] (revenue): unknown field `quantty`",
                "derived[1] (label): field `product` is string, not numeric",
                "derived[2] (Quantity): name `quantity` is already a column",
                "derived[3] (early): field `late` is derived at or after this one; use it only in later fields",
                "derived[5] (bad): expected `)` at position 10 to close `(` at position 1",
                "summary.categorical[1]: unknown column `prodcut`",
                "summary.group_by[1].by: unknown column `nope`",
                "summary.group_by[1].fields[0]: column `customer_name` is not numeric",
                "summary.total: unknown field `revenu`",
            ]
        );
    }

    #[test]
    fn plans_are_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Plan>();
    }

    #[test]
    fn derived_fields_can_use_earlier_ones() {
        let mut p = sales();
        p.derived.push(DerivedConfig { name: "double".into(), expr: "quantity * 2".into() });
        p.derived.push(DerivedConfig { name: "quad".into(), expr: "double * 2".into() });
        let plan = Plan::compile(&p).unwrap();
        assert!(plan.derived[2].expr.integer);
    }
}
