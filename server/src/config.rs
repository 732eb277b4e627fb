//! Configuration: defaults, then an optional TOML file, then `PALISADE__SECTION__KEY` environment
//! variables, each overriding the one before. Unknown keys are errors, and every error names the
//! setting it is about.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use palisade_app::db::{DatabaseUrl, PoolSettings};
use serde::{Deserialize, Serialize};

/// The prefix of every environment variable that sets a configuration key.
pub const ENV_PREFIX: &str = "PALISADE__";

/// Every setting and its meaning: printed by `palisade --help` and listed in the README. Defaults
/// come from `Config::default()`. A unit test keeps this table, the struct and the README in step.
pub const SETTINGS: &[(&str, &str)] = &[
    ("http.address", "address and port the web server listens on"),
    (
        "http.site_root",
        "directory of the built site (wasm, JS, CSS) served under /pkg",
    ),
    (
        "http.shutdown_grace_secs",
        "seconds in-flight requests get to finish after SIGTERM/SIGINT",
    ),
    (
        "http.public_url",
        "the address people use, e.g. https://palisade.example.com; https makes cookies Secure and turns on HSTS",
    ),
    (
        "http.max_body_bytes",
        "largest request body accepted, in bytes",
    ),
    (
        "http.header_read_timeout_secs",
        "seconds a client has to send a request's headers, and each part of its body, before the request ends (slow clients cannot hold connections open)",
    ),
    (
        "http.tls_cert_file",
        "PEM certificate chain: Palisade serves https itself (with http.tls_key_file; reread when either file changes)",
    ),
    ("http.tls_key_file", "PEM private key of http.tls_cert_file"),
    (
        "http.trusted_proxies",
        "addresses or ranges of your reverse proxies (e.g. [\"10.0.0.0/8\"]); only their X-Forwarded-For names the client for sign-in limits and the audit log",
    ),
    (
        "database.url",
        "sqlite://PATH (file created on first start) or postgres://USER:PASSWORD@HOST:PORT/DB",
    ),
    ("database.max_connections", "size of the connection pool"),
    (
        "database.connect_timeout_secs",
        "seconds to wait for a database connection before giving up",
    ),
    (
        "database.auto_migrate",
        "apply pending migrations when `serve` starts (else run `palisade migrate`)",
    ),
    ("log.format", "`text` for people, `json` for log collectors"),
    (
        "secrets.key_file",
        "file holding the 64-hex-digit key that seals cluster credentials (`openssl rand -hex 32`)",
    ),
    (
        "secrets.key",
        "the same key given directly (prefer the file); never stored in the database",
    ),
    (
        "auth.keep_local_admin",
        "keep the bootstrap admin login even when OIDC is configured",
    ),
    (
        "auth.session_idle_minutes",
        "a session ends after this many minutes without a request",
    ),
    (
        "auth.session_absolute_hours",
        "a session ends this many hours after sign-in, however active",
    ),
    (
        "auth.login_attempts_per_minute",
        "sign-in attempts allowed per client address and minute (the local admin account: ten times this from all addresses together)",
    ),
    (
        "oidc.issuer_url",
        "the OpenID provider's issuer URL; empty turns single sign-on off",
    ),
    ("oidc.client_id", "Palisade's client id at the provider"),
    (
        "oidc.client_secret",
        "Palisade's client secret at the provider (never printed)",
    ),
    (
        "oidc.redirect_url",
        "the callback URL registered at the provider; default: http.public_url + /auth/oidc/callback",
    ),
    (
        "oidc.groups_claim",
        "the ID token or userinfo claim that lists a user's groups",
    ),
    ("oidc.viewer_groups", "groups whose members get the viewer role"),
    ("oidc.author_groups", "groups whose members get the author role"),
    (
        "oidc.approver_groups",
        "groups whose members get the approver role",
    ),
    ("oidc.admin_groups", "groups whose members get the admin role"),
    (
        "log.filter",
        "tracing filter, e.g. `info,palisade_server=debug`",
    ),
    (
        "rollouts.concurrency",
        "rollout steps (one cluster each) this server runs at once",
    ),
    (
        "rollouts.poll_ms",
        "milliseconds between the rollout executor's looks for work",
    ),
    (
        "rollouts.lease_secs",
        "seconds a claimed step stays claimed without renewal; a stopped server's steps are taken over after this",
    ),
    (
        "rollouts.max_attempts",
        "claims of one step (interrupted attempts) before it fails for good",
    ),
    (
        "rollouts.retries",
        "tries of one call to a cluster on a transient error (backoff doubles from 250 ms)",
    ),
    (
        "rollouts.drift_interval_secs",
        "seconds between comparisons of deployments with the live objects; 0 turns it off",
    ),
    (
        "rollouts.production_needs_approval",
        "a wave reaching a cluster whose environment or env label says prod or production needs at least one approval; false waives it",
    ),
    (
        "ingest.max_in_flight",
        "audit batches this server counts at once; more wait for a slot",
    ),
    (
        "ingest.wait_ms",
        "milliseconds a batch waits for a slot before it is answered 429 with Retry-After",
    ),
    (
        "ingest.retry_after_secs",
        "the Retry-After of a 429 answer",
    ),
    (
        "ingest.deny_spike_per_hour",
        "denials of one policy on one cluster in one hour that raise a deny-spike notice; 0 turns it off",
    ),
    (
        "ingest.audit_id_retention_hours",
        "hours an audit ID is remembered, so a re-sent batch counts once",
    ),
    (
        "notifications.webhook_url",
        "Slack-compatible incoming webhook for approval requests, failed rollouts and deny spikes; empty: none (secret: only its host is logged)",
    ),
    (
        "notifications.max_attempts",
        "tries of one notification before it is given up (backoff doubles from 1 s)",
    ),
    (
        "evaluation.rego_heap_ceiling_mib",
        "MiB of heap the whole server may hold while a Rego policy runs; a policy that grows it past this stops with an error (at least 64)",
    ),
    (
        "ingest.scan_interval_secs",
        "seconds between background scans of every cluster's workloads (and its PolicyReports); 0 turns it off",
    ),
    (
        "inventory.enabled",
        "keep a copy of every enabled cluster's namespaces, workloads, Services, Ingresses, NetworkPolicies, ServiceAccounts and RBAC, by list and watch (what impact previews read)",
    ),
    (
        "inventory.lease_secs",
        "seconds a replica holds a cluster's watches without renewing; another replica takes over a stopped one's clusters within this",
    ),
    (
        "inventory.relist_secs",
        "seconds between lists of a kind where a cluster offers no watch",
    ),
    (
        "inventory.posture_reassess_hours",
        "hours after which a cluster's posture (the library judged against its inventory) is assessed again; 0 assesses it once, then only on request",
    ),
    (
        "inventory.max_clusters_per_replica",
        "most clusters one replica watches; replicas split the enabled clusters evenly up to this, and a replica over its even share lets the rest go to the others",
    ),
];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub secrets: SecretsConfig,
    pub auth: AuthConfig,
    pub oidc: OidcConfig,
    pub rollouts: RolloutsConfig,
    pub ingest: IngestConfig,
    pub notifications: NotificationsConfig,
    pub evaluation: EvaluationConfig,
    pub inventory: InventoryConfig,
}

/// How the inventory is kept (see `palisade_app::inventory::ssr::keeper`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    pub enabled: bool,
    pub lease_secs: u64,
    pub relist_secs: u64,
    pub max_clusters_per_replica: u64,
    pub posture_reassess_hours: u64,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: true,
            lease_secs: 30,
            relist_secs: 300,
            max_clusters_per_replica: 500,
            posture_reassess_hours: 24,
        }
    }
}

impl InventoryConfig {
    /// The keeper's settings; `None` when the inventory is off.
    pub fn settings(&self) -> Option<palisade_app::inventory::ssr::keeper::Settings> {
        self.enabled
            .then(|| palisade_app::inventory::ssr::keeper::Settings {
                lease: Duration::from_secs(self.lease_secs),
                relist: Duration::from_secs(self.relist_secs),
                max_clusters: usize::try_from(self.max_clusters_per_replica).unwrap_or(usize::MAX),
            })
    }
}

/// Bounds on evaluating the policies people write.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    pub rego_heap_ceiling_mib: u64,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            rego_heap_ceiling_mib: palisade_engine::gatekeeper::rego::DEFAULT_HEAP_CEILING >> 20,
        }
    }
}

impl EvaluationConfig {
    /// The smallest ceiling accepted: below it, the server's own heap would stop every policy.
    pub const MIN_HEAP_CEILING_MIB: u64 = 64;

    /// Put the ceiling in force for this process (before the first policy is evaluated).
    pub fn apply(&self) {
        palisade_engine::gatekeeper::rego::set_heap_ceiling(self.rego_heap_ceiling_mib << 20);
    }
}

/// Where notices go (see `notify`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Secret (a Slack webhook URL is its own credential): never printed.
    pub webhook_url: String,
    pub max_attempts: i64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            webhook_url: String::new(),
            max_attempts: 8,
        }
    }
}

impl fmt::Debug for NotificationsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationsConfig")
            .field(
                "webhook_url",
                &if self.webhook_url.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// How audit batches from the clusters are taken in (see `rest::ingest`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub max_in_flight: usize,
    pub wait_ms: u64,
    pub retry_after_secs: u64,
    pub deny_spike_per_hour: i64,
    pub audit_id_retention_hours: u64,
    pub scan_interval_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_in_flight: 4,
            wait_ms: 2000,
            retry_after_secs: 1,
            deny_spike_per_hour: 100,
            audit_id_retention_hours: 48,
            scan_interval_secs: 900,
        }
    }
}

/// How the rollout executor paces itself (see `palisade_app::rollouts::ssr::Settings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutsConfig {
    pub concurrency: usize,
    pub poll_ms: u64,
    pub lease_secs: u64,
    pub max_attempts: i64,
    pub retries: u32,
    pub drift_interval_secs: u64,
    pub production_needs_approval: bool,
}

impl Default for RolloutsConfig {
    fn default() -> Self {
        RolloutsConfig {
            concurrency: 8,
            poll_ms: 500,
            lease_secs: 15,
            max_attempts: 5,
            retries: 3,
            drift_interval_secs: 300,
            production_needs_approval: true,
        }
    }
}

impl RolloutsConfig {
    pub fn settings(&self) -> palisade_app::rollouts::ssr::Settings {
        palisade_app::rollouts::ssr::Settings {
            concurrency: self.concurrency,
            poll: Duration::from_millis(self.poll_ms),
            lease: Duration::from_secs(self.lease_secs),
            max_attempts: self.max_attempts,
            retries: self.retries,
            backoff: Duration::from_millis(250),
            drift_every: (self.drift_interval_secs > 0)
                .then(|| Duration::from_secs(self.drift_interval_secs)),
        }
    }
}

/// Where the key that seals cluster credentials comes from. At most one of the two; both empty
/// means no key (clusters cannot be registered then).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    pub key_file: String,
    /// Secret: never printed (see the `Debug` impl).
    pub key: String,
}

impl fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("key_file", &self.key_file)
            .field(
                "key",
                &if self.key.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

impl SecretsConfig {
    /// The sealer for the configured key, `None` when no key is configured.
    pub fn sealer(&self) -> Result<Option<palisade_app::secrets::Sealer>, ConfigError> {
        use palisade_app::secrets::Sealer;
        match (self.key.trim().is_empty(), self.key_file.trim().is_empty()) {
            (true, true) => Ok(None),
            (false, false) => Err(ConfigError::new(
                "secrets.key",
                "set secrets.key or secrets.key_file, not both",
            )),
            (false, true) => Sealer::from_hex(&self.key)
                .map(Some)
                .map_err(|err| ConfigError::new("secrets.key", err.to_string())),
            (true, false) => {
                let text = std::fs::read_to_string(&self.key_file).map_err(|err| {
                    ConfigError::new(
                        "secrets.key_file",
                        format!("cannot read {}: {err}", self.key_file),
                    )
                })?;
                Sealer::from_hex(&text)
                    .map(Some)
                    .map_err(|err| ConfigError::new("secrets.key_file", err.to_string()))
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub keep_local_admin: bool,
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
    pub login_attempts_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            keep_local_admin: false,
            session_idle_minutes: 60,
            session_absolute_hours: 12,
            login_attempts_per_minute: 10,
        }
    }
}

/// Single sign-on. Off while `issuer_url` is empty.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer_url: String,
    pub client_id: String,
    /// Never printed (see the `Debug` impl).
    pub client_secret: String,
    pub redirect_url: String,
    pub groups_claim: String,
    pub viewer_groups: Vec<String>,
    pub author_groups: Vec<String>,
    pub approver_groups: Vec<String>,
    pub admin_groups: Vec<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer_url: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            redirect_url: String::new(),
            groups_claim: "groups".to_owned(),
            viewer_groups: Vec::new(),
            author_groups: Vec::new(),
            approver_groups: Vec::new(),
            admin_groups: Vec::new(),
        }
    }
}

impl OidcConfig {
    pub fn enabled(&self) -> bool {
        !self.issuer_url.trim().is_empty()
    }
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &if self.client_secret.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("redirect_url", &self.redirect_url)
            .field("groups_claim", &self.groups_claim)
            .field("viewer_groups", &self.viewer_groups)
            .field("author_groups", &self.author_groups)
            .field("approver_groups", &self.approver_groups)
            .field("admin_groups", &self.admin_groups)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub address: SocketAddr,
    pub site_root: PathBuf,
    pub shutdown_grace_secs: u64,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub header_read_timeout_secs: u64,
    pub trusted_proxies: Vec<String>,
    pub tls_cert_file: String,
    pub tls_key_file: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// May hold a password: never printed whole (see the `Debug` impl).
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    pub auto_migrate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 3000)),
            site_root: PathBuf::from("target/site"),
            shutdown_grace_secs: 30,
            public_url: String::new(),
            max_body_bytes: 1024 * 1024,
            header_read_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/palisade.db".to_owned(),
            max_connections: 10,
            connect_timeout_secs: 5,
            auto_migrate: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &palisade_app::db::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("auto_migrate", &self.auto_migrate)
            .finish()
    }
}

/// A configuration problem, always about one named setting (or the file itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Load from defaults, the optional file, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Load with an explicit environment (tests pass their own); only `PALISADE__*` entries count.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        let mut figment = defaults.clone();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist or is not a file", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut from_env = Vec::new();
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path = key.to_ascii_lowercase().replace("__", ".");
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(ConfigError::new(
                    name,
                    "is not of the form PALISADE__SECTION__KEY",
                ));
            }
            // A setting whose default is text stays text, exactly as written: a key or secret of
            // digits (or one that looks like `1e5`) must not turn into a number.
            let value: figment::value::Value = if defaults
                .find_value(&path)
                .is_ok_and(|v| matches!(v, figment::value::Value::String(..)))
            {
                figment::value::Value::from(value)
            } else {
                value.parse().unwrap_or_else(|never| match never {})
            };
            figment = figment.merge(Serialized::default(&path, value));
            from_env.push((path, name));
        }
        let config: Config = figment
            .extract()
            .map_err(|err| describe_error(&err, file, &from_env))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks serde cannot make: values that parse but make no sense.
    fn validate(&self) -> Result<(), ConfigError> {
        DatabaseUrl::parse(&self.database.url)
            .map_err(|err| ConfigError::new("database.url", err.to_string()))?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.http.header_read_timeout_secs == 0 {
            return Err(ConfigError::new(
                "http.header_read_timeout_secs",
                "must be at least 1",
            ));
        }
        let (cert, key) = (
            self.http.tls_cert_file.trim(),
            self.http.tls_key_file.trim(),
        );
        if cert.is_empty() != key.is_empty() {
            return Err(ConfigError::new(
                if cert.is_empty() {
                    "http.tls_cert_file"
                } else {
                    "http.tls_key_file"
                },
                "set both http.tls_cert_file and http.tls_key_file, or neither",
            ));
        }
        if !cert.is_empty() && self.http.public_url.trim().starts_with("http://") {
            return Err(ConfigError::new(
                "http.public_url",
                "Palisade serves https (http.tls_cert_file is set): the public URL must start with https://",
            ));
        }
        crate::proxies::TrustedProxies::parse(&self.http.trusted_proxies)
            .map_err(|err| ConfigError::new("http.trusted_proxies", err))?;
        if self.evaluation.rego_heap_ceiling_mib < EvaluationConfig::MIN_HEAP_CEILING_MIB
            || self.evaluation.rego_heap_ceiling_mib > u64::MAX >> 20
        {
            return Err(ConfigError::new(
                "evaluation.rego_heap_ceiling_mib",
                format!(
                    "must be at least {} (MiB)",
                    EvaluationConfig::MIN_HEAP_CEILING_MIB
                ),
            ));
        }
        if self.database.connect_timeout_secs == 0 {
            return Err(ConfigError::new(
                "database.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        let public_url = self.http.public_url.trim();
        if !(public_url.is_empty()
            || public_url.starts_with("https://")
            || public_url.starts_with("http://"))
        {
            return Err(ConfigError::new(
                "http.public_url",
                "must start with https:// or http://",
            ));
        }
        if self.auth.session_idle_minutes == 0 || self.auth.session_absolute_hours == 0 {
            return Err(ConfigError::new(
                "auth.session_idle_minutes",
                "session timeouts must be at least 1",
            ));
        }
        if self.oidc.enabled() {
            for (key, value) in [
                ("oidc.client_id", &self.oidc.client_id),
                ("oidc.client_secret", &self.oidc.client_secret),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::new(
                        key,
                        "is required when oidc.issuer_url is set",
                    ));
                }
            }
            if self.oidc.redirect_url.trim().is_empty() && public_url.is_empty() {
                return Err(ConfigError::new(
                    "oidc.redirect_url",
                    "set it, or set http.public_url, when oidc.issuer_url is set",
                ));
            }
        }
        for (key, value) in [
            ("rollouts.concurrency", self.rollouts.concurrency as u64),
            ("rollouts.poll_ms", self.rollouts.poll_ms),
            ("rollouts.lease_secs", self.rollouts.lease_secs),
            ("rollouts.retries", u64::from(self.rollouts.retries)),
            ("inventory.lease_secs", self.inventory.lease_secs),
            ("inventory.relist_secs", self.inventory.relist_secs),
            (
                "inventory.max_clusters_per_replica",
                self.inventory.max_clusters_per_replica,
            ),
            ("ingest.max_in_flight", self.ingest.max_in_flight as u64),
            ("ingest.retry_after_secs", self.ingest.retry_after_secs),
            (
                "ingest.audit_id_retention_hours",
                self.ingest.audit_id_retention_hours,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        let hook = self.notifications.webhook_url.trim();
        if !(hook.is_empty() || hook.starts_with("https://") || hook.starts_with("http://")) {
            return Err(ConfigError::new(
                "notifications.webhook_url",
                "must be an http(s) URL",
            ));
        }
        if self.notifications.max_attempts < 1 {
            return Err(ConfigError::new(
                "notifications.max_attempts",
                "must be at least 1",
            ));
        }
        if self.ingest.deny_spike_per_hour < 0 {
            return Err(ConfigError::new(
                "ingest.deny_spike_per_hour",
                "must be 0 (off) or more",
            ));
        }
        if self.rollouts.max_attempts < 1 {
            return Err(ConfigError::new(
                "rollouts.max_attempts",
                "must be at least 1",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|err| ConfigError::new("log.filter", format!("not a valid filter: {err}")))?;
        self.secrets.sealer()?;
        Ok(())
    }

    pub fn database_url(&self) -> Result<DatabaseUrl, ConfigError> {
        DatabaseUrl::parse(&self.database.url)
            .map_err(|err| ConfigError::new("database.url", err.to_string()))
    }

    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database.max_connections,
            connect_timeout: Duration::from_secs(self.database.connect_timeout_secs),
        }
    }

    /// Whether people reach Palisade over TLS (cookies Secure, HSTS on).
    /// Do people reach Palisade over https: it terminates TLS itself, or its public URL (a
    /// proxy in front) says so. Cookies are `Secure` and HSTS is sent then.
    pub fn is_https(&self) -> bool {
        self.tls_files().is_some() || self.http.public_url.trim().starts_with("https://")
    }

    /// The certificate and key files when Palisade terminates TLS.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        let (cert, key) = (
            self.http.tls_cert_file.trim(),
            self.http.tls_key_file.trim(),
        );
        (!cert.is_empty() && !key.is_empty()).then(|| (PathBuf::from(cert), PathBuf::from(key)))
    }

    /// `palisade --help`'s list of settings.
    pub fn help_text() -> String {
        let mut text = String::from(
            "Settings (defaults, then the --config TOML file, then environment variables):\n",
        );
        for (key, meaning) in SETTINGS {
            text.push_str(&format!(
                "  {key:<30} {env:<40} default: {default}\n      {meaning}\n",
                env = env_name(key),
                default = default_value(key).unwrap_or_default()
            ));
        }
        text
    }
}

/// The default of a setting (`http.address`), as text, read from `Config::default()`.
pub fn default_value(key: &str) -> Option<String> {
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    let value: figment::value::Value = defaults.find_value(key).ok()?;
    Some(match value {
        figment::value::Value::String(_, text) => text,
        other => other
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| other.to_i128().map(|n| n.to_string()))
            .or_else(|| other.to_bool().map(|b| b.to_string()))
            .unwrap_or_default(),
    })
}

/// The environment variable that sets `key`, e.g. `PALISADE__HTTP__ADDRESS` for `http.address`.
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', "__")
    )
}

/// Turn figment's error into one line that names the setting and where its value came from.
fn describe_error(
    err: &figment::Error,
    file: Option<&Path>,
    from_env: &[(String, String)],
) -> ConfigError {
    use figment::error::Kind;
    let mut path = err.path.join(".");
    let message = match &err.kind {
        Kind::UnknownField(field, expected) => {
            if err.path.last() != Some(field) {
                path = if path.is_empty() {
                    field.clone()
                } else {
                    format!("{path}.{field}")
                };
            }
            format!("unknown setting; expected one of: {}", expected.join(", "))
        }
        other => other.to_string(),
    };
    let source = from_env
        .iter()
        .find(|(env_path, _)| *env_path == path || env_path.starts_with(&format!("{path}.")))
        .map(|(_, name)| format!(" (set by {name})"))
        .or_else(|| file.map(|f| format!(" (in {})", f.display())))
        .unwrap_or_default();
    ConfigError::new(
        if path.is_empty() {
            "config".to_owned()
        } else {
            path
        },
        format!("{message}{source}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_sqlite_on_localhost() {
        let config = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(config.http.address.to_string(), "127.0.0.1:3000");
        assert!(config.database.url.starts_with("sqlite://"));
        assert!(config.database.auto_migrate);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("palisade-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("palisade.toml");
        std::fs::write(
            &file,
            "[http]\naddress = \"0.0.0.0:8080\"\n[database]\nmax_connections = 3\n",
        )
        .unwrap();
        let config = Config::load_from(
            Some(&file),
            env(&[("PALISADE__DATABASE__MAX_CONNECTIONS", "7"), ("OTHER", "x")]),
        )
        .unwrap();
        assert_eq!(config.http.address.to_string(), "0.0.0.0:8080");
        assert_eq!(config.database.max_connections, 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_name_the_setting_and_the_variable() {
        let err = Config::load_from(None, env(&[("PALISADE__HTTP__PORT", "80")])).unwrap_err();
        assert_eq!(err.setting, "http.port");
        assert!(err.message.contains("unknown setting"), "{err}");
        assert!(err.message.contains("PALISADE__HTTP__PORT"), "{err}");
        let err = Config::load_from(None, env(&[("PALISADE__NOPE__X", "1")])).unwrap_err();
        assert_eq!(err.setting, "nope");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err =
            Config::load_from(None, env(&[("PALISADE__HTTP__ADDRESS", "localhost")])).unwrap_err();
        assert_eq!(err.setting, "http.address", "{err}");
        let err =
            Config::load_from(None, env(&[("PALISADE__DATABASE__URL", "mysql://x")])).unwrap_err();
        assert_eq!(err.setting, "database.url");
        let err = Config::load_from(None, env(&[("PALISADE__LOG__FORMAT", "xml")])).unwrap_err();
        assert_eq!(err.setting, "log.format", "{err}");
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err =
            Config::load_from(Some(Path::new("/nonexistent/palisade.toml")), env(&[])).unwrap_err();
        assert_eq!(err.setting, "--config");
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        let config = Config::load_from(
            None,
            env(&[(
                "PALISADE__DATABASE__URL",
                "postgres://palisade:hunter2@db:5432/palisade",
            )]),
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("palisade:***@db"), "{printed}");
    }

    const KEY: &str = "8f9e0d1c2b3a49586776859493a2b1c0d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f";

    #[test]
    fn the_secrets_key_comes_from_one_place_and_is_never_printed() {
        let config = Config::load_from(None, env(&[("PALISADE__SECRETS__KEY", KEY)])).unwrap();
        assert!(config.secrets.sealer().unwrap().is_some());
        assert!(!format!("{config:?}").contains(KEY));
        let digits = "0".repeat(63) + "1";
        let config = Config::load_from(None, env(&[("PALISADE__SECRETS__KEY", &digits)])).unwrap();
        assert_eq!(config.secrets.key, digits, "text settings stay text");
        let none = Config::load_from(None, env(&[])).unwrap();
        assert!(none.secrets.sealer().unwrap().is_none());
        let err = Config::load_from(None, env(&[("PALISADE__SECRETS__KEY", "abc")])).unwrap_err();
        assert_eq!(err.setting, "secrets.key");
        assert!(err.message.contains("64 hex digits"), "{err}");
        assert!(
            !err.message.contains("abc"),
            "the bad key is not echoed: {err}"
        );
        let err = Config::load_from(
            None,
            env(&[
                ("PALISADE__SECRETS__KEY", KEY),
                ("PALISADE__SECRETS__KEY_FILE", "/tmp/k"),
            ]),
        )
        .unwrap_err();
        assert!(err.message.contains("not both"), "{err}");
        let err = Config::load_from(
            None,
            env(&[("PALISADE__SECRETS__KEY_FILE", "/nonexistent/key")]),
        )
        .unwrap_err();
        assert_eq!(err.setting, "secrets.key_file");
    }

    /// The settings table, the struct and the README must list the same keys.
    #[test]
    fn settings_table_struct_and_readme_agree() {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        let value: figment::value::Value = defaults.extract().unwrap();
        let mut keys = Vec::new();
        if let Some(sections) = value.as_dict() {
            for (section, inner) in sections {
                for key in inner
                    .as_dict()
                    .map(|d| d.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    keys.push(format!("{section}.{key}"));
                }
            }
        }
        keys.sort();
        let mut table: Vec<String> = SETTINGS.iter().map(|(k, _)| k.to_string()).collect();
        table.sort();
        assert_eq!(
            keys, table,
            "SETTINGS must list exactly the fields of Config"
        );

        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for (key, _) in SETTINGS {
            // Settings that are off until set (single sign-on, the public URL) have no default.
            let default = default_value(key).unwrap();
            let shown = if default.is_empty() {
                "—".to_owned()
            } else {
                format!("`{default}`")
            };
            let row = format!("| `{key}` | `{}` | {shown} |", env_name(key));
            assert!(readme.contains(&row), "README.md lacks the row `{row}`");
        }
    }
}
