//! The plan bound to one file's header, before any row is read.
//!
//! Once the header is matched, each file column gets its [`Role`] (typed by a schema column,
//! kept as text, or dropped), its rules and the slot where its typed value goes, and the output
//! [`Layout`] is fixed, so the row loop (`crate::pass`) is a straight walk over fields with no
//! name lookups. JSON input has no header: its reader lays each object out as one field per
//! schema column, so the binding is the schema's own.

use std::io::Read;

use weir_core::config::ColumnType;

use crate::error::ProcessError;
use crate::formats::csv::CsvReader;
use crate::formats::Next;
use crate::header::HeaderCheck;
use crate::output::{self, Layout};
use crate::plan::Plan;

/// Reads the header record of a CSV file (or, without one, takes the schema's column names) and
/// matches it with the schema; the names as written come with the check.
pub(crate) fn read_header<R: Read>(
    plan: &Plan,
    reader: &mut CsvReader<'_, R>,
) -> Result<(HeaderCheck, Vec<String>), ProcessError> {
    let names: Vec<String> = if plan.has_header {
        match reader.next_record()? {
            None => return Err(ProcessError::Empty),
            Some(Next::Oversized { .. }) => {
                return Err(ProcessError::HeaderTooLarge { limit: plan.max_record_bytes })
            }
            Some(Next::Record(rec)) => {
                if let Some(&(_, offset)) = rec.utf8_errors.first() {
                    return Err(ProcessError::HeaderEncoding { offset });
                }
                (0..rec.fields.len()).map(|i| String::from_utf8_lossy(rec.field(i)).into_owned()).collect()
            }
        }
    } else {
        plan.columns.iter().map(|c| c.name.clone()).collect()
    };
    Ok((HeaderCheck::new(plan, &names), names))
}

/// What the row loop does with a file column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Role {
    Typed(ColumnType),
    /// A column the schema does not know, kept as a string.
    Extra,
    /// A column the schema does not know, dropped (`unknown_columns = "drop"`).
    Dropped,
}

/// One column of the file, as the row loop treats it.
#[derive(Debug, Clone)]
pub(crate) struct BoundColumn {
    /// Normalized name.
    pub name: String,
    /// The name as the header wrote it (the error report's `values` use it).
    pub original: String,
    pub role: Role,
    /// Schema column index (= value slot); `None` for unknown columns.
    pub schema: Option<usize>,
    /// Empty values are refused (and the reason when they are).
    pub not_null: Option<&'static str>,
    /// The column has rules beyond its type.
    pub checked: bool,
}

/// The plan bound to one file's header.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub cols: Vec<BoundColumn>,
    /// File column of each schema column.
    pub file_column: Vec<Option<usize>>,
}

impl Binding {
    pub fn new(plan: &Plan, check: &HeaderCheck, originals: Vec<String>) -> Binding {
        let mut file_column = vec![None; plan.columns.len()];
        let cols = check
            .columns
            .iter()
            .zip(originals)
            .enumerate()
            .map(|(i, (name, original))| {
                let schema = plan.columns.iter().position(|c| &c.name == name);
                let (role, not_null) = match schema {
                    Some(s) => {
                        file_column[s] = Some(i);
                        let c = &plan.columns[s];
                        let not_null = match (c.nullable, c.required) {
                            (true, _) => None,
                            (false, true) => Some("required field is empty"),
                            (false, false) => Some("field is empty and the column is not nullable"),
                        };
                        (Role::Typed(c.ty), not_null)
                    }
                    None if plan.keep_unknown => (Role::Extra, None),
                    None => (Role::Dropped, None),
                };
                let checked = schema.is_some_and(|s| plan.columns[s].checks.is_some());
                BoundColumn { name: name.clone(), original, role, schema, not_null, checked }
            })
            .collect();
        Binding { cols, file_column }
    }

    pub fn layout(&self, plan: &Plan) -> Layout {
        let mut columns = Vec::new();
        let mut written = Vec::new();
        for c in &self.cols {
            let w = c.role != Role::Dropped;
            written.push(w);
            if !w {
                continue;
            }
            let (kind, default) = match c.schema {
                Some(s) => {
                    let spec = &plan.columns[s];
                    (output::Kind::of(spec.ty, spec.precision, spec.scale), spec.default.clone())
                }
                None => (output::Kind::Text, None),
            };
            columns.push(output::Column { name: c.name.clone(), kind, default });
        }
        let file_columns = columns.len();
        for (s, spec) in plan.columns.iter().enumerate() {
            if self.file_column[s].is_none() {
                columns.push(output::Column {
                    name: spec.name.clone(),
                    kind: output::Kind::of(spec.ty, spec.precision, spec.scale),
                    default: spec.default.clone(),
                });
            }
        }
        let missing = columns.len() - file_columns;
        for d in &plan.derived {
            columns.push(output::Column {
                name: d.name.clone(),
                kind: output::Kind::of_expr(d.expr.ty),
                default: None,
            });
        }
        Layout { columns, written, missing }
    }
}
