//! The Staging tab: the policy's mode per cluster, what would change, and drift.

use super::*;

#[component]
pub(super) fn StagingTab(id: String) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let staging = Resource::new(
        {
            let id = id.clone();
            move || (id.clone(), reload.get())
        },
        |(id, _)| get_staging(id),
    );
    let updated = RwSignal::new(None::<Result<Staging, AppError>>);
    let shown_mode = RwSignal::new(Mode::Audit);
    let change = Callback::new(move |(environment, mode): (String, Option<Mode>)| {
        let id = id.clone();
        spawn_local(async move {
            updated.set(Some(set_mode(id, environment, mode).await));
            reload.update(|n| *n += 1);
        });
    });
    let checked = RwSignal::new(None::<AppError>);
    let check = Callback::new(move |()| {
        spawn_local(async move {
            checked.set(check_drift().await.err());
            reload.update(|n| *n += 1);
        });
    });
    view! {
        {move || match updated.get() {
            Some(Err(err)) => load_error(err),
            _ => ().into_any(),
        }}
        {move || checked.get().map(load_error)}
        <Transition fallback=|| view! { <Loading text="Loading staging…" /> }>
            {move || Suspend::new(async move {
                match staging.await {
                    Err(err) => load_error(err),
                    Ok(staging) => view! { <StagingView staging change check shown_mode /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StagingView(
    staging: Staging,
    change: Callback<(String, Option<Mode>)>,
    check: Callback<()>,
    shown_mode: RwSignal<Mode>,
) -> impl IntoView {
    let id = staging.policy_id.clone();
    let manifests = StoredValue::new(staging.manifests.clone());
    let rights = StoredValue::new(Rights::here());
    view! {
        <section class="panel" aria-labelledby="modes-heading">
            <h2 id="modes-heading">"Intended mode per environment"</h2>
            <p class="muted">"Stage a policy audit → warn → enforce: audit records violations, warn also tells the client, enforce rejects. Rollouts will move clusters to these modes."</p>
            <DataTable columns=&["Environment", "Mode", "Set"] testid="modes">
                    {staging.modes.iter().map(|m| {
                        let environment = m.environment.clone();
                        let current = m.mode.map(|m| m.as_str().to_owned()).unwrap_or_default();
                        view! {
                            <tr>
                                <th scope="row">{m.environment.clone()}</th>
                                <td>
                                    <select
                                        aria-label=format!("Mode in {}", m.environment)
                                        data-testid=format!("mode-{}", m.environment)
                                        prop:value=current
                                        disabled=rights.with_value(|r| r.edit.is_some())
                                        title=rights.with_value(|r| r.edit.clone().unwrap_or_default())
                                        on:change=move |ev| change.run((environment.clone(), Mode::parse(&event_target_value(&ev))))
                                    >
                                        <option value="">"not running"</option>
                                        {Mode::ALL.iter().map(|mode| view! { <option value=mode.as_str()>{mode.as_str()}</option> }).collect_view()}
                                    </select>
                                </td>
                                <td class="muted">{match (&m.updated_by_name, m.updated_ms) {
                                    (Some(by), Some(at)) => format!("by {by} at {}", format_time(at)),
                                    _ => String::new(),
                                }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </DataTable>
            <p class="muted">{format!("Environments shown by default: {}. Others appear once a mode is set for them through the API.", ENVIRONMENTS.join(", "))}</p>
        </section>
        <section class="panel" aria-labelledby="live-heading">
            <h2 id="live-heading">"What is live where"</h2>
            {if staging.live.is_empty() {
                view! { <p class="empty-state" data-testid="no-rollouts">"This policy runs on no cluster yet. Once a rollout of it is applied, each cluster's version and mode will show here."</p> }.into_any()
            } else {
                view! {
                    <DataTable columns=&["Cluster", "Environment", "Version", "Mode", "Drift"] testid="live">
                            {staging.live.iter().map(|d| {
                                let (badge, text) = crate::rollouts::drift_badge(d.drift, &d.drift_detail);
                                let checked = (d.checked_ms > 0).then(|| format!(" (checked {})", format_time(d.checked_ms)));
                                view! {
                                    <tr data-testid="live-row" data-cluster=d.cluster.clone()>
                                        <th scope="row">{d.cluster.clone()}</th>
                                        <td>{d.environment.clone()}</td>
                                        <td>{format!("v{}", d.version)}</td>
                                        <td>{d.mode.as_str()}</td>
                                        <td><span class=badge data-testid="drift">{text}</span><span class="muted">{checked}</span></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </DataTable>
                    <p>
                        <button type="button" class="button small" data-testid="check-drift" disabled=rights.with_value(|r| r.operate.is_some()) title=rights.with_value(|r| r.operate.clone().unwrap_or_default()) on:click=move |_| check.run(())>"Check drift now"</button>
                    </p>
                }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="manifests-heading">
            <h2 id="manifests-heading">{format!("Manifests of version {}", staging.version)}</h2>
            <p class="muted">"Exactly what each engine receives in each mode."</p>
            <div class="tabs" role="tablist" aria-label="Mode">
                {Mode::ALL.into_iter().map(|mode| view! {
                    <button type="button" role="tab" data-testid=format!("manifests-{}", mode.as_str()) aria-selected=move || (shown_mode.get() == mode).to_string() class:active=move || shown_mode.get() == mode on:click=move |_| shown_mode.set(mode)>{mode.as_str()}</button>
                }).collect_view()}
            </div>
            {move || {
                let mode = shown_mode.get();
                let yaml = manifests.with_value(|all| all.iter().find(|m| m.mode == mode).map(|m| m.yaml.clone()));
                let href = format!("/api/v1/policies/{}/manifests/{}", id, mode.as_str());
                match yaml {
                    Some(Ok(yaml)) => view! {
                        <p><a class="button" href=href download="" data-testid="download-manifests">{format!("Download {} YAML", mode.as_str())}</a></p>
                        <pre class="code manifests" data-testid="manifests" tabindex="0" aria-label="The manifests of this mode">{yaml}</pre>
                    }.into_any(),
                    Some(Err(why)) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
                    None => ().into_any(),
                }
            }}
        </section>
    }
}
