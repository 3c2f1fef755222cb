//! The warehouse table: its columns from the pipeline's schema, the statements that make and
//! load it, and the comparison of what is in the database with what the pipeline needs.
//!
//! One typed column per schema column and derived field (integer → `bigint`, float → `double
//! precision`, decimal → `numeric(p,s)`, date → `date`, datetime → `timestamptz`, boolean,
//! the rest `text`), the whole cleaned row as `data jsonb`, then the lineage columns. The
//! primary key (`weir_job_id`, `weir_line`) is one line of one version of one source file; an
//! index on (`weir_source_bucket`, `weir_source_key`) serves `mode = "replace"`'s delete.

use std::collections::BTreeMap;

use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;
use weir_core::rows::{CellType, TableColumn};
use weir_core::sink_config::{LoadMode, DATA_COLUMN, LINEAGE_COLUMNS};

/// Where a column's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The n-th cell of each row.
    Cell(CellType),
    /// The row as JSON.
    Data,
    /// One of [`LINEAGE_COLUMNS`] (its index).
    Lineage(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    /// The type as `format_type()` prints it, which is also valid DDL: `numeric(10,2)`.
    pub sql_type: String,
    pub pg_type: Type,
    pub origin: Origin,
}

/// The table a pipeline loads: name and columns in COPY order.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub schema: Option<String>,
    pub name: String,
    pub columns: Vec<ColumnSpec>,
}

fn sql_type(ty: CellType) -> (String, Type) {
    match ty {
        CellType::Text => ("text".into(), Type::TEXT),
        CellType::Int => ("bigint".into(), Type::INT8),
        CellType::Float => ("double precision".into(), Type::FLOAT8),
        CellType::Bool => ("boolean".into(), Type::BOOL),
        CellType::Decimal { precision: 0, .. } => ("numeric".into(), Type::NUMERIC),
        CellType::Decimal { precision, scale } => (format!("numeric({precision},{scale})"), Type::NUMERIC),
        CellType::Date => ("date".into(), Type::DATE),
        CellType::DateTime => ("timestamp with time zone".into(), Type::TIMESTAMPTZ),
    }
}

/// `"name"`, with any `"` doubled.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl TableSpec {
    pub fn new(schema: Option<&str>, name: &str, columns: &[TableColumn]) -> TableSpec {
        let mut out: Vec<ColumnSpec> = columns
            .iter()
            .map(|c| {
                let (sql_type, pg_type) = sql_type(c.ty);
                ColumnSpec { name: c.name.clone(), sql_type, pg_type, origin: Origin::Cell(c.ty) }
            })
            .collect();
        out.push(ColumnSpec {
            name: DATA_COLUMN.into(),
            sql_type: "jsonb".into(),
            pg_type: Type::JSONB,
            origin: Origin::Data,
        });
        let lineage_types = [
            ("text", Type::TEXT),
            ("text", Type::TEXT),
            ("text", Type::TEXT),
            ("bigint", Type::INT8),
            ("timestamp with time zone", Type::TIMESTAMPTZ),
        ];
        for (i, (name, (sql, ty))) in LINEAGE_COLUMNS.iter().zip(lineage_types).enumerate() {
            out.push(ColumnSpec {
                name: name.to_string(),
                sql_type: sql.into(),
                pg_type: ty,
                origin: Origin::Lineage(i),
            });
        }
        TableSpec { schema: schema.map(str::to_string), name: name.to_string(), columns: out }
    }

    /// `"schema"."name"` or `"name"`.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote(s), quote(&self.name)),
            None => quote(&self.name),
        }
    }

    /// `schema.name` or `name`, for messages.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }

    pub fn types(&self) -> Vec<Type> {
        self.columns.iter().map(|c| c.pg_type.clone()).collect()
    }

    /// The typed columns' cell types, in cell order.
    pub fn cell_types(&self) -> Vec<CellType> {
        self.columns
            .iter()
            .filter_map(|c| match c.origin {
                Origin::Cell(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    pub fn create_sql(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let not_null = if matches!(c.origin, Origin::Cell(_)) { "" } else { " NOT NULL" };
                format!("{} {}{not_null}", quote(&c.name), c.sql_type)
            })
            .collect();
        format!(
            "CREATE TABLE {} ({}, PRIMARY KEY (weir_job_id, weir_line))",
            self.qualified(),
            columns.join(", ")
        )
    }

    /// The index `mode = "replace"` deletes through (and queries by source use).
    pub fn index_sql(&self) -> String {
        let base: String = self.name.chars().take(40).collect();
        let name = quote(&format!("{base}_weir_source"));
        format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {} (weir_source_bucket, weir_source_key)",
            self.qualified()
        )
    }

    pub fn add_column_sql(&self, c: &ColumnSpec) -> String {
        format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}", self.qualified(), quote(&c.name), c.sql_type)
    }

    pub fn copy_sql(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| quote(&c.name)).collect();
        format!("COPY {} ({}) FROM STDIN (FORMAT binary)", self.qualified(), names.join(", "))
    }

    /// Removes the rows a load replaces: `$1` the job (append), or `$1`/`$2` the source's
    /// bucket and key (replace).
    pub fn delete_sql(&self, mode: LoadMode) -> String {
        match mode {
            LoadMode::Append => format!("DELETE FROM {} WHERE weir_job_id = $1", self.qualified()),
            LoadMode::Replace => format!(
                "DELETE FROM {} WHERE weir_source_bucket = $1 AND weir_source_key = $2",
                self.qualified()
            ),
        }
    }

    /// What is in the database under this table's name.
    pub async fn inspect(&self, client: &impl GenericClient) -> Result<Found, tokio_postgres::Error> {
        let name = self.qualified();
        let exists: bool =
            client.query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&name]).await?.get(0);
        if !exists {
            return Ok(Found::default());
        }
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&name],
            )
            .await?;
        let columns = rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect();
        let key: Option<String> = client
            .query_one(
                "SELECT string_agg(a.attname::text, ',' ORDER BY k.ord)
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = to_regclass($1::text) AND i.indisprimary",
                &[&name],
            )
            .await?
            .get(0);
        Ok(Found { exists: true, columns, primary_key: key })
    }

    /// How the table found differs from this one.
    pub fn compare(&self, found: &Found) -> Differences {
        let mut out = Differences { exists: found.exists, ..Differences::default() };
        if !found.exists {
            return out;
        }
        for c in &self.columns {
            match found.columns.get(&c.name) {
                None => out.missing.push(c.clone()),
                Some(t) if *t != c.sql_type => out.conflicts.push(Conflict {
                    column: c.name.clone(),
                    table_type: t.clone(),
                    pipeline_type: c.sql_type.clone(),
                }),
                Some(_) => {}
            }
        }
        out.primary_key = found.primary_key.clone();
        out
    }
}

/// A table as the database has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub exists: bool,
    /// Column name → type as `format_type()` prints it.
    pub columns: BTreeMap<String, String>,
    /// The primary key's columns, comma-separated.
    pub primary_key: Option<String>,
}

/// A column whose type in the table is not the one the pipeline loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub column: String,
    pub table_type: String,
    pub pipeline_type: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column {:?} is {} in the table but the pipeline loads {}",
            self.column, self.table_type, self.pipeline_type
        )
    }
}

/// How a table differs from what the pipeline needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Differences {
    pub exists: bool,
    pub missing: Vec<ColumnSpec>,
    pub conflicts: Vec<Conflict>,
    pub primary_key: Option<String>,
}

/// The primary key weir's tables have.
pub const PRIMARY_KEY: &str = "weir_job_id,weir_line";

impl Differences {
    /// Whether rows can be loaded as they are.
    pub fn loadable(&self) -> bool {
        self.exists && self.missing.is_empty() && self.conflicts.is_empty()
    }

    /// Each problem in a sentence (none when the table is as the pipeline needs it).
    pub fn problems(&self, table: &str) -> Vec<String> {
        if !self.exists {
            return vec![format!("table {table} does not exist; `weir setup postgres` creates it")];
        }
        let mut out: Vec<String> = self
            .missing
            .iter()
            .map(|c| {
                format!(
                    "table {table} has no column {:?} ({}); `weir setup postgres` adds it",
                    c.name, c.sql_type
                )
            })
            .collect();
        out.extend(self.conflicts.iter().map(|c| format!("table {table}: {c}")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TableSpec {
        TableSpec::new(
            Some("analytics"),
            "sales",
            &[
                TableColumn { name: "order_id".into(), ty: CellType::Text },
                TableColumn { name: "price".into(), ty: CellType::Decimal { precision: 10, scale: 2 } },
                TableColumn { name: "at".into(), ty: CellType::DateTime },
            ],
        )
    }

    #[test]
    fn statements_quote_every_name() {
        let s = spec();
        assert_eq!(
            s.create_sql(),
            "CREATE TABLE \"analytics\".\"sales\" (\"order_id\" text, \"price\" numeric(10,2), \
             \"at\" timestamp with time zone, \"data\" jsonb NOT NULL, \"weir_source_bucket\" text NOT NULL, \
             \"weir_source_key\" text NOT NULL, \"weir_job_id\" text NOT NULL, \"weir_line\" bigint NOT NULL, \
             \"weir_processed_at\" timestamp with time zone NOT NULL, PRIMARY KEY (weir_job_id, weir_line))"
        );
        assert!(s
            .copy_sql()
            .starts_with("COPY \"analytics\".\"sales\" (\"order_id\", \"price\", \"at\", \"data\""));
        assert!(s
            .delete_sql(LoadMode::Replace)
            .ends_with("weir_source_bucket = $1 AND weir_source_key = $2"));
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn differences_name_the_column_and_both_types() {
        let s = spec();
        let mut found = Found { exists: true, ..Found::default() };
        for c in &s.columns {
            found.columns.insert(c.name.clone(), c.sql_type.clone());
        }
        assert!(s.compare(&found).loadable());
        found.columns.remove("at");
        found.columns.insert("price".into(), "integer".into());
        let d = s.compare(&found);
        assert!(!d.loadable());
        let problems = d.problems("analytics.sales");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("no column \"at\" (timestamp with time zone)"), "{problems:?}");
        assert!(
            problems[1].contains("\"price\" is integer in the table but the pipeline loads numeric(10,2)")
        );
        assert!(s.compare(&Found::default()).problems("t")[0].contains("does not exist"));
    }
}
