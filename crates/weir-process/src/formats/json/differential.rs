//! The JSON reader against `serde_json`, as the CSV reader is tested against the `csv` crate.
//!
//! Generated documents (NDJSON streams, arrays, single objects) with nested objects and arrays,
//! every string escape, numbers in every spelling, keys that normalize alike and repeat, some of
//! them then broken by a byte deleted or inserted, are read by the reader in small chunks and by
//! `serde_json` into an ordered tree ([`Doc`]), which [`expected`] flattens onto the schema's
//! columns the way the reader's documentation says. They must agree on which documents are JSON
//! and, for those, on every row: each column's value (strings unescaped, anything else the same
//! JSON), which were absent or null, and the unknown keys with their values, in order.
//!
//! Two differences are by design and kept out of the generated inputs: the reader keeps a
//! number's text however large (`1e999` is valid JSON; `serde_json` refuses what an `f64`
//! cannot hold), and it skips a byte order mark.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use weir_core::config::normalize_field_name;

use super::tests::plan;
use super::{JsonReader, MAX_DEPTH};
use crate::error::ProcessError;
use crate::formats::refill::tests::Trickle;
use crate::formats::{Next, Source};

/// A JSON value as `serde_json` reads it, with object members in document order and repeated
/// keys kept (a `serde_json::Value` would sort them and keep the last).
#[derive(Debug, Clone, PartialEq)]
enum Doc {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Doc, E> {
        Ok(Doc::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Doc, E> {
        Ok(Doc::Bool(b))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Doc, E> {
        Ok(Doc::Number(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Doc, E> {
        Ok(Doc::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Doc, E> {
        serde_json::Number::from_f64(v).map(Doc::Number).ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Doc, E> {
        Ok(Doc::String(s.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Doc>()? {
            members.push(member);
        }
        Ok(Doc::Object(members))
    }
}

fn parse(text: &[u8]) -> Result<Doc, serde_json::Error> {
    serde_json::from_slice(text)
}

/// The schema's columns: top-level, nested two and three deep, and two that differently
/// written keys normalize to.
const COLUMNS: &[&str] =
    &["id", "user.id", "user.name", "user.address.city", "amount", "tags", "extra_key", "a_b"];

/// One record, as the reader should make it.
#[derive(Debug, PartialEq)]
enum Item {
    /// Each column's value (`None` when absent or null), and the unknown keys in order.
    Row(Vec<Option<Doc>>, Vec<(String, Doc)>),
    /// An element that is not an object (an invalid row).
    NotObject,
    /// An element that is not JSON (an invalid row); the reader's reason.
    Invalid(String),
}

#[derive(Clone, Copy)]
enum Target {
    Column(usize),
    Prefix,
}

/// What the reader's documentation says an element becomes: the value at each column's dotted
/// path (keys normalized as CSV headers are, the last of repeated keys winning, `null` as
/// absent), objects on the way to a column descended into, and every other member an unknown
/// key: at the top under its key as written, deeper under its dotted path.
fn expected(doc: &Doc, keep_unknown: bool) -> Item {
    let Doc::Object(members) = doc else { return Item::NotObject };
    let mut targets = HashMap::new();
    for (i, c) in COLUMNS.iter().enumerate() {
        for (dot, _) in c.match_indices('.') {
            targets.insert(c[..dot].to_string(), Target::Prefix);
        }
        targets.insert(c.to_string(), Target::Column(i));
    }
    fn flatten(
        members: &[(String, Doc)],
        path: Option<&str>,
        targets: &HashMap<String, Target>,
        keep_unknown: bool,
        fields: &mut [Option<Doc>],
        extra: &mut Vec<(String, Doc)>,
    ) {
        for (key, value) in members {
            let name = normalize_field_name(key);
            let here = match path {
                None => name,
                Some(p) => format!("{p}.{name}"),
            };
            match (targets.get(&here), value) {
                (Some(Target::Column(c)), Doc::Null) => fields[*c] = None,
                (Some(Target::Column(c)), v) => fields[*c] = Some(v.clone()),
                (Some(Target::Prefix), Doc::Object(inner)) => {
                    flatten(inner, Some(&here), targets, keep_unknown, fields, extra)
                }
                _ if keep_unknown => {
                    extra.push((if path.is_none() { key.clone() } else { here }, value.clone()))
                }
                _ => {}
            }
        }
    }
    let mut fields = vec![None; COLUMNS.len()];
    let mut extra = Vec::new();
    flatten(members, None, &targets, keep_unknown, &mut fields, &mut extra);
    Item::Row(fields, extra)
}

/// The reader's record as an [`Item`], each field read as the model expects it: the text of a
/// string, the JSON text of anything else.
fn item(next: Next<'_>, like: Option<&Item>) -> Item {
    let Next::Record(rec) = next else { panic!("nothing is oversized here") };
    if let Some(why) = rec.malformed() {
        return if why.starts_with("expected a JSON object") {
            Item::NotObject
        } else {
            Item::Invalid(why.to_string())
        };
    }
    let fields = (0..rec.field_count)
        .map(|i| {
            if rec.absent(i) {
                return None;
            }
            let text = rec.field(i);
            let lossy = || Doc::String(String::from_utf8_lossy(text).into_owned());
            Some(match like {
                Some(Item::Row(f, _)) if matches!(f[i], Some(Doc::String(_))) => lossy(),
                _ => parse(text).unwrap_or_else(|_| lossy()),
            })
        })
        .collect();
    let extra = match rec.extra() {
        [] => Vec::new(),
        pairs => {
            let object = [b"{", &pairs[1..], b"}"].concat();
            match parse(&object) {
                Ok(Doc::Object(members)) => members,
                other => return Item::Invalid(format!("unknown keys serde_json cannot read: {other:?}")),
            }
        }
    };
    Item::Row(fields, extra)
}

/// Every record the reader makes of `data`, and the error that ended the file, if one did.
fn read(data: &[u8], keep_unknown: bool, chunk: usize, model: &[Item]) -> (Vec<Item>, Option<ProcessError>) {
    let plan = plan(COLUMNS, keep_unknown, 1 << 20);
    let mut reader = JsonReader::new(Trickle { data, chunk }, &plan, None);
    let mut items = Vec::new();
    loop {
        match Source::next_record(&mut reader) {
            Ok(Some(next)) => {
                let like = model.get(items.len());
                items.push(item(next, like));
            }
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e)),
        }
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Keys as written in the document: columns in several spellings (case, spaces, an escape, a
/// vertical tab, a dot inside one key), prefixes, and keys the schema does not know.
const KEYS: &[&str] = &[
    "id",
    "ID",
    " Id ",
    "user",
    "User",
    r"\u0075ser",
    "user.id",
    "name",
    "address",
    "Address",
    "city",
    "amount",
    "tags",
    "extra key",
    "Extra  Key",
    "a b",
    r"a\u000bb",
    "note",
    "Type",
    "é",
    "É",
    r#"x\"y"#,
    r"a\\b",
    "x.y",
];

const STRING_PIECES: &[&str] = &[
    "a",
    "Z",
    " ",
    "é",
    "สม",
    "😀",
    r#"\""#,
    r"\\",
    r"\/",
    r"\n",
    r"\t",
    r"\r",
    r"\b",
    r"\f",
    r"\u00e9",
    r"\u00E9",
    r"\ud83d\ude00",
    r"\u0000",
    r"\u001f",
    ",",
    "{",
    "]",
    ":",
];

/// Numbers in every spelling JSON allows, within what an `f64` holds.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "7",
    "-12",
    "3.25",
    "-0.5",
    "2.50e1",
    "1E+2",
    "1e-7",
    "6.02E23",
    "0.1",
    "9007199254740993",
    "123456789012345678901234567890",
];

const SPACE: &[&str] = &["", "", "", " ", "\n", "\t", "\r\n", "  \n "];

fn string(rng: &mut Rng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.below(5) {
        out.push_str(rng.pick(STRING_PIECES));
    }
    out.push('"');
}

fn value(rng: &mut Rng, depth: usize, object_likely: bool, out: &mut String) {
    let kind = if object_likely && rng.below(3) > 0 { 6 } else { rng.below(if depth >= 4 { 5 } else { 7 }) };
    match kind {
        0 => out.push_str("null"),
        1 => out.push_str("true"),
        2 => out.push_str("false"),
        3 => out.push_str(rng.pick(NUMBERS)),
        4 => string(rng, out),
        5 => {
            let n = rng.below(4);
            array(rng, n, out, |rng, out| value(rng, depth + 1, false, out))
        }
        _ => object(rng, depth + 1, out),
    }
}

/// `[` and `n` items with whitespace around them, `]`.
fn array(rng: &mut Rng, n: usize, out: &mut String, mut item: impl FnMut(&mut Rng, &mut String)) {
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(rng.pick(SPACE));
        item(rng, out);
        out.push_str(rng.pick(SPACE));
    }
    out.push(']');
}

fn object(rng: &mut Rng, depth: usize, out: &mut String) {
    out.push('{');
    out.push_str(rng.pick(SPACE));
    for i in 0..rng.below(6) {
        if i > 0 {
            out.push(',');
            out.push_str(rng.pick(SPACE));
        }
        let key = rng.pick(KEYS);
        out.push('"');
        out.push_str(key);
        out.push('"');
        out.push_str(rng.pick(SPACE));
        out.push(':');
        out.push_str(rng.pick(SPACE));
        // Objects where a column path goes on, so that the reader descends.
        let prefix = ["user", "User", r"\u0075ser", "address", "Address"].contains(&key);
        value(rng, depth, prefix && depth < 4, out);
        out.push_str(rng.pick(SPACE));
    }
    out.push('}');
}

/// An NDJSON stream, an array of objects or one object.
fn document(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(rng.pick(SPACE));
    match rng.below(3) {
        0 => {
            for _ in 0..1 + rng.below(5) {
                object(rng, 1, &mut out);
                out.push('\n');
                out.push_str(rng.pick(SPACE));
            }
        }
        1 => {
            let n = rng.below(5);
            array(rng, n, &mut out, |rng, out| object(rng, 1, out))
        }
        _ => object(rng, 1, &mut out),
    }
    out.push_str(rng.pick(SPACE));
    out.into_bytes()
}

/// Deletes or inserts a byte. Inserted bytes are structural characters, whitespace, a stray
/// letter, control characters and bytes that are never UTF-8; never digits or `e`, which could
/// make a number too large for an `f64` (a difference by design).
fn break_it(rng: &mut Rng, data: &mut Vec<u8>) {
    const INSERTS: &[u8] = b"{}[],:\"\\ \nx\x01\x0c\xff\xc3";
    let at = rng.below(data.len() + 1);
    if rng.below(2) == 0 && at < data.len() {
        data.remove(at);
    } else {
        data.insert(at, INSERTS[rng.below(INSERTS.len())]);
    }
}

/// Whether the input is one array (the reader's elements are then its elements).
fn is_array(data: &[u8]) -> bool {
    data.iter().find(|b| !b" \t\r\n".contains(b)) == Some(&b'[')
}

/// What `serde_json` reads: the elements it accepts (each array element, or each value of the
/// stream up to the first error), and whether it met an error.
fn serde_reads(data: &[u8], array: bool) -> (Vec<Doc>, bool) {
    if array {
        return match parse(data) {
            Ok(Doc::Array(elements)) => (elements, false),
            Ok(other) => panic!("an array parsed as {other:?}"),
            Err(_) => (Vec::new(), true),
        };
    }
    let mut docs = Vec::new();
    for doc in serde_json::Deserializer::from_slice(data).into_iter::<Doc>() {
        match doc {
            Ok(d) => docs.push(d),
            Err(_) => return (docs, true),
        }
    }
    (docs, false)
}

#[test]
fn agrees_with_serde_json() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut valid, mut broken) = (0, 0);
    for case in 0..4000 {
        let mut data = document(&mut rng);
        let mutated = rng.below(3) == 0;
        if mutated {
            for _ in 0..1 + rng.below(2) {
                break_it(&mut rng, &mut data);
            }
        }
        let keep_unknown = case % 2 == 0;
        let chunk = if rng.below(4) == 0 { 1 << 16 } else { 1 + rng.below(9) };
        let array = is_array(&data);
        let (docs, serde_failed) = serde_reads(&data, array);
        let model: Vec<Item> = docs.iter().map(|d| expected(d, keep_unknown)).collect();
        let (ours, error) = read(&data, keep_unknown, chunk, &model);
        let input = String::from_utf8_lossy(&data);
        assert!(mutated || !serde_failed, "the generator wrote invalid JSON: {input}");
        if !serde_failed {
            valid += 1;
            assert!(error.is_none(), "serde_json reads it, the reader fails with {error:?}: {input}");
            assert_eq!(ours, model, "case {case} (keep unknown {keep_unknown}): {input}");
            continue;
        }
        broken += 1;
        if array {
            // Either the file fails or some element is an invalid row.
            let refused = error.is_some() || ours.iter().any(|i| !matches!(i, Item::Row(..)));
            assert!(refused, "serde_json refuses it, the reader accepts it as {ours:?}: {input}");
        } else {
            // The values before serde_json's error are read alike; the one it fails on is an
            // invalid row, or ends the file.
            let k = model.len();
            assert!(ours.len() >= k, "the reader stopped early with {error:?}: {input}");
            assert_eq!(ours[..k], model[..], "case {case}: {input}");
            let refused = match ours.get(k) {
                Some(item) => !matches!(item, Item::Row(..)),
                None => error.is_some(),
            };
            assert!(refused, "serde_json refuses value {k}, the reader reads {:?}: {input}", ours.get(k));
        }
    }
    // Both kinds of input were really tested.
    assert!(valid > 2000 && broken > 500, "{valid} valid, {broken} broken");
}

/// Nesting just below, at and just above the limit: the reader refuses what `serde_json` does.
#[test]
fn nesting_limit_agrees_with_serde_json() {
    for depth in MAX_DEPTH - 3..=MAX_DEPTH + 3 {
        // `depth` levels in all, the element itself being the first.
        let n = depth - 1;
        let shapes = [
            format!("{}{}", "[".repeat(n), "]".repeat(n)),
            format!("{}1{}", "[".repeat(n), "]".repeat(n)),
            format!("{}1{}", "{\"k\":".repeat(n), "}".repeat(n)),
            format!("{}{{}}{}", "{\"k\":".repeat(n - 1), "}".repeat(n - 1)),
        ];
        for inner in shapes {
            for key in ["id", "other", "user"] {
                let element = format!("{{\"{key}\":{inner}}}");
                let serde_ok = parse(element.as_bytes()).is_ok();
                let model = [Item::NotObject];
                let (ours, error) = read(element.as_bytes(), true, 1 << 16, &model);
                assert!(error.is_none(), "{error:?}");
                let ours_ok = matches!(ours[..], [Item::Row(..)]);
                assert_eq!(ours_ok, serde_ok, "depth {depth}, {key}: {:.60}…: {ours:?}", element);
            }
        }
    }
}
