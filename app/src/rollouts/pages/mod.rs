//! The rollout pages: `/rollouts` (the list and the form that proposes one, its waves built in a
//! wave editor that previews the clusters each wave takes) and `/rollouts/:id`
//! (summary, review, controls, and the waves, decisions and per-cluster steps), one file each.
//!
//! A rollout that is still moving is fetched again every two seconds in the browser, inside a
//! `Transition`, so its progress shows without reloading and without flashing. The controls sit
//! outside that `Transition` and follow only the rollout's state, so a comment being typed keeps
//! its focus while the tables refresh; they appear once the page is interactive.

mod controls;
mod detail;
mod form;
mod impact;
mod labels;
mod list;
mod progress;
mod review;
mod waves;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::policies::{get_test_run, CaseStatus, FileDiffTable, Mode, PolicyPicker, TestRun};
use crate::rollouts::{
    decide_rollout, get_proposed_change, get_rollout, get_rollout_impact, list_rollouts,
    operate_rollout, proposal_impact, propose_rollout, wave_targets, ClusterChange, Decision,
    NewRollout, NewWave, Operation, ProposedChange, Rollout, RolloutImpact, RolloutKind,
    RolloutState, RolloutSummary, Selector, Step, StepState, Wave, WaveState,
};
use crate::sections::ROLLOUTS;
use crate::time::format_time;
use crate::ui::{
    load_error, DataTable, EmptyState, ErrorNote, FormPanel, Loading, PageHeader, PanelHeader,
};

use self::controls::Controls;
pub use self::detail::RolloutPage;
use self::form::{default_waves, proposal, wave_named_in, Target};
use self::labels::{
    rollout_tone, soak_label, step_tone, threshold_label, version_label, wave_name, wave_tone,
};
pub use self::list::RolloutsPage;
use self::progress::RolloutProgress;
use self::review::Review;
use self::waves::{WaveDrafts, WaveEditor};

/// How often a rollout that is still moving is fetched again.
#[cfg(feature = "hydrate")]
const POLL: std::time::Duration = std::time::Duration::from_secs(2);
