//! The `palisade` server: configuration, start-up, the HTTP router and its middleware.
//!
//! `main.rs` parses the command line and calls [`serve`] or [`migrate`]. [`router`] assembles every
//! route: probes, metrics, the server-rendered Leptos pages and their server functions, and static
//! files. [`Server::start`] does everything that can fail on a bad setting; [`Server::run`] serves
//! until a shutdown future resolves, so tests start a real server on port 0 and stop it themselves.

pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod proxies;
pub mod rest;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use palisade_app::clusters::ssr::KubeConnector;
use palisade_app::db::Db;
use palisade_app::secrets::Sealer;
use palisade_app::state::AppState;
use palisade_app::{shell, App, AppError};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub use config::{Config, ConfigError};

/// Everything that goes wrong before the server serves names the setting to fix.
pub type StartupError = ConfigError;

/// A server that has bound its address and opened its database, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    state: AppState,
    auth: auth::Auth,
    grace: Duration,
    header_read: Duration,
    max_body_bytes: usize,
    /// Whose `X-Forwarded-For` names the client.
    proxies: Arc<proxies::TrustedProxies>,
    /// TLS, when Palisade terminates it (`http.tls_cert_file`).
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Printed once on stdout by [`Server::run`] unless taken before (tests take it).
    bootstrap: Option<auth::bootstrap::BootstrapSecret>,
    sign_in_url: String,
    /// Advances rollouts and checks drift while the server runs.
    executor: Arc<palisade_app::rollouts::ssr::Executor>,
    /// Keeps each cluster's inventory while the server runs (`None`: `inventory.enabled` is off).
    inventory: Option<Arc<palisade_app::inventory::ssr::keeper::Keeper>>,
    /// How old a cluster's posture assessment may grow before it is assessed again (`None`:
    /// assessed once, then on request).
    posture_reassess: Option<Duration>,
    /// How audit batches from clusters are admitted.
    ingest: rest::violations::Gate,
    /// How often every cluster is scanned (`None`: never on a timer).
    scan_every: Option<Duration>,
    /// How long an audit ID is remembered.
    audit_id_retention: Duration,
    /// Where notices go.
    notifications: notify::Settings,
}

impl Server {
    /// Bind the address, open the database and apply migrations if configured: everything that can
    /// fail on a bad setting happens here, before anything is served.
    pub async fn start(config: &Config) -> Result<Server, StartupError> {
        config.evaluation.apply();
        let tls = match config.tls_files() {
            Some((cert, key)) => Some(
                tls::acceptor(&cert, &key)
                    .map_err(|err| ConfigError::new("http.tls_cert_file", err))?,
            ),
            None => None,
        };
        let listener = bind(config).await?;
        let db = open_database(config).await?;
        if config.database.auto_migrate {
            apply_migrations(&db).await?;
        }
        let sealer = config.secrets.sealer()?;
        check_secrets_key(&db, sealer.as_ref()).await?;
        let sso = auth::oidc::discover(config).await?;
        let auth = auth::Auth::new(config, db.clone(), sso);
        let bootstrap = if auth.options.local && config.database.auto_migrate {
            let database = |err: AppError| ConfigError::new("database.url", err.to_string());
            if auth::bootstrap::admin_exists(&db).await.map_err(database)? {
                auth::bootstrap::withdraw(&db).await.map_err(database)?;
                None
            } else {
                Some(
                    auth::bootstrap::create(&db, palisade_app::db::now_ms())
                        .await
                        .map_err(database)?,
                )
            }
        } else {
            None
        };
        let sign_in_url = match config.http.public_url.trim() {
            "" => format!(
                "{}://{}/login",
                if tls.is_some() { "https" } else { "http" },
                listener.local_addr().unwrap_or(config.http.address)
            ),
            url => format!("{}/login", url.trim_end_matches('/')),
        };
        let state = app_state(config, db, sealer);
        let executor = Arc::new(palisade_app::rollouts::ssr::Executor::new(
            state.db.clone(),
            state.sealer.clone(),
            state.clusters.clone(),
            config.rollouts.settings(),
        ));
        let inventory = config.inventory.settings().map(|settings| {
            Arc::new(palisade_app::inventory::ssr::keeper::Keeper::new(
                state.db.clone(),
                state.sealer.clone(),
                state.clusters.clone(),
                settings,
            ))
        });
        Ok(Server {
            listener,
            state,
            executor,
            inventory,
            posture_reassess: (config.inventory.posture_reassess_hours > 0)
                .then(|| Duration::from_secs(config.inventory.posture_reassess_hours * 3600)),
            auth,
            grace: Duration::from_secs(config.http.shutdown_grace_secs),
            header_read: Duration::from_secs(config.http.header_read_timeout_secs),
            max_body_bytes: config.http.max_body_bytes,
            // Checked when the configuration was read.
            proxies: Arc::new(
                proxies::TrustedProxies::parse(&config.http.trusted_proxies).unwrap_or_default(),
            ),
            tls,
            ingest: rest::violations::Gate::new(
                config.ingest.max_in_flight,
                Duration::from_millis(config.ingest.wait_ms),
                config.ingest.retry_after_secs,
                config.ingest.deny_spike_per_hour,
            ),
            scan_every: (config.ingest.scan_interval_secs > 0)
                .then(|| Duration::from_secs(config.ingest.scan_interval_secs)),
            audit_id_retention: Duration::from_secs(
                config.ingest.audit_id_retention_hours.saturating_mul(3600),
            ),
            notifications: notify::Settings {
                webhook_url: config.notifications.webhook_url.trim().to_owned(),
                public_url: config.http.public_url.trim().to_owned(),
                max_attempts: config.notifications.max_attempts,
                poll: Duration::from_millis(500),
                timeout: Duration::from_secs(10),
            },
            bootstrap,
            sign_in_url,
        })
    }

    /// The local admin's one-time secret of this start, if local sign-in is on. Whoever takes it
    /// prints it; otherwise [`Server::run`] prints it on stdout (never to the log).
    pub fn take_bootstrap_secret(&mut self) -> Option<auth::bootstrap::BootstrapSecret> {
        self.bootstrap.take()
    }

    /// The authentication state (sessions, sign-in options), for tests.
    pub fn auth(&self) -> &auth::Auth {
        &self.auth
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
        if let Some(secret) = &self.bootstrap {
            // stdout, not the log: the operator reads it once; log collectors never see it.
            println!(
                "{}",
                auth::bootstrap::announcement(secret, &self.sign_in_url)
            );
        }
        let sweeper = tokio::spawn(sweep_sessions(self.auth.store.clone()));
        let telemetry = tokio::spawn(telemetry_worker(
            self.state.clone(),
            self.scan_every,
            self.audit_id_retention,
        ));
        let router = router(
            self.state,
            self.auth,
            self.max_body_bytes,
            self.header_read,
            self.ingest.clone(),
        );
        let exception_sweeper = tokio::spawn(sweep_exceptions(db.clone()));
        let notifier = tokio::spawn(notify::run(db.clone(), self.notifications.clone()));
        let (stop_executor, stopped) = tokio::sync::watch::channel(false);
        let executor = tokio::spawn(self.executor.clone().run(stopped.clone()));
        // Where the inventory is kept, each new cluster's posture is assessed once it is whole,
        // and again once its assessment is older than `inventory.posture_reassess_hours`, by the
        // replica that keeps it.
        let assessor = self.inventory.as_ref().map(|keeper| {
            tokio::spawn(palisade_app::posture::ssr::run(
                db.clone(),
                keeper.holder().to_owned(),
                Duration::from_secs(5),
                self.posture_reassess,
                stopped.clone(),
            ))
        });
        let inventory = self
            .inventory
            .clone()
            .map(|keeper| tokio::spawn(keeper.run(stopped)));
        let limits = ConnectionLimits {
            header_read: self.header_read,
            max_header_bytes: 64 * 1024,
            grace: self.grace,
            proxies: Arc::clone(&self.proxies),
            tls: self.tls.clone(),
        };
        let served = serve_router(self.listener, router, limits, shutdown).await;
        let _ = stop_executor.send(true);
        let _ = executor.await;
        if let Some(inventory) = inventory {
            let _ = inventory.await;
        }
        if let Some(assessor) = assessor {
            let _ = assessor.await;
        }
        sweeper.abort();
        telemetry.abort();
        exception_sweeper.abort();
        notifier.abort();
        served.map_err(|err| ConfigError::new("http.address", format!("server stopped: {err}")))?;
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

/// A new one-time secret for the local admin, asked for by an operator on the host (the server
/// prints one at start only while no admin exists). Replaces any unused one.
pub async fn bootstrap_secret(config: Config) -> Result<String, StartupError> {
    let database = |err: AppError| ConfigError::new("database.url", err.to_string());
    if !auth::local_login_enabled(&config) {
        return Err(ConfigError::new(
            "auth.keep_local_admin",
            "single sign-on is on and the local admin is turned off: there is no local admin to sign in as",
        ));
    }
    let db = open_database(&config).await?;
    let secret = auth::bootstrap::create(&db, palisade_app::db::now_ms())
        .await
        .map_err(database)?;
    db.close().await;
    let sign_in_url = match config.http.public_url.trim() {
        "" => format!("http://{}/login", config.http.address),
        url => format!("{}/login", url.trim_end_matches('/')),
    };
    Ok(auth::bootstrap::announcement(&secret, &sign_in_url))
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
        public_url: Arc::from(config.http.public_url.trim_end_matches('/')),
        rollout_rules: palisade_app::rollouts::ssr::service::Rules {
            production_needs_approval: config.rollouts.production_needs_approval,
        },
    }
}

/// The pages' routes, worked out once per process. Leptos finds them by rendering the whole app
/// with resource loading switched off by one process-wide flag; a page being served in the same
/// process while that flag is up would wait forever for a resource that never starts (its answer
/// stops mid-body). Working them out once, before any router exists, keeps that window closed for
/// every server this process ever builds.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Every route of the server, with security headers, request ids, tracing and metrics around them.
pub fn router(
    state: AppState,
    auth: auth::Auth,
    max_body_bytes: usize,
    body_part_timeout: Duration,
    ingest: rest::violations::Gate,
) -> Router {
    let metrics = metrics::Metrics::default();
    let routes = page_routes();
    let pages = Router::new()
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .route_layer(axum::middleware::from_fn(auth::require_login))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state.clone());

    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state.clone())
        .merge(rest::router(state, ingest))
        .route(
            "/metrics",
            get(metrics::handler).with_state(metrics.clone()),
        )
        .merge(auth::login::routes(auth.clone()))
        .merge(pages)
        .layer(
            ServiceBuilder::new()
                .layer(tower_http::limit::RequestBodyLimitLayer::new(
                    max_body_bytes,
                ))
                // A body that stops arriving ends the request instead of holding it open.
                .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                    body_part_timeout,
                ))
                .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
                .layer(axum::middleware::from_fn_with_state(
                    auth::csrf::Origins {
                        public: public_origin(&auth.public_url),
                    },
                    auth::csrf::check,
                ))
                .layer(auth.session_layer())
                .layer(axum::middleware::from_fn_with_state(
                    auth.clone(),
                    auth::authenticate,
                )),
        )
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
    headers::with_security_headers(router, &headers::Policy::new(&auth))
}

/// `https://host:port` of a URL, for comparing with `Origin`.
fn public_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::ServiceExt;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of descriptors and the like: wait a moment instead of spinning.
                        tracing::warn!(error = %err, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // No Nagle: a streamed page's chunks and small JSON answers go out at once
                // instead of waiting for the client's delayed ACK (about 40 ms per response).
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(error = %err, "cannot set TCP_NODELAY");
                }
                let router = router.clone();
                let trusted = Arc::clone(&limits.proxies);
                let (header_read, max_header_bytes) = (limits.header_read, limits.max_header_bytes);
                let tls = limits.tls.clone();
                let mut stopping = stopping.clone();
                connections.spawn(async move {
                    let stream: Box<dyn Stream> = match tls {
                        None => Box::new(stream),
                        // The handshake has the time the request's headers would have.
                        Some(acceptor) => match tokio::time::timeout(header_read, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => Box::new(tls),
                            Ok(Err(err)) => {
                                tracing::debug!(error = %err, %peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake took too long");
                                return;
                            }
                        },
                    };
                    let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let mut request = request.map(axum::body::Body::new);
                        let forwarded: Vec<&str> = request
                            .headers()
                            .get_all("x-forwarded-for")
                            .iter()
                            .filter_map(|value| value.to_str().ok())
                            .collect();
                        let client = proxies::Client(trusted.client(peer.ip(), &forwarded));
                        request.extensions_mut().insert(client);
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        router.clone().oneshot(request)
                    });
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_read)
                        .max_buf_size(max_header_bytes);
                    let connection = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    let mut connection = std::pin::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = stopping.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            // Reap finished connections so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            grace_secs = limits.grace.as_secs(),
            "grace period over; dropping open connections"
        );
        connections.abort_all();
    }
    Ok(())
}

/// How long connections may take: to send a request's headers, and to finish after shutdown.
#[derive(Clone)]
struct ConnectionLimits {
    header_read: Duration,
    /// The most a connection may buffer while reading a request's head.
    max_header_bytes: usize,
    grace: Duration,
    proxies: Arc<proxies::TrustedProxies>,
    /// Connections start with a TLS handshake (within `header_read`) when set.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A connection's byte stream: plain TCP, or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// Scans every cluster on a timer and forgets audit IDs past their retention, until aborted.
async fn telemetry_worker(state: AppState, scan_every: Option<Duration>, retention: Duration) {
    use palisade_app::violations::ssr::{scan, store};
    let tick = Duration::from_secs(60);
    loop {
        tokio::time::sleep(tick).await;
        let now = palisade_app::db::now_ms();
        let before = now - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
        match state.db.pool().acquire().await {
            Ok(mut conn) => {
                if let Err(err) = store::sweep_audit_ids(&mut conn, before).await {
                    tracing::warn!(error = %err, "cannot forget old audit ids");
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot forget old audit ids"),
        }
        let Some(every) = scan_every else { continue };
        match scan::scan_due(
            &state.db,
            state.sealer.as_deref(),
            state.clusters.as_ref(),
            now,
            i64::try_from(every.as_millis()).unwrap_or(i64::MAX / 2),
        )
        .await
        {
            Ok(scans) if scans.is_empty() => {}
            Ok(scans) => tracing::info!(totals = ?scan::totals(&scans), "background scan done"),
            Err(err) => tracing::warn!(error = %err, "background scan failed"),
        }
    }
}

/// Every ten minutes, delete the sessions that can no longer be used (expired, idle too long, too
/// old or revoked), so the table does not grow without end. The first sweep is ten minutes after
/// start, not at start: a sweep that a busy machine scheduled late raced the sessions test's own.
async fn sweep_sessions(store: auth::store::SqlStore) {
    let period = Duration::from_secs(600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        match store.delete_expired_at(palisade_app::db::now_ms()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed ended sessions"),
            Err(err) => tracing::warn!(error = %err, "removing ended sessions"),
        }
    }
}

/// Records exceptions whose expiry passed as `expired` (with an audit entry), once a minute.
async fn sweep_exceptions(db: palisade_app::db::Db) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        let now = palisade_app::db::now_ms();
        match palisade_app::exceptions::ssr::service::sweep_expired(&db, now).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "recorded expired exceptions"),
            Err(err) => tracing::warn!(error = %err, "recording expired exceptions"),
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
