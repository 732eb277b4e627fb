//! The Tests tab: the policy's test cases and the results of running them.

use super::*;

#[component]
pub(super) fn TestsTab(
    detail: PolicyDetail,
    draft: Draft,
    saving: Saving,
    save: Callback<()>,
) -> impl IntoView {
    let rights = StoredValue::new(Rights::here());
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
    // The case being edited in the form, by position; `None` while writing a new one.
    let editing = RwSignal::new(None::<usize>);
    let add = move |_| {
        let case = TestCase {
            name: name.get_untracked().trim().to_owned(),
            yaml: yaml.get_untracked(),
            expect: Expect::parse(&expect.get_untracked()).unwrap_or(Expect::Deny),
            message: Some(message.get_untracked()).filter(|m| !m.trim().is_empty()),
        };
        draft.tests.update(|tests| match editing.get_untracked() {
            Some(index) if index < tests.len() => tests[index] = case,
            _ => tests.push(case),
        });
        editing.set(None);
        name.set(String::new());
        yaml.set(String::new());
        message.set(String::new());
    };
    // Load case `index` into the form; "Update case" puts it back changed.
    let start_editing = move |index: usize| {
        if let Some(case) = draft.tests.get_untracked().get(index) {
            name.set(case.name.clone());
            yaml.set(case.yaml.clone());
            expect.set(case.expect.as_str().to_owned());
            message.set(case.message.clone().unwrap_or_default());
            editing.set(Some(index));
        }
    };
    // Every problem of the last save, whatever part it is in, next to the Save button that found
    // it: a save from this tab can fail on the source too, and must say where.
    let problems = saving.problems;

    view! {
        <section class="panel" aria-labelledby="run-heading">
            <PanelHeader id="run-heading" title=format!("Results for version {number}")>
                <button type="button" class="button primary" data-testid="run-tests" disabled=move || running.get() || rights.with_value(|r| r.edit.is_some()) title=rights.with_value(|r| r.edit.clone().unwrap_or_default()) on:click=run>
                    {move || if running.get() { "Running…" } else { "Run tests" }}
                </button>
            </PanelHeader>
            {move || match fresh.get() {
                Some(Ok(run)) => view! { <RunResults run /> }.into_any(),
                Some(Err(err)) => load_error(err),
                None => view! {
                    <Transition fallback=|| view! { <Loading text="Reading the last run…" /> }>
                        {move || Suspend::new(async move {
                            match stored.await {
                                Ok(Some(run)) => view! { <RunResults run /> }.into_any(),
                                Ok(None) => view! { <p class="muted" data-testid="never-run">"This version has not been tested yet. Run its cases to see each one's result and the engine's message."</p> }.into_any(),
                                Err(err) => load_error(err),
                            }
                        })}
                    </Transition>
                }.into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="cases-heading">
            <h2 id="cases-heading">"Test cases"</h2>
            <p class="muted">"Cases belong to a version: changes here are saved as a new version, then run."</p>
            <ol class="cases" data-testid="cases">
                {move || draft.tests.get().into_iter().enumerate().map(|(index, case)| view! {
                    <li class="case" data-testid="case">
                        <div class="case-head">
                            <strong>{case.name.clone()}</strong>
                            <span class="badge">{format!("expects {}", case.expect.as_str())}</span>
                            {case.message.clone().map(|m| view! { <span class="muted mono">{format!("/{m}/")}</span> })}
                            <button type="button" class="button small" data-testid="edit-case" aria-label=format!("Edit case {}", case.name) on:click=move |_| start_editing(index)>"Edit"</button>
                            <button type="button" class="button small" aria-label=format!("Remove case {}", case.name) on:click=move |_| { editing.set(None); draft.tests.update(|t| { if index < t.len() { t.remove(index); } }) }>"Remove"</button>
                        </div>
                        <details><summary>"YAML"</summary><pre class="code" tabindex="0" aria-label="The case as YAML">{case.yaml.clone()}</pre></details>
                    </li>
                }).collect_view()}
            </ol>
            <fieldset class="new-case">
                <legend>{move || if editing.get().is_some() { "Edit the case" } else { "Add a case" }}</legend>
                <label>"Name"<input type="text" data-testid="case-name" bind:value=name /></label>
                <label>
                    "Object, or an AdmissionReview for UPDATE and DELETE (YAML)"
                    <textarea class="code" rows="8" spellcheck="false" data-testid="case-yaml" bind:value=yaml></textarea>
                </label>
                <label>
                    "…or upload a file"
                    <input type="file" accept=".yaml,.yml,.json" data-testid="case-file" on:change=move |ev| crate::layout::read_file_into(ev, yaml) />
                </label>
                <label>
                    "Expected"
                    <select data-testid="case-expect" bind:value=expect>
                        {Expect::ALL.iter().map(|e| view! { <option value=e.as_str()>{e.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Message pattern (optional regular expression)"<input type="text" data-testid="case-message" bind:value=message /></label>
                <button type="button" class="button" data-testid="add-case" disabled=move || name.get().trim().is_empty() || yaml.get().trim().is_empty() on:click=add>{move || if editing.get().is_some() { "Update case" } else { "Add case" }}</button>
            </fieldset>
            <ProblemList problems=problems.into() on_pick=Callback::new(|_| ()) />
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
        <DataTable columns=&["Case", "Result", "Expected", "Engine", "Message"] class="results" testid="run-results">
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
            </DataTable>
    }
}
