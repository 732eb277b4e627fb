//! The waves, the decisions and the per-cluster steps.

use super::*;

/// Waves, decisions and the per-cluster steps.
#[component]
pub(super) fn RolloutProgress(rollout: Rollout) -> impl IntoView {
    let current = rollout.summary.current_wave;
    let live = !rollout.summary.state.is_final();
    let waves = rollout.waves;
    let decisions = rollout.decisions;
    let wave_rows = waves
        .iter()
        .map(|w| {
            let given = decisions
                .iter()
                .filter(|d| d.wave == w.position && d.approve)
                .count();
            let current = live && w.position == current;
            view! { <WaveRow wave=w.clone() given current /> }
        })
        .collect_view();
    let decisions_view = if decisions.is_empty() {
        view! { <p class="muted" data-testid="no-decisions">"No approvals or rejections yet."</p> }
            .into_any()
    } else {
        let rows = decisions
            .into_iter()
            .map(|decision| {
                let wave = wave_name(&waves, decision.wave);
                view! { <DecisionRow decision wave /> }
            })
            .collect_view();
        view! {
            <DataTable columns=&["Who", "Decision", "Wave", "Comment", "When"] testid="rollout-decisions">{rows}</DataTable>
        }
        .into_any()
    };
    let step_rows = if rollout.steps.is_empty() {
        view! {
            <tr>
                <td colspan="6" class="muted">
                    "No cluster steps yet: a wave's clusters are listed here once it is planned."
                </td>
            </tr>
        }
        .into_any()
    } else {
        rollout
            .steps
            .into_iter()
            .map(|step| {
                let wave = wave_name(&waves, step.wave);
                view! { <StepRow step wave /> }
            })
            .collect_view()
            .into_any()
    };

    view! {
        <section class="panel" aria-labelledby="waves-heading">
            <h2 id="waves-heading">"Waves"</h2>
            <DataTable columns=&["Wave", "Clusters", "Approvals", "Soak", "Violation threshold", "State"] testid="rollout-waves">{wave_rows}</DataTable>
        </section>
        <section class="panel" aria-labelledby="decisions-heading">
            <h2 id="decisions-heading">"Decisions"</h2>
            {decisions_view}
        </section>
        <section class="panel" aria-labelledby="steps-heading">
            <h2 id="steps-heading">"Clusters"</h2>
            <DataTable columns=&["Cluster", "Wave", "State", "Attempts", "Applies", "Message"] testid="rollout-steps">{step_rows}</DataTable>
        </section>
    }
}

#[component]
fn WaveRow(wave: Wave, given: usize, current: bool) -> impl IntoView {
    let state = wave.state.as_str();
    view! {
        <tr
            data-testid="rollout-wave"
            data-name=wave.name.clone()
            class:current=current
            aria-current=current.then_some("step")
        >
            <th scope="row">{wave.name.clone()}</th>
            <td>{wave.selector.describe()}</td>
            <td data-testid="wave-approvals">
                {format!("{given} of {}", wave.approvals_required)}
            </td>
            <td>{soak_label(wave.soak_secs)}</td>
            <td>{threshold_label(wave.violation_threshold)}</td>
            <td>
                <span class=format!("badge {}", wave_tone(wave.state)) data-testid="wave-state">{state}</span>
            </td>
        </tr>
    }
}

#[component]
fn DecisionRow(decision: Decision, wave: String) -> impl IntoView {
    let (label, tone) = if decision.approve {
        ("approve", "good")
    } else {
        ("reject", "bad")
    };
    view! {
        <tr data-testid="rollout-decision">
            <th scope="row">{decision.user_name.clone()}</th>
            <td><span class=format!("badge {tone}")>{label}</span></td>
            <td>{wave}</td>
            <td class="message">{decision.comment.clone()}</td>
            <td>{format_time(decision.at_ms)}</td>
        </tr>
    }
}

#[component]
fn StepRow(step: Step, wave: String) -> impl IntoView {
    let state = step.state.as_str();
    view! {
        <tr data-testid="rollout-step" data-cluster=step.cluster_name.clone()>
            <th scope="row">{step.cluster_name.clone()}</th>
            <td>{wave}</td>
            <td>
                <span class=format!("badge {}", step_tone(step.state)) data-testid="step-state">{state}</span>
            </td>
            <td>{step.attempts}</td>
            <td>{step.applies}</td>
            <td class="message">{step.message.clone()}</td>
        </tr>
    }
}
