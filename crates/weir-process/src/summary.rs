//! Accumulating the summary while rows stream past, in memory bounded by the configured caps.
//!
//! Numeric stats are a fixed set of [`NumericStats`]; categorical counts and group-by aggregates
//! are hash maps keyed by the value's bytes, looked up with a borrowed slice so an existing key
//! costs a hash and no allocation. A map stops growing at its cap (`max_distinct`,
//! `max_groups`); after that, new categorical values are not counted (and the counts say so)
//! and new groups are folded into `(other)`. [`Accumulator::finish`] turns it all into the
//! [`Summary`] the job writes.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxBuildHasher;
use weir_core::summary::{success_rate, CategoricalCounts, GroupStats, NumericStats, Summary, ValueCount};

use crate::expr::Num;
use crate::plan::Plan;

type Map<V> = HashMap<Box<[u8]>, V, FxBuildHasher>;

/// The group every new group value joins once `max_groups` are tracked.
pub const OTHER_GROUP: &str = "(other)";
/// The group of rows whose group-by field is empty.
pub const NULL_GROUP: &str = "(null)";

pub(crate) struct Accumulator {
    /// `(name, slot, stats)` for every numeric column and derived field.
    numeric: Vec<(String, usize, NumericStats)>,
    categorical: Vec<Categorical>,
    groups: Vec<Groups>,
    pub errors_by_field: BTreeMap<String, u64>,
    top_n: usize,
}

struct Categorical {
    name: String,
    /// File column holding the value, if the file has it.
    pub column: Option<usize>,
    counts: Map<u64>,
    max: usize,
    capped: bool,
}

struct Groups {
    by: String,
    pub column: Option<usize>,
    fields: Vec<(String, usize)>,
    map: Map<Group>,
    other: Option<Group>,
    null: Option<Group>,
    max: usize,
}

struct Group {
    count: u64,
    stats: Vec<NumericStats>,
}

impl Group {
    fn new(n: usize) -> Group {
        Group { count: 0, stats: vec![NumericStats::default(); n] }
    }

    #[inline]
    fn add(&mut self, fields: &[(String, usize)], slots: &[Num]) {
        self.count += 1;
        for ((_, slot), stats) in fields.iter().zip(&mut self.stats) {
            if let Some(v) = slots[*slot].as_f64() {
                stats.add(v);
            }
        }
    }
}

impl Accumulator {
    /// `file_column[i]` is the file column of schema column `i`, if present.
    pub fn new(plan: &Plan, file_column: &[Option<usize>]) -> Accumulator {
        let numeric = (0..plan.slot_count())
            .filter(|&s| s >= plan.columns.len() || plan.columns[s].ty.is_numeric())
            .map(|s| (plan.slot_name(s).to_string(), s, NumericStats::default()))
            .collect();
        let categorical = plan
            .categorical
            .iter()
            .map(|&c| Categorical {
                name: plan.columns[c].name.clone(),
                column: file_column[c],
                counts: Map::default(),
                max: plan.max_distinct,
                capped: false,
            })
            .collect();
        let groups = plan
            .group_by
            .iter()
            .map(|g| Groups {
                by: plan.columns[g.by].name.clone(),
                column: file_column[g.by],
                fields: g.fields.clone(),
                map: Map::default(),
                other: None,
                null: None,
                max: g.max_groups,
            })
            .collect();
        Accumulator { numeric, categorical, groups, errors_by_field: BTreeMap::new(), top_n: plan.top_n }
    }

    /// Adds a valid row: `slots` are its typed values, `field(i)` the text of file column `i`.
    #[inline]
    pub fn add<'a>(&mut self, slots: &[Num], field: impl Fn(usize) -> &'a [u8]) {
        for (_, slot, stats) in &mut self.numeric {
            if let Some(v) = slots[*slot].as_f64() {
                stats.add(v);
            }
        }
        for c in &mut self.categorical {
            let Some(col) = c.column else { continue };
            let value = field(col);
            if value.is_empty() {
                continue;
            }
            if let Some(n) = c.counts.get_mut(value) {
                *n += 1;
            } else if c.counts.len() < c.max {
                c.counts.insert(value.into(), 1);
            } else {
                c.capped = true;
            }
        }
        for g in &mut self.groups {
            let value = g.column.map(&field).unwrap_or_default();
            let n = g.fields.len();
            if let Some(group) = g.map.get_mut(value) {
                group.add(&g.fields, slots);
                continue;
            }
            let group = if value.is_empty() {
                g.null.get_or_insert_with(|| Group::new(n))
            } else if g.map.len() < g.max {
                g.map.entry(value.into()).or_insert_with(|| Group::new(n))
            } else {
                g.other.get_or_insert_with(|| Group::new(n))
            };
            group.add(&g.fields, slots);
        }
    }

    pub fn error_in(&mut self, field: &str) {
        match self.errors_by_field.get_mut(field) {
            Some(n) => *n += 1,
            None => {
                self.errors_by_field.insert(field.to_string(), 1);
            }
        }
    }

    pub fn finish(self, total: u64, valid: u64, errors_reported: u64) -> Summary {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let numeric = self
            .numeric
            .into_iter()
            .map(|(name, _, mut s)| {
                s.finish();
                (name, s)
            })
            .collect();
        let top_n = self.top_n;
        let categorical = self
            .categorical
            .into_iter()
            .map(|c| {
                let mut top: Vec<ValueCount> =
                    c.counts.iter().map(|(v, &count)| ValueCount { value: text(v), count }).collect();
                top.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                top.truncate(top_n);
                let counts =
                    CategoricalCounts { distinct: c.counts.len() as u64, distinct_capped: c.capped, top };
                (c.name, counts)
            })
            .collect();
        let group_by = self
            .groups
            .into_iter()
            .map(|g| {
                let finish = |grp: Group| {
                    let fields = g
                        .fields
                        .iter()
                        .zip(grp.stats)
                        .map(|((name, _), mut s)| {
                            s.finish();
                            (name.clone(), s)
                        })
                        .collect();
                    GroupStats { count: grp.count, fields }
                };
                let mut out: BTreeMap<String, GroupStats> = BTreeMap::new();
                for (k, grp) in g.map {
                    out.insert(text(&k), finish(grp));
                }
                if let Some(grp) = g.null {
                    out.insert(NULL_GROUP.into(), finish(grp));
                }
                if let Some(grp) = g.other {
                    out.insert(OTHER_GROUP.into(), finish(grp));
                }
                (g.by, out)
            })
            .collect();
        Summary {
            source: None,
            total_rows: total,
            valid_rows: valid,
            invalid_rows: total - valid,
            success_rate: success_rate(valid, total),
            numeric,
            categorical,
            group_by,
            errors_by_field: self.errors_by_field,
            errors_reported,
        }
    }
}
