//! `/clusters`: every registered cluster with its health, version and capabilities, and the
//! form that registers a new one.

use leptos::prelude::*;
use leptos_meta::Title;

use super::super::{
    check_cluster, kubeconfig_contexts, list_cluster_page, parse_labels, register_cluster,
    remove_cluster, update_cluster, Cluster, ClusterChange, CredentialsInput, Health, NewCluster,
};
use crate::auth::guard::{needs, role_of, Allowed};
use crate::auth::{Action as Permission, Role};
use crate::error::AppError;
use crate::sections::CLUSTERS;
use crate::ui::{
    load_error, DataTable, EmptyState, ErrorNote, FormPanel, Loading, PageHeader, Pager,
    PanelHeader,
};

#[component]
pub fn ClustersPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let after = Memo::new(move |_| query.get().get("after").filter(|a| !a.is_empty()));
    let clusters = Resource::new(move || after.get(), list_cluster_page);
    // The same page's inventories, read beside it.
    let inventories = Resource::new(move || after.get(), crate::inventory::inventory_page);
    let me = crate::auth::guard::use_me();
    let refresh = move || clusters.refetch();

    view! {
        <Title text=CLUSTERS.title />
        <PageHeader title=CLUSTERS.title purpose=CLUSTERS.purpose />
        <section class="panel" aria-labelledby="clusters-heading">
            <PanelHeader id="clusters-heading" title="Registered clusters" refresh=refresh />
            <Transition fallback=|| view! { <Loading text="Loading clusters…" /> }>
                {move || Suspend::new(async move {
                    let role = role_of(&me.await);
                    let inventories = inventories.await.unwrap_or_default();
                    match clusters.await {
                        Ok(page) if page.total == 0 => {
                            view! { <EmptyState message=CLUSTERS.empty /> }.into_any()
                        }
                        Ok(page) => {
                            let shown = format!(
                                "Clusters {}–{} of {}",
                                page.first,
                                page.first + page.clusters.len() - 1,
                                page.total
                            );
                            let pager = (page.total > page.clusters.len()).then(|| view! {
                                <Pager
                                    label="Cluster pages"
                                    path="/clusters"
                                    filter=String::new()
                                    next=page.next.clone()
                                    shown
                                    words=("First clusters", "Next clusters")
                                />
                            });
                            view! {
                                <ClusterTable list=page.clusters inventories role on_change=refresh />
                                {pager}
                            }
                            .into_any()
                        }
                        Err(err) => {
                            load_error(err)
                        }
                    }
                })}
            </Transition>
        </section>
        <Allowed action=Permission::ManageClusters doing="Registering a cluster" testid="register-needs-role">
            <RegisterForm on_registered=refresh />
        </Allowed>
    }
}

#[component]
fn ClusterTable(
    list: Vec<Cluster>,
    inventories: Vec<crate::inventory::ClusterInventory>,
    role: Option<Role>,
    on_change: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <DataTable columns=&["Name", "Environment", "Health", "Kubernetes", "Inventory", "Capabilities", "Labels", "Actions"] testid="clusters-table">
                    {list
                        .into_iter()
                        .map(|cluster| {
                            let inventory = inventories.iter().find(|i| i.cluster_id == cluster.id).cloned();
                            view! { <ClusterRow cluster inventory role on_change /> }
                        })
                        .collect_view()}
                </DataTable>
    }
}

#[component]
fn ClusterRow(
    cluster: Cluster,
    /// What Palisade holds of the cluster (absent when it could not be read).
    inventory: Option<crate::inventory::ClusterInventory>,
    role: Option<Role>,
    on_change: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    // What this role may not do here, said on the control itself.
    let manage = needs(role, Permission::ManageClusters);
    let operate = needs(role, Permission::OperateRollout);
    let (may_manage, may_operate) = (manage.is_none(), operate.is_none());
    let (manage, operate) = (manage.unwrap_or_default(), operate.unwrap_or_default());
    let (error, set_error) = signal(None::<String>);
    let id = StoredValue::new(cluster.id.clone());
    let disabled = cluster.disabled;
    let run = move |result: Result<(), AppError>| match result {
        Ok(()) => {
            set_error.set(None);
            on_change();
        }
        Err(err) => set_error.set(Some(err.to_string())),
    };
    let check = Action::new(move |_: &()| async move {
        run(check_cluster(id.get_value()).await.map(|_| ()));
    });
    let toggle = Action::new(move |_: &()| async move {
        let change = ClusterChange {
            disabled: Some(!disabled),
            ..ClusterChange::default()
        };
        run(update_cluster(id.get_value(), change).await.map(|_| ()));
    });
    let remove = Action::new(move |_: &()| async move {
        run(remove_cluster(id.get_value()).await);
    });
    let (confirm, set_confirm) = signal(false);
    let (ingest, set_ingest) = signal(None::<crate::violations::IngestToken>);
    let rotate = Action::new(move |_: &()| async move {
        match crate::violations::rotate_ingest_token(id.get_value()).await {
            Ok(token) => {
                set_error.set(None);
                set_ingest.set(Some(token));
            }
            Err(err) => set_error.set(Some(err.to_string())),
        }
    });
    let (scanned, set_scanned) = signal(None::<String>);
    let scan = Action::new(move |_: &()| async move {
        match crate::violations::scan_clusters(Some(id.get_value())).await {
            Ok(scans) => {
                set_error.set(None);
                set_scanned.set(scans.first().map(|s| {
                    if s.errors.is_empty() {
                        format!(
                            "Scanned {} objects: {} findings, {} new, {} resolved.",
                            s.objects, s.findings, s.opened, s.resolved
                        )
                    } else {
                        format!("Scan incomplete: {}", s.errors.join("; "))
                    }
                }));
            }
            Err(err) => set_error.set(Some(err.to_string())),
        }
    });
    let health = if disabled {
        "disabled"
    } else {
        cluster.health.as_str()
    };
    let capabilities = super::capability_names(&cluster.capabilities);
    let labels = super::labels_text(&cluster.labels);
    let last_error = cluster.last_error.clone();
    let unreachable = cluster.health == Health::Unreachable && !disabled;
    view! {
        <tr data-testid="cluster-row" data-name=cluster.name.clone()>
            <th scope="row">
                <a href=format!("/clusters/{}", cluster.id) data-testid="cluster-link">{cluster.name.clone()}</a>
                <div class="muted small">{cluster.api_url.clone()}</div>
            </th>
            <td>{cluster.environment.clone()}</td>
            <td>
                <span class=format!("badge badge-{health}") data-testid="cluster-health">{health}</span>
                <Show when=move || unreachable>
                    <div class="error small">{last_error.clone()}</div>
                </Show>
            </td>
            <td data-testid="cluster-version">{cluster.k8s_version.clone()}</td>
            <td data-testid="cluster-inventory-cell" data-objects=inventory.as_ref().map(|i| i.objects().to_string())>
                {inventory.as_ref().map(|i| format!("{} objects", i.objects())).unwrap_or_else(|| "unknown".to_owned())}
                <div class="muted small">
                    {inventory.as_ref().map(|i| {
                        if i.unreadable().next().is_some() {
                            format!("{} kind(s) unreadable", i.unreadable().count())
                        } else if i.listed_ms() == 0 {
                            "still listing".to_owned()
                        } else {
                            format!("every kind listed (oldest list: {})", crate::time::format_time(i.listed_ms()))
                        }
                    }).unwrap_or_default()}
                </div>
            </td>
            <td data-testid="cluster-capabilities">
                {capabilities}
            </td>
            <td>{labels}</td>
            <td class="actions">
                <button type="button" class="button" disabled=disabled || !may_manage title=manage.clone() on:click=move |_| { check.dispatch(()); }>
                    "Check now"
                </button>
                <button type="button" class="button" disabled=!may_manage title=manage.clone() on:click=move |_| { toggle.dispatch(()); }>
                    {if disabled { "Enable" } else { "Disable" }}
                </button>
                <button type="button" class="button" disabled=disabled || !may_operate title=operate.clone() on:click=move |_| { scan.dispatch(()); } data-testid="cluster-scan">
                    "Scan now"
                </button>
                <button type="button" class="button" disabled=!may_manage title=manage.clone() on:click=move |_| { rotate.dispatch(()); } data-testid="cluster-ingest-token">
                    "New ingest token"
                </button>
                <Show
                    when=move || confirm.get()
                    fallback=move || {
                        let manage = manage.clone();
                        view! {
                            <button type="button" class="button danger" disabled=!may_manage title=manage on:click=move |_| set_confirm.set(true) data-testid="cluster-remove">
                                "Remove"
                            </button>
                        }
                    }
                >
                    <button type="button" class="button danger" on:click=move |_| { remove.dispatch(()); }>
                        "Confirm removal"
                    </button>
                    <button type="button" class="button" on:click=move |_| set_confirm.set(false)>
                        "Cancel"
                    </button>
                </Show>
                {move || error.get().map(|e| view! { <p class="error small" role="alert">{e}</p> })}
                {move || scanned.get().map(|text| view! { <p class="small" data-testid="cluster-scan-result">{text}</p> })}
                {move || ingest.get().map(|t| {
                    let kubeconfig = webhook_kubeconfig(&t.url, &t.token);
                    view! {
                        <div class="notice small" data-testid="cluster-ingest-shown">
                            <p>"The cluster's new ingest token, shown once (the previous one no longer works). Give the apiserver this webhook kubeconfig with "<code>"--audit-webhook-config-file"</code>" (an https address: clients send tokens over TLS only):"</p>
                            <pre class="code" tabindex="0" aria-label="The audit webhook kubeconfig">{kubeconfig.clone()}</pre>
                            <crate::ui::CopyButton text=kubeconfig what="Copy the audit webhook kubeconfig" testid="cluster-ingest-copy" />
                        </div>
                    }
                })}
            </td>
        </tr>
    }
}

/// The kubeconfig an apiserver's audit webhook needs to post to Palisade at `url` with `token`.
/// `url` is absolute when `http.public_url` is set; otherwise it is the path alone, and the
/// server line says what to put before it.
pub fn webhook_kubeconfig(url: &str, token: &str) -> String {
    let server = if url.starts_with("https://") || url.starts_with("http://") {
        url.to_owned()
    } else {
        format!("https://<Palisade's address, set http.public_url>{url}")
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: palisade\n    cluster:\n      server: {server}\ncontexts:\n  - name: palisade\n    context: {{ cluster: palisade, user: palisade }}\ncurrent-context: palisade\nusers:\n  - name: palisade\n    user:\n      token: {token}\n"
    )
}

#[component]
fn RegisterForm(on_registered: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let environment = RwSignal::new("dev".to_owned());
    let labels = RwSignal::new(String::new());
    let use_token = RwSignal::new(false);
    let kubeconfig = RwSignal::new(String::new());
    let context = RwSignal::new(String::new());
    let contexts = RwSignal::new(Vec::<String>::new());
    let api_url = RwSignal::new(String::new());
    let ca_pem = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let (message, set_message) = signal(None::<Result<String, String>>);

    let read_contexts = Action::new(move |_: &()| async move {
        match kubeconfig_contexts(kubeconfig.get_untracked()).await {
            Ok(found) => {
                context.set(found.first().cloned().unwrap_or_default());
                contexts.set(found);
                set_message.set(None);
            }
            Err(err) => set_message.set(Some(Err(err.to_string()))),
        }
    });
    let register = Action::new(move |_: &()| async move {
        let labels = match parse_labels(&labels.get_untracked()) {
            Ok(labels) => labels,
            Err(err) => {
                set_message.set(Some(Err(err.to_string())));
                return;
            }
        };
        let credentials = if use_token.get_untracked() {
            CredentialsInput::Token {
                api_url: api_url.get_untracked(),
                ca_pem: ca_pem.get_untracked(),
                token: token.get_untracked(),
            }
        } else {
            CredentialsInput::Kubeconfig {
                kubeconfig: kubeconfig.get_untracked(),
                context: Some(context.get_untracked()).filter(|c| !c.is_empty()),
            }
        };
        let input = NewCluster {
            name: name.get_untracked(),
            environment: environment.get_untracked(),
            labels,
            credentials,
        };
        match register_cluster(input).await {
            Ok(cluster) => {
                let text = match cluster.health {
                    Health::Reachable => format!(
                        "Registered {}: reachable, Kubernetes {}.",
                        cluster.name, cluster.k8s_version
                    ),
                    _ => format!(
                        "Registered {}, but it is not reachable: {}",
                        cluster.name, cluster.last_error
                    ),
                };
                set_message.set(Some(Ok(text)));
                // The secrets leave the page once they are stored.
                kubeconfig.set(String::new());
                token.set(String::new());
                name.set(String::new());
                on_registered();
            }
            Err(err) => set_message.set(Some(Err(err.to_string()))),
        }
    });
    let pending = register.pending();

    view! {
        <FormPanel id="register" title="Register a cluster" testid="register-cluster" on_submit=move || { register.dispatch(()); }>
                <label>
                    "Name"
                    <input type="text" name="name" required bind:value=name placeholder="prod-eu-1" />
                </label>
                <label>
                    "Environment"
                    <input type="text" name="environment" required bind:value=environment placeholder="dev, staging or prod" />
                </label>
                <label>
                    "Labels"
                    <input type="text" name="labels" bind:value=labels placeholder="team=payments, region=eu" />
                </label>
                <fieldset>
                    <legend>"Credentials"</legend>
                    <label class="inline">
                        <input type="radio" name="credential-kind" checked=move || !use_token.get() on:change=move |_| use_token.set(false) />
                        "Kubeconfig"
                    </label>
                    <label class="inline">
                        <input type="radio" name="credential-kind" checked=move || use_token.get() on:change=move |_| use_token.set(true) />
                        "API URL, CA and token"
                    </label>
                </fieldset>
                <Show
                    when=move || use_token.get()
                    fallback=move || view! {
                        <label>
                            "Kubeconfig (with everything embedded: kubectl config view --raw --minify --flatten)"
                            <textarea name="kubeconfig" rows="8" spellcheck="false" bind:value=kubeconfig></textarea>
                        </label>
                        <label>
                            "…or upload the kubeconfig file"
                            <input type="file" data-testid="kubeconfig-file" on:change=move |ev| crate::layout::read_file_into(ev, kubeconfig) />
                        </label>
                        <div class="row">
                            <button type="button" class="button" on:click=move |_| { read_contexts.dispatch(()); }>
                                "Read contexts"
                            </button>
                            <label class="inline">
                                "Context"
                                <select name="context" on:change=move |ev| context.set(event_target_value(&ev))>
                                    {move || contexts.get().into_iter().map(|c| {
                                        let selected = c == context.get();
                                        view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                        </div>
                    }
                >
                    <label>
                        "API server URL"
                        <input type="url" name="api-url" bind:value=api_url placeholder="https://203.0.113.10:6443" />
                    </label>
                    <label>
                        "CA certificate (PEM)"
                        <textarea name="ca" rows="4" spellcheck="false" bind:value=ca_pem></textarea>
                    </label>
                    <label>
                        "Bearer token"
                        <input type="password" name="token" autocomplete="off" bind:value=token />
                    </label>
                </Show>
                <p class="muted small">
                    "Credentials are encrypted with the server's secrets key before they are stored, and never shown again."
                </p>
                <button type="submit" class="button primary" disabled=move || pending.get()>
                    {move || if pending.get() { "Registering…" } else { "Register" }}
                </button>
                {move || message.get().map(|m| match m {
                    Ok(text) => view! { <p class="success" role="status" data-testid="register-result">{text}</p> }.into_any(),
                    Err(text) => view! { <ErrorNote text=text testid="register-error" /> }.into_any(),
                })}
        </FormPanel>
    }
}
