//! The database: one pool over SQLite or PostgreSQL, and the migrations both share.
//!
//! Queries go through sqlx's `Any` driver with `$1`-style parameters and portable SQL, so the same
//! statement runs on both backends. Ids are text, times are integer milliseconds since the epoch.

pub mod cursor;
pub mod shared;
#[cfg(test)]
pub mod testing;
mod url;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use url::{redact_url, DatabaseUrl};

/// A new random id: 128 bits from the operating system's generator, as 32 lowercase hex digits.
pub fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system generator only fails when the OS has no entropy source at all; a time-and-counter
    // id is then still unique within this process and the database's primary keys catch the rest.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
        bytes[8..].copy_from_slice(&count.to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, in milliseconds since the epoch: how every time is stored. Read at the edge (server
/// functions, handlers, workers) and passed into domain code as a parameter.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Every migration, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Which server is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("cannot open {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// How the pool behaves; filled from the `database` section of the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

/// Which migrations the database has and which it still lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: Vec<i64>,
    pub pending: Vec<i64>,
}

/// Read a JSON text column strictly: unreadable JSON is a decoding error naming the column, never an
/// empty default.
pub fn json_column<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(err),
    })
}

/// What a failed write means, for its `map_err`: breaking a UNIQUE constraint is the `conflict`
/// the user is told of (another row holds that name); any other error is internal, logged as
/// `doing`.
pub fn conflict_if_unique(
    doing: &'static str,
    conflict: String,
) -> impl FnOnce(sqlx::Error) -> crate::error::AppError {
    move |err| {
        if err
            .as_database_error()
            .is_some_and(|e| e.is_unique_violation())
        {
            crate::error::AppError::Conflict(conflict)
        } else {
            crate::error::AppError::internal(doing, err)
        }
    }
}

/// A transaction on Palisade's database.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A pool of connections to Palisade's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; writers that would collide queue here instead of in
    /// SQLite's busy handler, which sleeps in steps of milliseconds.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Heavy reads that concurrent requests share ([`Db::shared`]).
    shared: std::sync::Arc<shared::Shared>,
}

impl Db {
    /// Open the database at `url`. A SQLite file (and its directory) is created if missing.
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        if let Some(dir) = url.sqlite_parent_dir() {
            std::fs::create_dir_all(&dir).map_err(|err| {
                DbError::InvalidUrl(format!("cannot create directory {}: {err}", dir.display()))
            })?;
        }
        let connect_error = |source| DbError::Connect {
            url: url.redacted(),
            source,
        };
        let options = AnyConnectOptions::from_str(&url.connect_string())
            .map_err(connect_error)?
            .disable_statement_logging();
        let backend = url.backend();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.connect_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Db {
            pool,
            backend,
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            shared: std::sync::Arc::default(),
        })
    }

    /// Heavy reads of this database that concurrent requests share (see [`shared`]).
    pub fn shared(&self) -> &shared::Shared {
        &self.shared
    }

    /// Hold this around a busy write transaction: on SQLite it lets one writer of this process in
    /// at a time; on PostgreSQL (many writers) it is `None` and waits for nothing.
    pub async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Start a transaction: the change and its audit entry commit together or not at all.
    ///
    /// On SQLite the transaction takes the write lock at once (`BEGIN IMMEDIATE`), waiting up to
    /// the busy timeout for it: a transaction that reads first and takes it only at its first
    /// write fails at once (`database is locked`) when another connection wrote meanwhile, which
    /// the inventory's steady writes would make common.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Apply every pending migration. Returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let before = self.migration_status().await?.pending.len();
        MIGRATOR.run(&self.pool).await?;
        Ok(before)
    }

    /// Compare the migrations recorded in the database with the ones in this binary.
    pub async fn migration_status(&self) -> Result<MigrationStatus, DbError> {
        let table_exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let (count,): (i64,) = sqlx::query_as(table_exists).fetch_one(&self.pool).await?;
        let applied: Vec<i64> = if count == 0 {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await?
        };
        let pending = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| m.version)
            .collect();
        Ok(MigrationStatus { applied, pending })
    }

    /// Close every connection; waits for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
