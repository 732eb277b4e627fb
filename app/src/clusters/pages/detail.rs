//! `/clusters/:id`: one cluster — how Palisade reaches it, which admission APIs it serves, the
//! policies live on it and whether they drifted, its latest open violations — and, for those who
//! manage clusters, its environment, labels and drift repair, editable.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::super::{get_cluster, parse_labels, update_cluster, Cluster, ClusterChange, Health};
use super::{capability_list, labels_text};
use crate::auth::guard::{needs, role_of};
use crate::auth::Action as Permission;
use crate::impact::{pod_security_readiness, NamespaceReadiness};
use crate::inventory::{get_inventory, ClusterInventory};
use crate::rollouts::{list_deployments, Deployment};
use crate::sections::CLUSTERS;
use crate::time::format_time;
use crate::ui::url::query;
use crate::ui::{load_error, DataTable, ErrorNote, FormPanel, Loading, PanelHeader};
use crate::violations::{list_violations, Violation, ViolationFilter};

/// Open violations the page lists; the rest are one link away.
const LATEST: i64 = 10;

#[component]
pub fn ClusterPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    // Bumped after a change, to read the cluster again.
    let tick = RwSignal::new(0u64);
    let cluster = Resource::new(move || (id.get(), tick.get()), |(id, _)| get_cluster(id));
    let deployments = Resource::new(|| (), |()| list_deployments(None));
    let violations = Resource::new(
        move || id.get(),
        |cluster| {
            list_violations(ViolationFilter {
                cluster,
                open: true,
                limit: Some(LATEST),
                ..ViolationFilter::default()
            })
        },
    );
    // The form reads the cluster once: refreshing the facts after a save must not draw a new form
    // (it would drop the message saying what was saved).
    let editable = Resource::new(move || id.get(), get_cluster);
    let me = crate::auth::guard::use_me();
    let inventory = Resource::new(move || id.get(), get_inventory);
    let readiness = Resource::new(move || id.get(), pod_security_readiness);
    let refresh = move || tick.update(|n| *n += 1);

    view! {
        <Transition fallback=|| view! { <Loading text="Loading the cluster…" /> }>
            {move || Suspend::new(async move {
                match cluster.await {
                    Ok(cluster) => view! { <Facts cluster /> }.into_any(),
                    Err(err) => view! {
                        <Title text="Cluster" />
                        <header class="page-header">
                            <p class="muted small"><a href="/clusters">{CLUSTERS.title}</a></p>
                            <h1>"Cluster"</h1>
                        </header>
                        {load_error(err)}
                    }
                    .into_any(),
                }
            })}
        </Transition>
        <section class="panel" aria-labelledby="live-heading">
            <h2 id="live-heading">"Policies live here"</h2>
            <Transition fallback=|| view! { <Loading text="Loading deployments…" /> }>
                {move || Suspend::new(async move {
                    match deployments.await {
                        Ok(all) => {
                            let here: Vec<Deployment> = all
                                .into_iter()
                                .filter(|d| d.cluster_id == id.get_untracked())
                                .collect();
                            view! { <Live here /> }.into_any()
                        }
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
        <section class="panel" aria-labelledby="inventory-heading">
            <h2 id="inventory-heading">"Inventory"</h2>
            <Transition fallback=|| view! { <Loading text="Loading the inventory…" /> }>
                {move || Suspend::new(async move {
                    match inventory.await {
                        Ok(inventory) => view! { <Inventory inventory /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
        <section class="panel" aria-labelledby="readiness-heading">
            <h2 id="readiness-heading">"Pod Security readiness"</h2>
            <p class="muted">"Per namespace, the strictest Pod Security level (latest) it could enforce today with nothing denied, from the inventory's Pods and pod templates, and what keeps it from the next level."</p>
            <Transition fallback=|| view! { <Loading text="Checking namespaces…" /> }>
                {move || Suspend::new(async move {
                    match readiness.await {
                        Ok(namespaces) => view! { <Readiness namespaces /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
        <super::posture::PosturePanel id />
        <section class="panel" aria-labelledby="violations-heading">
            <PanelHeader id="violations-heading" title="Latest open violations">
                <a
                    class="button"
                    data-testid="cluster-violations-link"
                    href=move || format!("/violations?{}", query(&[("cluster", &id.get()), ("open", "1")]))
                >
                    "All open violations here"
                </a>
            </PanelHeader>
            <Transition fallback=|| view! { <Loading text="Loading violations…" /> }>
                {move || Suspend::new(async move {
                    match violations.await {
                        Ok(page) => view! { <Latest items=page.items /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let role = role_of(&me.await);
                match (needs(role, Permission::ManageClusters), editable.await) {
                    (None, Ok(cluster)) => view! { <EditForm cluster on_saved=refresh /> }.into_any(),
                    (Some(reason), Ok(_)) => view! {
                        <p class="muted" data-testid="cluster-edit-needs-role">
                            {format!("Changing this cluster's environment and labels: {}.", reason.to_lowercase())}
                        </p>
                    }
                    .into_any(),
                    (_, Err(_)) => ().into_any(),
                }
            })}
        </Transition>
    }
}

/// The cluster's heading, how it is reached and what its API offers.
#[component]
fn Facts(cluster: Cluster) -> impl IntoView {
    let health = if cluster.disabled {
        "disabled"
    } else {
        cluster.health.as_str()
    };
    let checked = if cluster.last_checked_ms > 0 {
        format_time(cluster.last_checked_ms)
    } else {
        "never".to_owned()
    };
    let problem =
        (cluster.health == Health::Unreachable && !cluster.last_error.is_empty()).then(|| {
            view! {
                <dt>"Last error"</dt>
                <dd class="error" data-testid="cluster-last-error">{cluster.last_error.clone()}</dd>
            }
        });
    let labels = if cluster.labels.is_empty() {
        "none".to_owned()
    } else {
        labels_text(&cluster.labels)
    };
    let credentials = match cluster.credential_kind.as_str() {
        "kubeconfig" => "a kubeconfig context, encrypted at rest",
        "token" => "a bearer token and CA, encrypted at rest",
        _ => "stored, encrypted at rest",
    };
    let capabilities = capability_list(&cluster.capabilities)
        .into_iter()
        .map(|(name, present, meaning)| {
            let (badge, word) = if present {
                ("badge good", "served")
            } else {
                ("badge muted", "not found")
            };
            view! {
                <li data-testid="capability" data-name=name data-present=present.to_string()>
                    <span class=badge>{word}</span>" "<strong>{name}</strong>
                    <span class="muted small">{format!(" — {meaning}")}</span>
                </li>
            }
        })
        .collect_view();
    let version = if cluster.k8s_version.is_empty() {
        "not known yet".to_owned()
    } else {
        cluster.k8s_version.clone()
    };
    view! {
        <Title text=format!("Cluster {}", cluster.name) />
        <header class="page-header">
            <p class="muted small"><a href="/clusters">{CLUSTERS.title}</a>" / "{cluster.name.clone()}</p>
            <h1 data-testid="cluster-title">{cluster.name.clone()}</h1>
            <p class="purpose">{format!("A {} cluster, Kubernetes {version}.", cluster.environment)}</p>
        </header>
        <section class="panel" aria-labelledby="facts-heading">
            <PanelHeader id="facts-heading" title="Connection">
                <span class=format!("badge badge-{health}") data-testid="cluster-health">{health}</span>
            </PanelHeader>
            <dl class="facts">
                <dt>"Environment"</dt>
                <dd data-testid="cluster-environment">{cluster.environment.clone()}</dd>
                <dt>"Labels"</dt>
                <dd data-testid="cluster-labels">{labels}</dd>
                <dt>"API server"</dt>
                <dd>{cluster.api_url.clone()}</dd>
                <dt>"Credentials"</dt>
                <dd>{credentials}</dd>
                <dt>"Kubernetes"</dt>
                <dd data-testid="cluster-version">{version}</dd>
                <dt>"Last checked"</dt>
                <dd>{checked}</dd>
                {problem}
                <dt>"Drift"</dt>
                <dd data-testid="cluster-reconcile">
                    {if cluster.reconcile {
                        "re-applied when found"
                    } else {
                        "reported, not repaired"
                    }}
                </dd>
                <dt>"Registered"</dt>
                <dd>{format!("by {} at {}", cluster.created_by, format_time(cluster.created_ms))}</dd>
            </dl>
        </section>
        <section class="panel" aria-labelledby="capabilities-heading">
            <h2 id="capabilities-heading">"Admission APIs"</h2>
            <ul class="plain" data-testid="cluster-capabilities">{capabilities}</ul>
        </section>
    }
}

/// The policies deployed on this cluster, with their mode and drift.
#[component]
fn Live(here: Vec<Deployment>) -> impl IntoView {
    if here.is_empty() {
        return view! {
            <p class="empty-state" data-testid="cluster-no-deployments">
                "No policy is live on this cluster yet. A rollout whose waves select it puts one here."
            </p>
        }
        .into_any();
    }
    view! {
        <DataTable columns=&["Policy", "Version", "Mode", "Applied", "Drift"] testid="cluster-deployments">
            {here
                .into_iter()
                .map(|d| {
                    let (badge, text) = crate::rollouts::drift_badge(d.drift, &d.drift_detail);
                    view! {
                        <tr data-testid="cluster-deployment" data-policy=d.policy_name.clone()>
                            <th scope="row"><a href=format!("/policies/{}", d.policy_id)>{d.policy_name.clone()}</a></th>
                            <td>{format!("v{}", d.version)}</td>
                            <td>{d.mode.as_str()}</td>
                            <td><a href=format!("/rollouts/{}", d.rollout_id)>{format_time(d.applied_ms)}</a></td>
                            <td><span class=badge data-testid="drift">{text}</span></td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
    .into_any()
}

/// Each namespace's Pod Security readiness and its blockers.
#[component]
fn Readiness(namespaces: Vec<NamespaceReadiness>) -> impl IntoView {
    if namespaces.is_empty() {
        return view! {
            <p class="empty-state" data-testid="readiness-none">"No namespace known yet: the inventory lists them once Palisade reaches the cluster."</p>
        }
        .into_any();
    }
    view! {
        <DataTable columns=&["Namespace", "Could enforce today", "Keeps it from the next level"] testid="readiness">
            {namespaces
                .into_iter()
                .map(|n| {
                    let badge = match n.ready.as_str() {
                        "restricted" => "badge good",
                        "baseline" => "badge waiting",
                        _ => "badge bad",
                    };
                    // One shape for every row (no branch between different views): a sentence,
                    // then the blockers when there are any.
                    let sentence = if n.next.is_empty() && n.workloads == 0 {
                        "nothing: no workloads yet".to_owned()
                    } else if n.next.is_empty() {
                        format!("nothing: all {} workload(s) pass restricted", n.workloads)
                    } else {
                        format!("{} of {} workload(s) fail {}:", n.blocking, n.workloads, n.next)
                    };
                    let tone = if n.next.is_empty() { "muted" } else { "" };
                    let pinned = (!n.next_version.is_empty()).then(|| {
                        format!("or {} pinned to {}", n.next, n.next_version)
                    });
                    let more = n.blocking - i64::try_from(n.blockers.len()).unwrap_or(0);
                    let more = (more > 0).then(|| format!("and {more} more"));
                    let blockers = view! {
                        <span class=tone>{sentence}</span>
                        <ul class="compact">
                            {n.blockers.into_iter().map(|b| view! {
                                <li data-testid="readiness-blocker">
                                    <strong>{format!("{} {}", b.owner_kind, b.owner_name)}</strong>
                                    {format!(" — {}", b.checks.join("; "))}
                                </li>
                            }).collect_view()}
                        </ul>
                        <span class="muted small">{more}</span>
                    };
                    view! {
                        <tr data-testid="readiness-namespace" data-namespace=n.namespace.clone() data-ready=n.ready.clone()>
                            <th scope="row">{n.namespace.clone()}</th>
                            <td>
                                <span class=badge>{n.ready.clone()}</span>
                                <div class="muted small" data-testid="readiness-pinned">{pinned}</div>
                            </td>
                            <td>{blockers}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
    .into_any()
}

/// What Palisade holds of this cluster, kind by kind: how many, how fresh, and what it cannot read.
#[component]
fn Inventory(inventory: ClusterInventory) -> impl IntoView {
    let summary = inventory.summary();
    let when = |ms: i64| {
        if ms == 0 {
            "never".to_owned()
        } else {
            format_time(ms)
        }
    };
    view! {
        <p data-testid="inventory-summary">{summary}</p>
        <DataTable columns=&["Kind", "Objects", "Listed", "Last change", "Status"] testid="cluster-inventory">
            {inventory
                .kinds
                .into_iter()
                .map(|k| {
                    let (class, text) = if !k.needs.is_empty() {
                        ("badge bad", format!("Refused: needs {}", k.needs))
                    } else if !k.error.is_empty() {
                        ("badge waiting", k.error.clone())
                    } else if k.listed_ms == 0 {
                        ("muted", "waiting for the first list".to_owned())
                    } else {
                        ("badge good", "current".to_owned())
                    };
                    let title = (!k.needs.is_empty()).then(|| k.error.clone());
                    let status = view! { <span class=class title=title>{text}</span> };
                    view! {
                        <tr data-testid="inventory-kind" data-kind=k.kind.clone()>
                            <th scope="row">{k.kind.clone()}<span class="muted small">{format!(" {}", k.api_version)}</span></th>
                            <td data-testid="inventory-objects">{k.objects}</td>
                            <td>{when(k.listed_ms)}</td>
                            <td>{when(k.changed_ms)}</td>
                            <td>{status}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
}

/// The most recently seen open violations on this cluster.
#[component]
fn Latest(items: Vec<Violation>) -> impl IntoView {
    if items.is_empty() {
        return view! {
            <p class="empty-state" data-testid="cluster-no-violations">
                "Nothing open: this cluster has reported no violation that is still open."
            </p>
        }
        .into_any();
    }
    view! {
        <DataTable columns=&["Last seen", "Policy", "Action", "Resource", "Message"] testid="cluster-violations">
            {items
                .into_iter()
                .map(|v| {
                    let resource = if v.namespace.is_empty() {
                        format!("{} {}", v.resource, v.name)
                    } else {
                        format!("{} {}/{}", v.resource, v.namespace, v.name)
                    };
                    view! {
                        <tr data-testid="cluster-violation">
                            <td>{format_time(v.last_ms)}</td>
                            <td>{v.policy.clone()}</td>
                            <td>{v.action.as_str()}</td>
                            <td>{resource}</td>
                            <td>{v.message.clone()}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
    .into_any()
}

/// Environment, labels and drift repair, changed in place (rollout waves select clusters by the
/// first two, so a change here changes which waves pick this cluster from the next proposal on).
#[component]
fn EditForm(cluster: Cluster, on_saved: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let id = StoredValue::new(cluster.id.clone());
    let environment = RwSignal::new(cluster.environment.clone());
    let labels = RwSignal::new(labels_text(&cluster.labels));
    let reconcile = RwSignal::new(cluster.reconcile);
    let (message, set_message) = signal(None::<Result<String, String>>);
    let save = Action::new(move |_: &()| async move {
        let labels = match parse_labels(&labels.get_untracked()) {
            Ok(labels) => labels,
            Err(err) => {
                set_message.set(Some(Err(format!("Labels: {err}"))));
                return;
            }
        };
        let change = ClusterChange {
            environment: Some(environment.get_untracked().trim().to_owned()),
            labels: Some(labels),
            reconcile: Some(reconcile.get_untracked()),
            ..ClusterChange::default()
        };
        match update_cluster(id.get_value(), change).await {
            Ok(saved) => {
                set_message.set(Some(Ok(format!(
                    "Saved: {} cluster, labels {}.",
                    saved.environment,
                    if saved.labels.is_empty() {
                        "none".to_owned()
                    } else {
                        labels_text(&saved.labels)
                    }
                ))));
                on_saved();
            }
            Err(err) => set_message.set(Some(Err(err.to_string()))),
        }
    });
    let pending = save.pending();
    view! {
        <FormPanel id="edit-cluster" title="Environment and labels" testid="cluster-edit" on_submit=move || { save.dispatch(()); }>
            <p class="muted small">"Rollout waves choose clusters by environment and labels: a change here applies to rollouts proposed from now on."</p>
            <label>
                "Environment"
                <input type="text" name="environment" required bind:value=environment />
            </label>
            <label>
                "Labels"
                <input type="text" name="labels" bind:value=labels placeholder="team=payments, region=eu" />
            </label>
            <label class="inline">
                <input type="checkbox" name="reconcile" bind:checked=reconcile />
                "Re-apply what Palisade deployed when drift is found"
            </label>
            <button type="submit" class="button primary" disabled=move || pending.get()>
                {move || if pending.get() { "Saving…" } else { "Save" }}
            </button>
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <p class="success" role="status" data-testid="cluster-edit-result">{text}</p> }.into_any(),
                Err(text) => view! { <ErrorNote text testid="cluster-edit-error" /> }.into_any(),
            })}
        </FormPanel>
    }
}
