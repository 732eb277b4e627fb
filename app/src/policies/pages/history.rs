//! The History tab: every version, and the difference between any two. The compared pair is in
//! the URL (`?tab=history&from=1&to=3`), so a reload or a shared link shows the same diff.

use super::*;

#[component]
pub(super) fn HistoryTab(detail: PolicyDetail) -> impl IntoView {
    let newest = detail.policy.current_version;
    let query = use_query_map();
    let compared = Memo::new(move |_| {
        let query = query.read();
        let number = |key: &str| query.get(key).and_then(|v| v.parse::<i64>().ok());
        number("from").zip(number("to"))
    });
    let (first, second) = compared
        .get_untracked()
        .unwrap_or(((newest - 1).max(1), newest));
    let from = RwSignal::new(first.to_string());
    let to = RwSignal::new(second.to_string());
    let id = detail.policy.id.clone();
    let result = Resource::new(
        move || compared.get(),
        move |pair| {
            let id = id.clone();
            async move {
                match pair {
                    Some((a, b)) => Some(diff_versions(id, a, b).await),
                    None => None,
                }
            }
        },
    );
    let navigate = use_navigate();
    let here = detail.policy.id.clone();
    let compare = move |_| {
        let options = leptos_router::NavigateOptions {
            replace: true,
            scroll: false,
            ..Default::default()
        };
        navigate(
            &format!(
                "/policies/{here}?tab=history&from={}&to={}",
                from.get_untracked(),
                to.get_untracked()
            ),
            options,
        );
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
            <DataTable columns=&["Version", "Author", "Saved", "Note", "Tests"] testid="versions">
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
                </DataTable>
        </section>
        <section class="panel" aria-labelledby="diff-heading">
            <h2 id="diff-heading">"Compare versions"</h2>
            <div class="filters">
                <label>"From"<select data-testid="diff-from" bind:value=from>{options.clone()}</select></label>
                <label>"To"<select data-testid="diff-to" bind:value=to>{options}</select></label>
                <button type="button" class="button primary" data-testid="compare" on:click=compare>"Compare"</button>
            </div>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match result.await {
                        None => ().into_any(),
                        Some(Err(err)) => load_error(err),
                        Some(Ok(diff)) if diff.files.is_empty() => view! { <p class="muted" data-testid="diff-empty">{format!("v{} and v{} are identical.", diff.from, diff.to)}</p> }.into_any(),
                        Some(Ok(diff)) => view! { <DiffView diff /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DiffView(diff: VersionDiff) -> impl IntoView {
    view! {
        <div data-testid="diff">
            {diff.files.into_iter().map(|file| view! { <FileDiffTable file /> }).collect_view()}
        </div>
    }
}

/// One file's changes: a heading with the counts, then the lines with their numbers.
#[component]
pub fn FileDiffTable(file: FileDiff) -> impl IntoView {
    view! {
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
    }
}
