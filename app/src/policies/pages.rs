//! The pages of the policies domain: the list, a new policy, one policy (overview, edit, tests,
//! history, staging) and the built-in library.
//!
//! Every page reads through a server function inside a `Transition`, so loading, error and empty
//! states are explicit. The editor is a plain textarea with a line-number gutter that follows its
//! scrolling; problems from the engine are listed and marked in the gutter, and choosing one puts
//! the caret at its line and column. Ctrl/Cmd+S saves.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::diff::DiffOp;
use super::{
    check_policy, create_policy, diff_versions, get_policy, get_test_run, list_library,
    list_policies, run_tests, save_version, CaseStatus, Content, Engine, Expect, LibraryEntry,
    Mode, NewPolicy, Part, PolicyDetail, PolicyFilter, PolicySummary, Problem, SaveOutcome,
    TestCase, TestRun, VersionDiff, CATEGORIES, ENVIRONMENTS, FRAMEWORKS,
};
use crate::error::AppError;
use crate::rollouts::{check_drift, Drift};
use crate::staging::{get_staging, set_mode, Staging};

/// `YYYY-MM-DD HH:MM UTC` for milliseconds since the epoch (no time zone database needed).
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
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
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        (rest % 3600) / 60
    )
}

fn error_view(err: AppError) -> AnyView {
    view! { <p class="error" role="alert" data-testid="load-error">{err.to_string()}</p> }
        .into_any()
}

fn run_badge(summary: &PolicySummary) -> AnyView {
    match &summary.last_run {
        None if summary.test_count == 0 => {
            view! { <span class="badge muted">"no tests"</span> }.into_any()
        }
        None => view! { <span class="badge muted">{format!("{} cases, not run", summary.test_count)}</span> }
            .into_any(),
        Some(run) if run.failed > 0 => view! {
            <span class="badge bad">{format!("{} failed, {} passed", run.failed, run.passed)}</span>
        }
        .into_any(),
        Some(run) => view! { <span class="badge good">{format!("{} passed", run.passed)}</span> }
            .into_any(),
    }
}

// ---------------------------------------------------------------------------------------------
// /policies

#[component]
pub fn PoliciesPage() -> impl IntoView {
    let q = RwSignal::new(String::new());
    let engine = RwSignal::new(String::new());
    let category = RwSignal::new(String::new());
    let framework = RwSignal::new(String::new());
    let mode = RwSignal::new(String::new());
    let filter = move || PolicyFilter {
        q: q.get(),
        engine: engine.get(),
        category: category.get(),
        framework: framework.get(),
        mode: mode.get(),
    };
    let policies = Resource::new(filter, list_policies);
    let filtered = move || filter() != PolicyFilter::default();

    view! {
        <Title text="Policies" />
        <header class="page-header with-actions">
            <div>
                <h1>"Policies"</h1>
                <p class="purpose">
                    "Pod Security, ValidatingAdmissionPolicy (CEL) and Gatekeeper (Rego) policies, each with its versions, test cases and intended mode per environment."
                </p>
            </div>
            <a class="button primary" href="/policies/new" data-testid="new-policy">"New policy"</a>
        </header>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>
                "Search"
                <input
                    type="search"
                    data-testid="policy-search"
                    placeholder="name, title or description"
                    prop:value=move || q.get()
                    on:input=move |ev| q.set(event_target_value(&ev))
                />
            </label>
            <FilterSelect label="Engine" value=engine options=Engine::ALL.iter().map(|e| (e.as_str().to_owned(), e.label().to_owned())).collect() testid="filter-engine" />
            <FilterSelect label="Category" value=category options=CATEGORIES.iter().map(|c| (c.to_string(), c.to_string())).collect() testid="filter-category" />
            <FilterSelect label="Framework" value=framework options=FRAMEWORKS.iter().map(|(id, name)| (id.to_string(), name.to_string())).collect() testid="filter-framework" />
            <FilterSelect
                label="Mode"
                value=mode
                options=Mode::ALL.iter().map(|m| (m.as_str().to_owned(), format!("{} somewhere", m.as_str()))).chain([("none".to_owned(), "not staged".to_owned())]).collect()
                testid="filter-mode"
            />
        </form>
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading policies…"</p> }>
            {move || Suspend::new(async move {
                match policies.await {
                    Err(err) => error_view(err),
                    Ok(list) if list.is_empty() && filtered() => view! {
                        <section class="empty-state" data-testid="no-matches">
                            <p>"No policy matches these filters. Clear the search or a filter to see more."</p>
                        </section>
                    }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <section class="empty-state" data-testid="no-policies">
                            <p>"No policies yet. Adopt one from the library, paste the YAML of a policy you already run, or start from a blank template."</p>
                            <p><a class="button primary" href="/policies/new">"New policy"</a>" "<a class="button" href="/library">"Browse the library"</a></p>
                        </section>
                    }.into_any(),
                    Ok(list) => view! { <PolicyTable list /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn FilterSelect(
    label: &'static str,
    value: RwSignal<String>,
    options: Vec<(String, String)>,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <select
                data-testid=testid
                prop:value=move || value.get()
                on:change=move |ev| value.set(event_target_value(&ev))
            >
                <option value="">"Any"</option>
                {options
                    .into_iter()
                    .map(|(id, name)| view! { <option value=id>{name}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn PolicyTable(list: Vec<PolicySummary>) -> impl IntoView {
    view! {
        <table class="table data-table" data-testid="policy-list">
            <thead>
                <tr>
                    <th scope="col">"Policy"</th>
                    <th scope="col">"Engine"</th>
                    <th scope="col">"Category"</th>
                    <th scope="col">"Version"</th>
                    <th scope="col">"Tests"</th>
                    <th scope="col">"Modes"</th>
                </tr>
            </thead>
            <tbody>
                {list
                    .into_iter()
                    .map(|p| {
                        let href = format!("/policies/{}", p.id);
                        let badge = run_badge(&p);
                        let modes = p
                            .modes
                            .iter()
                            .filter_map(|m| m.mode.map(|mode| format!("{} {}", m.environment, mode.as_str())))
                            .collect::<Vec<_>>()
                            .join(", ");
                        view! {
                            <tr data-testid="policy-row">
                                <td>
                                    <a href=href>{p.title.clone()}</a>
                                    <div class="muted mono">{p.name.clone()}</div>
                                </td>
                                <td>{p.engine.label()}</td>
                                <td>{p.category.clone()}</td>
                                <td>{format!("v{}", p.current_version)}</td>
                                <td>{badge}</td>
                                <td>{if modes.is_empty() { "not staged".to_owned() } else { modes }}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

// ---------------------------------------------------------------------------------------------
// /policies/new and /library

fn go_to_policy(
    outcome: Result<SaveOutcome, AppError>,
    problems: RwSignal<Vec<Problem>>,
    error: RwSignal<Option<String>>,
) {
    match outcome {
        Ok(SaveOutcome::Saved { policy_id, .. }) => {
            let navigate = use_navigate();
            navigate(&format!("/policies/{policy_id}"), Default::default());
        }
        Ok(SaveOutcome::Invalid { problems: found }) => {
            error.set(Some("Nothing was created: the engine refused it.".into()));
            problems.set(found);
        }
        Err(err) => error.set(Some(err.to_string())),
    }
}

#[component]
pub fn NewPolicyPage() -> impl IntoView {
    let entries = Resource::new(|| (), |_| list_library());
    let entry = RwSignal::new(String::new());
    let yaml = RwSignal::new(String::new());
    let engine = RwSignal::new("vap".to_owned());
    let name = RwSignal::new(String::new());
    let problems = RwSignal::new(Vec::<Problem>::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let create = move |new: NewPolicy| {
        busy.set(true);
        error.set(None);
        problems.set(Vec::new());
        spawn_local(async move {
            let outcome = create_policy(new).await;
            busy.set(false);
            go_to_policy(outcome, problems, error);
        });
    };

    view! {
        <Title text="New policy" />
        <header class="page-header">
            <h1>"New policy"</h1>
            <p class="purpose">"Start from the built-in library, paste the YAML of a policy you already have, or begin with a small working template. Nothing is saved until the engine accepts it."</p>
        </header>
        <Show when=move || error.get().is_some()>
            <div class="error" role="alert" data-testid="create-error">
                <p>{move || error.get().unwrap_or_default()}</p>
                <ProblemList problems=problems.into() on_pick=Callback::new(|_| ()) />
            </div>
        </Show>
        <div class="choices">
            <section class="panel" aria-labelledby="from-library">
                <h2 id="from-library">"From the library"</h2>
                <Transition fallback=|| view! { <p class="muted">"Loading the library…"</p> }>
                    {move || Suspend::new(async move {
                        match entries.await {
                            Err(err) => error_view(err),
                            Ok(list) => view! {
                                <label>
                                    "Entry"
                                    <select data-testid="library-select" prop:value=move || entry.get() on:change=move |ev| entry.set(event_target_value(&ev))>
                                        <option value="">"Choose an entry"</option>
                                        {list.into_iter().map(|e| view! { <option value=e.id.clone()>{e.title.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                            }.into_any(),
                        }
                    })}
                </Transition>
                <button
                    type="button"
                    class="button primary"
                    data-testid="create-from-library"
                    disabled=move || entry.get().is_empty() || busy.get()
                    on:click=move |_| create(NewPolicy::Library { entry: entry.get() })
                >
                    "Create from library"
                </button>
            </section>
            <section class="panel" aria-labelledby="from-yaml">
                <h2 id="from-yaml">"Paste YAML"</h2>
                <p class="muted">"A ValidatingAdmissionPolicy with its binding, a ConstraintTemplate with a Constraint, or a palisade.dev/v1alpha1 PodSecurityEntry. The engine is detected."</p>
                <textarea
                    class="code"
                    rows="12"
                    spellcheck="false"
                    aria-label="Policy YAML"
                    data-testid="paste-yaml"
                    prop:value=move || yaml.get()
                    on:input=move |ev| yaml.set(event_target_value(&ev))
                ></textarea>
                <button
                    type="button"
                    class="button primary"
                    data-testid="create-from-yaml"
                    disabled=move || yaml.get().trim().is_empty() || busy.get()
                    on:click=move |_| create(NewPolicy::Yaml { source: yaml.get(), params: String::new() })
                >
                    "Create from YAML"
                </button>
            </section>
            <section class="panel" aria-labelledby="from-blank">
                <h2 id="from-blank">"Blank template"</h2>
                <label>
                    "Engine"
                    <select data-testid="blank-engine" prop:value=move || engine.get() on:change=move |ev| engine.set(event_target_value(&ev))>
                        {Engine::ALL.iter().map(|e| view! { <option value=e.as_str()>{e.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Name"
                    <input type="text" data-testid="blank-name" placeholder="require-owner-label" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                </label>
                <button
                    type="button"
                    class="button primary"
                    data-testid="create-blank"
                    disabled=move || name.get().trim().is_empty() || busy.get()
                    on:click=move |_| create(NewPolicy::Blank { engine: Engine::parse(&engine.get()).unwrap_or(Engine::Vap), name: name.get() })
                >
                    "Create blank policy"
                </button>
            </section>
        </div>
    }
}

#[component]
pub fn LibraryPage() -> impl IntoView {
    let entries = Resource::new(|| (), |_| list_library());
    let problems = RwSignal::new(Vec::<Problem>::new());
    let error = RwSignal::new(None::<String>);
    view! {
        <Title text="Library" />
        <header class="page-header">
            <h1>"Library"</h1>
            <p class="purpose">"Built-in policies for the common mistakes, each with its test cases and the controls it satisfies. Adopting one makes it your policy: version 1 is an exact copy you can then change."</p>
        </header>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
        </Show>
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading the library…"</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(err) => error_view(err),
                    Ok(list) => view! {
                        <ul class="entries data-table" data-testid="library-list">
                            {list.into_iter().map(|entry| view! { <LibraryCard entry problems error /> }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn LibraryCard(
    entry: LibraryEntry,
    problems: RwSignal<Vec<Problem>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let id = entry.id.clone();
    let action = match entry.adopted_as.clone() {
        Some(policy) => {
            view! { <a class="button" href=format!("/policies/{policy}")>"Open policy"</a> }
                .into_any()
        }
        None => view! {
            <button
                type="button"
                class="button primary"
                data-testid=format!("adopt-{id}")
                on:click=move |_| {
                    let entry = id.clone();
                    spawn_local(async move {
                        let outcome = create_policy(NewPolicy::Library { entry }).await;
                        go_to_policy(outcome, problems, error);
                    });
                }
            >
                "Adopt"
            </button>
        }
        .into_any(),
    };
    view! {
        <li class="card entry" data-testid="library-entry">
            <div class="entry-head">
                <h2>{entry.title.clone()}</h2>
                <span class=format!("badge severity-{}", entry.severity)>{entry.severity.clone()}</span>
            </div>
            <p class="muted mono">{format!("{} · {} · {} cases", entry.id, entry.engine.label(), entry.test_count)}</p>
            <p>{entry.description.clone()}</p>
            <p class="tags">{entry.controls.iter().map(|c| view! { <span class="tag">{c.clone()}</span> }).collect_view()}</p>
            {action}
        </li>
    }
}

// ---------------------------------------------------------------------------------------------
// /policies/:id

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Overview,
    Edit,
    Tests,
    History,
    Staging,
}

impl Tab {
    const ALL: [Tab; 5] = [
        Tab::Overview,
        Tab::Edit,
        Tab::Tests,
        Tab::History,
        Tab::Staging,
    ];

    fn name(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Edit => "Edit",
            Tab::Tests => "Tests",
            Tab::History => "History",
            Tab::Staging => "Staging",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Tab::Overview => "overview",
            Tab::Edit => "edit",
            Tab::Tests => "tests",
            Tab::History => "history",
            Tab::Staging => "staging",
        }
    }
}

#[component]
pub fn PolicyPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let reload = RwSignal::new(0u32);
    let detail = Resource::new(move || (id(), reload.get()), |(id, _)| get_policy(id));
    let tab = RwSignal::new(Tab::Overview);

    view! {
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading the policy…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(err) => view! {
                        <Title text="Policy" />
                        <header class="page-header"><h1>"Policy"</h1></header>
                        {error_view(err)}
                    }.into_any(),
                    Ok(detail) => view! { <Workspace detail tab reload /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The draft a person edits: what the next version will hold.
#[derive(Clone, Copy)]
struct Draft {
    source: RwSignal<String>,
    params: RwSignal<String>,
    description: RwSignal<String>,
    remediation: RwSignal<String>,
    controls: RwSignal<String>,
    tests: RwSignal<Vec<TestCase>>,
    note: RwSignal<String>,
}

impl Draft {
    fn of(content: &Content) -> Draft {
        Draft {
            source: RwSignal::new(content.source.clone()),
            params: RwSignal::new(content.params.clone()),
            description: RwSignal::new(content.description.clone()),
            remediation: RwSignal::new(content.remediation.clone()),
            controls: RwSignal::new(content.controls.join(", ")),
            tests: RwSignal::new(content.tests.clone()),
            note: RwSignal::new(String::new()),
        }
    }

    fn content(&self) -> Content {
        Content {
            source: self.source.get_untracked(),
            params: self.params.get_untracked(),
            description: self.description.get_untracked(),
            remediation: self.remediation.get_untracked(),
            controls: self
                .controls
                .get_untracked()
                .split([',', '\n'])
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect(),
            tests: self.tests.get_untracked(),
        }
    }
}

/// Saving: its state, shared by the Edit and Tests tabs.
#[derive(Clone, Copy)]
struct Saving {
    problems: RwSignal<Vec<Problem>>,
    status: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
}

#[component]
fn Workspace(detail: PolicyDetail, tab: RwSignal<Tab>, reload: RwSignal<u32>) -> impl IntoView {
    let draft = Draft::of(&detail.current.content);
    let saving = Saving {
        problems: RwSignal::new(Vec::new()),
        status: RwSignal::new(None),
        error: RwSignal::new(None),
        busy: RwSignal::new(false),
    };
    let policy_id = detail.policy.id.clone();
    let base = detail.policy.current_version;
    let save = Callback::new(move |_: ()| {
        if saving.busy.get_untracked() {
            return;
        }
        saving.busy.set(true);
        saving.error.set(None);
        saving.status.set(Some("Saving…".into()));
        let id = policy_id.clone();
        let content = draft.content();
        let note = draft.note.get_untracked();
        spawn_local(async move {
            let outcome = save_version(id, base, content, note).await;
            saving.busy.set(false);
            match outcome {
                Ok(SaveOutcome::Saved {
                    version, warnings, ..
                }) => {
                    let count = warnings.len();
                    saving.problems.set(warnings);
                    saving.status.set(Some(if count == 0 {
                        format!("Saved version {version}.")
                    } else {
                        format!(
                            "Saved version {version}, with {count} warning{}.",
                            if count == 1 { "" } else { "s" }
                        )
                    }));
                    reload.update(|n| *n += 1);
                }
                Ok(SaveOutcome::Invalid { problems }) => {
                    let count = problems.iter().filter(|p| !p.warning).count();
                    saving.problems.set(problems);
                    saving.status.set(Some(format!(
                        "Not saved: the engine found {count} problem{}.",
                        if count == 1 { "" } else { "s" }
                    )));
                }
                Err(err) => {
                    saving.status.set(None);
                    saving.error.set(Some(err.to_string()));
                }
            }
        });
    });
    let title = detail.policy.title.clone();
    let detail = StoredValue::new(detail);

    view! {
        <Title text=title.clone() />
        <header class="page-header">
            <p class="muted"><a href="/policies">"Policies"</a>" / "{detail.with_value(|d| d.policy.name.clone())}</p>
            <h1 data-testid="policy-title">{title}</h1>
            <p class="purpose">
                {detail.with_value(|d| format!("{} · {} · version {} of {}", d.policy.engine.label(), d.policy.category, d.policy.current_version, d.versions.len()))}
            </p>
        </header>
        <div class="tabs" role="tablist" aria-label="Policy">
            {Tab::ALL.into_iter().map(|t| view! {
                <button
                    type="button"
                    role="tab"
                    id=format!("tab-{}", t.id())
                    data-testid=format!("tab-{}", t.id())
                    aria-selected=move || (tab.get() == t).to_string()
                    class:active=move || tab.get() == t
                    on:click=move |_| tab.set(t)
                >
                    {t.name()}
                </button>
            }).collect_view()}
        </div>
        <div role="tabpanel" class="tabpanel">
            {move || match tab.get() {
                Tab::Overview => view! { <OverviewTab detail=detail.get_value() /> }.into_any(),
                Tab::Edit => view! { <EditTab draft saving save /> }.into_any(),
                Tab::Tests => view! { <TestsTab detail=detail.get_value() draft saving save /> }.into_any(),
                Tab::History => view! { <HistoryTab detail=detail.get_value() /> }.into_any(),
                Tab::Staging => view! { <StagingTab id=detail.with_value(|d| d.policy.id.clone()) /> }.into_any(),
            }}
        </div>
    }
}

#[component]
fn OverviewTab(detail: PolicyDetail) -> impl IntoView {
    let p = &detail.policy;
    let v = &detail.current;
    let badge = run_badge(p);
    view! {
        <section class="panel" data-testid="overview">
            <dl class="facts">
                <dt>"Name"</dt><dd class="mono">{p.name.clone()}</dd>
                <dt>"Engine"</dt><dd>{p.engine.label()}</dd>
                <dt>"Category"</dt><dd>{p.category.clone()}</dd>
                <dt>"Origin"</dt><dd>{p.origin.clone()}</dd>
                <dt>"Current version"</dt>
                <dd>{format!("{} by {} at {}", v.number, v.author_name, format_time(v.created_ms))}</dd>
                <dt>"Tests"</dt><dd>{badge}</dd>
                <dt>"Controls"</dt>
                <dd class="tags">{p.controls.iter().map(|c| view! { <span class="tag">{c.clone()}</span> }).collect_view()}</dd>
            </dl>
            <h2>"Description"</h2>
            <p>{if v.content.description.is_empty() { "No description yet.".to_owned() } else { v.content.description.clone() }}</p>
            <h2>"Remediation"</h2>
            <p>{if v.content.remediation.is_empty() { "No remediation text yet.".to_owned() } else { v.content.remediation.clone() }}</p>
        </section>
    }
}

/// UTF-16 offset of (line, column) in `text`, for the textarea's selection. Columns count bytes,
/// as the engine reports them; they are clamped to the line.
fn caret_offset(text: &str, line: usize, column: usize) -> u32 {
    let mut offset = 0usize;
    for (index, content) in text.split('\n').enumerate() {
        if index + 1 == line {
            let mut end = column.saturating_sub(1).min(content.len());
            while !content.is_char_boundary(end) {
                end -= 1;
            }
            offset += content[..end].encode_utf16().count();
            return u32::try_from(offset).unwrap_or(u32::MAX);
        }
        offset += content.encode_utf16().count() + 1;
    }
    u32::try_from(offset).unwrap_or(u32::MAX)
}

#[component]
fn SaveBar(draft: Draft, saving: Saving, save: Callback<()>) -> impl IntoView {
    view! {
        <div class="save-bar">
            <label class="grow">
                "Change note"
                <input
                    type="text"
                    data-testid="change-note"
                    placeholder="What changed and why"
                    prop:value=move || draft.note.get()
                    on:input=move |ev| draft.note.set(event_target_value(&ev))
                />
            </label>
            <button
                type="button"
                class="button primary"
                data-testid="save-version"
                disabled=move || saving.busy.get()
                on:click=move |_| save.run(())
                title="Save a new version (Ctrl+S or ⌘S)"
            >
                "Save version"
            </button>
            <span class="status" role="status" data-testid="save-status">{move || saving.status.get().unwrap_or_default()}</span>
        </div>
        <Show when=move || saving.error.get().is_some()>
            <p class="error" role="alert" data-testid="save-error">{move || saving.error.get().unwrap_or_default()}</p>
        </Show>
    }
}

#[component]
fn EditTab(draft: Draft, saving: Saving, save: Callback<()>) -> impl IntoView {
    let editor = NodeRef::<leptos::html::Textarea>::new();
    let gutter = NodeRef::<leptos::html::Div>::new();
    let source_problems = Memo::new(move |_| {
        saving
            .problems
            .get()
            .into_iter()
            .filter(|p| p.part == Part::Source)
            .collect::<Vec<_>>()
    });
    let pick = Callback::new(move |problem: Problem| {
        if problem.part != Part::Source {
            return;
        }
        if let Some(area) = editor.get() {
            let offset = caret_offset(&draft.source.get_untracked(), problem.line, problem.column);
            let _ = area.focus();
            let _ = area.set_selection_range(offset, offset);
        }
    });
    let checking = RwSignal::new(false);
    let check = move |_| {
        checking.set(true);
        let content = draft.content();
        spawn_local(async move {
            match check_policy(content).await {
                Ok(problems) => {
                    let count = problems.iter().filter(|p| !p.warning).count();
                    let warnings = problems.len() - count;
                    saving.problems.set(problems);
                    saving.status.set(Some(if count == 0 && warnings > 0 {
                        format!(
                            "The engine accepts this draft, with {warnings} warning{}.",
                            if warnings == 1 { "" } else { "s" }
                        )
                    } else if count == 0 {
                        "The engine accepts this draft.".into()
                    } else {
                        format!(
                            "The engine found {count} problem{}.",
                            if count == 1 { "" } else { "s" }
                        )
                    }));
                }
                Err(err) => saving.error.set(Some(err.to_string())),
            }
            checking.set(false);
        });
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("s") {
            ev.prevent_default();
            save.run(());
        }
    };

    view! {
        <section class="panel editor-panel" on:keydown=on_keydown>
            <div class="panel-header">
                <h2>"Policy source"</h2>
                <button type="button" class="button" data-testid="check-policy" disabled=move || checking.get() on:click=check>"Check"</button>
            </div>
            <div class="editor" data-testid="editor">
                <div class="gutter" aria-hidden="true" node_ref=gutter data-testid="gutter">
                    {move || {
                        let lines = draft.source.get().split('\n').count();
                        let marked: Vec<(usize, String, bool)> = source_problems
                            .get()
                            .iter()
                            .map(|p| (p.line, p.message.clone(), p.warning))
                            .collect();
                        (1..=lines)
                            .map(|n| {
                                // An error on a line outranks a warning on it.
                                let on_line = || marked.iter().filter(move |(line, _, _)| *line == n);
                                let mark = on_line().find(|(_, _, warning)| !warning).or_else(|| on_line().next());
                                let has_error = mark.is_some_and(|(_, _, warning)| !warning);
                                let has_warning = mark.is_some_and(|(_, _, warning)| *warning);
                                let message = mark.map(|(_, m, _)| m.clone());
                                view! {
                                    <div class="gutter-line" class:has-error=has_error class:has-warning=has_warning title=message.unwrap_or_default() data-line=n>
                                        {n}
                                    </div>
                                }
                            })
                            .collect_view()
                    }}
                </div>
                <textarea
                    class="code"
                    node_ref=editor
                    spellcheck="false"
                    wrap="off"
                    aria-label="Policy source (YAML)"
                    data-testid="source-editor"
                    prop:value=move || draft.source.get()
                    on:input=move |ev| draft.source.set(event_target_value(&ev))
                    on:scroll=move |_| {
                        if let (Some(area), Some(gutter)) = (editor.get(), gutter.get()) {
                            gutter.set_scroll_top(area.scroll_top());
                        }
                    }
                ></textarea>
            </div>
            <ProblemList problems=saving.problems.into() on_pick=pick />
            <h2>"Parameters"</h2>
            <p class="muted">"Parameter objects for paramKind policies (for example the ConfigMap a binding's paramRef names), as YAML. Leave empty when the policy has none."</p>
            <textarea
                class="code"
                rows="6"
                spellcheck="false"
                aria-label="Parameters (YAML)"
                data-testid="params-editor"
                prop:value=move || draft.params.get()
                on:input=move |ev| draft.params.set(event_target_value(&ev))
            ></textarea>
            <label>
                "Description"
                <textarea rows="3" data-testid="description" prop:value=move || draft.description.get() on:input=move |ev| draft.description.set(event_target_value(&ev))></textarea>
            </label>
            <label>
                "Remediation"
                <textarea rows="3" data-testid="remediation" prop:value=move || draft.remediation.get() on:input=move |ev| draft.remediation.set(event_target_value(&ev))></textarea>
            </label>
            <label>
                "Control tags (framework:id, comma-separated: cis, nsa-cisa, pci-dss, soc2)"
                <input type="text" data-testid="controls" prop:value=move || draft.controls.get() on:input=move |ev| draft.controls.set(event_target_value(&ev)) />
            </label>
            <SaveBar draft saving save />
        </section>
    }
}

#[component]
fn ProblemList(problems: Signal<Vec<Problem>>, on_pick: Callback<Problem>) -> impl IntoView {
    view! {
        <Show when=move || !problems.get().is_empty()>
            <ul class="problems" data-testid="problems" aria-label="Problems">
                {move || problems.get().into_iter().map(|problem| {
                    let place = match (problem.line, problem.column) {
                        (0, _) => problem.part.describe(),
                        (line, 0) => format!("{}, line {line}", problem.part.describe()),
                        (line, column) => format!("{}, line {line}, column {column}", problem.part.describe()),
                    };
                    let line = problem.line;
                    let picked = problem.clone();
                    let (class, label) = if problem.warning { ("warning", "Warning: ") } else { ("", "") };
                    view! {
                        <li class=class>
                            <button type="button" class="link" data-testid="problem" data-line=line on:click=move |_| on_pick.run(picked.clone())>
                                {label}<strong>{place}</strong>": "{problem.message.clone()}
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Show>
    }
}

#[component]
fn TestsTab(
    detail: PolicyDetail,
    draft: Draft,
    saving: Saving,
    save: Callback<()>,
) -> impl IntoView {
    let policy_id = detail.policy.id.clone();
    let number = detail.policy.current_version;
    let stored = Resource::new(
        {
            let id = policy_id.clone();
            move || id.clone()
        },
        move |id| get_test_run(id, number),
    );
    let fresh = RwSignal::new(None::<Result<TestRun, AppError>>);
    let running = RwSignal::new(false);
    let run = move |_| {
        running.set(true);
        let id = policy_id.clone();
        spawn_local(async move {
            let result = run_tests(id, number).await;
            fresh.set(Some(result));
            running.set(false);
        });
    };
    // A new case being written.
    let name = RwSignal::new(String::new());
    let yaml = RwSignal::new(String::new());
    let expect = RwSignal::new("deny".to_owned());
    let message = RwSignal::new(String::new());
    let add = move |_| {
        let case = TestCase {
            name: name.get_untracked().trim().to_owned(),
            yaml: yaml.get_untracked(),
            expect: Expect::parse(&expect.get_untracked()).unwrap_or(Expect::Deny),
            message: Some(message.get_untracked()).filter(|m| !m.trim().is_empty()),
        };
        draft.tests.update(|tests| tests.push(case));
        name.set(String::new());
        yaml.set(String::new());
        message.set(String::new());
    };
    let test_problems = Memo::new(move |_| {
        saving
            .problems
            .get()
            .into_iter()
            .filter(|p| matches!(p.part, Part::Test(_)))
            .collect::<Vec<_>>()
    });

    view! {
        <section class="panel" aria-labelledby="run-heading">
            <div class="panel-header">
                <h2 id="run-heading">{format!("Results for version {number}")}</h2>
                <button type="button" class="button primary" data-testid="run-tests" disabled=move || running.get() on:click=run>
                    {move || if running.get() { "Running…" } else { "Run tests" }}
                </button>
            </div>
            {move || match fresh.get() {
                Some(Ok(run)) => view! { <RunResults run /> }.into_any(),
                Some(Err(err)) => error_view(err),
                None => view! {
                    <Transition fallback=|| view! { <p class="muted">"Reading the last run…"</p> }>
                        {move || Suspend::new(async move {
                            match stored.await {
                                Ok(Some(run)) => view! { <RunResults run /> }.into_any(),
                                Ok(None) => view! { <p class="muted" data-testid="never-run">"This version has not been tested yet. Run its cases to see each one's result and the engine's message."</p> }.into_any(),
                                Err(err) => error_view(err),
                            }
                        })}
                    </Transition>
                }.into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="cases-heading">
            <h2 id="cases-heading">"Test cases"</h2>
            <p class="muted">"Cases belong to a version: changes here are saved as a new version, then run."</p>
            <ProblemList problems=test_problems.into() on_pick=Callback::new(|_| ()) />
            <ol class="cases" data-testid="cases">
                {move || draft.tests.get().into_iter().enumerate().map(|(index, case)| view! {
                    <li class="case" data-testid="case">
                        <div class="case-head">
                            <strong>{case.name.clone()}</strong>
                            <span class="badge">{format!("expects {}", case.expect.as_str())}</span>
                            {case.message.clone().map(|m| view! { <span class="muted mono">{format!("/{m}/")}</span> })}
                            <button type="button" class="button small" aria-label=format!("Remove case {}", case.name) on:click=move |_| draft.tests.update(|t| { if index < t.len() { t.remove(index); } })>"Remove"</button>
                        </div>
                        <details><summary>"YAML"</summary><pre class="code">{case.yaml.clone()}</pre></details>
                    </li>
                }).collect_view()}
            </ol>
            <fieldset class="new-case">
                <legend>"Add a case"</legend>
                <label>"Name"<input type="text" data-testid="case-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label>
                    "Object, or an AdmissionReview for UPDATE and DELETE (YAML)"
                    <textarea class="code" rows="8" spellcheck="false" data-testid="case-yaml" prop:value=move || yaml.get() on:input=move |ev| yaml.set(event_target_value(&ev))></textarea>
                </label>
                <label>
                    "…or upload a file"
                    <input type="file" accept=".yaml,.yml,.json" data-testid="case-file" on:change=move |ev| crate::layout::read_file_into(ev, yaml) />
                </label>
                <label>
                    "Expected"
                    <select data-testid="case-expect" prop:value=move || expect.get() on:change=move |ev| expect.set(event_target_value(&ev))>
                        {Expect::ALL.iter().map(|e| view! { <option value=e.as_str()>{e.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Message pattern (optional regular expression)"<input type="text" data-testid="case-message" prop:value=move || message.get() on:input=move |ev| message.set(event_target_value(&ev)) /></label>
                <button type="button" class="button" data-testid="add-case" disabled=move || name.get().trim().is_empty() || yaml.get().trim().is_empty() on:click=add>"Add case"</button>
            </fieldset>
            <SaveBar draft saving save />
        </section>
    }
}

#[component]
fn RunResults(run: TestRun) -> impl IntoView {
    let summary = format!(
        "{} passed, {} failed{} · {:.1} ms · run by {} at {}",
        run.summary.passed,
        run.summary.failed,
        if run.summary.skipped > 0 {
            format!(", {} skipped", run.summary.skipped)
        } else {
            String::new()
        },
        run.summary.duration_us as f64 / 1000.0,
        run.run_by_name,
        format_time(run.summary.run_ms)
    );
    let failed = run.summary.failed > 0;
    view! {
        <p data-testid="run-summary" class:bad=failed>{summary}</p>
        {run.error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <table class="table results" data-testid="run-results">
            <thead><tr><th scope="col">"Case"</th><th scope="col">"Result"</th><th scope="col">"Expected"</th><th scope="col">"Engine"</th><th scope="col">"Message"</th></tr></thead>
            <tbody>
                {run.results.into_iter().map(|r| {
                    let (label, class) = match r.status {
                        CaseStatus::Passed => ("pass", "good"),
                        CaseStatus::Failed => ("FAIL", "bad"),
                        CaseStatus::Skipped => ("skipped", "muted"),
                    };
                    let message = if r.messages.is_empty() { r.reason.clone() } else if r.reason.is_empty() { r.messages.join("; ") } else { format!("{} — {}", r.reason, r.messages.join("; ")) };
                    view! {
                        <tr data-testid="case-result" data-status=label>
                            <td>{r.name.clone()}</td>
                            <td><span class=format!("badge {class}")>{label}</span></td>
                            <td>{r.expected.as_str()}</td>
                            <td>{r.actual.clone().unwrap_or_else(|| "—".into())}</td>
                            <td class="message">{message}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn HistoryTab(detail: PolicyDetail) -> impl IntoView {
    let newest = detail.policy.current_version;
    let from = RwSignal::new((newest - 1).max(1).to_string());
    let to = RwSignal::new(newest.to_string());
    let result = RwSignal::new(None::<Result<VersionDiff, AppError>>);
    let id = detail.policy.id.clone();
    let compare = move |_| {
        let id = id.clone();
        let (a, b) = (
            from.get_untracked().parse().unwrap_or(1),
            to.get_untracked().parse().unwrap_or(1),
        );
        spawn_local(async move {
            result.set(Some(diff_versions(id, a, b).await));
        });
    };
    let numbers: Vec<i64> = detail.versions.iter().map(|v| v.number).collect();
    let options = move || {
        numbers
            .iter()
            .map(|n| view! { <option value=n.to_string()>{format!("v{n}")}</option> })
            .collect_view()
    };
    view! {
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"Versions"</h2>
            <table class="table" data-testid="versions">
                <thead><tr><th scope="col">"Version"</th><th scope="col">"Author"</th><th scope="col">"Saved"</th><th scope="col">"Note"</th><th scope="col">"Tests"</th></tr></thead>
                <tbody>
                    {detail.versions.iter().map(|v| view! {
                        <tr data-testid="version-row">
                            <td>{format!("v{}", v.number)}</td>
                            <td>{v.author_name.clone()}</td>
                            <td>{format_time(v.created_ms)}</td>
                            <td>{v.note.clone()}</td>
                            <td>{match &v.last_run {
                                Some(run) => format!("{} passed, {} failed", run.passed, run.failed),
                                None => format!("{} cases, not run", v.test_count),
                            }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="panel" aria-labelledby="diff-heading">
            <h2 id="diff-heading">"Compare versions"</h2>
            <div class="filters">
                <label>"From"<select data-testid="diff-from" prop:value=move || from.get() on:change=move |ev| from.set(event_target_value(&ev))>{options.clone()}</select></label>
                <label>"To"<select data-testid="diff-to" prop:value=move || to.get() on:change=move |ev| to.set(event_target_value(&ev))>{options}</select></label>
                <button type="button" class="button primary" data-testid="compare" on:click=compare>"Compare"</button>
            </div>
            {move || result.get().map(|r| match r {
                Err(err) => error_view(err),
                Ok(diff) if diff.files.is_empty() => view! { <p class="muted" data-testid="diff-empty">{format!("v{} and v{} are identical.", diff.from, diff.to)}</p> }.into_any(),
                Ok(diff) => view! { <DiffView diff /> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn DiffView(diff: VersionDiff) -> impl IntoView {
    view! {
        <div data-testid="diff">
            {diff.files.into_iter().map(|file| view! {
                <h3 class="mono">{format!("{} (+{} −{})", file.name, file.added, file.removed)}</h3>
                <table class="diff">
                    <tbody>
                        {file.lines.into_iter().map(|line| {
                            let (class, sign) = match line.op {
                                DiffOp::Added => ("added", "+"),
                                DiffOp::Removed => ("removed", "−"),
                                DiffOp::Same => ("same", " "),
                                DiffOp::Skipped => ("skipped", "⋯"),
                            };
                            view! {
                                <tr class=class data-testid=format!("diff-{class}")>
                                    <td class="num">{line.old.map(|n| n.to_string())}</td>
                                    <td class="num">{line.new.map(|n| n.to_string())}</td>
                                    <td class="sign">{sign}</td>
                                    <td class="text"><code>{line.text}</code></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }).collect_view()}
        </div>
    }
}

#[component]
fn StagingTab(id: String) -> impl IntoView {
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
            Some(Err(err)) => error_view(err),
            _ => ().into_any(),
        }}
        {move || checked.get().map(error_view)}
        <Transition fallback=|| view! { <p class="muted">"Loading staging…"</p> }>
            {move || Suspend::new(async move {
                match staging.await {
                    Err(err) => error_view(err),
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
    view! {
        <section class="panel" aria-labelledby="modes-heading">
            <h2 id="modes-heading">"Intended mode per environment"</h2>
            <p class="muted">"Stage a policy audit → warn → enforce: audit records violations, warn also tells the client, enforce rejects. Rollouts will move clusters to these modes."</p>
            <table class="table" data-testid="modes">
                <thead><tr><th scope="col">"Environment"</th><th scope="col">"Mode"</th><th scope="col">"Set"</th></tr></thead>
                <tbody>
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
                </tbody>
            </table>
            <p class="muted">{format!("Environments shown by default: {}. Others appear once a mode is set for them through the API.", ENVIRONMENTS.join(", "))}</p>
        </section>
        <section class="panel" aria-labelledby="live-heading">
            <h2 id="live-heading">"What is live where"</h2>
            {if staging.live.is_empty() {
                view! { <p class="empty-state" data-testid="no-rollouts">"This policy runs on no cluster yet. Once a rollout of it is applied, each cluster's version and mode will show here."</p> }.into_any()
            } else {
                view! {
                    <table class="table" data-testid="live">
                        <thead><tr><th scope="col">"Cluster"</th><th scope="col">"Environment"</th><th scope="col">"Version"</th><th scope="col">"Mode"</th><th scope="col">"Drift"</th></tr></thead>
                        <tbody>
                            {staging.live.iter().map(|d| {
                                let (badge, text) = match d.drift {
                                    Drift::InSync => ("badge good", "in sync".to_owned()),
                                    Drift::Drifted => ("badge bad", format!("drifted: {}", d.drift_detail)),
                                    Drift::Unknown => ("badge muted", "not checked yet".to_owned()),
                                };
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
                        </tbody>
                    </table>
                    <p>
                        <button type="button" class="button small" data-testid="check-drift" on:click=move |_| check.run(())>"Check drift now"</button>
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
                        <pre class="code manifests" data-testid="manifests">{yaml}</pre>
                    }.into_any(),
                    Some(Err(why)) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
                    None => ().into_any(),
                }
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_795_000_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn carets_land_on_the_line_and_column_in_utf16() {
        let text = "ab\ncdé\nxyz";
        assert_eq!(caret_offset(text, 1, 1), 0);
        assert_eq!(caret_offset(text, 2, 3), 5);
        assert_eq!(caret_offset(text, 3, 2), 8);
        // A column past the end of the line stays on the line.
        assert_eq!(caret_offset(text, 1, 40), 2);
    }
}
