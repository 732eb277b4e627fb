//! The audit log page (admins): filter by actor and action, page through, export as JSON or CSV.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{AuditEntry, AuditPage, AuditQuery};
use crate::error::AppError;

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
        let mut url = format!("/api/v1/audit/export?format={format}");
        for (key, value) in [("actor", actor.get()), ("action", action.get())] {
            if !value.is_empty() {
                url.push_str(&format!("&{key}={}", urlencode(&value)));
            }
        }
        url
    };

    view! {
        <Title text="Audit log" />
        <header class="page-header">
            <h1>"Audit log"</h1>
            <p class="purpose">"Who did what, when, to what, and from where. Entries are never changed or removed."</p>
        </header>
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
        <Transition fallback=|| view! { <p class="muted">"Reading the audit log…"</p> }>
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
                    Err(err) => view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any(),
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
        <table class="data-table audit-table">
            <thead>
                <tr>
                    <th scope="col">"When (UTC)"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"Action"</th>
                    <th scope="col">"Target"</th>
                    <th scope="col">"From"</th>
                    <th scope="col">"Details"</th>
                </tr>
            </thead>
            <tbody>
                {entries.into_iter().map(|e: AuditEntry| view! {
                    <tr>
                        <td>{format_ms(e.at_ms)}</td>
                        <td title=e.actor.clone()>{e.actor_name.clone()}</td>
                        <td><code>{e.action.clone()}</code></td>
                        <td>{format!("{} {}", e.target_kind, e.target_id)}</td>
                        <td>{e.from.clone()}</td>
                        <td><code>{e.detail.clone()}</code></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
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

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC), without a date library.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(1_795_000_000_000), "2026-11-18 11:06:40");
    }
}
