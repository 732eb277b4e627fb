//! The Impact tab: what enforcing the current version, or the unsaved draft, would do on each
//! cluster, from the inventory: per cluster the counts and the comparison with what runs there
//! now, then the workloads, filtered by cluster, action and namespace.

use super::*;
use crate::impact::watch::{ImpactProgress, ImpactWatch};
use crate::impact::{policy_impact, Change, ClusterImpact, Impact, WorkloadImpact};
use crate::violations::Action;

/// Workload rows drawn at most; the filters narrow the rest.
const ROWS: usize = 200;

#[component]
pub(super) fn ImpactTab(detail: PolicyDetail, draft: Draft) -> impl IntoView {
    let policy_id = detail.policy.id.clone();
    let number = detail.current.number;
    let csv = format!("/api/v1/policies/{policy_id}/impact?version={number}&format=csv");
    let saved = StoredValue::new(detail.current.content.clone());
    let rights = Rights::here();
    // The draft differs from the saved version: it can be previewed instead (by authors).
    let changed = move || draft.content() != saved.get_value();
    let use_draft = RwSignal::new(false);
    let result = RwSignal::new(None::<Result<Impact, AppError>>);
    let watch = ImpactWatch::polling();
    let run = Callback::new(move |()| {
        if watch.busy_untracked() {
            return;
        }
        let id = policy_id.clone();
        let content = use_draft.get_untracked().then(|| draft.content());
        let progress = watch.start();
        spawn_local(async move {
            let answer = policy_impact(id, Some(number), content, progress).await;
            watch.finish();
            result.set(Some(answer));
        });
    });
    // Computed once the page runs in the browser; again on request.
    Effect::new(move |first: Option<()>| {
        if first.is_none() {
            run.run(());
        }
    });
    let can_draft = rights.edit.is_none();
    view! {
        <section class="panel" aria-labelledby="impact-heading" data-testid="impact">
            <PanelHeader id="impact-heading" title="If this were enforced">
                <a class="button" data-testid="impact-csv" href=csv download>{format!("Version {number} as CSV")}</a>
                <button
                    type="button"
                    data-testid="impact-refresh"
                    prop:disabled=move || watch.busy()
                    on:click=move |_| run.run(())
                >
                    {move || if watch.busy() { "Computing…" } else { "Compute again" }}
                </button>
            </PanelHeader>
            <p class="muted">
                "What each enabled cluster would deny, warn of or audit if this policy were enforced there, from what Palisade's inventory holds of it, with active exceptions applied. Compared with the version each cluster runs now."
            </p>
            <fieldset class="choice" data-testid="impact-subject">
                <legend>"Preview"</legend>
                <label>
                    <input type="radio" name="impact-subject" prop:checked=move || !use_draft.get()
                        on:change=move |_| { use_draft.set(false); run.run(()); } />
                    {format!("version {number}")}
                </label>
                <label>
                    <input type="radio" name="impact-subject" data-testid="impact-use-draft"
                        prop:checked=move || use_draft.get()
                        prop:disabled=move || !can_draft || !changed()
                        on:change=move |_| { use_draft.set(true); run.run(()); } />
                    {move || if !can_draft {
                        "the unsaved draft (needs the author role)".to_owned()
                    } else if changed() {
                        "the unsaved draft".to_owned()
                    } else {
                        "the unsaved draft (no changes yet)".to_owned()
                    }}
                </label>
            </fieldset>
            <ImpactProgress watch testid="impact-progress" />
            {move || match result.get() {
                None => view! { <Loading text="Computing the impact…" /> }.into_any(),
                Some(Err(err)) => view! { <ErrorNote text=err.to_string() testid="impact-error" /> }.into_any(),
                Some(Ok(impact)) => view! { <ImpactView impact /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn ImpactView(impact: Impact) -> impl IntoView {
    if impact.clusters.is_empty() {
        return view! {
            <p class="empty-state" data-testid="impact-no-clusters">
                "No enabled cluster yet: register one on the Clusters page, and its inventory is read within seconds."
            </p>
        }
        .into_any();
    }
    let subject = match impact.version {
        Some(v) => format!("Version {v}"),
        None => "The unsaved draft".to_owned(),
    };
    let hit = impact.clusters.iter().filter(|c| c.deny > 0).count();
    let newly: i64 = impact.clusters.iter().map(|c| c.newly_denied).sum();
    let summary = format!(
        "{subject}, enforced, would deny {} workload{} on {hit} of {} cluster{} ({newly} not denied today).",
        impact.denied(),
        if impact.denied() == 1 { "" } else { "s" },
        impact.clusters.len(),
        if impact.clusters.len() == 1 { "" } else { "s" },
    );
    let computed = format_time(impact.computed_ms);
    let rows: Vec<(String, WorkloadImpact)> = impact
        .clusters
        .iter()
        .flat_map(|c| {
            c.workloads
                .iter()
                .map(|w| (c.cluster_name.clone(), w.clone()))
        })
        .collect();
    let clusters: Vec<String> = impact
        .clusters
        .iter()
        .map(|c| c.cluster_name.clone())
        .collect();
    view! {
        <p data-testid="impact-summary"><strong>{summary}</strong>" "<span class="muted small">{format!("Computed at {computed}.")}</span></p>
        <div class="impact-clusters">
            {impact.clusters.into_iter().map(|c| view! { <ClusterCard cluster=c /> }).collect_view()}
        </div>
        <Workloads rows clusters />
    }
    .into_any()
}

#[component]
fn ClusterCard(cluster: ClusterImpact) -> impl IntoView {
    let running = match &cluster.running {
        Some(r) => format!("runs version {} in {} mode", r.version, r.mode.as_str()),
        None => "not deployed here".to_owned(),
    };
    let freshness = if cluster.listed_ms == 0 {
        "The inventory is not complete yet: some kinds were never listed.".to_owned()
    } else {
        format!(
            "{} objects evaluated, listed by {}.",
            cluster.objects,
            format_time(cluster.listed_ms)
        )
    };
    view! {
        <article class="panel impact-cluster" data-testid="impact-cluster" data-cluster=cluster.cluster_name.clone()>
            <h3>{cluster.cluster_name.clone()}<span class="muted small">{format!(" {} · {running}", cluster.environment)}</span></h3>
            <p class="tags">
                <span class="badge bad" data-testid="impact-deny">{format!("deny {}", cluster.deny)}</span>
                <span class="badge waiting" data-testid="impact-warn">{format!("warn {}", cluster.warn)}</span>
                <span class="badge muted" data-testid="impact-audit">{format!("audit {}", cluster.audit)}</span>
                <span class="badge muted" data-testid="impact-excepted">{format!("excepted {}", cluster.excepted)}</span>
            </p>
            <p data-testid="impact-versus">
                {if cluster.running.is_some() {
                    format!("Would newly deny {}, would stop denying {}.", cluster.newly_denied, cluster.no_longer_denied)
                } else {
                    format!("Would newly deny {}.", cluster.newly_denied)
                }}
            </p>
            <p class="muted small" data-testid="impact-freshness">{freshness}</p>
            {(!cluster.unreadable.is_empty()).then(|| view! {
                <p class="error" data-testid="impact-unreadable">
                    {format!("Not in this answer: {} (the cluster refuses to let Palisade read them; see the cluster's page).", cluster.unreadable.join(", "))}
                </p>
            })}
            {cluster.partial.then(|| view! {
                <p class="error" data-testid="impact-partial">"Stopped at the time budget: the counts cover only what was evaluated."</p>
            })}
            {(!cluster.not_evaluable.is_empty()).then(|| view! {
                <details data-testid="impact-not-evaluable">
                    <summary>{format!("{} thing(s) the engine cannot evaluate here", cluster.not_evaluable.len())}</summary>
                    <ul>{cluster.not_evaluable.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
                </details>
            })}
        </article>
    }
}

fn change_text(w: &WorkloadImpact) -> &'static str {
    match (w.excepted, w.change) {
        (true, _) => "excepted",
        (false, Change::New) => "new",
        (false, Change::Stops) => "stops being denied",
        (false, Change::Same) => "",
    }
}

#[component]
fn Workloads(rows: Vec<(String, WorkloadImpact)>, clusters: Vec<String>) -> impl IntoView {
    let rows = StoredValue::new(rows);
    // In the URL beside the tab, so a shared link shows the same workloads once computed.
    let cluster = crate::ui::url::query_signal("cluster");
    let action = crate::ui::url::query_signal("action");
    let namespace = crate::ui::url::query_signal("namespace");
    let shown = Memo::new(move |_| {
        let (cluster, action, namespace) = (cluster.get(), action.get(), namespace.get());
        rows.with_value(|rows| {
            rows.iter()
                .filter(|(c, w)| {
                    (cluster.is_empty() || *c == cluster)
                        && (action.is_empty() || w.action.as_str() == action)
                        && (namespace.is_empty() || w.namespace.contains(namespace.trim()))
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    view! {
        <h3>"Workloads"</h3>
        <div class="filters" data-testid="impact-filters">
            <label>"Cluster"
                <select data-testid="impact-filter-cluster" on:change=move |ev| cluster.set(event_target_value(&ev))>
                    <option value="">"every cluster"</option>
                    {clusters.into_iter().map(|c| {
                        let selected = cluster.get_untracked() == c;
                        view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Action"
                <select data-testid="impact-filter-action" on:change=move |ev| action.set(event_target_value(&ev))>
                    <option value="">"any"</option>
                    {[Action::Deny, Action::Warn, Action::Audit].into_iter().map(|a| {
                        let selected = action.get_untracked() == a.as_str();
                        view! { <option value=a.as_str() selected=selected>{a.as_str()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Namespace"
                <input type="search" data-testid="impact-filter-namespace" placeholder="contains…"
                    bind:value=namespace />
            </label>
        </div>
        {move || {
            let all = shown.get();
            if all.is_empty() {
                return view! { <p class="empty-state" data-testid="impact-none">"Nothing here: no workload would be denied, warned of or audited."</p> }.into_any();
            }
            let total = all.len();
            view! {
                <DataTable columns=&["Cluster", "Namespace", "Workload", "Action", "Change", "Objects", "Message"] class="impact-workloads" testid="impact-workloads">
                    {all.into_iter().take(ROWS).map(|(cluster, w)| {
                        let examples = w.examples.join(", ");
                        let owner = format!("{}/{}", w.owner_kind, w.owner_name);
                        let change = change_text(&w);
                        view! {
                            <tr data-testid="impact-workload" data-cluster=cluster.clone() data-action=w.action.as_str()
                                data-owner=owner data-change=change>
                                <td>{cluster.clone()}</td>
                                <td>{w.namespace.clone()}</td>
                                <th scope="row">{format!("{} {}", w.owner_kind, w.owner_name)}</th>
                                <td>{w.action.as_str()}</td>
                                <td>{change}</td>
                                <td title=examples>{w.objects}</td>
                                <td class="message">{w.message.clone()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </DataTable>
                {(total > ROWS).then(|| view! { <p class="muted small">{format!("Showing {ROWS} of {total}: narrow the filters to see the rest.")}</p> })}
            }.into_any()
        }}
    }
}
