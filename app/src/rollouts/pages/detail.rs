//! `/rollouts/:id`: the rollout, refetched while it moves, and its summary.

use super::*;

#[component]
pub fn RolloutPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let me = crate::auth::guard::use_me();
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
    let seen = RwSignal::new(None::<(String, RolloutState, String)>);
    Effect::new(move |_| {
        if let Some(Ok(r)) = rollout.get() {
            let now = Some((r.summary.id, r.summary.state, r.summary.proposer_id));
            if seen.get_untracked() != now {
                seen.set(now);
            }
        }
    });
    let state = Memo::new(move |_| {
        seen.get()
            .filter(|(rollout_id, _, _)| *rollout_id == id.get())
            .map(|(_, state, _)| state)
    });
    let proposer = Memo::new(move |_| {
        seen.get()
            .filter(|(rollout_id, _, _)| *rollout_id == id.get())
            .map(|(_, _, proposer)| proposer)
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
                        {load_error(err)}
                    }.into_any(),
                }
            })}
        </Transition>
        <Review id />
        // The controls fit the role: what it may not do is shown disabled, saying who may.
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let me = me.await;
                let role = crate::auth::guard::role_of(&me);
                let me_id = me.ok().map(|p| p.user_id);
                view! { <Controls id state proposer me_id refresh role /> }
            })}
        </Transition>
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
            <PanelHeader id="summary-heading" title="Summary">
                <span class=format!("badge {}", rollout_tone(s.state)) data-testid="rollout-state">{state}</span>
            </PanelHeader>
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
                <dd>{format!("{} at {}", s.proposer_name, format_time(s.created_ms))}</dd>
                <dt>"Last change"</dt>
                <dd>{format_time(s.updated_ms)}</dd>
                {namespaces}
                {note}
            </dl>
        </section>
    }
}
