//! The small pieces of text and badge tones every rollout view shares.

use super::*;

/// The badge colour of a state: `good`, `bad`, `muted`, `active` or `waiting`.
pub(super) fn rollout_tone(state: RolloutState) -> &'static str {
    match state {
        RolloutState::PendingApproval | RolloutState::Paused => "waiting",
        RolloutState::Applying => "active",
        RolloutState::Applied => "good",
        RolloutState::Failed | RolloutState::Rejected => "bad",
        RolloutState::Aborted | RolloutState::RolledBack => "muted",
    }
}

pub(super) fn wave_tone(state: WaveState) -> &'static str {
    match state {
        WaveState::Waiting | WaveState::Skipped => "muted",
        WaveState::Approval => "waiting",
        WaveState::Applying | WaveState::Soaking => "active",
        WaveState::Done => "good",
        WaveState::Failed => "bad",
    }
}

pub(super) fn step_tone(state: StepState) -> &'static str {
    match state {
        StepState::Pending | StepState::Skipped => "muted",
        StepState::Running => "active",
        StepState::Applied => "good",
        StepState::Failed => "bad",
    }
}

/// `v3`; a removal has no version.
pub(super) fn version_label(version: i64) -> String {
    if version > 0 {
        format!("v{version}")
    } else {
        "—".to_owned()
    }
}

pub(super) fn soak_label(secs: i64) -> String {
    match secs {
        s if s <= 0 => "none".to_owned(),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

pub(super) fn threshold_label(threshold: Option<i64>) -> String {
    match threshold {
        Some(n) => {
            format!("at most {n} new violations (checked once violations are collected)")
        }
        None => "none".to_owned(),
    }
}

pub(super) fn wave_name(waves: &[Wave], position: i64) -> String {
    waves
        .iter()
        .find(|w| w.position == position)
        .map(|w| w.name.clone())
        .unwrap_or_else(|| format!("wave {position}"))
}
