//! A fresh database for the app's tests: a SQLite file, or a new database on the PostgreSQL server
//! named by `PALISADE_TEST_POSTGRES_URL` (which `scripts/test` sets; without it the PostgreSQL
//! tests fail and say so), migrated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::Connection;

use super::{DatabaseUrl, Db, PoolSettings};

const POSTGRES_ENV: &str = "PALISADE_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Two tests of one check, `$check(backend)`: `$sqlite` runs it on SQLite, `$postgres` on
/// PostgreSQL, so neither backend can be forgotten.
macro_rules! on_both_backends {
    ($check:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $check($crate::db::testing::Backend::Sqlite).await;
        }

        #[tokio::test]
        async fn $postgres() {
            $check($crate::db::testing::Backend::Postgres).await;
        }
    };
}
pub(crate) use on_both_backends;

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn database(backend: Backend) -> Db {
    let url = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(unique("palisade_app"));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}/palisade.db", dir.display())
        }
        Backend::Postgres => {
            let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
                panic!("{POSTGRES_ENV} is not set: the PostgreSQL tests need a real server")
            });
            sqlx::any::install_default_drivers();
            let name = unique("palisade_app");
            let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.ok();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
    };
    let settings = PoolSettings {
        max_connections: 4,
        connect_timeout: Duration::from_secs(5),
    };
    let db = Db::connect(&DatabaseUrl::parse(&url).unwrap(), &settings)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    db
}
