//! The wave state machine, as a pure function: given a rollout as stored, the time, and the one
//! fact it may need from elsewhere (violations reported during a soak), what happens next. The
//! executor asks, applies the answer with compare-and-set writes, and decides nothing itself.
//!
//! A rollout that is applying has one current wave:
//! - *applying*: its steps run; when all are final the wave soaks, or fails if any cluster failed;
//! - *soaking*: when the soak time is over the wave fails if its clusters reported more violations
//!   than its threshold, and is done otherwise; then the next wave waits for approval (or starts at
//!   once when it needs none), or, after the last wave, the rollout is applied.

use crate::rollouts::{Rollout, RolloutState, StepState, Wave, WaveState};

/// What the decision needs to know that the rollout itself does not say: how many violations the
/// wave's clusters reported for the policy since the wave finished applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationQuestion {
    pub cluster_ids: Vec<String>,
    pub since_ms: i64,
}

/// The next wave once the current one is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub position: i64,
    /// It waits for approvals; otherwise it starts applying now.
    pub needs_approval: bool,
}

/// What happens to an applying rollout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Nothing yet: steps still run, the soak is not over, or the rollout is not applying.
    Wait,
    /// Every step of `wave` landed: it soaks from now.
    Soak { wave: i64 },
    /// Some clusters of `wave` failed: the wave and the rollout fail, later waves are skipped.
    FailWave {
        wave: i64,
        failed_clusters: Vec<String>,
    },
    /// The soak of `wave` is over and its clusters reported `seen` violations, more than allowed.
    ExceedThreshold {
        wave: i64,
        seen: i64,
        threshold: i64,
    },
    /// The soak of `wave` is over and it is done: `next` starts, or with `None` the rollout is
    /// applied.
    Done { wave: i64, next: Option<Next> },
}

fn current(rollout: &Rollout) -> Option<&Wave> {
    let summary = &rollout.summary;
    if summary.state != RolloutState::Applying {
        return None;
    }
    rollout
        .waves
        .iter()
        .find(|w| w.position == summary.current_wave)
}

fn soak_over(wave: &Wave, now: i64) -> bool {
    now >= wave.finished_ms + wave.soak_secs.saturating_mul(1000)
}

/// The violation count [`transition`] needs at `now`, if it needs one: only for a soaking wave
/// with a threshold whose soak is over.
pub fn question(rollout: &Rollout, now: i64) -> Option<ViolationQuestion> {
    let wave = current(rollout)?;
    if wave.state != WaveState::Soaking || wave.violation_threshold.is_none() {
        return None;
    }
    if !soak_over(wave, now) {
        return None;
    }
    Some(ViolationQuestion {
        cluster_ids: rollout
            .steps
            .iter()
            .filter(|s| s.wave == wave.position)
            .map(|s| s.cluster_id.clone())
            .collect(),
        since_ms: wave.finished_ms,
    })
}

/// What happens to `rollout` at `now`. `violations` answers [`question`] when it asked one; a
/// decision that needs it and lacks it waits.
pub fn transition(rollout: &Rollout, now: i64, violations: Option<i64>) -> Transition {
    let Some(wave) = current(rollout) else {
        return Transition::Wait;
    };
    match wave.state {
        WaveState::Applying => {
            let steps: Vec<_> = rollout
                .steps
                .iter()
                .filter(|s| s.wave == wave.position)
                .collect();
            if !steps.iter().all(|s| s.state.is_final()) {
                return Transition::Wait;
            }
            let failed_clusters: Vec<String> = steps
                .iter()
                .filter(|s| s.state == StepState::Failed)
                .map(|s| s.cluster_name.clone())
                .collect();
            if failed_clusters.is_empty() {
                Transition::Soak {
                    wave: wave.position,
                }
            } else {
                Transition::FailWave {
                    wave: wave.position,
                    failed_clusters,
                }
            }
        }
        WaveState::Soaking => {
            if !soak_over(wave, now) {
                return Transition::Wait;
            }
            if let Some(threshold) = wave.violation_threshold {
                let Some(seen) = violations else {
                    return Transition::Wait;
                };
                if seen > threshold {
                    return Transition::ExceedThreshold {
                        wave: wave.position,
                        seen,
                        threshold,
                    };
                }
            }
            let next = rollout
                .waves
                .iter()
                .find(|w| w.position == wave.position + 1)
                .map(|next| Next {
                    position: next.position,
                    needs_approval: next.approvals_required > 0,
                });
            Transition::Done {
                wave: wave.position,
                next,
            }
        }
        WaveState::Waiting
        | WaveState::Approval
        | WaveState::Done
        | WaveState::Failed
        | WaveState::Skipped => Transition::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mode;
    use crate::rollouts::{RolloutKind, RolloutSummary, Selector, Step};

    fn wave(position: i64, state: WaveState) -> Wave {
        Wave {
            position,
            name: format!("w{position}"),
            selector: Selector::default(),
            approvals_required: 1,
            soak_secs: 60,
            violation_threshold: None,
            state,
            started_ms: 1_000,
            finished_ms: 10_000,
        }
    }

    fn step(wave: i64, cluster: &str, state: StepState) -> Step {
        Step {
            id: format!("s-{cluster}"),
            wave,
            cluster_id: format!("id-{cluster}"),
            cluster_name: cluster.to_owned(),
            state,
            attempts: 1,
            applies: 1,
            message: String::new(),
            started_ms: 1_000,
            finished_ms: 10_000,
        }
    }

    fn rollout(state: RolloutState, current: i64, waves: Vec<Wave>, steps: Vec<Step>) -> Rollout {
        Rollout {
            summary: RolloutSummary {
                id: "r".into(),
                kind: RolloutKind::Apply,
                parent_id: String::new(),
                policy_id: "p".into(),
                policy_name: "disallow-privileged".into(),
                version: 1,
                mode: Mode::Audit,
                state,
                current_wave: current,
                proposer_id: "u".into(),
                proposer_name: "Ada".into(),
                note: String::new(),
                created_ms: 0,
                updated_ms: 0,
                applied: 0,
                steps: 0,
            },
            acknowledged_denials: None,
            namespaces: Vec::new(),
            waves,
            decisions: Vec::new(),
            steps,
        }
    }

    /// The soak of the wave in `wave(…)` (finished at 10 s, 60 s soak) is over at 70 s.
    const DURING_SOAK: i64 = 69_999;
    const AFTER_SOAK: i64 = 70_000;

    #[test]
    fn every_wave_branch_decides_as_the_table_says() {
        use RolloutState as R;
        use StepState as S;
        use WaveState as W;
        let no_approval = |mut w: Wave| {
            w.approvals_required = 0;
            w
        };
        // An applying rollout on its first wave, in `state`, without steps.
        let first = |state: W| rollout(R::Applying, 0, vec![wave(0, state)], vec![]);
        let two_steps = |a: S, b: S| vec![step(0, "a", a), step(0, "b", b)];
        // An applying rollout on its first wave, with steps on clusters `a` and `b`.
        let applying =
            |a: S, b: S| rollout(R::Applying, 0, vec![wave(0, W::Applying)], two_steps(a, b));
        // A rollout soaking its only wave, which allows `threshold` violations.
        let gated = |threshold: i64| {
            let mut soaking = wave(0, W::Soaking);
            soaking.violation_threshold = Some(threshold);
            rollout(R::Applying, 0, vec![soaking], vec![])
        };
        // An applying rollout without steps, on wave `current` of these.
        let soaked = |waves: Vec<Wave>, current: i64| rollout(R::Applying, current, waves, vec![]);
        let last_done = Transition::Done {
            wave: 0,
            next: None,
        };
        let next = |wave: i64, position: i64, needs_approval: bool| Transition::Done {
            wave,
            next: Some(Next {
                position,
                needs_approval,
            }),
        };
        let exceeded = |seen: i64, threshold: i64| Transition::ExceedThreshold {
            wave: 0,
            seen,
            threshold,
        };
        type Row = (&'static str, Rollout, i64, Option<i64>, Transition);
        let rows: Vec<Row> = vec![
            (
                "a rollout that waits for approval does nothing",
                rollout(R::PendingApproval, 0, vec![wave(0, W::Approval)], vec![]),
                AFTER_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "a paused rollout does nothing",
                rollout(
                    R::Paused,
                    0,
                    vec![wave(0, W::Applying)],
                    two_steps(S::Applied, S::Applied),
                ),
                AFTER_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "a current wave that does not exist: nothing",
                rollout(R::Applying, 3, vec![wave(0, W::Applying)], vec![]),
                AFTER_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "steps still running: wait",
                applying(S::Applied, S::Running),
                AFTER_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "steps still pending: wait",
                applying(S::Pending, S::Applied),
                AFTER_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "all applied: soak",
                applying(S::Applied, S::Applied),
                0,
                None,
                Transition::Soak { wave: 0 },
            ),
            (
                "applied and skipped (a removed cluster) count as landed: soak",
                applying(S::Applied, S::Skipped),
                0,
                None,
                Transition::Soak { wave: 0 },
            ),
            (
                "a wave without steps soaks at once",
                first(W::Applying),
                0,
                None,
                Transition::Soak { wave: 0 },
            ),
            (
                "one cluster failed: the wave fails, naming it",
                applying(S::Failed, S::Applied),
                0,
                None,
                Transition::FailWave {
                    wave: 0,
                    failed_clusters: vec!["a".into()],
                },
            ),
            (
                "steps of other waves do not count",
                rollout(
                    R::Applying,
                    0,
                    vec![wave(0, W::Applying), wave(1, W::Waiting)],
                    vec![step(0, "a", S::Applied), step(1, "b", S::Failed)],
                ),
                0,
                None,
                Transition::Soak { wave: 0 },
            ),
            (
                "soaking, the soak not over: wait",
                first(W::Soaking),
                DURING_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "soak over, last wave: done, the rollout is applied",
                first(W::Soaking),
                AFTER_SOAK,
                None,
                last_done.clone(),
            ),
            (
                "soak over, a next wave that needs approval",
                soaked(vec![wave(0, W::Soaking), wave(1, W::Waiting)], 0),
                AFTER_SOAK,
                None,
                next(0, 1, true),
            ),
            (
                "soak over, a next wave without approvals starts at once",
                soaked(
                    vec![wave(0, W::Soaking), no_approval(wave(1, W::Waiting))],
                    0,
                ),
                AFTER_SOAK,
                None,
                next(0, 1, false),
            ),
            (
                "the second wave of three moves to the third",
                soaked(
                    vec![wave(0, W::Done), wave(1, W::Soaking), wave(2, W::Waiting)],
                    1,
                ),
                AFTER_SOAK,
                None,
                next(1, 2, true),
            ),
            (
                "threshold, count not known yet: wait",
                gated(2),
                AFTER_SOAK,
                None,
                Transition::Wait,
            ),
            (
                "threshold met exactly: done",
                gated(2),
                AFTER_SOAK,
                Some(2),
                last_done.clone(),
            ),
            (
                "threshold exceeded: the wave fails",
                gated(2),
                AFTER_SOAK,
                Some(3),
                exceeded(3, 2),
            ),
            (
                "a threshold of zero refuses a single violation",
                gated(0),
                AFTER_SOAK,
                Some(1),
                exceeded(1, 0),
            ),
            (
                "a count without a threshold is ignored",
                first(W::Soaking),
                AFTER_SOAK,
                Some(1_000),
                last_done,
            ),
        ];
        for (name, rollout, now, violations, expected) in rows {
            assert_eq!(transition(&rollout, now, violations), expected, "{name}");
        }
        for over in [W::Done, W::Failed] {
            assert_eq!(
                transition(&first(over), AFTER_SOAK, None),
                Transition::Wait,
                "a {over} wave as the current one: nothing"
            );
        }
    }

    #[test]
    fn the_count_is_asked_only_when_a_threshold_decides() {
        let mut soaking = wave(0, WaveState::Soaking);
        let plain = rollout(
            RolloutState::Applying,
            0,
            vec![soaking.clone()],
            vec![step(0, "a", StepState::Applied)],
        );
        assert_eq!(question(&plain, AFTER_SOAK), None, "no threshold");
        soaking.violation_threshold = Some(5);
        let gated = rollout(
            RolloutState::Applying,
            0,
            vec![soaking],
            vec![
                step(0, "a", StepState::Applied),
                step(1, "later", StepState::Pending),
            ],
        );
        assert_eq!(question(&gated, DURING_SOAK), None, "soak not over");
        assert_eq!(
            question(&gated, AFTER_SOAK),
            Some(ViolationQuestion {
                cluster_ids: vec!["id-a".into()],
                since_ms: 10_000,
            })
        );
    }
}
