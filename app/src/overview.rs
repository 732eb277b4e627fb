//! The Overview: what this Palisade installation is running on, and where each kind of data will show.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::sections::{CLUSTERS, POLICIES, VIOLATIONS};

/// The installation's own state, read live from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// Palisade's version.
    pub version: String,
    /// "SQLite" or "PostgreSQL".
    pub database: String,
    /// The newest migration applied, if any.
    pub schema_version: Option<i64>,
    /// Migrations this binary has that the database lacks.
    pub pending_migrations: usize,
}

/// The installation's version, database and schema state. Holds nothing secret: no URL, no path.
#[server(endpoint = "system_status")]
pub async fn get_system_status() -> Result<SystemStatus, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    let state = expect_context::<crate::state::AppState>();
    let status = state
        .db
        .migration_status()
        .await
        .map_err(|err| AppError::internal("reading migration status", err))?;
    Ok(SystemStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: state.db.backend().name().to_owned(),
        schema_version: status.applied.last().copied(),
        pending_migrations: status.pending.len(),
    })
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_system_status());

    view! {
        <Title text="Overview" />
        <header class="page-header">
            <h1>"Overview"</h1>
            <p class="purpose">
                "Posture across every cluster: policies and the modes they run in, rollouts in flight, and the violations clusters report back."
            </p>
        </header>
        <div class="cards">
            <SummaryCard title="Policies" href=POLICIES.href text="No policies yet. Write one or adopt one from the library." />
            <SummaryCard title="Clusters" href=CLUSTERS.href text="No clusters connected yet." />
            <SummaryCard title="Violations" href=VIOLATIONS.href text="Nothing reported yet: no cluster sends violations." />
        </div>
        <section class="panel" aria-labelledby="system-heading">
            <div class="panel-header">
                <h2 id="system-heading">"This installation"</h2>
                <button type="button" class="button" on:click=move |_| status.refetch()>
                    "Refresh"
                </button>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Reading status…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => view! { <SystemStatusList status /> }.into_any(),
                        Err(err) => view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn SummaryCard(title: &'static str, href: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <a class="card" href=href>
            <h2>{title}</h2>
            <p>{text}</p>
        </a>
    }
}

#[component]
fn SystemStatusList(status: SystemStatus) -> impl IntoView {
    let schema = match (status.schema_version, status.pending_migrations) {
        (None, _) => "not initialised: run `palisade migrate`".to_owned(),
        (Some(version), 0) => format!("{version} (up to date)"),
        (Some(version), pending) => format!("{version}, {pending} migration(s) pending"),
    };
    view! {
        <dl class="facts" data-testid="system-status">
            <dt>"Version"</dt>
            <dd>{status.version}</dd>
            <dt>"Database"</dt>
            <dd data-testid="database-backend">{status.database}</dd>
            <dt>"Schema"</dt>
            <dd>{schema}</dd>
        </dl>
    }
}
