//! Policies: authored, tested and staged in the browser.
//!
//! A policy is a name, an engine and a category; everything else lives in immutable
//! [`Version`]s (source YAML, parameter objects, description, remediation, control tags and test
//! cases). Saving makes a new version; a save that changes nothing, or whose source the engine
//! rejects, writes nothing. Test runs are stored with the version they ran against. The intended
//! mode per environment (audit → warn → enforce) is what rollouts will aim for.
//!
//! Layout: the wire types are at the top of this file, then the server functions (`verb_noun`,
//! each authorizing first); [`diff`] is the line diff; the pages are in `pages`; the service,
//! its validation and queries are in [`ssr`] (server only).

pub mod diff;
mod pages;

#[cfg(feature = "ssr")]
pub mod ssr;

use crate::wire::wire_enum;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub use crate::model::{Engine, Mode};
pub use diff::{DiffLine, DiffOp, FileDiff};
pub use pages::{
    FileDiffTable, LibraryPage, NewPolicyPage, PoliciesPage, PolicyPage, PolicyPicker,
};

/// The categories of the built-in library; every policy has one.
pub const CATEGORIES: [&str; 5] = [
    "pod-security",
    "supply-chain",
    "rbac",
    "network",
    "configuration",
];

/// Control frameworks a tag may name (`cis:5.2.2`, `nsa-cisa:rbac`, `pci-dss:2.2.6`, `soc2:CC6.1`).
pub const FRAMEWORKS: [(&str, &str); 4] = [
    ("cis", "CIS Kubernetes Benchmark"),
    ("nsa-cisa", "NSA/CISA hardening guide"),
    ("pci-dss", "PCI DSS"),
    ("soc2", "SOC 2"),
];

/// The environments the staging view always shows; others appear once a mode is set for them.
pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

wire_enum! {
    /// What a test case expects: the strictest action of the policy on its request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Expect as "expectation" {
        Allow = "allow",
        Audit = "audit",
        Warn = "warn",
        Deny = "deny",
    }
}

/// One test case of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct TestCase {
    pub name: String,
    /// The object (a CREATE), or an `admission.k8s.io/v1` AdmissionReview for UPDATE and DELETE
    /// (operation, object, oldObject, userInfo), as YAML.
    pub yaml: String,
    pub expect: Expect,
    /// A regular expression the engine's message must match (unanchored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Everything a version holds that its author writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Content {
    /// The policy's YAML: VAP + binding, ConstraintTemplate + Constraint, or a PodSecurityEntry.
    pub source: String,
    /// Parameter objects for `paramKind` policies (a YAML stream); empty when none.
    #[serde(default)]
    pub params: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub remediation: String,
    /// Control tags, `framework:id`.
    #[serde(default)]
    pub controls: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

/// Which part of a draft a [`Problem`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Source,
    Params,
    Controls,
    /// The test case at this index (0-based).
    Test(usize),
    /// The policy's name, title or category.
    Policy,
}

impl Part {
    pub fn describe(self) -> String {
        match self {
            Part::Source => "policy".into(),
            Part::Params => "parameters".into(),
            Part::Controls => "control tags".into(),
            Part::Test(index) => format!("test case {}", index + 1),
            Part::Policy => "policy".into(),
        }
    }
}

/// Something the engine (or a simpler check) refuses, at a place the editor can point to.
/// `line` and `column` are 1-based; 0 means the part as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Problem {
    /// `"source"`, `"params"`, `"controls"`, `"policy"` or `{"test": index}`.
    pub part: Part,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// A warning does not stop a save: the engine accepts the draft but says something the author
    /// should know (for example a Rego call Palisade cannot evaluate locally).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

impl Problem {
    /// Whether any of `problems` stops a save (a warning does not).
    pub fn any_blocking(problems: &[Problem]) -> bool {
        problems.iter().any(|p| !p.warning)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.part.describe())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// How a new policy starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum NewPolicy {
    /// A copy of a built-in library entry: its policy, description, remediation, controls and cases.
    Library { entry: String },
    /// Existing YAML, pasted: the engine is detected from the kinds.
    Yaml {
        source: String,
        #[serde(default)]
        params: String,
    },
    /// A small, valid starting point for `engine`, named `name`.
    Blank { engine: Engine, name: String },
}

/// The answer to a save: a new version, or why nothing was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SaveOutcome {
    Saved {
        policy_id: String,
        version: i64,
        /// What the engine warned about in the saved version.
        #[serde(default)]
        warnings: Vec<Problem>,
    },
    /// The engine (or a check) refused the draft; nothing was written.
    Invalid { problems: Vec<Problem> },
}

/// A row of the policy list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct PolicySummary {
    pub id: String,
    pub name: String,
    pub title: String,
    pub engine: Engine,
    pub category: String,
    pub origin: String,
    pub current_version: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub controls: Vec<String>,
    pub test_count: usize,
    /// The newest test run of the current version, if any.
    pub last_run: Option<RunSummary>,
    /// Intended mode per environment, environments in a stable order.
    pub modes: Vec<EnvironmentMode>,
    /// What is live: how many clusters run the policy in each mode (from rollouts), strictest
    /// first; empty when it is deployed nowhere.
    pub live: Vec<LiveMode>,
}

/// How many clusters run a policy in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LiveMode {
    pub mode: Mode,
    pub clusters: i64,
}

impl PolicySummary {
    /// What is live, in words: `enforce on 2 clusters, audit on 1`, or `not deployed`.
    pub fn live_text(&self) -> String {
        if self.live.is_empty() {
            return "not deployed".to_owned();
        }
        self.live
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let unit = match (i, l.clusters) {
                    (0, 1) => " cluster",
                    (0, _) => " clusters",
                    _ => "",
                };
                format!("{} on {}{unit}", l.mode.as_str(), l.clusters)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The intended modes, in words (`prod enforce, dev audit`), when they say something the live
    /// ones do not: an intended mode that runs nowhere, or an intent while nothing is live.
    pub fn intended_text(&self) -> Option<String> {
        let intended: Vec<(&str, Mode)> = self
            .modes
            .iter()
            .filter_map(|m| m.mode.map(|mode| (m.environment.as_str(), mode)))
            .collect();
        let differs = intended
            .iter()
            .any(|(_, mode)| !self.live.iter().any(|l| l.mode == *mode));
        (differs && !intended.is_empty()).then(|| {
            intended
                .iter()
                .map(|(env, mode)| format!("{env} {}", mode.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// Filters of the policy list; empty strings mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct PolicyFilter {
    /// Matches name, title and description, case-insensitively.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub category: String,
    /// A framework prefix: policies with at least one control tag of it.
    #[serde(default)]
    pub framework: String,
    /// A mode: policies live in it on at least one cluster; `none` for policies deployed nowhere.
    #[serde(default)]
    pub mode: String,
}

/// One immutable version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Version {
    pub number: i64,
    #[serde(flatten)]
    pub content: Content,
    pub note: String,
    pub author_id: String,
    pub author_name: String,
    pub created_ms: i64,
    pub content_hash: String,
}

/// A version in the history list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VersionInfo {
    pub number: i64,
    pub note: String,
    pub author_name: String,
    pub created_ms: i64,
    pub content_hash: String,
    pub test_count: usize,
    pub last_run: Option<RunSummary>,
}

/// A policy with its current version and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct PolicyDetail {
    pub policy: PolicySummary,
    pub current: Version,
    /// Newest first.
    pub versions: Vec<VersionInfo>,
}

/// Counts of a test run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RunSummary {
    pub version: i64,
    pub run_ms: i64,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub duration_us: i64,
}

wire_enum! {
    /// How one case ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum CaseStatus as "case status" {
        Passed = "passed",
        Failed = "failed",
        Skipped = "skipped",
    }
}

/// One case's result: what was expected, what the engine decided and said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CaseResult {
    pub name: String,
    pub expected: Expect,
    /// `allow`, `audit`, `warn` or `deny`; `None` when the request could not be built.
    pub actual: Option<String>,
    pub status: CaseStatus,
    /// Why it failed (empty when it passed).
    pub reason: String,
    /// The engine's messages for the strictest action.
    pub messages: Vec<String>,
}

/// A stored test run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct TestRun {
    pub id: String,
    #[serde(flatten)]
    pub summary: RunSummary,
    pub run_by_name: String,
    /// Set when the cases could not run at all.
    pub error: Option<String>,
    pub results: Vec<CaseResult>,
}

/// The intended mode of a policy in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct EnvironmentMode {
    pub environment: String,
    /// `None` when no mode is set: the policy is not meant to run there.
    pub mode: Option<Mode>,
    pub updated_ms: Option<i64>,
    pub updated_by_name: Option<String>,
}

/// The line diff of two versions, part by part (only parts that differ are listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VersionDiff {
    pub from: i64,
    pub to: i64,
    pub files: Vec<FileDiff>,
}

/// A built-in library entry, as the library page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LibraryEntry {
    pub id: String,
    pub title: String,
    pub category: String,
    pub severity: String,
    pub engine: Engine,
    pub description: String,
    pub remediation: String,
    pub controls: Vec<String>,
    pub test_count: usize,
    /// The policy adopted from this entry, if one exists (same name).
    pub adopted_as: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Server functions: the UI's private RPC. Each authorizes, then calls the service.

#[server(endpoint = "list_policies", input = Json)]
pub async fn list_policies(filter: PolicyFilter) -> Result<Vec<PolicySummary>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::list(&call.db, &call.who, &filter).await?)
}

#[server(endpoint = "get_policy", input = Json)]
pub async fn get_policy(id: String) -> Result<PolicyDetail, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::detail(&call.db, &call.who, &id).await?)
}

#[server(endpoint = "get_version", input = Json)]
pub async fn get_version(id: String, number: i64) -> Result<Version, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::version(&call.db, &call.who, &id, number).await?)
}

#[server(endpoint = "check_policy", input = Json)]
pub async fn check_policy(content: Content) -> Result<Vec<Problem>, AppError> {
    let _who = crate::auth::ssr::require(crate::auth::Action::Read)?;
    Ok(ssr::validate::check(&content).problems)
}

#[server(endpoint = "create_policy", input = Json)]
pub async fn create_policy(new: NewPolicy) -> Result<SaveOutcome, AppError> {
    let call = crate::state::authorized(crate::auth::Action::EditPolicies)?;
    Ok(ssr::create(&call.db, &call.who, call.now, new).await?)
}

#[server(endpoint = "save_version", input = Json)]
pub async fn save_version(
    id: String,
    base_version: i64,
    content: Content,
    note: String,
) -> Result<SaveOutcome, AppError> {
    let call = crate::state::authorized(crate::auth::Action::EditPolicies)?;
    Ok(ssr::save(
        &call.db,
        &call.who,
        call.now,
        &id,
        base_version,
        content,
        &note,
    )
    .await?)
}

#[server(endpoint = "diff_versions", input = Json)]
pub async fn diff_versions(id: String, from: i64, to: i64) -> Result<VersionDiff, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::diff(&call.db, &call.who, &id, from, to).await?)
}

#[server(endpoint = "get_test_run", input = Json)]
pub async fn get_test_run(id: String, number: i64) -> Result<Option<TestRun>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::latest_run(&call.db, &call.who, &id, number).await?)
}

#[server(endpoint = "list_library", input = Json)]
pub async fn list_library() -> Result<Vec<LibraryEntry>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::library(&call.db, &call.who).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(modes: &[(&str, Mode)], live: &[(Mode, i64)]) -> PolicySummary {
        PolicySummary {
            id: "p".into(),
            name: "p".into(),
            title: "P".into(),
            engine: Engine::Vap,
            category: "Pod security".into(),
            origin: String::new(),
            current_version: 1,
            created_ms: 0,
            updated_ms: 0,
            controls: Vec::new(),
            test_count: 0,
            last_run: None,
            modes: modes
                .iter()
                .map(|(environment, mode)| EnvironmentMode {
                    environment: (*environment).into(),
                    mode: Some(*mode),
                    updated_ms: None,
                    updated_by_name: None,
                })
                .collect(),
            live: live
                .iter()
                .map(|(mode, clusters)| LiveMode {
                    mode: *mode,
                    clusters: *clusters,
                })
                .collect(),
        }
    }

    #[test]
    fn the_list_says_what_is_live_and_an_intent_only_where_it_differs() {
        let nothing = summary(&[], &[]);
        assert_eq!(nothing.live_text(), "not deployed");
        assert_eq!(nothing.intended_text(), None);

        let planned = summary(&[("dev", Mode::Warn)], &[]);
        assert_eq!(planned.live_text(), "not deployed");
        assert_eq!(planned.intended_text().as_deref(), Some("dev warn"));

        let live = summary(
            &[("dev", Mode::Enforce), ("prod", Mode::Audit)],
            &[(Mode::Enforce, 2), (Mode::Audit, 1)],
        );
        assert_eq!(live.live_text(), "enforce on 2 clusters, audit on 1");
        assert_eq!(live.intended_text(), None, "every intent is live");

        let behind = summary(&[("prod", Mode::Enforce)], &[(Mode::Audit, 1)]);
        assert_eq!(behind.live_text(), "audit on 1 cluster");
        assert_eq!(behind.intended_text().as_deref(), Some("prod enforce"));
    }
}
