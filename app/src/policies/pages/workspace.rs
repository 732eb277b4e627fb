//! `/policies/:id`: the policy's workspace, its tabs, the draft being edited and the overview tab.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Overview,
    Edit,
    Tests,
    History,
    Staging,
    Impact,
}

impl Tab {
    const ALL: [Tab; 6] = [
        Tab::Overview,
        Tab::Edit,
        Tab::Tests,
        Tab::History,
        Tab::Staging,
        Tab::Impact,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Edit => "Edit",
            Tab::Tests => "Tests",
            Tab::History => "History",
            Tab::Staging => "Staging",
            Tab::Impact => "Impact",
        }
    }

    pub(super) fn id(self) -> &'static str {
        match self {
            Tab::Overview => "overview",
            Tab::Edit => "edit",
            Tab::Tests => "tests",
            Tab::History => "history",
            Tab::Staging => "staging",
            Tab::Impact => "impact",
        }
    }

    /// The tab a `?tab=` value names.
    fn from_id(id: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.id() == id)
    }
}

#[component]
pub fn PolicyPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let reload = RwSignal::new(0u32);
    let detail = Resource::new(move || (id(), reload.get()), |(id, _)| get_policy(id));
    let me = crate::auth::guard::use_me();
    // The selected tab lives in the URL (`?tab=tests`), so a reload or a shared link keeps it.
    let query = use_query_map();
    let tab = Memo::new(move |_| {
        query
            .read()
            .get("tab")
            .and_then(|t| Tab::from_id(&t))
            .unwrap_or(Tab::Overview)
    });
    let navigate = use_navigate();
    let select = Callback::new(move |t: Tab| {
        let options = leptos_router::NavigateOptions {
            replace: true,
            scroll: false,
            ..Default::default()
        };
        navigate(&format!("/policies/{}?tab={}", id(), t.id()), options);
    });

    view! {
        <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading the policy…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(err) => view! {
                        <Title text="Policy" />
                        <header class="page-header"><h1>"Policy"</h1></header>
                        {load_error(err)}
                    }.into_any(),
                    Ok(detail) => {
                        // The controls fit the role: what it may not do is disabled, saying who may.
                        let role = crate::auth::guard::role_of(&me.await);
                        provide_context(Rights {
                            edit: crate::auth::guard::needs(role, crate::auth::Action::EditPolicies),
                            operate: crate::auth::guard::needs(role, crate::auth::Action::OperateRollout),
                        });
                        view! { <Workspace detail tab select reload /> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// What the signed-in role may not do on this page, in words (`Needs the author role`); `None`
/// where it may. The server refuses anyway; this keeps the page honest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Rights {
    /// Saving versions, running tests, setting intended modes.
    pub(super) edit: Option<String>,
    /// Checking drift.
    pub(super) operate: Option<String>,
}

impl Rights {
    /// The rights in context (none granted when there is no context).
    pub(super) fn here() -> Rights {
        use_context::<Rights>().unwrap_or(Rights {
            edit: Some("Needs the author role".into()),
            operate: Some("Needs the approver role".into()),
        })
    }
}

/// The draft a person edits: what the next version will hold.
#[derive(Clone, Copy)]
pub(super) struct Draft {
    pub(super) source: RwSignal<String>,
    pub(super) params: RwSignal<String>,
    pub(super) description: RwSignal<String>,
    pub(super) remediation: RwSignal<String>,
    pub(super) controls: RwSignal<String>,
    pub(super) tests: RwSignal<Vec<TestCase>>,
    pub(super) note: RwSignal<String>,
}

impl Draft {
    pub(super) fn of(content: &Content) -> Draft {
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

    pub(super) fn content(&self) -> Content {
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
pub(super) struct Saving {
    pub(super) problems: RwSignal<Vec<Problem>>,
    pub(super) status: RwSignal<Option<String>>,
    pub(super) error: RwSignal<Option<String>>,
    pub(super) busy: RwSignal<bool>,
}

#[component]
fn Workspace(
    detail: PolicyDetail,
    tab: Memo<Tab>,
    select: Callback<Tab>,
    reload: RwSignal<u32>,
) -> impl IntoView {
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
                    on:click=move |_| select.run(t)
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
                Tab::Impact => view! { <ImpactTab detail=detail.get_value() draft /> }.into_any(),
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
            <crate::ui::Markdown text=if v.content.description.is_empty() { "No description yet.".to_owned() } else { v.content.description.clone() } testid="policy-description" />
            <h2>"Remediation"</h2>
            <crate::ui::Markdown text=if v.content.remediation.is_empty() { "No remediation text yet.".to_owned() } else { v.content.remediation.clone() } testid="policy-remediation" />
        </section>
    }
}
