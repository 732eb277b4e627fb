//! The pages of the policies domain: the list, a new policy and the library, and one policy's
//! workspace with its tabs (overview, edit, tests, history, staging, impact), one file each.
//!
//! Every page reads through a server function inside a `Transition`, so loading, error and empty
//! states are explicit. The editor is a plain textarea with a line-number gutter and, underneath,
//! the same text in colour (`ui::highlight`), both following its scrolling; problems from the
//! engine are listed, marked in the gutter and underlined, and choosing one puts the caret at its
//! line and column. Ctrl/Cmd+S saves.

mod create;
mod edit;
mod history;
mod impact_tab;
mod list;
mod picker;
mod staging_tab;
mod tests_tab;
mod workspace;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use crate::auth::guard::{needs, role_of, use_me, Allowed};
use crate::auth::Action as Permission;
use crate::error::AppError;
use crate::policies::diff::{DiffOp, FileDiff};
use crate::policies::{
    check_policy, create_policy, diff_versions, get_policy, get_test_run, list_library,
    list_policies, save_version, CaseStatus, Content, Engine, Expect, LibraryEntry, Mode,
    NewPolicy, Part, PolicyDetail, PolicyFilter, PolicySummary, Problem, SaveOutcome, TestCase,
    TestRun, VersionDiff, CATEGORIES, ENVIRONMENTS, FRAMEWORKS,
};
use crate::rollouts::check_drift;
use crate::staging::{get_staging, set_mode, Staging};
use crate::testruns::run_tests;
use crate::time::format_time;
use crate::ui::{load_error, DataTable, ErrorNote, Loading, PageHeader, PanelHeader};

pub use self::create::{LibraryPage, NewPolicyPage};
use self::edit::{EditTab, ProblemList, SaveBar};
pub use self::history::FileDiffTable;
use self::history::HistoryTab;
use self::impact_tab::ImpactTab;
use self::list::run_badge;
pub use self::list::PoliciesPage;
pub use self::picker::PolicyPicker;
use self::staging_tab::StagingTab;
use self::tests_tab::TestsTab;
pub use self::workspace::PolicyPage;
use self::workspace::{Draft, Rights, Saving};
