//! The cluster page's posture panel: what the cluster would fail under the whole built-in library
//! (both Pod Security levels among it), judged against its inventory with nothing deployed, per
//! entry and namespace; assessed again on request by those who may edit policies.

use leptos::prelude::*;

use crate::auth::guard::{needs, role_of};
use crate::auth::Action as Permission;
use crate::posture::{assess_posture, get_posture, Assessment};
use crate::time::format_time;
use crate::ui::{load_error, DataTable, ErrorNote, Loading, PanelHeader};

/// Namespaces named per entry in the table (the rest are counted).
const NAMESPACES_SHOWN: usize = 3;

#[component]
pub fn PosturePanel(id: Memo<String>) -> impl IntoView {
    let tick = RwSignal::new(0u64);
    let posture = Resource::new(move || (id.get(), tick.get()), |(id, _)| get_posture(id));
    let me = crate::auth::guard::use_me();
    let error = RwSignal::new(None::<String>);
    let assess = Action::new(move |_: &()| {
        let cluster = id.get_untracked();
        async move {
            match assess_posture(cluster).await {
                Ok(_) => {
                    error.set(None);
                    tick.update(|n| *n += 1);
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let pending = assess.pending();
    view! {
        <section class="panel" id="posture" aria-labelledby="posture-heading" data-testid="posture">
            <PanelHeader id="posture-heading" title="Posture, assessed from the inventory">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let reason = needs(role_of(&me.await), Permission::EditPolicies);
                        let title = reason.clone().unwrap_or_default();
                        view! {
                            <button
                                type="button"
                                class="button"
                                data-testid="posture-assess"
                                title=title
                                disabled=move || reason.is_some() || pending.get()
                                on:click=move |_| { assess.dispatch(()); }
                            >
                                {move || if pending.get() { "Assessing…" } else { "Assess now" }}
                            </button>
                        }
                    })}
                </Transition>
            </PanelHeader>
            <p class="muted">
                "Every built-in library entry, both Pod Security levels among them, judged against what runs here as if it were enforced. Read-only: nothing is deployed. Assessed once the inventory of a new cluster is complete, and again on request."
            </p>
            {move || error.get().map(|text| view! { <ErrorNote text testid="posture-error" /> })}
            <Transition fallback=|| view! { <Loading text="Reading the posture…" /> }>
                {move || Suspend::new(async move {
                    match posture.await {
                        Ok(Some(assessment)) => view! { <PostureTable assessment /> }.into_any(),
                        Ok(None) => view! {
                            <p class="empty-state" data-testid="posture-none">
                                "Not assessed yet: it is, once the inventory has listed every kind."
                            </p>
                        }
                        .into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn PostureTable(assessment: Assessment) -> impl IntoView {
    let failing = assessment
        .entries
        .iter()
        .filter(|e| e.workloads > 0)
        .count();
    let summary = format!(
        "{failing} of {} entries would fail here; {} objects judged on {}{}.",
        assessment.entries.len(),
        assessment.objects,
        format_time(assessment.assessed_ms),
        if assessment.complete {
            ""
        } else {
            " (the inventory was not whole: a clean entry may not be clean)"
        }
    );
    view! {
        <p data-testid="posture-summary">{summary}</p>
        <DataTable columns=&["Entry", "Controls", "Failing workloads", "Where"] testid="posture-table">
            {assessment
                .entries
                .into_iter()
                .map(|entry| {
                    let namespaces = entry.namespaces.len();
                    let mut shown: Vec<String> = entry
                        .namespaces
                        .iter()
                        .take(NAMESPACES_SHOWN)
                        .map(|n| format!("{} ({})", n.namespace, n.workloads))
                        .collect();
                    if namespaces > NAMESPACES_SHOWN {
                        shown.push(format!("and {} more", namespaces - NAMESPACES_SHOWN));
                    }
                    let example = entry
                        .namespaces
                        .first()
                        .and_then(|n| n.failing.first().map(|f| format!("{}/{}: {}", n.namespace, f.workload, f.message)));
                    let tone = if entry.workloads > 0 { "bad" } else { "" };
                    view! {
                        <tr data-testid="posture-entry" data-entry=entry.entry.clone() data-failing=entry.workloads.to_string()>
                            <th scope="row">
                                <a href=format!("/library#{}", entry.entry)>{entry.title.clone()}</a>
                                <div class="muted small"><code>{entry.entry.clone()}</code></div>
                            </th>
                            <td class="small">{entry.controls.join(", ")}</td>
                            <td class=tone>{entry.workloads}</td>
                            <td class="small">
                                {if shown.is_empty() { "—".to_owned() } else { shown.join(", ") }}
                                {example.map(|text| view! { <div class="muted small message">{text}</div> })}
                            </td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
}
