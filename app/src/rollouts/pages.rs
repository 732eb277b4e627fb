//! The rollout pages: `/rollouts` (the list and the form that proposes one) and `/rollouts/:id`
//! (summary, waves, decisions, per-cluster steps and the controls).
//!
//! A rollout that is still moving is fetched again every two seconds in the browser, inside a
//! `Transition`, so its progress shows without reloading and without flashing. The controls sit
//! outside that `Transition` and follow only the rollout's state, so a comment being typed keeps
//! its focus while the tables refresh; they appear once the page is interactive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde::{Deserialize, Serialize};

use super::{
    decide_rollout, get_rollout, list_rollouts, operate_rollout, propose_rollout, Decision,
    NewRollout, NewWave, Operation, Rollout, RolloutKind, RolloutState, RolloutSummary, Selector,
    Step, StepState, Wave, WaveState,
};
use crate::audit::pages::format_ms;
use crate::error::AppError;
use crate::policies::{get_test_run, list_policies, CaseStatus, Mode, PolicyFilter, TestRun};
use crate::sections::{EmptyState, ROLLOUTS};
use crate::staging::{get_staging, Staging};

/// What the waves field holds at first: one wave per environment, each behind one approval.
pub const DEFAULT_WAVES: &str =
    "dev: environment=dev; approvals=1\nprod: environment=prod; approvals=1";

/// How often a rollout that is still moving is fetched again.
#[cfg(feature = "hydrate")]
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Parsing the form

/// Reads the waves field: one wave per line,
/// `name: key=value, key=value; approvals=N; soak=SECONDS; threshold=N`.
///
/// The key `environment` picks the clusters of an environment, every other key a cluster label;
/// no pairs at all takes every cluster. Everything after the first `;` is optional (one approval,
/// no soak, no threshold), and so is the name (the server then names the wave). Blank lines are
/// skipped; errors name the line.
pub fn parse_waves(text: &str) -> Result<Vec<NewWave>, String> {
    let mut waves = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let wave = parse_wave(line).map_err(|err| format!("Waves, line {}: {err}", index + 1))?;
        waves.push(wave);
    }
    if waves.is_empty() {
        return Err("Add at least one wave, one per line.".to_owned());
    }
    Ok(waves)
}

fn parse_wave(line: &str) -> Result<NewWave, String> {
    let mut parts = line.split(';');
    let head = parts.next().unwrap_or_default();
    let (name, pairs) = match head.split_once(':') {
        Some((name, pairs)) => (name.trim(), pairs),
        None => ("", head),
    };
    let mut selector = Selector::default();
    for pair in pairs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = key_value(pair)?;
        if key == "environment" {
            if selector.environment.is_some() {
                return Err("environment is given twice".to_owned());
            }
            selector.environment = Some(value.to_owned());
        } else if selector
            .labels
            .insert(key.to_owned(), value.to_owned())
            .is_some()
        {
            return Err(format!("the label {key} is given twice"));
        }
    }
    let mut wave = NewWave {
        name: name.to_owned(),
        selector,
        approvals: 1,
        soak_secs: 0,
        violation_threshold: None,
    };
    for setting in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = key_value(setting)?;
        match key {
            "approvals" => wave.approvals = number(key, value)?,
            "soak" => wave.soak_secs = number(key, value)?,
            "threshold" => wave.violation_threshold = Some(number(key, value)?),
            other => {
                return Err(format!(
                    "unknown setting `{other}` (use approvals=N, soak=SECONDS or threshold=N)"
                ))
            }
        }
    }
    Ok(wave)
}

fn key_value(text: &str) -> Result<(&str, &str), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() => {
            Ok((key.trim(), value.trim()))
        }
        _ => Err(format!(
            "`{text}` is not key=value (write a wave as name: environment=dev; approvals=1)"
        )),
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key} must be a whole number, not `{value}`"))
}

/// The proposal the form describes, or what is wrong with it.
fn proposal(
    policy: &str,
    version: &str,
    mode: &str,
    namespaces: &str,
    note: &str,
    waves: &str,
) -> Result<NewRollout, String> {
    if policy.trim().is_empty() {
        return Err("Choose a policy.".to_owned());
    }
    let version = match version.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(number) if number > 0 => Some(number),
            _ => {
                return Err(format!(
                    "The version must be a version number such as 3, not `{text}`; leave it empty for the current version."
                ))
            }
        },
    };
    let mode = Mode::parse(mode).ok_or_else(|| format!("Unknown mode `{mode}`."))?;
    Ok(NewRollout {
        policy: policy.trim().to_owned(),
        version,
        mode,
        waves: parse_waves(waves)?,
        namespaces: namespaces
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        note: note.trim().to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// Small views

/// The badge colour of a state: `good`, `bad`, `muted`, `active` or `waiting`.
fn rollout_tone(state: RolloutState) -> &'static str {
    match state {
        RolloutState::PendingApproval | RolloutState::Paused => "waiting",
        RolloutState::Applying => "active",
        RolloutState::Applied => "good",
        RolloutState::Failed | RolloutState::Rejected => "bad",
        RolloutState::Aborted | RolloutState::RolledBack => "muted",
    }
}

fn wave_tone(state: WaveState) -> &'static str {
    match state {
        WaveState::Waiting | WaveState::Skipped => "muted",
        WaveState::Approval => "waiting",
        WaveState::Applying | WaveState::Soaking => "active",
        WaveState::Done => "good",
        WaveState::Failed => "bad",
    }
}

fn step_tone(state: StepState) -> &'static str {
    match state {
        StepState::Pending | StepState::Skipped => "muted",
        StepState::Running => "active",
        StepState::Applied => "good",
        StepState::Failed => "bad",
    }
}

/// `v3`; a removal has no version.
fn version_label(version: i64) -> String {
    if version > 0 {
        format!("v{version}")
    } else {
        "—".to_owned()
    }
}

fn soak_label(secs: i64) -> String {
    match secs {
        s if s <= 0 => "none".to_owned(),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn threshold_label(threshold: Option<i64>) -> String {
    match threshold {
        Some(n) => {
            format!("at most {n} new violations (checked once violations are collected)")
        }
        None => "none".to_owned(),
    }
}

fn wave_name(waves: &[Wave], position: i64) -> String {
    waves
        .iter()
        .find(|w| w.position == position)
        .map(|w| w.name.clone())
        .unwrap_or_else(|| format!("wave {position}"))
}

fn error_view(err: AppError) -> AnyView {
    view! { <p class="error" role="alert" data-testid="load-error">{err.to_string()}</p> }
        .into_any()
}

// ---------------------------------------------------------------------------------------------
// /rollouts

#[component]
pub fn RolloutsPage() -> impl IntoView {
    let rollouts = Resource::new(|| (), |_| list_rollouts(None));

    view! {
        <Title text=ROLLOUTS.title />
        <header class="page-header">
            <h1>{ROLLOUTS.title}</h1>
            <p class="purpose">{ROLLOUTS.purpose}</p>
        </header>
        <ProposeForm />
        <section class="panel" aria-labelledby="rollouts-heading">
            <div class="panel-header">
                <h2 id="rollouts-heading">"All rollouts"</h2>
                <button type="button" class="button" on:click=move |_| rollouts.refetch()>
                    "Refresh"
                </button>
            </div>
            <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading rollouts…"</p> }>
                {move || Suspend::new(async move {
                    match rollouts.await {
                        Ok(list) if list.is_empty() => {
                            view! { <EmptyState message=ROLLOUTS.empty /> }.into_any()
                        }
                        Ok(list) => view! { <RolloutTable list /> }.into_any(),
                        Err(err) => error_view(err),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RolloutTable(list: Vec<RolloutSummary>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="rollouts-table">
                <thead>
                    <tr>
                        <th scope="col">"Policy"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Mode"</th>
                        <th scope="col">"Kind"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Proposed by"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>
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
                                    <td>{format_ms(r.created_ms)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn ProposeForm() -> impl IntoView {
    let policies = Resource::new(|| (), |_| list_policies(PolicyFilter::default()));
    let policy = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    let mode = RwSignal::new(Mode::Audit.as_str().to_owned());
    let namespaces = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let waves = RwSignal::new(DEFAULT_WAVES.to_owned());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();

    let propose = Action::new(move |_: &()| {
        let navigate = navigate.clone();
        let input = proposal(
            &policy.get_untracked(),
            &version.get_untracked(),
            &mode.get_untracked(),
            &namespaces.get_untracked(),
            &note.get_untracked(),
            &waves.get_untracked(),
        );
        async move {
            let input = match input {
                Ok(input) => input,
                Err(text) => {
                    error.set(Some(text));
                    return;
                }
            };
            match propose_rollout(input).await {
                Ok(rollout) => {
                    error.set(None);
                    navigate(
                        &format!("/rollouts/{}", rollout.summary.id),
                        Default::default(),
                    );
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let pending = propose.pending();

    view! {
        <section class="panel" aria-labelledby="propose-heading">
            <h2 id="propose-heading">"Propose a rollout"</h2>
            <form
                class="form"
                data-testid="propose-rollout"
                on:submit=move |ev| {
                    ev.prevent_default();
                    propose.dispatch(());
                }
            >
                <div class="row">
                    <Transition fallback=|| view! { <p class="muted">"Loading policies…"</p> }>
                        {move || Suspend::new(async move {
                            match policies.await {
                                Ok(list) if list.is_empty() => view! {
                                    <p class="muted" data-testid="no-policies">
                                        "No policies yet: "<a href="/policies/new">"create one"</a>" to roll it out."
                                    </p>
                                }.into_any(),
                                Ok(list) => view! {
                                    <label>
                                        "Policy"
                                        <select
                                            name="policy"
                                            required
                                            data-testid="propose-policy"
                                            prop:value=move || policy.get()
                                            on:change=move |ev| policy.set(event_target_value(&ev))
                                        >
                                            <option value="">"Choose a policy"</option>
                                            {list
                                                .into_iter()
                                                .map(|p| view! { <option value=p.id.clone()>{p.name.clone()}</option> })
                                                .collect_view()}
                                        </select>
                                    </label>
                                }.into_any(),
                                Err(err) => error_view(err),
                            }
                        })}
                    </Transition>
                    <label>
                        "Version"
                        <input
                            type="number"
                            name="version"
                            min="1"
                            step="1"
                            placeholder="current"
                            data-testid="propose-version"
                            prop:value=move || version.get()
                            on:input=move |ev| version.set(event_target_value(&ev))
                        />
                    </label>
                    <label>
                        "Mode"
                        <select
                            name="mode"
                            data-testid="propose-mode"
                            prop:value=move || mode.get()
                            on:change=move |ev| mode.set(event_target_value(&ev))
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
                        prop:value=move || namespaces.get()
                        on:input=move |ev| namespaces.set(event_target_value(&ev))
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
                        prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    "Waves"
                    <textarea
                        name="waves"
                        class="code"
                        rows="4"
                        spellcheck="false"
                        data-testid="propose-waves"
                        prop:value=move || waves.get()
                        on:input=move |ev| waves.set(event_target_value(&ev))
                    >
                        {DEFAULT_WAVES}
                    </textarea>
                    <span class="muted small">
                        "One wave per line, in order: name: key=value, key=value; approvals=N; soak=SECONDS; threshold=N. "
                        "environment=… takes the clusters of an environment, any other key a cluster label, and no pairs every cluster. "
                        "Everything after the first ; is optional (one approval, no soak, no threshold). "
                        "Approvals come from people other than the proposer."
                    </span>
                </label>
                <button type="submit" class="button primary" disabled=move || pending.get()>
                    "Propose rollout"
                </button>
                {move || error.get().map(|text| view! {
                    <p class="error" role="alert" data-testid="propose-error">{text}</p>
                })}
            </form>
        </section>
    }
}

// ---------------------------------------------------------------------------------------------
// /rollouts/:id

#[component]
pub fn RolloutPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    // Bumped to fetch again: by the timer while the rollout moves, and after each control.
    let tick = RwSignal::new(0u64);
    // The newest tick whose fetch came back, so the timer never stacks requests on a slow server.
    let landed = Arc::new(AtomicU64::new(0));
    let fetched = Arc::clone(&landed);
    let rollout = Resource::new(
        move || (id.get(), tick.get()),
        move |(id, n)| {
            let landed = Arc::clone(&fetched);
            async move {
                let result = get_rollout(id).await;
                landed.fetch_max(n, Ordering::Relaxed);
                result
            }
        },
    );
    // The state last seen for which rollout; effects run only in the browser, after hydration.
    let seen = RwSignal::new(None::<(String, RolloutState)>);
    Effect::new(move |_| {
        if let Some(Ok(r)) = rollout.get() {
            let now = Some((r.summary.id, r.summary.state));
            if seen.get_untracked() != now {
                seen.set(now);
            }
        }
    });
    let state = Memo::new(move |_| {
        seen.get()
            .filter(|(rollout_id, _)| *rollout_id == id.get())
            .map(|(_, state)| state)
    });
    let refresh = move || tick.update(|n| *n += 1);

    #[cfg(feature = "hydrate")]
    {
        let poll = move || {
            let moving = state
                .try_get_untracked()
                .flatten()
                .is_some_and(|s| !s.is_final());
            let idle = tick
                .try_get_untracked()
                .is_some_and(|n| n <= landed.load(Ordering::Relaxed));
            if moving && idle {
                tick.try_update(|n| *n += 1);
            }
        };
        if let Ok(handle) = set_interval_with_handle(poll, POLL) {
            on_cleanup(move || handle.clear());
        }
    }

    view! {
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading the rollout…"</p> }>
            {move || Suspend::new(async move {
                match rollout.await {
                    Ok(r) => view! { <RolloutSummaryView summary=r.summary namespaces=r.namespaces /> }.into_any(),
                    Err(err) => view! {
                        <Title text="Rollout" />
                        <header class="page-header">
                            <p class="muted small"><a href="/rollouts">"Rollouts"</a></p>
                            <h1>"Rollout"</h1>
                        </header>
                        {error_view(err)}
                    }.into_any(),
                }
            })}
        </Transition>
        <Review id />
        <Controls id state refresh />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match rollout.await {
                    Ok(r) => view! { <RolloutProgress rollout=r /> }.into_any(),
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RolloutSummaryView(summary: RolloutSummary, namespaces: Vec<String>) -> impl IntoView {
    let s = summary;
    let heading = format!(
        "{} {} → {}",
        s.policy_name,
        version_label(s.version),
        s.mode.as_str()
    );
    let kind = match s.kind {
        RolloutKind::Apply => "apply: move the policy version to the mode",
        RolloutKind::Rollback => "rollback: put back what each cluster had before",
        RolloutKind::Remove => "remove: take the policy off the clusters",
    };
    let parent = (!s.parent_id.is_empty()).then(|| {
        let href = format!("/rollouts/{}", s.parent_id);
        view! { " of "<a href=href data-testid="rollout-parent">"the earlier rollout"</a> }
    });
    let state = s.state.as_str();
    let namespaces = (!namespaces.is_empty()).then(|| {
        view! {
            <dt>"Namespaces"</dt>
            <dd>{namespaces.join(", ")}</dd>
        }
    });
    let note = (!s.note.is_empty()).then(|| {
        view! {
            <dt>"Note"</dt>
            <dd>{s.note.clone()}</dd>
        }
    });

    view! {
        <Title text=format!("Rollout of {}", s.policy_name) />
        <header class="page-header">
            <p class="muted small"><a href="/rollouts">"Rollouts"</a>" / "{s.id.clone()}</p>
            <h1 data-testid="rollout-title">{heading}</h1>
            <p class="purpose">{ROLLOUTS.purpose}</p>
        </header>
        <section class="panel" aria-labelledby="summary-heading">
            <div class="panel-header">
                <h2 id="summary-heading">"Summary"</h2>
                <span class=format!("badge {}", rollout_tone(s.state)) data-testid="rollout-state">{state}</span>
            </div>
            <dl class="facts">
                <dt>"Policy"</dt>
                <dd><a href=format!("/policies/{}", s.policy_id)>{s.policy_name.clone()}</a></dd>
                <dt>"Version"</dt>
                <dd>{version_label(s.version)}</dd>
                <dt>"Mode"</dt>
                <dd>{s.mode.as_str()}</dd>
                <dt>"Kind"</dt>
                <dd>{kind}{parent}</dd>
                <dt>"Progress"</dt>
                <dd data-testid="rollout-progress">{format!("{}/{} cluster steps applied", s.applied, s.steps)}</dd>
                <dt>"Proposed by"</dt>
                <dd>{format!("{} at {}", s.proposer_name, format_ms(s.created_ms))}</dd>
                <dt>"Last change"</dt>
                <dd>{format_ms(s.updated_ms)}</dd>
                {namespaces}
                {note}
            </dl>
        </section>
    }
}

/// What the review panel shows of an `apply` rollout: the stored test run of its version and the
/// staging view of its policy (the rendered manifests of the policy's current version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReviewData {
    summary: RolloutSummary,
    tests: Result<Option<TestRun>, AppError>,
    staging: Result<Staging, AppError>,
    evidence: Result<crate::violations::Evidence, AppError>,
}

/// What an approver needs to decide, loaded once per rollout (outside the refetching
/// `Transition`, so it does not reload every two seconds). Only `apply` rollouts get it: rollbacks
/// and removals put back or take off what was reviewed before, and the summary says which.
#[component]
fn Review(id: Memo<String>) -> impl IntoView {
    let review = Resource::new(
        move || id.get(),
        |id| async move {
            let summary = get_rollout(id).await?.summary;
            if summary.kind != RolloutKind::Apply {
                return Ok(None);
            }
            let tests = get_test_run(summary.policy_id.clone(), summary.version).await;
            let staging = get_staging(summary.policy_id.clone()).await;
            let evidence = crate::violations::rollout_evidence(summary.id.clone(), 7).await;
            Ok::<_, AppError>(Some(ReviewData {
                summary,
                tests,
                staging,
                evidence,
            }))
        },
    );

    view! {
        <Suspense fallback=|| view! { <p class="muted" data-testid="review-loading">"Loading the review…"</p> }>
            {move || Suspend::new(async move {
                match review.await {
                    Ok(Some(data)) => view! { <ReviewPanel data /> }.into_any(),
                    // Not an apply; or the rollout did not load, which the summary reports.
                    Ok(None) | Err(_) => ().into_any(),
                }
            })}
        </Suspense>
    }
}

/// `3 passed, 0 failed`, with skipped cases only when there are any.
fn run_counts(run: &TestRun) -> String {
    let s = &run.summary;
    let skipped = if s.skipped > 0 {
        format!(", {} skipped", s.skipped)
    } else {
        String::new()
    };
    format!("{} passed, {} failed{skipped}", s.passed, s.failed)
}

#[component]
fn ReviewPanel(data: ReviewData) -> impl IntoView {
    let ReviewData {
        summary: s,
        tests,
        staging,
        evidence,
    } = data;
    let evidence_view = match evidence {
        Ok(e) => {
            let tone = if e.clean() { "good" } else { "bad" };
            let workloads = (!e.workloads.is_empty()).then(|| {
                view! {
                    <ul class="review-workloads" data-testid="review-workloads">
                        {e.workloads.iter().map(|v| view! {
                            <li>
                                {format!("{} · {} {}/{} · {} ×{}", v.cluster_name, v.resource, v.namespace, v.name, v.action.as_str(), v.count)}
                                <span class="muted">{format!(" {}", v.message)}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }
            });
            view! {
                <p class=format!("review-evidence {tone}") data-testid="review-evidence">{e.summary()}</p>
                {workloads}
                <p class="muted small">
                    <a href=format!("/violations?policy={}&days={}", e.policy_id, e.days)>"All of this policy's violations"</a>
                </p>
            }
            .into_any()
        }
        Err(err) => view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any(),
    };
    let version = s.version;
    let mode = s.mode;

    let tests_view = match tests {
        Ok(None) => view! {
            <p class="review-tests missing" data-testid="review-tests">
                {format!("No test run stored for version {version}.")}
            </p>
            <p class="muted small">"Run the policy's tests on its page before approving."</p>
        }
        .into_any(),
        Ok(Some(run)) => {
            let tone = if run.summary.failed > 0 || run.error.is_some() {
                "bad"
            } else {
                "good"
            };
            let error = run.error.clone().map(|text| {
                view! { <p class="error">{format!("The cases could not run: {text}")}</p> }
            });
            let failures = run
                .results
                .iter()
                .filter(|r| r.status == CaseStatus::Failed)
                .map(|r| {
                    view! { <li><strong>{r.name.clone()}</strong>": "{r.reason.clone()}</li> }
                })
                .collect::<Vec<_>>();
            let failures = (!failures.is_empty())
                .then(|| view! { <ul class="review-failures" data-testid="review-failures">{failures}</ul> });
            view! {
                <p class=format!("review-tests {tone}") data-testid="review-tests">{run_counts(&run)}</p>
                <p class="muted small">
                    {format!(
                        "Version {}, run by {} at {}.",
                        run.summary.version,
                        run.run_by_name,
                        format_ms(run.summary.run_ms),
                    )}
                </p>
                {error}
                {failures}
            }
            .into_any()
        }
        Err(err) => view! {
            <p class="error" role="alert" data-testid="review-tests-error">{err.to_string()}</p>
        }
        .into_any(),
    };

    let manifests_view = match staging {
        Err(err) => view! {
            <p class="error" role="alert" data-testid="review-manifests-error">{err.to_string()}</p>
        }
        .into_any(),
        Ok(staging) => {
            let other = (staging.version != version).then(|| {
                view! {
                    <p class="notice" data-testid="review-version-note">
                        {format!(
                            "These are the manifests of the current version {}; this rollout applies version {version}.",
                            staging.version,
                        )}
                    </p>
                }
            });
            let rendered = staging
                .manifests
                .into_iter()
                .find(|m| m.mode == mode)
                .map(|m| m.yaml);
            let body = match rendered {
                Some(Ok(yaml)) => view! {
                    <details class="review-manifests">
                        <summary>
                            {format!("Manifests in {} mode (version {})", mode.as_str(), staging.version)}
                        </summary>
                        <pre class="code manifests" data-testid="review-manifests">{yaml}</pre>
                    </details>
                }
                .into_any(),
                Some(Err(why)) => view! {
                    <p class="error" data-testid="review-manifests-error">
                        {format!("The {} manifests cannot be rendered: {why}", mode.as_str())}
                    </p>
                }
                .into_any(),
                None => view! {
                    <p class="muted" data-testid="review-manifests-error">
                        {format!("No manifests are rendered for {} mode.", mode.as_str())}
                    </p>
                }
                .into_any(),
            };
            view! { {other} {body} }.into_any()
        }
    };

    view! {
        <section class="panel review" aria-labelledby="review-heading" data-testid="rollout-review">
            <h2 id="review-heading">"Review"</h2>
            <h3>{format!("Tests of version {version}")}</h3>
            {tests_view}
            <h3>{format!("What the clusters receive in {} mode", mode.as_str())}</h3>
            {manifests_view}
            <h3>"Violations on these clusters (last 7 days)"</h3>
            {evidence_view}
            <p>
                "Source, test cases and history: "
                <a href=format!("/policies/{}", s.policy_id) data-testid="review-policy">{s.policy_name.clone()}</a>
            </p>
        </section>
    }
}

/// Approve or reject, pause, resume, abort, roll back, remove: whatever the state allows.
#[component]
fn Controls(
    id: Memo<String>,
    state: Memo<Option<RolloutState>>,
    refresh: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();

    let decide = Action::new(move |approve: &bool| {
        let approve = *approve;
        let id = id.get_untracked();
        let text = comment.get_untracked();
        async move {
            match decide_rollout(id, approve, text).await {
                Ok(_) => {
                    error.set(None);
                    comment.set(String::new());
                    refresh();
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let operate = Action::new(move |operation: &Operation| {
        let operation = *operation;
        let id = id.get_untracked();
        let navigate = navigate.clone();
        async move {
            match operate_rollout(id.clone(), operation).await {
                // Rollback and removal are new rollouts: follow them.
                Ok(rollout) if rollout.summary.id != id => {
                    error.set(None);
                    navigate(
                        &format!("/rollouts/{}", rollout.summary.id),
                        Default::default(),
                    );
                }
                Ok(_) => {
                    error.set(None);
                    refresh();
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let deciding = decide.pending();
    let operating = operate.pending();
    let busy = move || deciding.get() || operating.get();
    let is = move |wanted: &'static [RolloutState]| {
        move || state.get().is_some_and(|s| wanted.contains(&s))
    };
    let finished = is(&[
        RolloutState::Rejected,
        RolloutState::Aborted,
        RolloutState::RolledBack,
    ]);
    let button = move |label: &'static str, class: &'static str, operation: Operation| {
        view! {
            <button
                type="button"
                class=class
                disabled=busy
                on:click=move |_| {
                    operate.dispatch(operation);
                }
            >
                {label}
            </button>
        }
    };

    view! {
        <Show when=move || state.get().is_some()>
            <section class="panel controls" aria-labelledby="controls-heading" data-testid="rollout-controls">
                <h2 id="controls-heading">"Actions"</h2>
                <Show when=is(&[RolloutState::PendingApproval])>
                    <label>
                        "Comment"
                        <textarea
                            name="comment"
                            rows="3"
                            data-testid="decision-comment"
                            placeholder="what you checked, or why not"
                            prop:value=move || comment.get()
                            on:input=move |ev| comment.set(event_target_value(&ev))
                        ></textarea>
                    </label>
                    <div class="actions">
                        <button type="button" class="button primary" disabled=busy on:click=move |_| { decide.dispatch(true); }>
                            "Approve"
                        </button>
                        <button type="button" class="button danger" disabled=busy on:click=move |_| { decide.dispatch(false); }>
                            "Reject"
                        </button>
                    </div>
                </Show>
                <div class="actions">
                    <Show when=is(&[RolloutState::Applying])>
                        {button("Pause", "button", Operation::Pause)}
                    </Show>
                    <Show when=is(&[RolloutState::Paused])>
                        {button("Resume", "button primary", Operation::Resume)}
                    </Show>
                    <Show when=is(&[RolloutState::PendingApproval, RolloutState::Applying, RolloutState::Paused])>
                        {button("Abort", "button danger", Operation::Abort)}
                    </Show>
                    <Show when=is(&[RolloutState::Applied, RolloutState::Failed])>
                        {button("Roll back", "button", Operation::Rollback)}
                        {button("Remove policy", "button danger", Operation::Remove)}
                    </Show>
                </div>
                <Show when=finished>
                    <p class="muted">"This rollout is over; nothing more can be done to it."</p>
                </Show>
                {move || error.get().map(|text| view! {
                    <p class="error" role="alert" data-testid="rollout-error">{text}</p>
                })}
            </section>
        </Show>
    }
}

/// Waves, decisions and the per-cluster steps.
#[component]
fn RolloutProgress(rollout: Rollout) -> impl IntoView {
    let current = rollout.summary.current_wave;
    let live = !rollout.summary.state.is_final();
    let waves = rollout.waves;
    let decisions = rollout.decisions;
    let wave_rows = waves
        .iter()
        .map(|w| {
            let given = decisions
                .iter()
                .filter(|d| d.wave == w.position && d.approve)
                .count();
            let current = live && w.position == current;
            view! { <WaveRow wave=w.clone() given current /> }
        })
        .collect_view();
    let decisions_view = if decisions.is_empty() {
        view! { <p class="muted" data-testid="no-decisions">"No approvals or rejections yet."</p> }
            .into_any()
    } else {
        let rows = decisions
            .into_iter()
            .map(|decision| {
                let wave = wave_name(&waves, decision.wave);
                view! { <DecisionRow decision wave /> }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="table" data-testid="rollout-decisions">
                    <thead>
                        <tr>
                            <th scope="col">"Who"</th>
                            <th scope="col">"Decision"</th>
                            <th scope="col">"Wave"</th>
                            <th scope="col">"Comment"</th>
                            <th scope="col">"When"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let step_rows = if rollout.steps.is_empty() {
        view! {
            <tr>
                <td colspan="6" class="muted">
                    "No cluster steps yet: a wave's clusters are listed here once it is planned."
                </td>
            </tr>
        }
        .into_any()
    } else {
        rollout
            .steps
            .into_iter()
            .map(|step| {
                let wave = wave_name(&waves, step.wave);
                view! { <StepRow step wave /> }
            })
            .collect_view()
            .into_any()
    };

    view! {
        <section class="panel" aria-labelledby="waves-heading">
            <h2 id="waves-heading">"Waves"</h2>
            <div class="table-wrap">
                <table class="table" data-testid="rollout-waves">
                    <thead>
                        <tr>
                            <th scope="col">"Wave"</th>
                            <th scope="col">"Clusters"</th>
                            <th scope="col">"Approvals"</th>
                            <th scope="col">"Soak"</th>
                            <th scope="col">"Violation threshold"</th>
                            <th scope="col">"State"</th>
                        </tr>
                    </thead>
                    <tbody>{wave_rows}</tbody>
                </table>
            </div>
        </section>
        <section class="panel" aria-labelledby="decisions-heading">
            <h2 id="decisions-heading">"Decisions"</h2>
            {decisions_view}
        </section>
        <section class="panel" aria-labelledby="steps-heading">
            <h2 id="steps-heading">"Clusters"</h2>
            <div class="table-wrap">
                <table class="table" data-testid="rollout-steps">
                    <thead>
                        <tr>
                            <th scope="col">"Cluster"</th>
                            <th scope="col">"Wave"</th>
                            <th scope="col">"State"</th>
                            <th scope="col">"Attempts"</th>
                            <th scope="col">"Applies"</th>
                            <th scope="col">"Message"</th>
                        </tr>
                    </thead>
                    <tbody>{step_rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn WaveRow(wave: Wave, given: usize, current: bool) -> impl IntoView {
    let state = wave.state.as_str();
    view! {
        <tr
            data-testid="rollout-wave"
            data-name=wave.name.clone()
            class:current=current
            aria-current=current.then_some("step")
        >
            <th scope="row">{wave.name.clone()}</th>
            <td>{wave.selector.describe()}</td>
            <td data-testid="wave-approvals">
                {format!("{given} of {}", wave.approvals_required)}
            </td>
            <td>{soak_label(wave.soak_secs)}</td>
            <td>{threshold_label(wave.violation_threshold)}</td>
            <td>
                <span class=format!("badge {}", wave_tone(wave.state)) data-testid="wave-state">{state}</span>
            </td>
        </tr>
    }
}

#[component]
fn DecisionRow(decision: Decision, wave: String) -> impl IntoView {
    let (label, tone) = if decision.approve {
        ("approve", "good")
    } else {
        ("reject", "bad")
    };
    view! {
        <tr data-testid="rollout-decision">
            <th scope="row">{decision.user_name.clone()}</th>
            <td><span class=format!("badge {tone}")>{label}</span></td>
            <td>{wave}</td>
            <td class="message">{decision.comment.clone()}</td>
            <td>{format_ms(decision.at_ms)}</td>
        </tr>
    }
}

#[component]
fn StepRow(step: Step, wave: String) -> impl IntoView {
    let state = step.state.as_str();
    view! {
        <tr data-testid="rollout-step" data-cluster=step.cluster_name.clone()>
            <th scope="row">{step.cluster_name.clone()}</th>
            <td>{wave}</td>
            <td>
                <span class=format!("badge {}", step_tone(step.state)) data-testid="step-state">{state}</span>
            </td>
            <td>{step.attempts}</td>
            <td>{step.applies}</td>
            <td class="message">{step.message.clone()}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_waves_are_dev_then_prod_with_one_approval_each() {
        let waves = parse_waves(DEFAULT_WAVES).expect("the default parses");
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].name, "dev");
        assert_eq!(waves[0].selector.environment.as_deref(), Some("dev"));
        assert!(waves[0].selector.labels.is_empty());
        assert_eq!(waves[1].name, "prod");
        assert_eq!(waves[1].selector.environment.as_deref(), Some("prod"));
        assert!(waves
            .iter()
            .all(|w| w.approvals == 1 && w.soak_secs == 0 && w.violation_threshold.is_none()));
    }

    #[test]
    fn a_full_line_sets_every_field() {
        let waves = parse_waves(
            "canary: environment=prod, team=a , tier=1; approvals=2; soak=600; threshold=5",
        )
        .expect("parses");
        assert_eq!(
            waves,
            vec![NewWave {
                name: "canary".into(),
                selector: Selector {
                    environment: Some("prod".into()),
                    labels: labels(&[("team", "a"), ("tier", "1")]),
                },
                approvals: 2,
                soak_secs: 600,
                violation_threshold: Some(5),
            }]
        );
    }

    #[test]
    fn names_selectors_and_settings_are_optional_and_blank_lines_are_skipped() {
        let waves = parse_waves("\n  all:  \n\nenvironment=dev;;approvals=0\n").expect("parses");
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].name, "all");
        assert_eq!(waves[0].selector, Selector::default());
        assert_eq!(waves[0].approvals, 1);
        assert_eq!(waves[1].name, "");
        assert_eq!(waves[1].selector.environment.as_deref(), Some("dev"));
        assert_eq!(waves[1].approvals, 0);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_waves("dev: environment=dev\n\nprod: environment").expect_err("refused");
        assert!(err.contains("line 3"), "{err}");
        let err = parse_waves("dev: environment=dev; approvals=two").expect_err("refused");
        assert!(err.contains("line 1") && err.contains("approvals"), "{err}");
        let err = parse_waves("a: x=1\nb: x=2; speed=3").expect_err("refused");
        assert!(err.contains("line 2") && err.contains("speed"), "{err}");
        let err = parse_waves("a: environment=dev, environment=prod").expect_err("refused");
        assert!(err.contains("line 1") && err.contains("twice"), "{err}");
        let err = parse_waves("a: x=1; soak=-5").expect_err("refused");
        assert!(err.contains("soak"), "{err}");
        assert!(parse_waves("  \n\n").is_err());
    }

    #[test]
    fn the_form_becomes_a_proposal() {
        let input = proposal(
            "p1",
            "",
            "warn",
            " web, ,payments ",
            " first ",
            DEFAULT_WAVES,
        )
        .expect("valid");
        assert_eq!(input.policy, "p1");
        assert_eq!(input.version, None);
        assert_eq!(input.mode, Mode::Warn);
        assert_eq!(
            input.namespaces,
            vec!["web".to_owned(), "payments".to_owned()]
        );
        assert_eq!(input.note, "first");
        assert_eq!(input.waves.len(), 2);
        let input = proposal("p1", "3", "enforce", "", "", DEFAULT_WAVES).expect("valid");
        assert_eq!(input.version, Some(3));
        assert!(proposal("", "", "audit", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "three", "audit", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "0", "audit", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "", "loud", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "", "audit", "", "", "").is_err());
    }

    #[test]
    fn a_test_run_reads_as_counts_with_skipped_only_when_some_were() {
        let mut run = TestRun {
            id: "r1".into(),
            summary: crate::policies::RunSummary {
                version: 2,
                run_ms: 0,
                passed: 3,
                failed: 0,
                skipped: 0,
                duration_us: 10,
            },
            run_by_name: "author".into(),
            error: None,
            results: Vec::new(),
        };
        assert_eq!(run_counts(&run), "3 passed, 0 failed");
        run.summary.failed = 1;
        run.summary.skipped = 2;
        assert_eq!(run_counts(&run), "3 passed, 1 failed, 2 skipped");
    }

    #[test]
    fn labels_read_as_people_write_them() {
        assert_eq!(version_label(4), "v4");
        assert_eq!(version_label(0), "—");
        assert_eq!(soak_label(0), "none");
        assert_eq!(soak_label(90), "90 s");
        assert_eq!(soak_label(600), "10 min");
        assert_eq!(soak_label(7200), "2 h");
        assert_eq!(
            threshold_label(Some(3)),
            "at most 3 new violations (checked once violations are collected)"
        );
    }
}
