//! The wave editor of the propose form: the waves in order, each with its fields and, beside them,
//! the enabled clusters it takes, recomputed as the environment and labels change. The rules
//! (what is valid, which clusters a wave takes) are in `form.rs`; this file only draws them.

use super::form::{
    check_waves, minutes_label, preview, preview_problems, Target, WaveField, WaveInput,
    WavePreview, WaveProblem, MAX_APPROVALS, MAX_WAVES, MAX_WAVE_NAME,
};
use super::*;

/// One label pair of a wave, as typed.
#[derive(Debug, Clone, Copy)]
struct LabelDraft {
    id: u64,
    key: RwSignal<String>,
    value: RwSignal<String>,
}

/// One wave, as typed: a signal per field, so typing in one redraws only what depends on it.
#[derive(Debug, Clone, Copy)]
struct WaveDraft {
    id: u64,
    name: RwSignal<String>,
    environment: RwSignal<String>,
    labels: RwSignal<Vec<LabelDraft>>,
    approvals: RwSignal<String>,
    soak: RwSignal<String>,
    threshold: RwSignal<String>,
}

impl WaveDraft {
    fn read(&self) -> WaveInput {
        WaveInput {
            name: self.name.get(),
            environment: self.environment.get(),
            labels: self
                .labels
                .get()
                .iter()
                .map(|l| (l.key.get(), l.value.get()))
                .collect(),
            approvals: self.approvals.get(),
            soak_minutes: self.soak.get(),
            threshold: self.threshold.get(),
        }
    }
}

/// The form's waves, in order. Rows are keyed by ids handed out in order, the same on the server
/// and in the browser.
#[derive(Debug, Clone, Copy)]
pub(super) struct WaveDrafts {
    list: RwSignal<Vec<WaveDraft>>,
    last_id: StoredValue<u64>,
    /// The wave whose name field takes focus once drawn: the one just added, or the one that
    /// moved into the place of a removed wave, so keyboard users are not left on a vanished button.
    focus: RwSignal<Option<u64>>,
}

impl WaveDrafts {
    pub(super) fn new(inputs: Vec<WaveInput>) -> Self {
        let drafts = Self {
            list: RwSignal::new(Vec::new()),
            last_id: StoredValue::new(0),
            focus: RwSignal::new(None),
        };
        let list = inputs.into_iter().map(|i| drafts.draft(i)).collect();
        drafts.list.set(list);
        drafts
    }

    fn next_id(&self) -> u64 {
        self.last_id.update_value(|id| *id += 1);
        self.last_id.get_value()
    }

    fn label(&self, key: String, value: String) -> LabelDraft {
        LabelDraft {
            id: self.next_id(),
            key: RwSignal::new(key),
            value: RwSignal::new(value),
        }
    }

    fn draft(&self, input: WaveInput) -> WaveDraft {
        WaveDraft {
            id: self.next_id(),
            name: RwSignal::new(input.name),
            environment: RwSignal::new(input.environment),
            labels: RwSignal::new(
                input
                    .labels
                    .into_iter()
                    .map(|(k, v)| self.label(k, v))
                    .collect(),
            ),
            approvals: RwSignal::new(input.approvals),
            soak: RwSignal::new(input.soak_minutes),
            threshold: RwSignal::new(input.threshold),
        }
    }

    /// The waves as typed, tracked.
    pub(super) fn inputs(&self) -> Vec<WaveInput> {
        self.list.get().iter().map(WaveDraft::read).collect()
    }

    /// The waves as typed, untracked (what a submit reads).
    pub(super) fn inputs_untracked(&self) -> Vec<WaveInput> {
        untrack(|| self.inputs())
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.list.with(|list| list.iter().position(|d| d.id == id))
    }

    fn add(&self) {
        let draft = self.draft(WaveInput::of_environment(""));
        self.list.update(|list| list.push(draft));
        self.focus.set(Some(draft.id));
    }

    fn remove(&self, id: u64) {
        let mut next = None;
        self.list.update(|list| {
            if let Some(at) = list.iter().position(|d| d.id == id) {
                list.remove(at);
                next = list.get(at).or(list.last()).map(|d| d.id);
            }
        });
        self.focus.set(next);
    }

    /// Moves wave `id` one place earlier (`up`) or later.
    fn shift(&self, id: u64, up: bool) {
        self.list.update(|list| {
            let Some(at) = list.iter().position(|d| d.id == id) else {
                return;
            };
            let to = if up { at.checked_sub(1) } else { Some(at + 1) };
            if let Some(to) = to.filter(|to| *to < list.len()) {
                list.swap(at, to);
            }
        });
    }
}

/// Every distinct value, sorted.
fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut values: Vec<String> = values.filter(|v| !v.is_empty()).collect();
    values.sort();
    values.dedup();
    values
}

/// Everything a wave's card reads, shared by every card.
#[derive(Clone, Copy)]
struct Shared {
    drafts: WaveDrafts,
    inputs: Memo<Vec<WaveInput>>,
    previews: Memo<Vec<WavePreview>>,
    problems: Memo<Vec<WaveProblem>>,
    environments: StoredValue<Vec<String>>,
    /// What the server refused, at the wave its message names.
    refused: RwSignal<Option<(usize, String)>>,
}

/// The waves of the propose form, each beside the clusters it takes among `clusters`.
#[component]
pub(super) fn WaveEditor(
    drafts: WaveDrafts,
    clusters: Vec<Target>,
    refused: RwSignal<Option<(usize, String)>>,
) -> impl IntoView {
    let environments = distinct(clusters.iter().map(|c| c.environment.clone()));
    let keys = distinct(clusters.iter().flat_map(|c| c.labels.keys().cloned()));
    let values = distinct(clusters.iter().flat_map(|c| c.labels.values().cloned()));
    let enabled = clusters.iter().filter(|c| !c.disabled).count();
    let clusters = StoredValue::new(clusters);
    let inputs = Memo::new(move |_| drafts.inputs());
    let previews = Memo::new(move |_| {
        let selectors: Vec<Selector> =
            inputs.with(|waves| waves.iter().map(WaveInput::selector).collect());
        clusters.with_value(|clusters| preview(&selectors, clusters))
    });
    let problems = Memo::new(move |_| {
        let mut problems = inputs.with(|waves| check_waves(waves).err().unwrap_or_default());
        problems.extend(previews.with(|previews| preview_problems(previews)));
        problems
    });
    let shared = Shared {
        drafts,
        inputs,
        previews,
        problems,
        environments: StoredValue::new(environments),
        refused,
    };
    let count = move || drafts.list.with(Vec::len);

    view! {
        <fieldset class="waves" data-testid="wave-editor">
            <legend>"Waves"</legend>
            <p class="muted small">
                "In order: each wave waits for its approvals (from people other than the proposer), "
                "is applied to the clusters it selects, then soaks before the next one starts. "
                "A cluster belongs to the first wave that selects it. "
                {format!("{enabled} enabled cluster{} registered.", if enabled == 1 { "" } else { "s" })}
            </p>
            <datalist id="wave-label-keys">
                {keys.into_iter().map(|k| view! { <option value=k></option> }).collect_view()}
            </datalist>
            <datalist id="wave-label-values">
                {values.into_iter().map(|v| view! { <option value=v></option> }).collect_view()}
            </datalist>
            <ol class="wave-list">
                <For
                    each=move || drafts.list.get()
                    key=|draft| draft.id
                    children=move |draft| view! { <WaveCard draft shared /> }
                />
            </ol>
            <button
                type="button"
                class="button"
                data-testid="wave-add"
                disabled=move || { count() >= MAX_WAVES }
                on:click=move |_| drafts.add()
            >
                "Add a wave"
            </button>
        </fieldset>
    }
}

/// One wave: its fields, its controls, and the clusters it takes.
#[component]
fn WaveCard(draft: WaveDraft, shared: Shared) -> impl IntoView {
    let Shared {
        drafts,
        inputs,
        previews,
        problems,
        environments,
        refused,
    } = shared;
    let id = draft.id;
    let name_field = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if drafts.focus.get() == Some(id) {
            if let Some(field) = name_field.get() {
                let _ = field.focus();
                drafts.focus.set(None);
            }
        }
    });
    let index = Memo::new(move |_| drafts.position(id).unwrap_or(0));
    let count = Memo::new(move |_| drafts.list.with(Vec::len));
    let number = move || index.get() + 1;
    let problem = move |field: WaveField| {
        let at = index.get();
        problems.with(|all| {
            all.iter()
                .find(|p| p.wave == at && p.field == field)
                .map(|p| p.message.clone())
        })
    };
    let troubled = move || {
        let at = index.get();
        problems.with(|all| all.iter().any(|p| p.wave == at))
            || refused.with(|r| r.as_ref().is_some_and(|(wave, _)| *wave == at))
    };
    let shown_name = move || {
        let at = index.get();
        inputs.with(|w| w.get(at).map(|w| w.shown_name(at)).unwrap_or_default())
    };
    let heading = format!("wave-{id}-heading");
    let labelled_by = heading.clone();
    let error_id = move |field: &str| format!("wave-{id}-{field}-error");
    let field_error = move |field: WaveField, name: &'static str| {
        move || {
            problem(field).map(|message| {
                view! { <span class="field-error" id=error_id(name) data-testid=format!("wave-{name}-error")>{message}</span> }
            })
        }
    };
    let invalid = move |field: WaveField| move || problem(field).map(|_| "true");
    let described =
        move |field: WaveField, name: &'static str| move || problem(field).map(|_| error_id(name));
    let soak_words = move || match draft.soak.with(|text| text.trim().parse::<u64>().ok()) {
        Some(0) => "no soak".to_owned(),
        Some(minutes) => minutes_label(minutes),
        None => String::new(),
    };
    let env_options = environments.get_value();
    let missing_environment = move || {
        let current = draft.environment.get();
        let known = environments.with_value(|all| all.contains(&current));
        (!current.is_empty() && !known).then(|| {
            let text = format!("{current} (no cluster has it)");
            view! { <option value=current selected=true>{text}</option> }
        })
    };

    view! {
        <li
            class="wave"
            class:has-problem=troubled
            data-testid="wave"
            aria-labelledby=labelled_by
        >
            <div class="wave-head">
                <h3 id=heading>
                    {move || format!("Wave {}", number())}
                    <span class="muted" data-testid="wave-shown-name">{move || format!(" · {}", shown_name())}</span>
                </h3>
                <div class="actions">
                    <button
                        type="button"
                        class="button small"
                        aria-label=move || format!("Move wave {} up", number())
                        disabled=move || index.get() == 0
                        on:click=move |_| drafts.shift(id, true)
                    >
                        "Up"
                    </button>
                    <button
                        type="button"
                        class="button small"
                        aria-label=move || format!("Move wave {} down", number())
                        disabled=move || { index.get() + 1 >= count.get() }
                        on:click=move |_| drafts.shift(id, false)
                    >
                        "Down"
                    </button>
                    <button
                        type="button"
                        class="button small"
                        data-testid="wave-remove"
                        aria-label=move || format!("Remove wave {}", number())
                        disabled=move || { count.get() <= 1 }
                        on:click=move |_| drafts.remove(id)
                    >
                        "Remove"
                    </button>
                </div>
            </div>
            <div class="wave-body">
                <div class="wave-fields">
                    <div class="wave-field">
                        <label>
                            "Name"
                            <input
                                type="text"
                                data-testid="wave-name"
                                node_ref=name_field
                                maxlength=MAX_WAVE_NAME.to_string()
                                aria-invalid=invalid(WaveField::Name)
                                aria-describedby=described(WaveField::Name, "name")
                                placeholder=move || {
                                    let at = index.get();
                                    inputs.with(|w| {
                                        w.get(at)
                                            .map(|w| WaveInput { name: String::new(), ..w.clone() }.shown_name(at))
                                            .unwrap_or_default()
                                    })
                                }
                                bind:value=draft.name
                            />
                        </label>
                        {field_error(WaveField::Name, "name")}
                    </div>
                    <div class="wave-field">
                        <label>
                            "Environment"
                            <select
                                data-testid="wave-environment"
                                bind:value=draft.environment
                            >
                                <option value="" selected=move || draft.environment.with(String::is_empty)>
                                    "Any environment"
                                </option>
                                {env_options
                                    .into_iter()
                                    .map(|env| {
                                        let value = env.clone();
                                        let selected = move || draft.environment.with(|e| *e == value);
                                        view! { <option value=env.clone() selected=selected>{env.clone()}</option> }
                                    })
                                    .collect_view()}
                                {missing_environment}
                            </select>
                        </label>
                    </div>
                    <div class="wave-field">
                        <label>
                            "Approvals needed"
                            <input
                                type="number"
                                min="0"
                                max=MAX_APPROVALS.to_string()
                                step="1"
                                data-testid="wave-approvals"
                                aria-invalid=invalid(WaveField::Approvals)
                                aria-describedby=described(WaveField::Approvals, "approvals")
                                bind:value=draft.approvals
                            />
                        </label>
                        {field_error(WaveField::Approvals, "approvals")}
                    </div>
                    <div class="wave-field">
                        <label>
                            "Soak (minutes)"
                            <input
                                type="number"
                                min="0"
                                step="1"
                                data-testid="wave-soak"
                                aria-invalid=invalid(WaveField::Soak)
                                aria-describedby=move || {
                                    let error = problem(WaveField::Soak).map(|_| error_id("soak"));
                                    Some(error.unwrap_or_else(|| format!("wave-{id}-soak-words")))
                                }
                                bind:value=draft.soak
                            />
                        </label>
                        <span class="muted small" id=format!("wave-{id}-soak-words") data-testid="wave-soak-words">
                            {soak_words}
                        </span>
                        {field_error(WaveField::Soak, "soak")}
                    </div>
                    <div class="wave-field">
                        <label>
                            "Violation threshold"
                            <input
                                type="number"
                                min="0"
                                step="1"
                                placeholder="none"
                                data-testid="wave-threshold"
                                aria-invalid=invalid(WaveField::Threshold)
                                aria-describedby=described(WaveField::Threshold, "threshold")
                                bind:value=draft.threshold
                            />
                        </label>
                        {field_error(WaveField::Threshold, "threshold")}
                    </div>
                    <WaveLabels draft shared index />
                </div>
                <div class="wave-preview" data-testid="wave-preview" aria-live="polite">
                    <h4>"Clusters it takes"</h4>
                    {move || {
                        let shown = previews.with(|p| p.get(index.get()).cloned().unwrap_or_default());
                        let list = if shown.takes.is_empty() {
                            view! {
                                <p class="error" data-testid="wave-no-clusters">
                                    {problem(WaveField::Clusters).unwrap_or_default()}
                                </p>
                            }
                            .into_any()
                        } else {
                            view! {
                                <ul class="wave-clusters">
                                    {shown
                                        .takes
                                        .into_iter()
                                        .map(|name| view! { <li data-testid="wave-cluster">{name}</li> })
                                        .collect_view()}
                                </ul>
                            }
                            .into_any()
                        };
                        let earlier = (!shown.earlier.is_empty()).then(|| {
                            let names = shown
                                .earlier
                                .iter()
                                .map(|(name, wave)| format!("{name} (wave {})", wave + 1))
                                .collect::<Vec<_>>()
                                .join(", ");
                            view! {
                                <p class="muted small" data-testid="wave-earlier">
                                    {format!("Also selected, but already in an earlier wave: {names}.")}
                                </p>
                            }
                        });
                        let disabled = (!shown.disabled.is_empty()).then(|| {
                            view! {
                                <p class="muted small" data-testid="wave-disabled">
                                    {format!("Disabled, so skipped: {}.", shown.disabled.join(", "))}
                                </p>
                            }
                        });
                        view! { {list} {earlier} {disabled} }
                    }}
                    {move || {
                        let at = index.get();
                        refused
                            .get()
                            .filter(|(wave, _)| *wave == at)
                            .map(|(_, message)| view! {
                                <p class="error" role="alert" data-testid="wave-refused">{message}</p>
                            })
                    }}
                </div>
            </div>
        </li>
    }
}

/// The label pairs a wave's clusters must all carry.
#[component]
fn WaveLabels(draft: WaveDraft, shared: Shared, index: Memo<usize>) -> impl IntoView {
    let Shared {
        drafts, problems, ..
    } = shared;
    let wave_id = draft.id;
    view! {
        <fieldset class="wave-labels">
            <legend>"Cluster labels"</legend>
            {move || {
                draft.labels.with(Vec::is_empty).then(|| view! {
                    <p class="muted small">"None: any labels."</p>
                })
            }}
            <For
                each=move || draft.labels.get()
                key=|label| label.id
                children=move |label| {
                    let id = label.id;
                    let at = Memo::new(move |_| {
                        draft.labels.with(|all| all.iter().position(|l| l.id == id).unwrap_or(0))
                    });
                    let problem = move || {
                        let (wave, at) = (index.get(), at.get());
                        problems.with(|all| {
                            all.iter()
                                .find(|p| p.wave == wave && p.field == WaveField::Label(at))
                                .map(|p| p.message.clone())
                        })
                    };
                    let error_id = format!("wave-{wave_id}-label-{id}-error");
                    let described = {
                        let error_id = error_id.clone();
                        move || problem().map(|_| error_id.clone())
                    };
                    let described_value = described.clone();
                    let name = move |part: &str| {
                        format!("Wave {}, label {} {part}", index.get() + 1, at.get() + 1)
                    };
                    view! {
                        <div class="label-pair" data-testid="wave-label">
                            <input
                                type="text"
                                list="wave-label-keys"
                                placeholder="key"
                                data-testid="wave-label-key"
                                aria-label=move || name("key")
                                aria-invalid=move || problem().map(|_| "true")
                                aria-describedby=described
                                bind:value=label.key
                            />
                            <span aria-hidden="true">"="</span>
                            <input
                                type="text"
                                list="wave-label-values"
                                placeholder="value"
                                data-testid="wave-label-value"
                                aria-label=move || name("value")
                                aria-invalid=move || problem().map(|_| "true")
                                aria-describedby=described_value
                                bind:value=label.value
                            />
                            <button
                                type="button"
                                class="button small"
                                aria-label=move || format!("Remove label {} of wave {}", at.get() + 1, index.get() + 1)
                                on:click=move |_| draft.labels.update(|all| all.retain(|l| l.id != id))
                            >
                                "Remove"
                            </button>
                            {move || problem().map(|message| view! {
                                <span class="field-error" id=error_id.clone() data-testid="wave-label-error">{message}</span>
                            })}
                        </div>
                    }
                }
            />
            <button
                type="button"
                class="button small"
                data-testid="wave-add-label"
                aria-label=move || format!("Add a label to wave {}", index.get() + 1)
                on:click=move |_| {
                    let label = drafts.label(String::new(), String::new());
                    draft.labels.update(|all| all.push(label));
                }
            >
                "Add a label"
            </button>
        </fieldset>
    }
}
