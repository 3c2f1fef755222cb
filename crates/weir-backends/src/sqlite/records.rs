//! The embedded records sink: valid rows as `(pk, sk)` items in a SQLite table.
//!
//! The SQLite counterpart of the seeds' DynamoDB table: items are upserted on their key, so a
//! redelivered file rewrites its rows instead of duplicating them, and a batch is one
//! transaction, so a crash never leaves half a batch.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::params;
use weir_ports::{PortError, RecordItem, RecordsSink};

use super::{sql, Db};

const MIGRATIONS: &[&str] = &["
    CREATE TABLE records (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
"];

/// Items in a SQLite file, keyed on `(pk, sk)`. Cheap to clone.
#[derive(Clone)]
pub struct SqliteRecordsSink {
    db: Db,
}

impl std::fmt::Debug for SqliteRecordsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRecordsSink").field("path", &self.db.path()).finish()
    }
}

impl SqliteRecordsSink {
    /// Opens the records table at `path`, creating the file and its schema if needed.
    pub fn open(path: &Path) -> Result<SqliteRecordsSink, PortError> {
        Ok(SqliteRecordsSink { db: Db::open(path, "records", MIGRATIONS)? })
    }
}

#[async_trait]
impl RecordsSink for SqliteRecordsSink {
    async fn put_batch(&self, items: &[RecordItem]) -> Result<(), PortError> {
        if items.is_empty() {
            return Ok(());
        }
        let rows = items
            .iter()
            .map(|i| {
                serde_json::to_string(&i.item)
                    .map(|json| (i.pk.clone(), i.sk.clone(), json))
                    .map_err(|e| PortError::Invalid(format!("item {}/{} cannot be encoded: {e}", i.pk, i.sk)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.db
            .write("writing records", move |c| {
                let mut st = c
                    .prepare_cached(
                        "INSERT INTO records (pk, sk, item) VALUES (?1, ?2, ?3)
                         ON CONFLICT (pk, sk) DO UPDATE SET item = excluded.item",
                    )
                    .map_err(sql("writing records"))?;
                for (pk, sk, item) in &rows {
                    st.execute(params![pk, sk, item]).map_err(sql("writing a record"))?;
                }
                Ok(())
            })
            .await
    }

    /// `limit` 0 returns every item under the pk.
    async fn query(&self, pk: &str, limit: usize) -> Result<Vec<RecordItem>, PortError> {
        let pk = pk.to_owned();
        let limit = if limit == 0 { -1 } else { i64::try_from(limit).unwrap_or(i64::MAX) };
        let rows = self
            .db
            .read("querying records", move |c| {
                let mut st = c
                    .prepare_cached("SELECT pk, sk, item FROM records WHERE pk = ?1 ORDER BY sk LIMIT ?2")
                    .map_err(sql("querying records"))?;
                let rows = st
                    .query_map(params![pk, limit], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql("querying records"))?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(pk, sk, json)| {
                let item = serde_json::from_str(&json)
                    .map_err(|e| PortError::unavailable(format!("decoding record {pk}/{sk}"), e))?;
                Ok(RecordItem { pk, sk, item })
            })
            .collect()
    }
}
