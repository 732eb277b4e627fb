//! `/policies/new` and `/library`: a policy from a template, pasted YAML or the built-in library.

use super::*;

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
        <PageHeader title="New policy" purpose="Start from the built-in library, paste the YAML of a policy you already have, or begin with a small working template. Nothing is saved until the engine accepts it." />
        <Show when=move || error.get().is_some()>
            <div class="error" role="alert" data-testid="create-error">
                <p>{move || error.get().unwrap_or_default()}</p>
                <ProblemList problems=problems.into() on_pick=Callback::new(|_| ()) />
            </div>
        </Show>
        <Allowed action=Permission::EditPolicies doing="Creating a policy" testid="create-needs-role">
        <div class="choices">
            <section class="panel" aria-labelledby="from-library">
                <h2 id="from-library">"From the library"</h2>
                <Transition fallback=|| view! { <Loading text="Loading the library…" /> }>
                    {move || Suspend::new(async move {
                        match entries.await {
                            Err(err) => load_error(err),
                            Ok(list) => view! {
                                <label>
                                    "Entry"
                                    <select data-testid="library-select" bind:value=entry>
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
                <p class="muted">"A ValidatingAdmissionPolicy with its binding, a ConstraintTemplate with a Constraint, a Kyverno ClusterPolicy, Policy or ValidatingPolicy, or a palisade.dev/v1alpha1 PodSecurityEntry. The engine is detected."</p>
                <label>
                    "From a file"
                    <input type="file" accept=".yaml,.yml,.json" data-testid="yaml-file" on:change=move |ev| crate::layout::read_file_into(ev, yaml) />
                </label>
                <textarea
                    class="code"
                    rows="12"
                    spellcheck="false"
                    aria-label="Policy YAML"
                    data-testid="paste-yaml"
                    bind:value=yaml
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
                    <select data-testid="blank-engine" bind:value=engine>
                        {Engine::ALL.iter().map(|e| view! { <option value=e.as_str()>{e.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Name"
                    <input type="text" data-testid="blank-name" placeholder="require-owner-label" bind:value=name />
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
        </Allowed>
    }
}

#[component]
pub fn LibraryPage() -> impl IntoView {
    let entries = Resource::new(|| (), |_| list_library());
    let me = use_me();
    let problems = RwSignal::new(Vec::<Problem>::new());
    let error = RwSignal::new(None::<String>);
    view! {
        <Title text="Library" />
        <PageHeader title="Library" purpose="Built-in policies for the common mistakes, each with its test cases and the controls it satisfies. Adopting one makes it your policy: version 1 is an exact copy you can then change." />
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
        </Show>
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading the library…"</p> }>
            {move || Suspend::new(async move {
                let denied = needs(role_of(&me.await), Permission::EditPolicies);
                match entries.await {
                    Err(err) => load_error(err),
                    Ok(list) => view! {
                        {denied.clone().map(|why| view! {
                            <p class="muted needs-role" data-testid="adopt-needs-role">{format!("Adopting an entry: {}.", why.to_lowercase())}</p>
                        })}
                        <ul class="entries data-table" data-testid="library-list">
                            {list.into_iter().map(|entry| view! { <LibraryCard entry problems error denied=denied.clone() /> }).collect_view()}
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
    /// Why this role may not adopt (`Needs the author role`), or `None`.
    denied: Option<String>,
) -> impl IntoView {
    let id = entry.id.clone();
    let may = denied.is_none();
    let title = denied.unwrap_or_else(|| "Adopt as a policy of your own".to_owned());
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
                disabled=!may
                title=title
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
            <crate::ui::Markdown text=entry.description.clone() />
            <p class="tags">{entry.controls.iter().map(|c| view! { <span class="tag">{c.clone()}</span> }).collect_view()}</p>
            {action}
        </li>
    }
}
