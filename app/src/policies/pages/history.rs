//! The History tab: every version, and the difference between any two.

use super::*;

#[component]
pub(super) fn HistoryTab(detail: PolicyDetail) -> impl IntoView {
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
                <label>"From"<select data-testid="diff-from" prop:value=move || from.get() on:change=move |ev| from.set(event_target_value(&ev))>{options.clone()}</select></label>
                <label>"To"<select data-testid="diff-to" prop:value=move || to.get() on:change=move |ev| to.set(event_target_value(&ev))>{options}</select></label>
                <button type="button" class="button primary" data-testid="compare" on:click=compare>"Compare"</button>
            </div>
            {move || result.get().map(|r| match r {
                Err(err) => load_error(err),
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
