//! Matching a file's header line against the schema.
//!
//! Names are compared after `normalize_field_name` (trim, lowercase, spaces to `_`). A required
//! column missing from the file, or two file columns that normalize to the same name, make the
//! header invalid and the file is rejected before any row is read; optional columns may be
//! missing (their values are null) and columns the schema does not know are kept as strings.

use weir_core::config::normalize_field_name;

use crate::plan::Plan;

/// The outcome of comparing a header with the schema.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderCheck {
    /// Required schema columns absent from the file (normalized names, schema order).
    pub missing: Vec<String>,
    /// Normalized names that occur more than once in the file (first occurrence order).
    pub duplicates: Vec<String>,
    /// The file's columns, normalized, in file order.
    pub columns: Vec<String>,
}

impl HeaderCheck {
    pub fn is_valid(&self) -> bool {
        self.missing.is_empty() && self.duplicates.is_empty()
    }

    /// Why the header was refused, e.g. `missing required columns: order_id`; empty if valid.
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing required columns: {}", self.missing.join(", ")));
        }
        if !self.duplicates.is_empty() {
            parts.push(format!("duplicate column names: {}", self.duplicates.join(", ")));
        }
        parts.join("; ")
    }

    /// Compares header names (as written in the file) with the plan's schema. An empty name is
    /// called `column_N` (1-based position).
    pub(crate) fn new(plan: &Plan, names: &[String]) -> HeaderCheck {
        let columns: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let n = normalize_field_name(n);
                if n.is_empty() {
                    format!("column_{}", i + 1)
                } else {
                    n
                }
            })
            .collect();
        let mut duplicates: Vec<String> = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) && !duplicates.contains(c) {
                duplicates.push(c.clone());
            }
        }
        let missing = plan
            .columns
            .iter()
            .filter(|c| c.required && !columns.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        HeaderCheck { missing, duplicates, columns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::compile(&weir_core::Config::bundled().pipelines[0]).unwrap()
    }

    fn check(names: &[&str]) -> HeaderCheck {
        HeaderCheck::new(&plan(), &names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn normalizes_and_accepts_extra_columns() {
        let h = check(&[" Order ID", "Customer Name", "PRODUCT", "quantity", "price", "date", "Note"]);
        assert!(h.is_valid(), "{}", h.reason());
        assert_eq!(h.columns, ["order_id", "customer_name", "product", "quantity", "price", "date", "note"]);
        assert_eq!(h.reason(), "");
    }

    #[test]
    fn missing_and_duplicate_columns() {
        let h = check(&["customer_name", "product", "quantity", "price", "date"]);
        assert_eq!(h.reason(), "missing required columns: order_id");
        let h = check(&["order_id", "x", "customer_name", "product", "quantity", "price", "date", "X ", ""]);
        assert_eq!(h.reason(), "duplicate column names: x");
        assert_eq!(h.columns[8], "column_9");
        let h = check(&["price", "price"]);
        assert!(!h.is_valid());
        assert_eq!(
            h.reason(),
            "missing required columns: order_id, customer_name, product, quantity, date; duplicate column names: price"
        );
    }
}
