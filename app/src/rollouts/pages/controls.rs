//! The controls: approve or reject, pause, resume, abort, roll back, remove.

use super::*;

/// Approve or reject, pause, resume, abort, roll back, remove: whatever the state allows.
#[component]
pub(super) fn Controls(
    id: Memo<String>,
    state: Memo<Option<RolloutState>>,
    /// Who asked for the rollout, and who is signed in: nobody decides on their own.
    proposer: Memo<Option<String>>,
    me_id: Option<String>,
    refresh: impl Fn() + Copy + Send + Sync + 'static,
    role: Option<crate::auth::Role>,
) -> impl IntoView {
    use crate::auth::guard::needs;
    use crate::auth::Action as Permission;
    // What this role may not do, said on the control (the server refuses it anyway).
    let approve_denied = needs(role, Permission::Approve);
    let operate_denied = needs(role, Permission::OperateRollout);
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();

    let decide = Action::new(move |approve: &bool| {
        let approve = *approve;
        let id = id.get_untracked();
        let text = comment.get_untracked();
        async move {
            match decide_rollout(id, approve, text).await {
                Ok(_) => {
                    error.set(None);
                    comment.set(String::new());
                    refresh();
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let operate = Action::new(move |operation: &Operation| {
        let operation = *operation;
        let id = id.get_untracked();
        let navigate = navigate.clone();
        async move {
            match operate_rollout(id.clone(), operation).await {
                // Rollback and removal are new rollouts: follow them.
                Ok(rollout) if rollout.summary.id != id => {
                    error.set(None);
                    navigate(
                        &format!("/rollouts/{}", rollout.summary.id),
                        Default::default(),
                    );
                }
                Ok(_) => {
                    error.set(None);
                    refresh();
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let deciding = decide.pending();
    let operating = operate.pending();
    let busy = move || deciding.get() || operating.get();
    let is = move |wanted: &'static [RolloutState]| {
        move || state.get().is_some_and(|s| wanted.contains(&s))
    };
    let finished = is(&[
        RolloutState::Rejected,
        RolloutState::Aborted,
        RolloutState::RolledBack,
    ]);
    let may_operate = operate_denied.is_none();
    let may_decide = approve_denied.is_none();
    let me_id = StoredValue::new(me_id);
    let own = move || {
        let proposer = proposer.get();
        me_id.with_value(|me| me.is_some() && *me == proposer)
    };
    let decide_title = StoredValue::new(approve_denied.unwrap_or_default());
    // The role comes first: someone who may not approve at all is told which role may.
    let decide_why = move || {
        if may_decide && own() {
            "You asked for this rollout: another approver decides".to_owned()
        } else {
            decide_title.get_value()
        }
    };
    let operate_title = StoredValue::new(operate_denied.unwrap_or_default());
    let button = move |label: &'static str, class: &'static str, operation: Operation| {
        view! {
            <button
                type="button"
                class=class
                disabled=move || busy() || !may_operate
                title=move || operate_title.get_value()
                on:click=move |_| {
                    operate.dispatch(operation);
                }
            >
                {label}
            </button>
        }
    };

    view! {
        <Show when=move || state.get().is_some()>
            <section class="panel controls" aria-labelledby="controls-heading" data-testid="rollout-controls">
                <h2 id="controls-heading">"Actions"</h2>
                <Show when=is(&[RolloutState::PendingApproval])>
                    <label>
                        "Comment"
                        <textarea
                            name="comment"
                            rows="3"
                            data-testid="decision-comment"
                            placeholder="what you checked, or why not"
                            bind:value=comment
                        ></textarea>
                    </label>
                    <div class="actions">
                        <button type="button" class="button primary" disabled=move || busy() || !may_decide || own() title=decide_why on:click=move |_| { decide.dispatch(true); }>
                            "Approve"
                        </button>
                        <button type="button" class="button danger" disabled=move || busy() || !may_decide || own() title=decide_why on:click=move |_| { decide.dispatch(false); }>
                            "Reject"
                        </button>
                    </div>
                </Show>
                <div class="actions">
                    <Show when=is(&[RolloutState::Applying])>
                        {button("Pause", "button", Operation::Pause)}
                    </Show>
                    <Show when=is(&[RolloutState::Paused])>
                        {button("Resume", "button primary", Operation::Resume)}
                    </Show>
                    <Show when=is(&[RolloutState::PendingApproval, RolloutState::Applying, RolloutState::Paused])>
                        {button("Abort", "button danger", Operation::Abort)}
                    </Show>
                    <Show when=is(&[RolloutState::Applied, RolloutState::Failed])>
                        {button("Roll back", "button", Operation::Rollback)}
                        {button("Remove policy", "button danger", Operation::Remove)}
                    </Show>
                </div>
                // Disabled controls say why in words, not only on hover.
                <Show when=move || may_decide && is(&[RolloutState::PendingApproval])() && own()>
                    <p class="muted small" data-testid="controls-own">
                        "You asked for this rollout, so another approver decides on it; you can abort it."
                    </p>
                </Show>
                <Show when=move || !(finished() || may_decide && may_operate)>
                    <p class="muted small" data-testid="controls-needs-role">
                        {move || {
                            let title = decide_title.get_value();
                            let title = if title.is_empty() { operate_title.get_value() } else { title };
                            format!("{title} to act on this rollout.")
                        }}
                    </p>
                </Show>
                <Show when=finished>
                    <p class="muted">"This rollout is over; nothing more can be done to it."</p>
                </Show>
                {move || error.get().map(|text| view! {
                    <ErrorNote text=text testid="rollout-error" />
                })}
            </section>
        </Show>
    }
}
