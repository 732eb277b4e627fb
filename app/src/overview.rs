//! The Overview: what waits for the signed-in person's decision, the counts across every cluster,
//! and what this Palisade installation is running on.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::sections::{CLUSTERS, POLICIES, VIOLATIONS};
use crate::ui::{load_error, Loading, PageHeader};

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
    let state = crate::state::current()?;
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

/// Live counts for the overview's cards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub policies: i64,
    pub clusters: i64,
    pub reachable: i64,
    pub rollouts_in_flight: i64,
    /// Violations counted in the last 24 hours, and of those denials.
    pub violations_24h: i64,
    pub denied_24h: i64,
}

/// How many policies, clusters, rollouts in flight and recent violations there are.
#[server(endpoint = "overview_counts")]
pub async fn get_overview_counts() -> Result<Counts, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    let state = crate::state::current()?;
    let since = crate::db::now_ms() - 86_400_000;
    let one = |sql: &'static str, bind: Option<i64>| {
        let pool = state.db.pool().clone();
        async move {
            let mut query = sqlx::query_scalar::<_, i64>(sql);
            if let Some(b) = bind {
                query = query.bind(b);
            }
            query
                .fetch_one(&pool)
                .await
                .map_err(|err| AppError::internal("counting for the overview", err))
        }
    };
    Ok(Counts {
        policies: one("SELECT COUNT(*) FROM policies", None).await?,
        clusters: one("SELECT COUNT(*) FROM clusters WHERE disabled = 0", None).await?,
        reachable: one(
            "SELECT COUNT(*) FROM clusters WHERE disabled = 0 AND health = 'reachable'",
            None,
        )
        .await?,
        rollouts_in_flight: one(
            "SELECT COUNT(*) FROM rollouts WHERE state IN ('pending_approval', 'applying', 'paused')",
            None,
        )
        .await?,
        violations_24h: one(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM violation_counts WHERE bucket_ms >= $1",
            Some(since - since.rem_euclid(3_600_000)),
        )
        .await?,
        denied_24h: one(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM violation_counts WHERE bucket_ms >= $1 AND action = 'deny'",
            Some(since - since.rem_euclid(3_600_000)),
        )
        .await?,
    })
}

/// What waits for the caller's decision: rollouts and exception requests they may approve (not
/// their own, not yet decided by them). Empty for a role that may not approve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub rollouts: Vec<crate::rollouts::RolloutSummary>,
    pub exceptions: Vec<crate::exceptions::Exception>,
    /// Whether the caller may approve at all (else the panel is not shown).
    pub approver: bool,
}

#[server(endpoint = "waiting_for_me")]
pub async fn waiting_for_me() -> Result<Waiting, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(Waiting {
        rollouts: crate::rollouts::ssr::service::awaiting(&call.db, &call.who).await?,
        exceptions: crate::exceptions::ssr::service::awaiting(&call.db, &call.who, call.now)
            .await?,
        approver: crate::auth::authorize(Some(&call.who), crate::auth::Action::Approve).is_ok(),
    })
}

/// "Waiting for you": each rollout and exception request the signed-in approver can decide now.
#[component]
fn WaitingPanel(waiting: Waiting) -> impl IntoView {
    if !waiting.approver {
        return ().into_any();
    }
    let empty = waiting.rollouts.is_empty() && waiting.exceptions.is_empty();
    let rollouts = waiting
        .rollouts
        .into_iter()
        .map(|r| {
            let what = match r.kind {
                crate::rollouts::RolloutKind::Apply => {
                    format!("{} v{} to {}", r.policy_name, r.version, r.mode.as_str())
                }
                kind => format!("{} of {}", kind.as_str(), r.policy_name),
            };
            view! {
                <li>
                    <a href=format!("/rollouts/{}", r.id)>{format!("Rollout: {what}")}</a>
                    <span class="muted">{format!(" · asked by {}", r.proposer_name)}</span>
                </li>
            }
        })
        .collect_view();
    let exceptions = waiting
        .exceptions
        .into_iter()
        .map(|e| {
            view! {
                <li>
                    <a href="/exceptions">{format!("Exception to {}", e.policy_name)}</a>
                    <span class="muted">{format!(" · asked by {}: {}", e.requester_name, e.justification)}</span>
                </li>
            }
        })
        .collect_view();
    // The overview is the first page most visits load, held to 400 KB of code
    // (e2e/tests/bundle.test.mjs): its two panels write their heading rows out rather than use
    // `ui::PanelHeader`, whose shared code would add 3.3 KB to that first download.
    view! {
        <section class="panel" aria-labelledby="waiting-heading" data-testid="waiting-for-you">
            <div class="panel-header">
                <h2 id="waiting-heading">"Waiting for you"</h2>
            </div>
            {if empty {
                view! { <p class="muted">"Nothing waits for your decision."</p> }.into_any()
            } else {
                view! { <ul class="waiting-list">{rollouts}{exceptions}</ul> }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_system_status());
    let counts = Resource::new(|| (), |_| get_overview_counts());
    let waiting = Resource::new(|| (), |_| waiting_for_me());

    view! {
        <Title text="Overview" />
        <PageHeader title="Overview" purpose="Posture across every cluster: policies and the modes they run in, rollouts in flight, and the violations clusters report back." />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match waiting.await {
                    Ok(waiting) => view! { <WaitingPanel waiting /> }.into_any(),
                    Err(err) => load_error(err),
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <Loading text="Counting…" /> }>
            {move || Suspend::new(async move {
                let c = counts.await.unwrap_or_default();
                let policies = if c.policies == 0 {
                    "No policies yet. Write one or adopt one from the library.".to_owned()
                } else {
                    format!("{} policies.", c.policies)
                };
                let clusters = if c.clusters == 0 {
                    "No clusters connected yet.".to_owned()
                } else {
                    format!("{} clusters, {} reachable; {} rollouts in flight.", c.clusters, c.reachable, c.rollouts_in_flight)
                };
                let violations = if c.violations_24h == 0 {
                    "Nothing reported in the last 24 hours.".to_owned()
                } else {
                    format!("{} violations in the last 24 hours, {} of them denied.", c.violations_24h, c.denied_24h)
                };
                view! {
                    <div class="cards" data-testid="overview-cards">
                        <SummaryCard title="Policies" href=POLICIES.href text=policies />
                        <SummaryCard title="Clusters" href=CLUSTERS.href text=clusters />
                        <SummaryCard title="Violations" href=VIOLATIONS.href text=violations />
                    </div>
                }
            })}
        </Suspense>
        <section class="panel" aria-labelledby="system-heading">
            <div class="panel-header">
                <h2 id="system-heading">"This installation"</h2>
                <button type="button" class="button" on:click=move |_| status.refetch()>
                    "Refresh"
                </button>
            </div>
            <Transition fallback=|| view! { <Loading text="Reading status…" /> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => view! { <SystemStatusList status /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn SummaryCard(title: &'static str, href: &'static str, text: String) -> impl IntoView {
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
