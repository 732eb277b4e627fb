//! The audit log page (admins): filter by actor and action, page through, export as JSON or CSV.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{AuditEntry, AuditPage, AuditQuery};
use crate::error::AppError;
use crate::time::format_time;
use crate::ui::url::query;
use crate::ui::{load_error, DataTable, Loading, PageHeader};

/// One page of the audit log (admins only).
#[server(endpoint = "audit_entries")]
pub async fn get_audit_entries(query: AuditQuery) -> Result<AuditPage, AppError> {
    crate::auth::ssr::require(crate::auth::Action::ReadAuditLog)?;
    let state = crate::state::current()?;
    super::ssr::list(&state.db, &query, 500)
        .await
        .map_err(|err| AppError::internal("reading the audit log", err))
}

const PAGE: i64 = 50;

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let (actor, set_actor) = signal(String::new());
    let (action, set_action) = signal(String::new());
    let (offset, set_offset) = signal(0i64);
    let entries = Resource::new(
        move || (actor.get(), action.get(), offset.get()),
        |(actor, action, offset)| {
            get_audit_entries(AuditQuery {
                actor: (!actor.is_empty()).then_some(actor),
                action: (!action.is_empty()).then_some(action),
                offset,
                limit: Some(PAGE),
                ..AuditQuery::default()
            })
        },
    );
    let export = move |format: &str| {
        let (actor, action) = (actor.get(), action.get());
        format!(
            "/api/v1/audit/export?{}",
            query(&[("format", format), ("actor", &actor), ("action", &action)])
        )
    };

    view! {
        <Title text="Audit log" />
        <PageHeader title="Audit log" purpose="Who did what, when, to what, and from where. Entries are never changed or removed." />
        <form class="filters" on:submit=|ev| ev.prevent_default()>
            <label>
                "Actor "
                <input
                    type="search"
                    name="actor"
                    placeholder="user id or name"
                    on:change=move |ev| {
                        set_actor.set(event_target_value(&ev));
                        set_offset.set(0);
                    }
                />
            </label>
            <label>
                "Action "
                <input
                    type="search"
                    name="action"
                    placeholder="e.g. session. or token.create"
                    on:change=move |ev| {
                        set_action.set(event_target_value(&ev));
                        set_offset.set(0);
                    }
                />
            </label>
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
                    Ok(page) => view! { <AuditTable page set_offset /> }.into_any(),
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
fn AuditTable(page: AuditPage, set_offset: WriteSignal<i64>) -> impl IntoView {
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
        offset,
        limit,
    } = page;
    let shown = format!(
        "{}–{} of {total}",
        offset + 1,
        offset + i64::try_from(entries.len()).unwrap_or(0)
    );
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
        <nav class="pager" aria-label="Audit log pages">
            <button
                type="button"
                class="button small"
                disabled=offset == 0
                on:click=move |_| set_offset.set((offset - limit).max(0))
            >
                "Newer"
            </button>
            <span>{shown}</span>
            <button
                type="button"
                class="button small"
                disabled=offset + limit >= total
                on:click=move |_| set_offset.set(offset + limit)
            >
                "Older"
            </button>
        </nav>
    }
    .into_any()
}
