//! The audit log page (admins): filter by actor and action, page through, export as JSON or CSV.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{AuditEntry, AuditPage, AuditQuery};
use crate::error::AppError;
use crate::time::format_time;
use crate::ui::url::query;
use crate::ui::{load_error, DataTable, Loading, PageHeader, Pager};

/// One page of the audit log (admins only).
#[server(endpoint = "audit_entries")]
pub async fn get_audit_entries(query: AuditQuery) -> Result<AuditPage, AppError> {
    crate::auth::ssr::require(crate::auth::Action::ReadAuditLog)?;
    let state = crate::state::current()?;
    Ok(super::ssr::list(&state.db, &query, 500).await?)
}

const PAGE: i64 = 50;

/// The filter a query string describes (`actor`, `action`, `after`).
fn query_from(get: impl Fn(&str) -> Option<String>) -> AuditQuery {
    let text =
        |key: &str| Some(get(key).unwrap_or_default().trim().to_owned()).filter(|t| !t.is_empty());
    AuditQuery {
        actor: text("actor"),
        action: text("action"),
        after: text("after"),
        limit: Some(PAGE),
        ..AuditQuery::default()
    }
}

/// The query string of a filter, without `after`.
fn filter_of(query_: &AuditQuery) -> String {
    query(&[
        ("actor", query_.actor.as_deref().unwrap_or_default()),
        ("action", query_.action.as_deref().unwrap_or_default()),
    ])
}

/// The audit log: filters in the URL (so a view can be shared and is rendered on the server),
/// newest first, paged by key.
#[component]
pub fn AuditLogPage() -> impl IntoView {
    let url = use_query_map();
    let filter = Memo::new(move |_| url.with(|q| query_from(|key| q.get(key))));
    let entries = Resource::new(move || filter.get(), get_audit_entries);
    let export = move |format: &str| {
        let filter = filter_of(&filter.get());
        let format = query(&[("format", format)]);
        if filter.is_empty() {
            format!("/api/v1/audit/export?{format}")
        } else {
            format!("/api/v1/audit/export?{format}&{filter}")
        }
    };

    // A search box of the filter, showing what the URL holds for it.
    let search = move |label: &'static str,
                       name: &'static str,
                       placeholder: &'static str,
                       field: fn(AuditQuery) -> Option<String>| {
        view! {
            <label>
                {label}
                <input
                    type="search"
                    name=name
                    placeholder=placeholder
                    prop:value=move || field(filter.get()).unwrap_or_default()
                />
            </label>
        }
    };

    view! {
        <Title text="Audit log" />
        <PageHeader title="Audit log" purpose="Who did what, when, to what, and from where. Entries are never changed or removed." />
        <form class="filters" method="get" action="/audit">
            {search("Actor ", "actor", "user id or name", |q| q.actor)}
            {search("Action ", "action", "e.g. session. or token.create", |q| q.action)}
            <button type="submit" class="button small">"Apply"</button>
            <a class="button small" href=move || export("json") download="audit.json" rel="external">
                "Export JSON"
            </a>
            <a class="button small" href=move || export("csv") download="audit.csv" rel="external">
                "Export CSV"
            </a>
        </form>
        <Transition fallback=|| view! { <Loading text="Reading the audit log…" /> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(page) => view! { <AuditTable page filter=filter_of(&filter.get_untracked()) /> }.into_any(),
                    Err(AppError::Forbidden(_)) => {
                        view! {
                            <div class="empty-state">
                                <p>"Only admins can read the audit log."</p>
                            </div>
                        }
                            .into_any()
                    }
                    Err(err) => load_error(err),
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditTable(page: AuditPage, filter: String) -> impl IntoView {
    if page.entries.is_empty() {
        return view! {
            <div class="empty-state">
                <p>"No entries match. Every sign-in, token, session and change is recorded here."</p>
            </div>
        }
        .into_any();
    }
    let AuditPage {
        entries,
        total,
        next,
    } = page;
    let shown = format!("{total} matching entries, newest first");
    view! {
        <DataTable columns=&["When", "Who", "Action", "Target", "From", "Details"] class="audit-table">
                {entries.into_iter().map(|e: AuditEntry| view! {
                    <tr>
                        <td>{format_time(e.at_ms)}</td>
                        <td title=e.actor.clone()>{e.actor_name.clone()}</td>
                        <td><code>{e.action.clone()}</code></td>
                        <td>{format!("{} {}", e.target_kind, e.target_id)}</td>
                        <td>{e.from.clone()}</td>
                        <td><code>{e.detail.clone()}</code></td>
                    </tr>
                }).collect_view()}
            </DataTable>
        <Pager label="Audit log pages" path="/audit" filter next shown />
    }
    .into_any()
}
