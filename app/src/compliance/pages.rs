//! The compliance page: a framework picker with each score, then the chosen framework's controls ×
//! clusters, with the evidence downloads.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{compliance_frameworks, compliance_posture, Posture, WINDOW_DAYS};
use crate::ui::{load_error, Loading, PageHeader, Pager};

#[component]
pub fn CompliancePage() -> impl IntoView {
    let query = use_query_map();
    let framework = Memo::new(move |_| {
        query
            .get()
            .get("framework")
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "cis".to_owned())
    });
    let from = Memo::new(move |_| {
        query
            .get()
            .get("after")
            .and_then(|from| from.parse::<usize>().ok())
    });
    let frameworks = Resource::new(|| (), |()| compliance_frameworks());
    let posture = Resource::new(
        move || (framework.get(), from.get()),
        |(framework, from)| compliance_posture(framework, from),
    );
    view! {
        <Title text="Compliance" />
        <PageHeader title="Compliance" purpose={format!("Each framework's controls, the policies that serve them, and where they stand on every cluster: enforced, audited and clean, with violations in the last {WINDOW_DAYS} days, or not covered (assessed against the inventory, not enforced, once the cluster's posture was assessed).")} />
        <Suspense fallback=|| view! { <Loading text="Scoring…" /> }>
            {move || Suspend::new(async move {
                let current = framework.get_untracked();
                match frameworks.await {
                    Ok(list) => view! {
                        <nav class="tabs" aria-label="Frameworks" data-testid="frameworks">
                            {list.into_iter().map(|f| {
                                let active = f.framework == current;
                                view! {
                                    <a
                                        href=format!("/compliance?framework={}", f.framework)
                                        class=if active { "tab active" } else { "tab" }
                                        aria-current=if active { "page" } else { "false" }
                                        data-framework=f.framework.clone()
                                    >
                                        {f.name}" "<span class="score">{format!("{}%", f.score)}</span>
                                    </a>
                                }
                            }).collect_view()}
                        </nav>
                    }
                    .into_any(),
                    Err(err) => load_error(err),
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <Loading text="Reading the posture…" /> }>
            {move || Suspend::new(async move {
                match posture.await {
                    Ok(p) => view! { <PostureView posture=p /> }.into_any(),
                    Err(err) => load_error(err),
                }
            })}
        </Suspense>
    }
}

#[component]
fn PostureView(posture: Posture) -> impl IntoView {
    let Posture {
        framework,
        name,
        score,
        clusters,
        controls,
        cluster_total,
        cluster_from,
        ..
    } = posture;
    let shown_to = cluster_from + clusters.len();
    let pager = (cluster_total > clusters.len()).then(|| {
        let next = (shown_to < cluster_total).then(|| shown_to.to_string());
        view! {
            <Pager
                label="Cluster columns"
                path="/compliance"
                filter=format!("framework={framework}")
                next
                shown=format!("Clusters {}–{shown_to} of {cluster_total}", cluster_from + 1)
                words=("First clusters", "Next clusters")
            />
        }
    });
    let export = |format: &str| format!("/api/v1/compliance/{framework}/evidence?format={format}");
    let (json, csv) = (export("json"), export("csv"));
    if clusters.is_empty() {
        return view! {
            <div class="empty-state">
                <p>"No clusters yet. Register a cluster and roll out policies from the library: each control then shows where it is enforced, audited or not covered."</p>
            </div>
        }
        .into_any();
    }
    view! {
        <section class="panel">
            <h2>{name}" "<span class="score" data-testid="framework-score">{format!("{score}%")}</span></h2>
            <p class="muted small">"The score is the share of control × cluster cells that are enforced or audited and clean."</p>
            <p>
                <a class="button small" href=json download="evidence.json" rel="external">"Evidence (JSON)"</a>
                " "
                <a class="button small" href=csv download="evidence.csv" rel="external">"Evidence (CSV)"</a>
            </p>
            {pager}
            <table class="data-table compliance-table">
                <thead>
                    <tr>
                        <th scope="col">"Control"</th>
                        <th scope="col">"Policies"</th>
                        {clusters.iter().map(|c| view! {
                            <th scope="col">{c.cluster_name.clone()}<div class="muted small">{format!("{}%", c.score)}</div></th>
                        }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {controls.into_iter().map(|row| view! {
                        <tr data-testid="control-row" data-control=row.id.clone()>
                            <th scope="row"><code>{row.id.clone()}</code>" "{row.title.clone()}</th>
                            <td class="small">
                                {row.policies.iter().map(|p| if p.policy_id.is_empty() {
                                    view! { <span class="muted" title="library entry, not adopted">{p.name.clone()}</span>" " }.into_any()
                                } else {
                                    view! { <a href=format!("/policies/{}", p.policy_id)>{p.name.clone()}</a>" " }.into_any()
                                }).collect_view()}
                            </td>
                            {row.cells.into_iter().map(|cell| {
                                let detail = cell
                                    .deployments
                                    .iter()
                                    .map(|d| format!("{} v{} {}", d.policy_name, d.version, d.mode))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                let text = match &cell.assessed {
                                    Some(a) if a.failing > 0 => format!("{}: {} failing", cell.status.label(), a.failing),
                                    Some(_) => format!("{}: passes", cell.status.label()),
                                    None if cell.violations > 0 => format!("{} ({})", cell.status.label(), cell.violations),
                                    None => cell.status.label().to_owned(),
                                };
                                let detail = match &cell.assessed {
                                    Some(a) => format!(
                                        "Nothing covers this control here yet. Judged against the inventory on {}{}: {} workload(s) would fail it if enforced.",
                                        crate::time::format_time(a.assessed_ms),
                                        if a.complete { "" } else { " (inventory not whole)" },
                                        a.failing
                                    ),
                                    None => detail,
                                };
                                let href = cell
                                    .assessed
                                    .is_some()
                                    .then(|| format!("/clusters/{}#posture", cell.cluster_id));
                                view! {
                                    <td title=detail data-cluster=cell.cluster_name.clone() data-status=cell.status.as_str()>
                                        // A link only where there is a report to read.
                                        <a href=href class=format!("badge status-{}", cell.status.as_str())>{text}</a>
                                    </td>
                                }
                            }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
