//! A pipeline configuration compiled for processing, once, before any file is read.
//!
//! Compiling resolves every name to an index (schema columns first, then derived fields, which
//! share one "slot" numbering so expressions and aggregates address both alike), parses the
//! derived expressions, date formats and regexes, and finds every configuration problem at once:
//! a [`ConfigError`] lists each with its location as a path in the pipeline
//! (`columns[3].regex: ...`), which `weir check` prefixes with `pipeline[i].`. Per-file work starts from this and never re-parses configuration
//! text.

use weir_core::config::{
    normalize_field_name, ColumnType, Compression, FormatKind, OutputFormat, PipelineConfig, UnknownColumns,
};
use weir_core::rows::{CellType, TableColumn};
use weir_core::Problem;

use crate::expr::{Expr, Node, Scope};
pub(crate) use crate::schema::ColumnSpec;
use crate::slot::SlotType;

/// Every problem found in a pipeline configuration, one line each, located by its path in the
/// pipeline, e.g. ``derived[0].expr: unknown field `quantty` ``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pipeline configuration: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// A compiled pipeline: cheap to share between threads and reuse for every file.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) columns: Vec<ColumnSpec>,
    pub(crate) derived: Vec<DerivedSpec>,
    pub(crate) input: InputFormat,
    pub(crate) delimiter: u8,
    pub(crate) quote: u8,
    /// `format.decimal_separator = ","`: a `,` in a float or decimal value is its point.
    pub(crate) decimal_comma: bool,
    pub(crate) has_header: bool,
    pub(crate) max_record_bytes: usize,
    /// Schema column indexes whose values are counted.
    pub(crate) categorical: Vec<usize>,
    pub(crate) top_n: usize,
    pub(crate) max_distinct: usize,
    pub(crate) group_by: Vec<GroupSpec>,
    pub(crate) max_errors: usize,
    /// Bytes of results and error report, in all (`output.max_bytes`).
    pub(crate) max_output_bytes: u64,
    /// Bytes of invalid-row descriptions, in all.
    pub(crate) max_error_bytes: u64,
    /// Schema columns whose distinct values the summary counts.
    pub(crate) unique_summary: Vec<usize>,
    /// Schema columns whose smallest and largest values the summary reports.
    pub(crate) range_summary: Vec<usize>,
    pub(crate) max_unique_values: usize,
    pub(crate) keep_unknown: bool,
    pub(crate) max_invalid_ratio: f64,
    /// Data rows (valid or not) a file needs to be accepted.
    pub(crate) min_rows: u64,
    pub(crate) output: OutputFormat,
    /// Every result format (`output` first): the rows of one pass go to each.
    pub(crate) outputs: Vec<OutputFormat>,
    pub(crate) row_group_rows: usize,
    pub(crate) threads: usize,
}

/// How the input bytes are read before parsing.
#[derive(Debug, Clone)]
pub(crate) struct InputFormat {
    pub kind: FormatKind,
    /// `None` for UTF-8 (read as it is); otherwise transcoded to UTF-8.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    pub compression: Compression,
    pub max_decompressed_bytes: u64,
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
    /// The typed columns of a warehouse table for this pipeline: the schema's columns, then the
    /// derived fields, in the order the cells of [`crate::Options::rows`] fill them.
    pub fn table_columns(&self) -> Vec<TableColumn> {
        let schema = self
            .columns
            .iter()
            .map(|c| TableColumn { name: c.name.clone(), ty: CellType::of(c.ty, c.precision, c.scale) });
        let derived = self.derived.iter().map(|d| TableColumn {
            name: d.name.clone(),
            ty: match d.expr.ty {
                SlotType::Int => CellType::Int,
                SlotType::Float => CellType::Float,
                SlotType::Text => CellType::Text,
            },
        });
        schema.chain(derived).collect()
    }

    /// Compiles a pipeline; every problem is reported, not just the first.
    pub fn compile(p: &PipelineConfig) -> Result<Plan, ConfigError> {
        let mut problems = Vec::new();
        let ascii = |what: &str, c: char, problems: &mut Vec<Problem>| -> u8 {
            if !c.is_ascii() || c == '\n' || c == '\r' {
                problems.push(Problem::new(
                    format!("format.{what}"),
                    "must be one ASCII character other than a line break",
                ));
                return 0;
            }
            c as u8
        };
        let delimiter = ascii("delimiter", p.format.delimiter, &mut problems);
        let quote = ascii("quote", p.format.quote, &mut problems);
        if !matches!(p.format.decimal_separator, '.' | ',') {
            problems.push(Problem::new("format.decimal_separator", "must be \".\" or \",\""));
        }
        if delimiter == quote && delimiter != 0 {
            problems.push(Problem::new("format.quote", "must differ from the delimiter"));
        }
        if p.format.max_record_bytes == 0 {
            problems.push(Problem::new("format.max_record_bytes", "must be at least 1"));
        }
        let label = p.format.encoding.trim().to_ascii_lowercase();
        // Spellings people use that the WHATWG label list lacks.
        let label = match label.as_str() {
            "latin-1" | "latin_1" | "iso8859-1" => "latin1",
            "cp1252" | "windows1252" => "windows-1252",
            "utf8" => "utf-8",
            other => other,
        };
        let encoding = match encoding_rs::Encoding::for_label(label.as_bytes()) {
            Some(e) if e == encoding_rs::UTF_8 => None,
            Some(e) if e.output_encoding() != e => {
                problems.push(Problem::new(
                    "format.encoding",
                    format!("{:?} cannot be read (it is an output-only label)", p.format.encoding),
                ));
                None
            }
            Some(e) => Some(e),
            None => {
                problems.push(Problem::new(
                    "format.encoding",
                    format!(
                        "unknown encoding {:?} (e.g. utf-8, latin-1, windows-1252, utf-16le)",
                        p.format.encoding
                    ),
                ));
                None
            }
        };
        if p.format.max_decompressed_bytes == Some(0) {
            problems.push(Problem::new("format.max_decompressed_bytes", "must be at least 1"));
        }
        if p.output.max_bytes == Some(0) {
            problems.push(Problem::new("output.max_bytes", "must be at least 1"));
        }
        let json = p.format.kind != FormatKind::Csv;
        if json && !p.format.has_header {
            problems
                .push(Problem::new("format.has_header", "only CSV files have a header line to leave out"));
        }

        let mut columns: Vec<ColumnSpec> = Vec::with_capacity(p.columns.len());
        for (i, c) in p.columns.iter().enumerate() {
            let at = format!("columns[{i}]");
            let spec = ColumnSpec::compile(c, &at, &mut problems);
            if spec.name.is_empty() {
                problems.push(Problem::new(format!("{at}.name"), "empty column name"));
            } else if columns.iter().any(|o| o.name == spec.name) {
                problems
                    .push(Problem::new(format!("{at}.name"), format!("duplicate column `{}`", spec.name)));
            }
            columns.push(spec);
        }
        if json {
            // A path cannot also be a prefix of another: `user` and `user.id` would both claim it.
            for (i, c) in columns.iter().enumerate() {
                if let Some(o) = columns.iter().find(|o| o.name.starts_with(&format!("{}.", c.name))) {
                    problems.push(Problem::new(
                        format!("columns[{i}].name"),
                        format!("`{}` is an object holding `{}`; name its fields, not both", c.name, o.name),
                    ));
                }
            }
        }

        let mut derived: Vec<DerivedSpec> = Vec::with_capacity(p.derived.len());
        for (i, d) in p.derived.iter().enumerate() {
            let name = normalize_field_name(&d.name);
            let at = format!("derived[{i}]");
            if name.is_empty() {
                problems.push(Problem::new(format!("{at}.name"), "empty name"));
            } else if columns.iter().any(|c| c.name == name) {
                problems.push(Problem::new(format!("{at}.name"), format!("`{name}` is already a column")));
            } else if derived.iter().any(|o| o.name == name) {
                problems
                    .push(Problem::new(format!("{at}.name"), format!("duplicate derived field `{name}`")));
            }
            let scope = Names { columns: &columns, derived: &derived, later: &p.derived[i..] };
            match Expr::parse(&d.expr, &scope) {
                Ok(expr) => derived.push(DerivedSpec { name, expr }),
                Err(e) => {
                    problems.push(Problem::new(format!("{at}.expr"), e.to_string()));
                    // Keep the indexes of later fields right.
                    derived.push(DerivedSpec { name, expr: Expr { root: Node::Int(0), ty: SlotType::Int } });
                }
            }
        }

        let s = &p.summary;
        let column_index = |name: &str| columns.iter().position(|c| c.name == normalize_field_name(name));
        let mut categorical = Vec::new();
        for (i, name) in s.categorical.iter().enumerate() {
            match column_index(name) {
                Some(c) => categorical.push(c),
                None => problems.push(Problem::new(
                    format!("summary.categorical[{i}]"),
                    format!("unknown column `{name}`"),
                )),
            }
        }
        let mut unique_summary = Vec::new();
        for (i, name) in s.unique.iter().enumerate() {
            match column_index(name) {
                Some(c) => unique_summary.push(c),
                None => problems
                    .push(Problem::new(format!("summary.unique[{i}]"), format!("unknown column `{name}`"))),
            }
        }
        let mut range_summary = Vec::new();
        for (i, name) in s.range.iter().enumerate() {
            match column_index(name) {
                Some(c) if columns[c].ty == ColumnType::Boolean => problems
                    .push(Problem::new(format!("summary.range[{i}]"), format!("column `{name}` is boolean"))),
                Some(c) => range_summary.push(c),
                None => problems
                    .push(Problem::new(format!("summary.range[{i}]"), format!("unknown column `{name}`"))),
            }
        }
        if s.max_unique_values == 0 && (!s.unique.is_empty() || columns.iter().any(|c| c.unique)) {
            problems.push(Problem::new("summary.max_unique_values", "must be at least 1"));
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
                Some(d) if derived[d].expr.ty.is_numeric() => Ok(columns.len() + d),
                Some(_) => Err(format!("derived field `{n}` is text, not numeric")),
                None => Err(format!("unknown field `{name}`")),
            }
        };
        let mut group_by = Vec::new();
        for (i, g) in s.group_by.iter().enumerate() {
            let at = format!("summary.group_by[{i}]");
            let by = column_index(&g.by);
            if by.is_none() {
                problems.push(Problem::new(format!("{at}.by"), format!("unknown column `{}`", g.by)));
            }
            let mut fields = Vec::new();
            for (j, f) in g.fields.iter().enumerate() {
                match numeric_slot(f) {
                    Ok(slot) => fields.push((normalize_field_name(f), slot)),
                    Err(e) => problems.push(Problem::new(format!("{at}.fields[{j}]"), e.to_string())),
                }
            }
            if let Some(by) = by {
                group_by.push(GroupSpec { by, fields, max_groups: g.max_groups });
            }
        }
        if let Some(total) = &s.total {
            if let Err(e) = numeric_slot(total) {
                problems.push(Problem::new("summary.total", e.to_string()));
            }
        }
        let r = p.validation.max_invalid_ratio;
        if !(0.0..=1.0).contains(&r) {
            problems
                .push(Problem::new("validation.max_invalid_ratio", format!("{r} is not between 0 and 1")));
        }
        if p.output.threads == 0 {
            problems.push(Problem::new("output.threads", "must be at least 1"));
        }
        if p.output.parquet_row_group_rows == 0 {
            problems.push(Problem::new("output.parquet_row_group_rows", "must be at least 1"));
        }

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Plan {
            columns,
            derived,
            input: InputFormat {
                kind: p.format.kind,
                encoding,
                compression: p.format.compression,
                max_decompressed_bytes: p.format.max_decompressed_bytes.unwrap_or(p.source.max_size_bytes),
            },
            delimiter,
            quote,
            decimal_comma: p.format.decimal_separator == ',',
            has_header: p.format.has_header,
            max_record_bytes: p.format.max_record_bytes,
            categorical,
            top_n: s.top_n,
            max_distinct: s.max_distinct,
            group_by,
            max_errors: s.max_errors_in_report,
            max_output_bytes: p.output.max_bytes.unwrap_or(p.source.max_size_bytes.saturating_mul(4)),
            max_error_bytes: s.max_error_report_bytes,
            unique_summary,
            range_summary,
            max_unique_values: s.max_unique_values.max(1),
            keep_unknown: p.validation.unknown_columns == UnknownColumns::Keep,
            max_invalid_ratio: p.validation.max_invalid_ratio,
            min_rows: p.validation.min_rows,
            output: p.output.format,
            outputs: p.output.formats(),
            row_group_rows: p.output.parquet_row_group_rows,
            threads: p.output.threads,
        })
    }

    /// The output format the results are written in (the first of [`Plan::output_formats`]).
    pub fn output_format(&self) -> OutputFormat {
        self.output
    }

    /// Every format the results are written in from one pass: `output.format`, then each
    /// `[[output.also]]`.
    pub fn output_formats(&self) -> &[OutputFormat] {
        &self.outputs
    }

    /// Slot of a schema column or derived field: schema columns first, then derived fields.
    pub(crate) fn slot_count(&self) -> usize {
        self.columns.len() + self.derived.len()
    }

    /// Whether a slot holds numbers.
    pub(crate) fn slot_is_numeric(&self, slot: usize) -> bool {
        match slot.checked_sub(self.columns.len()) {
            None => self.columns[slot].ty.is_numeric(),
            Some(d) => self.derived[d].expr.ty.is_numeric(),
        }
    }

    /// Name of a slot.
    pub(crate) fn slot_name(&self, slot: usize) -> &str {
        match slot.checked_sub(self.columns.len()) {
            None => &self.columns[slot].name,
            Some(d) => &self.derived[d].name,
        }
    }
}

/// Names an expression may use: columns and derived fields defined before it.
struct Names<'a> {
    columns: &'a [ColumnSpec],
    derived: &'a [DerivedSpec],
    later: &'a [weir_core::config::DerivedConfig],
}

impl Scope for Names<'_> {
    fn lookup(&self, name: &str) -> Result<(usize, SlotType), String> {
        let n = normalize_field_name(name);
        if let Some(i) = self.columns.iter().position(|c| c.name == n) {
            return match self.columns[i].ty {
                ColumnType::Integer => Ok((i, SlotType::Int)),
                ColumnType::Float | ColumnType::Decimal => Ok((i, SlotType::Float)),
                ColumnType::Boolean => Err(format!("field `{n}` is boolean, which expressions do not use")),
                _ => Ok((i, SlotType::Text)),
            };
        }
        if let Some(d) = self.derived.iter().position(|d| d.name == n) {
            return Ok((self.columns.len() + d, self.derived[d].expr.ty));
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
    use weir_core::config::{ColumnConfig, ColumnType, DerivedConfig, GroupByConfig};

    fn sales() -> PipelineConfig {
        weir_core::Config::bundled().pipelines.remove(0)
    }

    #[test]
    fn compiles_the_bundled_pipeline() {
        let plan = Plan::compile(&sales()).unwrap();
        assert_eq!(plan.columns.len(), 6);
        assert_eq!(plan.derived[0].name, "revenue");
        assert_eq!(plan.derived[0].expr.ty, SlotType::Float);
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
        let mut when = ColumnConfig::new("when", ColumnType::Date);
        when.format = Some("%Q".into());
        p.columns.push(when);
        let mut code = ColumnConfig::new("code", ColumnType::String);
        code.regex = Some("[".into());
        p.columns.push(code);
        p.validation.max_invalid_ratio = 1.5;
        p.format.encoding = "klingon".into();
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
            e.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![
                "format.delimiter: must be one ASCII character other than a line break",
                "format.encoding: unknown encoding \"klingon\" (e.g. utf-8, latin-1, windows-1252, utf-16le)",
                "columns[6].format: invalid date format \"%Q\"",
                "columns[7].regex: invalid pattern \"[\": error: unclosed character class",
                "derived[0].expr: unknown field `quantty`",
                "derived[1].expr: `+` needs numbers, not text (use concat() to join text)",
                "derived[2].name: `quantity` is already a column",
                "derived[3].expr: field `late` is derived at or after this one; use it only in later fields",
                "derived[5].expr: expected `)` at position 10 to close `(` at position 1",
                "summary.categorical[1]: unknown column `prodcut`",
                "summary.group_by[1].by: unknown column `nope`",
                "summary.group_by[1].fields[0]: column `customer_name` is not numeric",
                "summary.total: unknown field `revenu`",
                "validation.max_invalid_ratio: 1.5 is not between 0 and 1",
            ]
        );
    }

    #[test]
    fn config_error_lists_every_problem() {
        let e = ConfigError { problems: vec![Problem::new("a", "x"), Problem::new("b", "y")] };
        assert_eq!(e.to_string(), "invalid pipeline configuration: a: x; b: y");
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
        assert_eq!(plan.derived[2].expr.ty, SlotType::Int);
    }
}
