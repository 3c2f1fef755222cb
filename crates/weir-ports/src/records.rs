//! The records sink port: valid rows loaded as items keyed like the seeds' DynamoDB table.

use async_trait::async_trait;

use crate::PortError;

/// One item: `pk` names the source (`CSV#<bucket>/<key>`), `sk` the row (`ROW#000042`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordItem {
    pub pk: String,
    pub sk: String,
    pub item: serde_json::Value,
}

#[async_trait]
pub trait RecordsSink: Send + Sync {
    /// Upserts the items on (pk, sk): writing the same rows twice leaves one copy of each.
    async fn put_batch(&self, items: &[RecordItem]) -> Result<(), PortError>;

    /// Items under one pk, in sk order, at most `limit` (0: all of them).
    async fn query(&self, pk: &str, limit: usize) -> Result<Vec<RecordItem>, PortError>;
}
