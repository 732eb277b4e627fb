//! The Edit tab: the source editor with its gutter, the problems list and the save bar.

use super::*;
use crate::ui::highlight::{self, Mark};

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

/// Byte offset of a UTF-16 offset in `text` (the textarea's caret), clamped to the text.
fn byte_offset(text: &str, utf16: u32) -> usize {
    let mut units = 0u32;
    for (at, c) in text.char_indices() {
        if units >= utf16 {
            return at;
        }
        units += u32::try_from(c.len_utf16()).unwrap_or(2);
    }
    text.len()
}

#[component]
pub(super) fn SaveBar(draft: Draft, saving: Saving, save: Callback<()>) -> impl IntoView {
    let denied = Rights::here().edit;
    let may = denied.is_none();
    let title = denied
        .clone()
        .unwrap_or_else(|| "Save a new version (Ctrl+S or ⌘S)".to_owned());
    view! {
        <div class="save-bar">
            <label class="grow">
                "Change note"
                <input
                    type="text"
                    data-testid="change-note"
                    placeholder="What changed and why"
                    bind:value=draft.note
                />
            </label>
            <button
                type="button"
                class="button primary"
                data-testid="save-version"
                disabled=move || saving.busy.get() || !may
                on:click=move |_| save.run(())
                title=title
            >
                "Save version"
            </button>
            {denied.map(|why| view! { <span class="muted small" data-testid="save-needs-role">{format!("{why} to save.")}</span> })}
            <span class="status" role="status" data-testid="save-status">{move || saving.status.get().unwrap_or_default()}</span>
        </div>
        <Show when=move || saving.error.get().is_some()>
            <p class="error" role="alert" data-testid="save-error">{move || saving.error.get().unwrap_or_default()}</p>
        </Show>
    }
}

#[component]
pub(super) fn EditTab(draft: Draft, saving: Saving, save: Callback<()>) -> impl IntoView {
    let editor = NodeRef::<leptos::html::Textarea>::new();
    let gutter = NodeRef::<leptos::html::Div>::new();
    let layer = NodeRef::<leptos::html::Pre>::new();
    // Where the caret is (a byte offset), when nothing is selected: its bracket and the partner
    // are marked in the coloured layer.
    let caret = RwSignal::new(None::<usize>);
    let follow_caret = move || {
        if let Some(area) = editor.get_untracked() {
            let (start, end) = (
                area.selection_start().ok().flatten(),
                area.selection_end().ok().flatten(),
            );
            let at = match (start, end) {
                (Some(start), Some(end)) if start == end => {
                    Some(draft.source.with_untracked(|s| byte_offset(s, start)))
                }
                _ => None,
            };
            if caret.get_untracked() != at {
                caret.set(at);
            }
        }
    };
    let source_problems = Memo::new(move |_| {
        saving
            .problems
            .get()
            .into_iter()
            .filter(|p| p.part == Part::Source)
            .collect::<Vec<_>>()
    });
    let coloured = Memo::new(move |_| {
        let marks: Vec<Mark> = source_problems.with(|problems| {
            problems
                .iter()
                .map(|p| Mark {
                    line: p.line,
                    column: p.column,
                    warning: p.warning,
                })
                .collect()
        });
        draft
            .source
            .with(|source| highlight::to_html(source, caret.get(), &marks))
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
            <PanelHeader title="Policy source">
                <button type="button" class="button" data-testid="check-policy" disabled=move || checking.get() on:click=check>"Check"</button>
            </PanelHeader>
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
                <div class="code-stack">
                    <pre class="code highlight" aria-hidden="true" node_ref=layer data-testid="source-colours" inner_html=move || coloured.get()></pre>
                    <textarea
                        class="code"
                        node_ref=editor
                        spellcheck="false"
                        wrap="off"
                        aria-label="Policy source (YAML)"
                        data-testid="source-editor"
                        prop:value=move || draft.source.get()
                        on:input=move |ev| {
                            draft.source.set(event_target_value(&ev));
                            follow_caret();
                        }
                        on:keyup=move |_| follow_caret()
                        on:click=move |_| follow_caret()
                        on:select=move |_| follow_caret()
                        on:blur=move |_| caret.set(None)
                        on:scroll=move |_| {
                            if let Some(area) = editor.get() {
                                if let Some(gutter) = gutter.get() {
                                    gutter.set_scroll_top(area.scroll_top());
                                }
                                if let Some(layer) = layer.get() {
                                    layer.set_scroll_top(area.scroll_top());
                                    layer.set_scroll_left(area.scroll_left());
                                }
                            }
                        }
                    ></textarea>
                </div>
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
                bind:value=draft.params
            ></textarea>
            <label>
                "Description"
                <textarea rows="3" data-testid="description" bind:value=draft.description></textarea>
            </label>
            <label>
                "Remediation"
                <textarea rows="3" data-testid="remediation" bind:value=draft.remediation></textarea>
            </label>
            <label>
                "Control tags (framework:id, comma-separated: cis, nsa-cisa, pci-dss, soc2)"
                <input type="text" data-testid="controls" bind:value=draft.controls />
            </label>
            <SaveBar draft saving save />
        </section>
    }
}

#[component]
pub(super) fn ProblemList(
    problems: Signal<Vec<Problem>>,
    on_pick: Callback<Problem>,
) -> impl IntoView {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carets_land_on_the_line_and_column_in_utf16() {
        let text = "ab\ncdé\nxyz";
        assert_eq!(caret_offset(text, 1, 1), 0);
        assert_eq!(caret_offset(text, 2, 3), 5);
        assert_eq!(caret_offset(text, 3, 2), 8);
        // A column past the end of the line stays on the line.
        assert_eq!(caret_offset(text, 1, 40), 2);
    }

    #[test]
    fn the_textarea_caret_is_read_back_as_bytes() {
        let text = "é(𝄞)x";
        // é is 1 UTF-16 unit and 2 bytes; 𝄞 is 2 units and 4 bytes.
        assert_eq!(byte_offset(text, 0), 0);
        assert_eq!(byte_offset(text, 1), 2);
        assert_eq!(byte_offset(text, 2), 3);
        assert_eq!(byte_offset(text, 4), 7);
        assert_eq!(byte_offset(text, 99), text.len());
        // Round trip with the other direction.
        assert_eq!(byte_offset(text, caret_offset(text, 1, 8)), 7);
    }
}
