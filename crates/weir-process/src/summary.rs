//! Accumulating the summary while rows stream past, in memory bounded by the configured caps.
//!
//! Numeric stats are a fixed set of [`NumericStats`]; categorical counts and group-by aggregates
//! are hash maps keyed by the value's bytes, looked up with a borrowed slice so an existing key
//! costs a hash and no allocation. A map stops growing at its cap (`max_distinct`,
//! `max_groups`); after that, new categorical values are not counted (and the counts say so)
//! and new groups are folded into `(other)`. [`Accumulator::finish`] turns it all into the
//! [`Summary`] the job writes. Distinct counts (`summary.unique`, e.g. unique users) use
//! `schema::unique::DistinctCounter` (exact, then HyperLogLog); ranges (`summary.range`, e.g. the
//! time span of `timestamp`) keep the smallest and largest value in the column's own order.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxBuildHasher;
use weir_core::summary::{
    success_rate, CategoricalCounts, GroupStats, NumericStats, Summary, UniqueCount, ValueCount, ValueRange,
};

use crate::plan::Plan;
use crate::schema::unique::DistinctCounter;
use crate::schema::Key;
use crate::slot::SlotValue;

type Map<V> = HashMap<Box<[u8]>, V, FxBuildHasher>;

/// The rows of a pass (or of the pieces of one, added up): read, valid, and invalid ones the
/// error report describes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct RowCounts {
    pub total: u64,
    pub valid: u64,
    pub reported: u64,
}

impl RowCounts {
    pub fn invalid(&self) -> u64 {
        self.total - self.valid
    }

    pub fn add(&mut self, other: RowCounts) {
        self.total += other.total;
        self.valid += other.valid;
        self.reported += other.reported;
    }
}

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
    /// `(name, schema column, counter)` per `summary.unique` field.
    pub unique: Vec<(String, usize, DistinctCounter)>,
    /// `(name, schema column, range)` per `summary.range` field.
    pub ranges: Vec<(String, usize, Range)>,
    pub warnings: Vec<String>,
}

/// The smallest and largest value seen, with their text.
#[derive(Default)]
pub(crate) struct Range {
    min: Option<(Option<Key>, Box<[u8]>)>,
    max: Option<(Option<Key>, Box<[u8]>)>,
}

impl Range {
    /// Adds a value: ordered by `key` when it has one, else by its bytes.
    #[inline]
    pub fn add(&mut self, key: Option<Key>, text: &[u8]) {
        let less = |a: &(Option<Key>, Box<[u8]>)| match (key, a.0) {
            (Some(k), Some(o)) => k < o,
            _ => text < &a.1[..],
        };
        let more = |a: &(Option<Key>, Box<[u8]>)| match (key, a.0) {
            (Some(k), Some(o)) => k > o,
            _ => text > &a.1[..],
        };
        if self.min.as_ref().is_none_or(less) {
            self.min = Some((key, text.into()));
        }
        if self.max.as_ref().is_none_or(more) {
            self.max = Some((key, text.into()));
        }
    }
}

/// Adds the stats of a later piece of the same column (before `finish`).
fn merge_stats(a: &mut NumericStats, b: NumericStats) {
    if b.count == 0 {
        return;
    }
    if a.count == 0 {
        *a = b;
    } else {
        a.min = a.min.min(b.min);
        a.max = a.max.max(b.max);
        a.count += b.count;
        a.sum += b.sum;
    }
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
    fn add(&mut self, fields: &[(String, usize)], slots: &[SlotValue]) {
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
            .filter(|&s| plan.slot_is_numeric(s))
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
        let unique = plan
            .unique_summary
            .iter()
            .map(|&c| (plan.columns[c].name.clone(), c, DistinctCounter::new(plan.max_unique_values)))
            .collect();
        let ranges =
            plan.range_summary.iter().map(|&c| (plan.columns[c].name.clone(), c, Range::default())).collect();
        Accumulator {
            numeric,
            categorical,
            groups,
            errors_by_field: BTreeMap::new(),
            top_n: plan.top_n,
            unique,
            ranges,
            warnings: Vec::new(),
        }
    }

    /// Adds a valid row: `slots` are its typed values, `field(i)` the text of file column `i`.
    #[inline]
    pub fn add<'a>(&mut self, slots: &[SlotValue], field: impl Fn(usize) -> &'a [u8]) {
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

    /// Adds the accumulator of a later piece of the same file (the parallel driver). Caps hold
    /// as they would have in one pass, except that which values were first to fill a cap may
    /// differ (the counts of values that made it stay exact).
    pub fn merge(&mut self, other: Accumulator) {
        for ((_, _, a), (_, _, b)) in self.numeric.iter_mut().zip(other.numeric) {
            merge_stats(a, b);
        }
        for (a, b) in self.categorical.iter_mut().zip(other.categorical) {
            a.capped |= b.capped;
            for (k, n) in b.counts {
                if let Some(c) = a.counts.get_mut(&k) {
                    *c += n;
                } else if a.counts.len() < a.max {
                    a.counts.insert(k, n);
                } else {
                    a.capped = true;
                }
            }
        }
        for (a, b) in self.groups.iter_mut().zip(other.groups) {
            let n = a.fields.len();
            let into = |dst: &mut Group, src: Group| {
                dst.count += src.count;
                for (d, s) in dst.stats.iter_mut().zip(src.stats) {
                    merge_stats(d, s);
                }
            };
            for (k, g) in b.map {
                if let Some(dst) = a.map.get_mut(&k) {
                    into(dst, g);
                } else if a.map.len() < a.max {
                    a.map.insert(k, g);
                } else {
                    into(a.other.get_or_insert_with(|| Group::new(n)), g);
                }
            }
            if let Some(g) = b.null {
                into(a.null.get_or_insert_with(|| Group::new(n)), g);
            }
            if let Some(g) = b.other {
                into(a.other.get_or_insert_with(|| Group::new(n)), g);
            }
        }
        for (k, n) in other.errors_by_field {
            *self.errors_by_field.entry(k).or_default() += n;
        }
        self.warnings.extend(other.warnings);
    }

    pub fn error_in(&mut self, field: &str) {
        match self.errors_by_field.get_mut(field) {
            Some(n) => *n += 1,
            None => {
                self.errors_by_field.insert(field.to_string(), 1);
            }
        }
    }

    pub fn finish(self, counts: RowCounts) -> Summary {
        let RowCounts { total, valid, reported: errors_reported } = counts;
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
        let mut warnings = self.warnings;
        let unique = self
            .unique
            .into_iter()
            .map(|(name, _, counter)| {
                let (count, exact) = counter.count();
                if !exact {
                    warnings.push(format!(
                        "summary.unique: `{name}` has more distinct values than summary.max_unique_values; its count is an estimate (about 1 % error)"
                    ));
                }
                (name, UniqueCount { count, exact })
            })
            .collect();
        let ranges = self
            .ranges
            .into_iter()
            .map(|(name, _, r)| {
                (name, ValueRange { min: r.min.map(|m| text(&m.1)), max: r.max.map(|m| text(&m.1)) })
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
            unique,
            ranges,
            warnings,
            results: Vec::new(),
        }
    }
}
