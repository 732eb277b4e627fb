//! Browser sessions in our own database, for tower-sessions.
//!
//! The SQL stores published for tower-sessions speak one sqlx driver each; Palisade's pool is sqlx's
//! `Any`, so this store is written once for both SQLite and PostgreSQL. Rows are keyed by the
//! SHA-256 of the session id, so the table never holds a usable cookie value. Besides the record's
//! own expiry, every load enforces the idle and absolute timeouts and revocation; the `*_at`
//! functions take the time as a parameter so tests can move the clock instead of sleeping.

use std::collections::HashMap;

use async_trait::async_trait;
use palisade_app::account::ssr::sha256_hex;
use palisade_app::db::{now_ms, Db};
use sqlx::Row;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error as StoreError, Result as StoreResult};
use tower_sessions::SessionStore;

/// The session key holding the signed-in user's id.
pub const USER_KEY: &str = "uid";

/// A session's last-seen time is written at most this often (every request would be a write).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Sessions in the `sessions` table.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
    /// No request for this long ends a session.
    pub idle_ms: i64,
    /// This long after sign-in a session ends, however active.
    pub absolute_ms: i64,
}

/// The stored key of a session id.
pub fn key(id: &Id) -> String {
    sha256_hex(&id.to_string())
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn to_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn user_of(record: &Record) -> Option<String> {
    record
        .data
        .get(USER_KEY)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// A session row as first written: created and last seen at the same time.
const INSERT: &str =
    "INSERT INTO sessions (id, user_id, data, created_ms, last_seen_ms, expires_ms) \
     VALUES ($1, $2, $3, $4, $4, $5)";

impl SqlStore {
    pub fn new(db: Db, idle_ms: i64, absolute_ms: i64) -> SqlStore {
        SqlStore {
            db,
            idle_ms,
            absolute_ms,
        }
    }

    /// Insert a new record; `Ok(false)` when its id is taken.
    pub async fn create_at(&self, record: &Record, now: i64) -> StoreResult<bool> {
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM sessions WHERE id = $1")
            .bind(key(&record.id))
            .fetch_optional(self.db.pool())
            .await
            .map_err(backend)?;
        if exists.is_some() {
            return Ok(false);
        }
        self.write(INSERT, record, now).await?;
        Ok(true)
    }

    /// Write a record's data and expiry, keeping its creation time and revocation.
    pub async fn save_at(&self, record: &Record, now: i64) -> StoreResult<()> {
        self.write(
            &format!(
                "{INSERT} ON CONFLICT (id) DO UPDATE SET user_id = $2, data = $3, \
                 last_seen_ms = $4, expires_ms = $5"
            ),
            record,
            now,
        )
        .await
    }

    /// Run `sql`, an insert of a record's id, user, data, time (as created and last seen) and
    /// expiry, bound in that order.
    async fn write(&self, sql: &str, record: &Record, now: i64) -> StoreResult<()> {
        let data =
            serde_json::to_string(&record.data).map_err(|e| StoreError::Encode(e.to_string()))?;
        sqlx::query(sql)
            .bind(key(&record.id))
            .bind(user_of(record))
            .bind(data)
            .bind(now)
            .bind(to_ms(record.expiry_date))
            .execute(self.db.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// The record, unless it is unknown, revoked, past its expiry, idle too long or too old.
    pub async fn load_at(&self, id: &Id, now: i64) -> StoreResult<Option<Record>> {
        let row = sqlx::query(
            "SELECT data, created_ms, last_seen_ms, expires_ms, revoked_ms FROM sessions WHERE id = $1",
        )
        .bind(key(id))
        .fetch_optional(self.db.pool())
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get("data").map_err(backend)?;
        let created: i64 = row.try_get("created_ms").map_err(backend)?;
        let last_seen: i64 = row.try_get("last_seen_ms").map_err(backend)?;
        let expires: i64 = row.try_get("expires_ms").map_err(backend)?;
        let revoked: Option<i64> = row.try_get("revoked_ms").map_err(backend)?;
        let live = revoked.is_none()
            && expires > now
            && now - last_seen <= self.idle_ms
            && now - created <= self.absolute_ms;
        if !live {
            return Ok(None);
        }
        if now - last_seen > TOUCH_EVERY_MS {
            sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(key(id))
                .execute(self.db.pool())
                .await
                .map_err(backend)?;
        }
        let data: HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| StoreError::Decode(e.to_string()))?;
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires) * 1_000_000)
                .map_err(|e| StoreError::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    pub async fn delete_by_key(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(key)
            .execute(self.db.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Remove sessions that can no longer be used; returns how many.
    pub async fn delete_expired_at(&self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_ms <= $1 OR last_seen_ms < $2 OR created_ms < $3 \
             OR revoked_ms IS NOT NULL",
        )
        .bind(now)
        .bind(now - self.idle_ms)
        .bind(now - self.absolute_ms)
        .execute(self.db.pool())
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create(&self, record: &mut Record) -> StoreResult<()> {
        // 128 random bits collide practically never; a few retries make "never" certain.
        for _ in 0..4 {
            if self.create_at(record, now_ms()).await? {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(StoreError::Backend("no free session id".into()))
    }

    async fn save(&self, record: &Record) -> StoreResult<()> {
        self.save_at(record, now_ms()).await
    }

    async fn load(&self, id: &Id) -> StoreResult<Option<Record>> {
        self.load_at(id, now_ms()).await
    }

    async fn delete(&self, id: &Id) -> StoreResult<()> {
        self.delete_by_key(&key(id)).await
    }
}
