//! The `palisade` server: configuration, start-up, the HTTP router and its middleware.
//!
//! `main.rs` parses the command line and calls [`serve`] or [`migrate`]. [`router`] assembles every
//! route: probes, metrics, the server-rendered Leptos pages and their server functions, and static
//! files. [`Server::start`] does everything that can fail on a bad setting; [`Server::run`] serves
//! until a shutdown future resolves, so tests start a real server on port 0 and stop it themselves.

pub mod cli;
pub mod commands;
pub mod config;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod rest;
pub mod telemetry;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use palisade_app::clusters::ssr::KubeConnector;
use palisade_app::db::Db;
use palisade_app::secrets::Sealer;
use palisade_app::state::AppState;
use palisade_app::{shell, App};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub use config::{Config, ConfigError};

/// Everything that goes wrong before the server serves names the setting to fix.
pub type StartupError = ConfigError;

/// A server that has bound its address and opened its database, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    state: AppState,
    grace: Duration,
}

impl Server {
    /// Bind the address, open the database and apply migrations if configured: everything that can
    /// fail on a bad setting happens here, before anything is served.
    pub async fn start(config: &Config) -> Result<Server, StartupError> {
        let listener = bind(config).await?;
        let db = open_database(config).await?;
        if config.database.auto_migrate {
            apply_migrations(&db).await?;
        }
        let sealer = config.secrets.sealer()?;
        check_secrets_key(&db, sealer.as_ref()).await?;
        Ok(Server {
            listener,
            state: app_state(config, db, sealer),
            grace: Duration::from_secs(config.http.shutdown_grace_secs),
        })
    }

    /// The address actually bound (the OS picks the port for `:0`).
    pub fn local_addr(&self) -> Result<SocketAddr, StartupError> {
        self.listener
            .local_addr()
            .map_err(|err| ConfigError::new("http.address", err.to_string()))
    }

    /// Serve until `shutdown` resolves; in-flight requests then get the grace period to finish
    /// before their connections are dropped. Closes the database on the way out.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let address = self.local_addr()?;
        let db = self.state.db.clone();
        tracing::info!(%address, database = db.backend().name(), "palisade is serving");
        serve_router(self.listener, router(self.state), self.grace, shutdown)
            .await
            .map_err(|err| ConfigError::new("http.address", format!("server stopped: {err}")))?;
        db.close().await;
        tracing::info!("palisade stopped");
        Ok(())
    }
}

/// `palisade serve`: start, then serve until `shutdown`.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    Server::start(&config).await?.run(shutdown).await
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
async fn bind(config: &Config) -> Result<TcpListener, StartupError> {
    TcpListener::bind(config.http.address).await.map_err(|err| {
        ConfigError::new(
            "http.address",
            format!("cannot listen on {}: {err}", config.http.address),
        )
    })
}

async fn open_database(config: &Config) -> Result<Db, StartupError> {
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

/// Refuse to start when stored cluster credentials cannot be opened: no key, or the wrong one.
/// Skipped while migrations are pending (`palisade migrate` comes first).
async fn check_secrets_key(db: &Db, sealer: Option<&Sealer>) -> Result<(), StartupError> {
    let status = db
        .migration_status()
        .await
        .map_err(|err| ConfigError::new("database.url", err.to_string()))?;
    if !status.pending.is_empty() {
        return Ok(());
    }
    palisade_app::clusters::ssr::service::check_key(db, sealer)
        .await
        .map_err(|message| ConfigError::new("secrets.key", message))
}

fn app_state(config: &Config, db: Db, sealer: Option<Sealer>) -> AppState {
    let leptos_options = LeptosOptions::builder()
        .output_name(Arc::<str>::from("palisade"))
        .site_root(Arc::<str>::from(
            config.http.site_root.to_string_lossy().as_ref(),
        ))
        .site_pkg_dir(Arc::<str>::from("pkg"))
        .site_addr(config.http.address)
        .build();
    AppState {
        leptos_options,
        db,
        sealer: sealer.map(Arc::new),
        clusters: Arc::new(KubeConnector::default()),
    }
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
        .with_state(state.clone())
        .merge(rest::router(state))
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

async fn serve_router(
    listener: TcpListener,
    router: Router,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = Arc::new(tokio::sync::Notify::new());
    let graceful = axum::serve(listener, router).with_graceful_shutdown({
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
