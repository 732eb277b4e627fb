//! `/policies`: every policy with its engine, mode and last test run, filtered.

use super::*;
use crate::ui::url::query_signal;

pub(super) fn run_badge(summary: &PolicySummary) -> AnyView {
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

#[component]
pub fn PoliciesPage() -> impl IntoView {
    // The filters live in the URL (`?engine=gatekeeper&mode=enforce`), so a reload or a shared
    // link shows the same list.
    let q = query_signal("q");
    let engine = query_signal("engine");
    let category = query_signal("category");
    let framework = query_signal("framework");
    let mode = query_signal("mode");
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
                    "Pod Security, ValidatingAdmissionPolicy (CEL) and Gatekeeper (Rego) policies, each with its versions, test cases, and where it is live."
                </p>
            </div>
            <Allowed action=Permission::EditPolicies doing="New policies" testid="new-policy-needs-role">
                <a class="button primary" href="/policies/new" data-testid="new-policy">"New policy"</a>
            </Allowed>
        </header>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>
                "Search"
                <input
                    type="search"
                    data-testid="policy-search"
                    placeholder="name, title or description"
                    bind:value=q
                />
            </label>
            <FilterSelect label="Engine" value=engine options=Engine::ALL.iter().map(|e| (e.as_str().to_owned(), e.label().to_owned())).collect() testid="filter-engine" />
            <FilterSelect label="Category" value=category options=CATEGORIES.iter().map(|c| (c.to_string(), c.to_string())).collect() testid="filter-category" />
            <FilterSelect label="Framework" value=framework options=FRAMEWORKS.iter().map(|(id, name)| (id.to_string(), name.to_string())).collect() testid="filter-framework" />
            <FilterSelect
                label="Live mode"
                value=mode
                options=Mode::ALL.iter().map(|m| (m.as_str().to_owned(), format!("{} on some cluster", m.as_str()))).chain([("none".to_owned(), "not deployed".to_owned())]).collect()
                testid="filter-mode"
            />
        </form>
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading policies…"</p> }>
            {move || Suspend::new(async move {
                match policies.await {
                    Err(err) => load_error(err),
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
                bind:value=value
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
        <DataTable columns=&["Policy", "Engine", "Category", "Version", "Tests", "Live"] testid="policy-list">
                {list
                    .into_iter()
                    .map(|p| {
                        let href = format!("/policies/{}", p.id);
                        let badge = run_badge(&p);
                        let live = p.live_text();
                        let intended = p.intended_text().map(|text| view! {
                            <div class="muted small" data-testid="policy-intended">{format!("intended: {text}")}</div>
                        });
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
                                <td data-testid="policy-live">{live}{intended}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </DataTable>
    }
}
