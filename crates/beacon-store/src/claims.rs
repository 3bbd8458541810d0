//! Group commit for idempotency claims ([`crate::Store::claim_once`]).
//!
//! Every interaction is claimed by id before it is handled. One INSERT per claim would make the
//! database's single writer (SQLite) the limit of the whole bot under load, so claims go to one
//! writer task that inserts everything waiting in a single statement and tells each caller
//! whether its row was new. A lone claim is written at once (no timer), so the latency at low
//! load is one INSERT as before; under load many claims share one.

use std::collections::HashMap;

use sqlx::{AnyPool, AssertSqlSafe, Row};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::now_ms;

/// Most claims written by one statement (3 bound values each, far below both backends' limits).
const MAX_BATCH: usize = 256;

pub(crate) struct Pending {
    pub(crate) kind: String,
    pub(crate) id: u64,
    pub(crate) done: oneshot::Sender<Result<bool, String>>,
}

/// Writes queued claims until every sender is gone.
pub(crate) async fn write_claims(pool: AnyPool, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcome = insert_batch(&pool, &batch).await;
        for (i, pending) in batch.drain(..).enumerate() {
            let result = match &outcome {
                Ok(inserted) => Ok(inserted[i]),
                Err(e) => Err(e.to_string()),
            };
            // A caller that gave up waiting has nothing to be told.
            let _ = pending.done.send(result);
        }
    }
}

/// Inserts the batch; for each entry, whether it is the one that claimed its `(kind, id)`.
/// A `(kind, id)` twice in one batch is claimed by its first entry only.
async fn insert_batch(pool: &AnyPool, batch: &[Pending]) -> Result<Vec<bool>, StoreError> {
    let mut first: HashMap<(&str, u64), usize> = HashMap::with_capacity(batch.len());
    for (i, p) in batch.iter().enumerate() {
        first.entry((p.kind.as_str(), p.id)).or_insert(i);
    }
    let unique: Vec<usize> = {
        let mut v: Vec<usize> = first.values().copied().collect();
        v.sort_unstable();
        v
    };
    let mut sql = String::from("INSERT INTO processed_claims (kind, id, claimed_at) VALUES ");
    for (n, _) in unique.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        let base = n * 3;
        sql.push_str(&format!("(${}, ${}, ${})", base + 1, base + 2, base + 3));
    }
    sql.push_str(" ON CONFLICT (kind, id) DO NOTHING RETURNING kind, id");
    let now = now_ms();
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for &i in &unique {
        query = query.bind(batch[i].kind.as_str()).bind(batch[i].id as i64).bind(now);
    }
    let rows = query.fetch_all(pool).await?;
    let mut claimed = vec![false; batch.len()];
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let id = row.try_get::<i64, _>("id")? as u64;
        if let Some(&i) = first.get(&(kind.as_str(), id)) {
            claimed[i] = true;
        }
    }
    Ok(claimed)
}
