//! One member's rows in one guild, as the privacy contract reads and erases them: statements a
//! module declares (`$1` is the guild id, `$2` the member's id), read back as JSON objects
//! whatever their columns, and erasures run in one transaction.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Column, Row};

use crate::error::StoreError;
use crate::guild::GuildStore;

impl GuildStore {
    /// Runs a declared `SELECT` (`$1` the guild id, `$2` `member_id`) and returns each row as a
    /// JSON object keyed by column name (integers, floats, text; `null` for NULL).
    pub async fn member_rows(&self, sql: &'static str, member_id: u64) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(self.sql_id())
            .bind(member_sql_id(member_id)?)
            .fetch_all(self.store().pool())
            .await?;
        rows.iter().map(row_json).collect()
    }

    /// Runs declared erasing statements (`$1` the guild id, `$2` `member_id`) in one transaction;
    /// returns the rows each changed.
    pub async fn erase_member_rows(&self, statements: &[&'static str], member_id: u64) -> Result<Vec<u64>, StoreError> {
        let member = member_sql_id(member_id)?;
        let mut tx = self.store().begin_write().await?;
        let mut changed = Vec::with_capacity(statements.len());
        for sql in statements {
            let n = sqlx::query(AssertSqlSafe(*sql))
                .bind(self.sql_id())
                .bind(member)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            changed.push(n);
        }
        tx.commit().await?;
        self.store().notify_changed(self.id()).await;
        Ok(changed)
    }
}

fn member_sql_id(member_id: u64) -> Result<i64, StoreError> {
    i64::try_from(member_id).map_err(|_| StoreError::Invalid(format!("member id {member_id}")))
}

/// A row as a JSON object: each column decoded as the first of integer, float, text that fits.
fn row_json(row: &AnyRow) -> Result<Value, StoreError> {
    let mut object = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.map_or(Value::Null, Value::from)
        } else {
            let bytes: Option<Vec<u8>> = row.try_get(i)?;
            bytes.map_or(Value::Null, |b| Value::from(format!("{} bytes", b.len())))
        };
        object.insert(column.name().to_owned(), value);
    }
    Ok(Value::Object(object))
}

impl GuildStore {
    /// Runs declared expiring statements (`$1` the guild id, `$2` `cutoff_ms`) in one
    /// transaction; returns the rows each changed.
    pub async fn expire_rows(&self, statements: &[&'static str], cutoff_ms: i64) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.store().begin_write().await?;
        let mut changed = Vec::with_capacity(statements.len());
        for sql in statements {
            let n = sqlx::query(AssertSqlSafe(*sql))
                .bind(self.sql_id())
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            changed.push(n);
        }
        tx.commit().await?;
        Ok(changed)
    }
}
