//! What the benchmark examples share: arguments, a fresh database, a server with a viewer's API
//! token, timed requests and percentiles. Not an example itself (`examples/support/`).
#![allow(dead_code)]

pub mod arrange;

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use palisade_app::auth::{Principal, Role};
use palisade_app::db::{now_ms, DatabaseUrl, Db, PoolSettings};
use palisade_server::config::Config;
use palisade_server::Server;

pub type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

pub fn num(name: &str, default: u64) -> u64 {
    arg(name, &default.to_string())
        .parse()
        .unwrap_or_else(|_| panic!("{name} takes a number"))
}

/// The most resident memory this process has used, in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time this process has used so far (user and system, every thread), in seconds: on a
/// shared machine, what the work costs when wall-clock figures are diluted by other processes.
pub fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// The `p` quantile (0..=1) of durations sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A fresh database: a new SQLite file, or a new database on the given PostgreSQL server.
pub async fn fresh_database(url: &str) -> String {
    if url.is_empty() {
        let dir = std::env::temp_dir().join(format!("palisade-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        return format!("sqlite://{}/bench.db", dir.display());
    }
    use sqlx::ConnectOptions;
    let name = format!("bench_{}_{}", std::process::id(), now_ms());
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let mut conn = options.connect().await.unwrap();
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A fresh SQLite database in a new directory under the system's temp dir, `dir_name`, migrated
/// and pooled (8 connections); it and the directory (for removing afterwards).
pub async fn fresh_sqlite(dir_name: &str) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(dir_name);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.display());
    let db = Db::connect(
        &DatabaseUrl::parse(&url).unwrap(),
        &PoolSettings {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    (db, dir)
}

/// "SQLite" or "PostgreSQL", from a database URL.
pub fn backend(database: &str) -> &'static str {
    if database.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// A server on `database` at a free port on 127.0.0.1, with `settings` on top of the quiet
/// defaults. Returns it started (not yet running).
pub async fn start(database: &str, settings: &[(&str, &str)]) -> Server {
    let mut env = vec![
        (
            "PALISADE__HTTP__ADDRESS".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("PALISADE__DATABASE__URL".to_owned(), database.to_owned()),
        ("PALISADE__LOG__FILTER".to_owned(), "warn".to_owned()),
    ];
    env.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::load_from(None, env).unwrap();
    Server::start(&config).await.unwrap()
}

/// A viewer, signed up, and an API token of theirs valid for a day, for loading pages.
pub async fn viewer_token(db: &Db) -> String {
    let user_id = palisade_app::account::ssr::upsert_user(
        db.pool(),
        "bench",
        "viewer",
        "Viewer",
        "",
        Role::Viewer,
        now_ms(),
    )
    .await
    .unwrap();
    let viewer = Principal::new(&user_id, "Viewer", Role::Viewer);
    let (_, token) = palisade_server::auth::tokens::issue(
        db,
        &viewer,
        "bench",
        Role::Viewer,
        now_ms() + 86_400_000,
    )
    .await
    .unwrap();
    token
}

/// GET `url` with a bearer token: status, body and how long the whole answer took.
pub async fn get(http: &Http, url: &str, token: &str) -> (u16, Bytes, Duration) {
    let started = Instant::now();
    let request = hyper::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = http.request(request).await.unwrap();
    let status = reply.status().as_u16();
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    (status, body, started.elapsed())
}
