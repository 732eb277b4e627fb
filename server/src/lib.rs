//! The `palisade` server: configuration, start-up, the HTTP router and its middleware.
//!
//! `main.rs` parses the command line and calls [`serve`] or [`migrate`]. [`router`] assembles every
//! route: probes, metrics, the server-rendered Leptos pages and their server functions, and static
//! files. [`run`] serves a router on a listener until a shutdown future resolves, so tests drive it
//! with their own listener and shutdown.

pub mod cli;
pub mod config;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod telemetry;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use palisade_app::db::Db;
use palisade_app::state::AppState;
use palisade_app::{shell, App};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub use config::{Config, ConfigError};

/// Everything that goes wrong before the server serves names the setting to fix.
pub type StartupError = ConfigError;

/// Open the database, apply migrations if configured, bind the address and serve until `shutdown`.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let listener = bind(&config).await?;
    let db = open_database(&config).await?;
    if config.database.auto_migrate {
        apply_migrations(&db).await?;
    }
    let state = app_state(&config, db.clone());
    let address = listener
        .local_addr()
        .map_err(|err| ConfigError::new("http.address", err.to_string()))?;
    tracing::info!(%address, database = db.backend().name(), "palisade is serving");
    let grace = Duration::from_secs(config.http.shutdown_grace_secs);
    run(listener, state, grace, shutdown)
        .await
        .map_err(|err| ConfigError::new("http.address", format!("server stopped: {err}")))?;
    db.close().await;
    tracing::info!("palisade stopped");
    Ok(())
}

/// `palisade migrate`: apply pending migrations and report what was done.
pub async fn migrate(config: Config) -> Result<String, StartupError> {
    let db = open_database(&config).await?;
    let applied = apply_migrations(&db).await?;
    let status = db
        .migration_status()
        .await
        .map_err(|err| ConfigError::new("database.url", err.to_string()))?;
    db.close().await;
    Ok(format!(
        "applied {applied} migration(s); {} database at schema version {}",
        db.backend().name(),
        status
            .applied
            .last()
            .map_or_else(|| "none".to_owned(), i64::to_string)
    ))
}

/// Bind the configured address, with a clear error when it is taken or not ours.
pub async fn bind(config: &Config) -> Result<TcpListener, StartupError> {
    TcpListener::bind(config.http.address).await.map_err(|err| {
        ConfigError::new(
            "http.address",
            format!("cannot listen on {}: {err}", config.http.address),
        )
    })
}

pub async fn open_database(config: &Config) -> Result<Db, StartupError> {
    let url = config.database_url()?;
    Db::connect(&url, &config.pool_settings())
        .await
        .map_err(|err| ConfigError::new("database.url", err.to_string()))
}

async fn apply_migrations(db: &Db) -> Result<usize, StartupError> {
    let applied = db
        .migrate()
        .await
        .map_err(|err| ConfigError::new("database.url", err.to_string()))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    Ok(applied)
}

pub fn app_state(config: &Config, db: Db) -> AppState {
    let leptos_options = LeptosOptions::builder()
        .output_name(Arc::<str>::from("palisade"))
        .site_root(Arc::<str>::from(
            config.http.site_root.to_string_lossy().as_ref(),
        ))
        .site_pkg_dir(Arc::<str>::from("pkg"))
        .site_addr(config.http.address)
        .build();
    AppState { leptos_options, db }
}

/// Every route of the server, with security headers, request ids, tracing and metrics around them.
pub fn router(state: AppState) -> Router {
    let metrics = metrics::Metrics::default();
    let routes = generate_route_list(App);
    let pages = Router::new()
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state.clone());

    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .route(
            "/metrics",
            get(metrics::handler).with_state(metrics.clone()),
        )
        .merge(pages)
        .layer(
            ServiceBuilder::new()
                .layer(telemetry::set_request_id())
                .layer(telemetry::trace_requests())
                .layer(telemetry::propagate_request_id())
                .layer(axum::middleware::from_fn_with_state(
                    metrics,
                    metrics::track,
                )),
        );
    headers::with_security_headers(router)
}

/// Serve `state`'s router on `listener` until `shutdown` resolves; in-flight requests then get
/// `grace` to finish before their connections are dropped.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = Arc::new(tokio::sync::Notify::new());
    let graceful = axum::serve(listener, router(state)).with_graceful_shutdown({
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            stopping.notify_one();
        }
    });
    tokio::select! {
        result = graceful.into_future() => result,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; dropping open connections");
            Ok(())
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
