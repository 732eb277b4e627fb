//! `/rollouts`: every rollout, and the form that proposes one.

use super::*;
use crate::auth::guard::Allowed;
use crate::auth::Action as Permission;
use crate::impact::watch::{ImpactProgress, ImpactWatch};

#[component]
pub fn RolloutsPage() -> impl IntoView {
    let rollouts = Resource::new(|| (), |_| list_rollouts(None));

    view! {
        <Title text=ROLLOUTS.title />
        <PageHeader title=ROLLOUTS.title purpose=ROLLOUTS.purpose />
        <Allowed action=Permission::ProposeRollout doing="Proposing a rollout" testid="propose-needs-role">
            <ProposeForm />
        </Allowed>
        <section class="panel" aria-labelledby="rollouts-heading">
            <PanelHeader id="rollouts-heading" title="All rollouts" refresh=move || rollouts.refetch() />
            <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading rollouts…"</p> }>
                {move || Suspend::new(async move {
                    match rollouts.await {
                        Ok(list) if list.is_empty() => {
                            view! { <EmptyState message=ROLLOUTS.empty /> }.into_any()
                        }
                        Ok(list) => view! { <RolloutTable list /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RolloutTable(list: Vec<RolloutSummary>) -> impl IntoView {
    view! {
        <DataTable columns=&["Policy", "Version", "Mode", "Kind", "State", "Progress", "Proposed by", "Created"] testid="rollouts-table">
                    {list
                        .into_iter()
                        .map(|r| {
                            let href = format!("/rollouts/{}", r.id);
                            let state = r.state.as_str();
                            view! {
                                <tr data-testid="rollout-row" data-id=r.id.clone()>
                                    <th scope="row"><a href=href>{r.policy_name.clone()}</a></th>
                                    <td>{version_label(r.version)}</td>
                                    <td>{r.mode.as_str()}</td>
                                    <td>{r.kind.as_str()}</td>
                                    <td>
                                        <span class=format!("badge {}", rollout_tone(r.state)) data-state=state>
                                            {state}
                                        </span>
                                    </td>
                                    <td>{format!("{}/{}", r.applied, r.steps)}</td>
                                    <td>{r.proposer_name.clone()}</td>
                                    <td>{format_time(r.created_ms)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </DataTable>
    }
}

#[component]
fn ProposeForm() -> impl IntoView {
    let policy = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    let mode = RwSignal::new(Mode::Audit.as_str().to_owned());
    let namespaces = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let drafts = WaveDrafts::new(default_waves());
    // What the server refused, at the wave its message names.
    let refused = RwSignal::new(None::<(usize, String)>);
    let error = RwSignal::new(None::<String>);
    // The clusters the waves preview: read once the page runs in the browser (the form works only
    // there), so rendering the page on the server does not read and draw a whole fleet.
    let in_browser = crate::ui::in_browser();
    let clusters = Resource::new(
        move || in_browser.get(),
        |load| async move {
            if load {
                wave_targets().await.map(Some)
            } else {
                Ok(None)
            }
        },
    );
    let navigate = use_navigate();
    // What the rollout would do, judged on the server from each wave's inventories; an `enforce`
    // that would deny needs the acknowledgement below before the server takes it.
    let impact = RwSignal::new(None::<Result<RolloutImpact, String>>);
    let acknowledge = RwSignal::new(false);
    let watch = ImpactWatch::polling();

    // The proposal the form describes now (or why it is not one yet).
    let current = move || {
        let targets: Option<Vec<Target>> = clusters.get_untracked().and_then(Result::ok).flatten();
        proposal(
            &policy.get_untracked(),
            &version.get_untracked(),
            &mode.get_untracked(),
            &namespaces.get_untracked(),
            &note.get_untracked(),
            &drafts.inputs_untracked(),
            targets.as_deref(),
        )
    };

    let check = Action::new(move |_: &()| {
        let input = current();
        async move {
            acknowledge.set(false);
            let found = match input {
                Ok(input) => {
                    let found = proposal_impact(input, watch.start()).await;
                    watch.finish();
                    found.map_err(|err| err.to_string())
                }
                Err(text) => Err(text),
            };
            impact.set(Some(found));
        }
    });
    let checking = check.pending();

    let propose = Action::new(move |_: &()| {
        let navigate = navigate.clone();
        let waves = drafts.inputs_untracked();
        let input = current().map(|mut input| {
            input.acknowledge_denials = acknowledge.get_untracked();
            input
        });
        refused.set(None);
        async move {
            let Ok(input) = input.map_err(|text| error.set(Some(text))) else {
                return;
            };
            match propose_rollout(input).await {
                Ok(rollout) => {
                    error.set(None);
                    navigate(
                        &format!("/rollouts/{}", rollout.summary.id),
                        Default::default(),
                    );
                }
                Err(err) => {
                    let text = err.to_string();
                    if let Some(wave) = wave_named_in(&text, &waves) {
                        refused.set(Some((wave, text.clone())));
                    }
                    // Refused for what it would deny: show the impact, with the acknowledgement.
                    if text.contains("acknowledge_denials:") {
                        check.dispatch(());
                    }
                    error.set(Some(text));
                }
            }
        }
    });
    let pending = propose.pending();
    // A refusal was about the waves as they were: the first edit after it makes it stale (the
    // marks at each wave stay live).
    Effect::new(move |previous: Option<()>| {
        drafts.inputs();
        if previous.is_some() {
            refused.set(None);
            error.set(None);
        }
    });
    // An impact, and its acknowledgement, hold for the proposal as it was: any edit drops them.
    Effect::new(move |previous: Option<()>| {
        drafts.inputs();
        policy.track();
        version.track();
        mode.track();
        namespaces.track();
        if previous.is_some() {
            impact.set(None);
            acknowledge.set(false);
        }
    });

    view! {
        <FormPanel id="propose" title="Propose a rollout" testid="propose-rollout" on_submit=move || { propose.dispatch(()); }>
                <div class="row">
                    <PolicyPicker value=policy testid="propose-policy" purpose="to roll it out" />
                    <label>
                        "Version"
                        <input
                            type="number"
                            name="version"
                            min="1"
                            step="1"
                            placeholder="current"
                            data-testid="propose-version"
                            bind:value=version
                        />
                    </label>
                    <label>
                        "Mode"
                        <select
                            name="mode"
                            data-testid="propose-mode"
                            bind:value=mode
                        >
                            {Mode::ALL
                                .iter()
                                .map(|m| view! { <option value=m.as_str()>{m.as_str()}</option> })
                                .collect_view()}
                        </select>
                    </label>
                </div>
                <label>
                    "Namespaces"
                    <input
                        type="text"
                        name="namespaces"
                        placeholder="payments, web"
                        data-testid="propose-namespaces"
                        bind:value=namespaces
                    />
                    <span class="muted small">
                        "Comma separated. Only Pod Security policies use them: these namespaces get the labels."
                    </span>
                </label>
                <label>
                    "Note"
                    <input
                        type="text"
                        name="note"
                        placeholder="why, and what to watch"
                        data-testid="propose-note"
                        bind:value=note
                    />
                </label>
                <Transition fallback=|| view! { <Loading text="Loading clusters…" /> }>
                    {move || Suspend::new(async move {
                        match clusters.await {
                            Ok(Some(list)) => {
                                view! { <WaveEditor drafts clusters=list refused /> }.into_any()
                            }
                            Ok(None) => view! { <Loading text="Loading clusters…" /> }.into_any(),
                            Err(err) => load_error(err),
                        }
                    })}
                </Transition>
                <div class="impact-check" data-testid="propose-impact">
                    <div class="row">
                        <button type="button" class="button" data-testid="propose-impact-check" disabled=move || checking.get() on:click=move |_| { check.dispatch(()); }>
                            "Preview impact"
                        </button>
                        <span class="muted small">
                            "What this rollout would deny, warn of and audit on each wave's clusters, judged from their inventories."
                        </span>
                    </div>
                    <ImpactProgress watch testid="propose-impact-progress" />
                    {move || impact.get().map(|found| match found {
                        Ok(impact) => {
                            let (text, tone) = super::impact::headline(&impact, RolloutKind::Apply);
                            let denied = impact.denied;
                            let ask = impact.mode == Mode::Enforce && denied > 0;
                            view! {
                                <p class=format!("review-evidence {tone}") data-testid="propose-impact-summary">{text}</p>
                                <super::impact::ImpactTable impact testid="propose-impact-table" />
                                {ask.then(|| view! {
                                    <label class="inline acknowledge" data-testid="propose-acknowledge-label">
                                        <input
                                            type="checkbox"
                                            name="acknowledge_denials"
                                            data-testid="propose-acknowledge"
                                            bind:checked=acknowledge
                                        />
                                        {format!(
                                            " I have reviewed this impact: enforcing would deny {denied} running workload{}.",
                                            if denied == 1 { "" } else { "s" }
                                        )}
                                    </label>
                                })}
                            }
                            .into_any()
                        }
                        Err(text) => view! { <ErrorNote text testid="propose-impact-error" /> }.into_any(),
                    })}
                </div>
                <button type="submit" class="button primary" disabled=move || pending.get()>
                    "Propose rollout"
                </button>
                {move || error.get().map(|text| view! {
                    <ErrorNote text=text testid="propose-error" />
                })}
        </FormPanel>
    }
}
