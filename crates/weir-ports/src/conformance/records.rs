//! The records sink conformance suite: upserts on (pk, sk), queries in sk order.
//!
//! An adapter's test calls [`run_all`] with a fresh, empty sink. Failures panic with
//! `records sink conformance <case>: <what went wrong>`.

use std::sync::Arc;

use serde_json::json;

use crate::{RecordItem, RecordsSink};

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("records sink conformance {case}: {what}")
}

fn item(pk: &str, n: usize, value: serde_json::Value) -> RecordItem {
    RecordItem { pk: pk.into(), sk: format!("ROW#{n:06}"), item: value }
}

/// Writing the same rows twice leaves one copy of each, the later values win, and a query gives
/// one source's items in sk order, up to its limit (0: all).
pub async fn run_all(sink: Arc<dyn RecordsSink>) {
    let case = "upserts_and_queries";
    let pk = "CSV#in/raw/sales.csv";
    let first: Vec<RecordItem> = (1..=60).rev().map(|n| item(pk, n, json!({"n": n, "v": 1}))).collect();
    sink.put_batch(&first).await.unwrap_or_else(|e| fail(case, e));
    let again: Vec<RecordItem> =
        (1..=60).map(|n| item(pk, n, json!({"n": n, "v": 2, "text": "ก \"q\""}))).collect();
    sink.put_batch(&again).await.unwrap_or_else(|e| fail(case, e));
    sink.put_batch(&[item("CSV#in/raw/other.csv", 1, json!({"n": 1}))])
        .await
        .unwrap_or_else(|e| fail(case, e));
    sink.put_batch(&[]).await.unwrap_or_else(|e| fail(case, format!("an empty batch: {e}")));
    let all = sink.query(pk, 0).await.unwrap_or_else(|e| fail(case, e));
    if all.len() != 60 {
        fail(case, format!("{} items, not 60", all.len()));
    }
    if all.iter().map(|i| i.sk.clone()).collect::<Vec<_>>()
        != (1..=60).map(|n| format!("ROW#{n:06}")).collect::<Vec<_>>()
    {
        fail(case, "not in sk order");
    }
    if all.iter().any(|i| i.item["v"] != 2 || i.item["text"] != "ก \"q\"") {
        fail(case, format!("the later values did not win: {:?}", all[0]));
    }
    let some = sink.query(pk, 10).await.unwrap_or_else(|e| fail(case, e));
    if some.len() != 10 || some[9].sk != "ROW#000010" {
        fail(case, format!("a limit of 10: {} items", some.len()));
    }
    if !sink.query("CSV#in/raw/none.csv", 0).await.unwrap_or_else(|e| fail(case, e)).is_empty() {
        fail(case, "items of a pk nothing was written under");
    }
}
