//! The policies service: every operation the pages and `/api/v1` offer, for one principal.
//!
//! Each function authorizes the principal through [`authorize`] (the server function or REST
//! handler did too; the service never trusts that it was called correctly), validates with the
//! engine, and owns its transaction: the change and its audit entry commit together or not at all.
//! Queries are in [`queries`]; validation and test runs, which are pure, in [`validate`].

pub mod library;
pub mod queries;
pub mod render;
pub mod templates;
pub mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::json;

use crate::audit::ssr::Event;
use crate::auth::{authorize, Action, Principal};
use crate::db::{conflict_if_unique, new_id, Db};
use crate::error::{AppError, OrFault, ServerResult};
use crate::policies::diff::diff_lines;
use crate::policies::{
    Content, Engine, EnvironmentMode, LibraryEntry, Mode, NewPolicy, Part, PolicyDetail,
    PolicyFilter, PolicySummary, Problem, SaveOutcome, TestRun, Version, VersionDiff, ENVIRONMENTS,
};
use queries::PolicyRow;

/// SHA-256 of a version's content, as hex: equal content, equal hash.
pub fn content_hash(content: &Content) -> String {
    let canonical = serde_json::to_vec(content).unwrap_or_default();
    ring::digest::digest(&ring::digest::SHA256, &canonical)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A save refused for one blocking problem.
fn refused(problem: Problem) -> SaveOutcome {
    SaveOutcome::Invalid {
        problems: vec![problem],
    }
}

/// [`tidy`] the content and check it: the tidy content with what the check found (warnings at
/// most), or the refusal listing every problem when one blocks saving.
fn tidy_and_check(content: Content) -> Result<(Content, validate::Checked), SaveOutcome> {
    let content = tidy(content);
    let checked = validate::check(&content);
    if Problem::any_blocking(&checked.problems) {
        return Err(SaveOutcome::Invalid {
            problems: checked.problems,
        });
    }
    Ok((content, checked))
}

/// Normalise what a person typed: trimmed tags without duplicates, texts without trailing blanks.
fn tidy(mut content: Content) -> Content {
    let mut seen = std::collections::HashSet::new();
    content.controls = content
        .controls
        .iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty() && seen.insert(c.clone()))
        .collect();
    content.description = content.description.trim().to_owned();
    content.remediation = content.remediation.trim().to_owned();
    for case in &mut content.tests {
        case.name = case.name.trim().to_owned();
        case.message = case
            .message
            .take()
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
    }
    content
}

/// Is `name` usable as an environment (`dev`, `prod-eu`)?
pub fn valid_environment(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=40).contains(&name.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// The policies that match `filter`, by name.
pub async fn list(
    db: &Db,
    who: &Principal,
    filter: &PolicyFilter,
) -> ServerResult<Vec<PolicySummary>> {
    authorize(Some(who), Action::Read)?;
    if !filter.engine.is_empty() && Engine::parse(&filter.engine).is_none() {
        return Err(AppError::Invalid(format!(
            "engine must be vap, gatekeeper or pod-security, not {:?}",
            filter.engine
        ))
        .into());
    }
    if !filter.mode.is_empty() && filter.mode != "none" && Mode::parse(&filter.mode).is_none() {
        return Err(AppError::Invalid(format!(
            "mode must be audit, warn, enforce or none, not {:?}",
            filter.mode
        ))
        .into());
    }
    let rows = queries::list_policies(db.pool(), filter).await?;
    let modes = queries::all_modes(db.pool()).await?;
    let mut live = queries::live_modes(db.pool(), None).await?;
    let runs = queries::latest_runs_of_current_versions(db.pool()).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let policy_modes = modes_of(&modes, &row.id);
            let last_run = runs.get(&row.version_id).cloned();
            let live = live.remove(&row.id).unwrap_or_default();
            row.into_summary(policy_modes, live, last_run)
        })
        .collect::<Result<_, _>>()?)
}

fn modes_of(all: &[queries::ModeRow], policy_id: &str) -> Vec<EnvironmentMode> {
    let mut by_env: BTreeMap<String, EnvironmentMode> = BTreeMap::new();
    for row in all.iter().filter(|m| m.policy_id == policy_id) {
        by_env.insert(
            row.environment.clone(),
            EnvironmentMode {
                environment: row.environment.clone(),
                mode: Some(row.mode),
                updated_ms: Some(row.updated_ms),
                updated_by_name: Some(row.updated_by_name.clone()),
            },
        );
    }
    let mut modes: Vec<EnvironmentMode> = ENVIRONMENTS
        .iter()
        .map(|env| {
            by_env.remove(*env).unwrap_or(EnvironmentMode {
                environment: (*env).to_owned(),
                mode: None,
                updated_ms: None,
                updated_by_name: None,
            })
        })
        .collect();
    modes.extend(by_env.into_values());
    modes
}

/// The policy with id (or, for API users, name) `key`. Other domains' services look policies up
/// here (they authorize their own callers).
pub async fn find(db: &Db, key: &str) -> ServerResult<PolicyRow> {
    Ok(queries::find_policy(db.pool(), key)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no policy {key:?}")))?)
}

/// A policy with its current version and its history, newest first.
pub async fn detail(db: &Db, who: &Principal, key: &str) -> ServerResult<PolicyDetail> {
    authorize(Some(who), Action::Read)?;
    let row = find(db, key).await?;
    let current = version_of(db, &row.id, row.current_version).await?;
    let versions = queries::version_infos(db.pool(), &row.id).await?;
    let modes = queries::modes_of_policy(db.pool(), &row.id).await?;
    let last_run = versions
        .iter()
        .find(|v| v.number == row.current_version)
        .and_then(|v| v.last_run.clone());
    let policy_modes = modes_of(&modes, &row.id);
    let live = queries::live_modes(db.pool(), Some(&row.id))
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    let summary = row.into_summary(policy_modes, live, last_run)?;
    Ok(PolicyDetail {
        policy: summary,
        current,
        versions,
    })
}

/// Version `number` of the policy `policy_id`.
pub async fn version_of(db: &Db, policy_id: &str, number: i64) -> ServerResult<Version> {
    Ok(queries::version(db.pool(), policy_id, number)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no version {number} of this policy")))?)
}

/// One version of a policy.
pub async fn version(db: &Db, who: &Principal, key: &str, number: i64) -> ServerResult<Version> {
    authorize(Some(who), Action::Read)?;
    let row = find(db, key).await?;
    version_of(db, &row.id, number).await
}

/// Create a policy from the library, from pasted YAML or from a blank template. Nothing is
/// written unless the engine accepts the whole first version.
pub async fn create(
    db: &Db,
    who: &Principal,
    now: i64,
    new: NewPolicy,
) -> ServerResult<SaveOutcome> {
    authorize(Some(who), Action::EditPolicies)?;
    let (content, origin, title, category) = match new {
        NewPolicy::Library { entry } => {
            let found = palisade_engine::library::entry(&entry)
                .or_fault()?
                .ok_or_else(|| AppError::NotFound(format!("no library entry {entry:?}")))?;
            let content = library::content(&found)?;
            (
                content,
                format!("library:{}", found.id),
                Some(found.title.clone()),
                Some(found.category.as_str().to_owned()),
            )
        }
        NewPolicy::Yaml { source, params } => (
            Content {
                source,
                params,
                ..Content::default()
            },
            "yaml".to_owned(),
            None,
            None,
        ),
        NewPolicy::Blank { engine, name } => {
            let name = name.trim().to_owned();
            if !validate::valid_name(&name) {
                return Ok(refused(validate::problem(
                    Part::Policy,
                    0,
                    0,
                    format!(
                        "{name:?} is not a valid name: lower-case letters, digits, `-` and \
                             `.`, starting and ending with a letter or digit"
                    ),
                )));
            }
            (
                templates::blank(engine, &name),
                "blank".to_owned(),
                None,
                None,
            )
        }
    };
    let (content, checked) = match tidy_and_check(content) {
        Ok(checked) => checked,
        Err(refusal) => return Ok(refusal),
    };
    let warnings = checked.problems.clone();
    let (Some(engine), Some(name)) = (checked.engine, checked.name.clone()) else {
        return Err(AppError::internal(
            "creating a policy",
            "a valid draft without engine or name",
        )
        .into());
    };
    let title = title.or(checked.title).unwrap_or_else(|| name.clone());
    let category = category
        .or(checked.category)
        .unwrap_or_else(|| match engine {
            Engine::PodSecurity => "pod-security".to_owned(),
            _ => "configuration".to_owned(),
        });

    let mut tx = db.begin().await?;
    if queries::find_policy(&mut *tx, &name).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "a policy named {name:?} exists already; open it and save a new version instead"
        ))
        .into());
    }
    let id = new_id();
    let policy = queries::NewPolicyRow {
        id: &id,
        name: &name,
        title: &title,
        engine,
        category: &category,
        origin: &origin,
        now,
    };
    queries::insert_policy(&mut *tx, &policy)
        .await
        // A concurrent create of the same name loses on the UNIQUE constraint: a conflict.
        .map_err(conflict_if_unique(
            "saving a policy",
            format!("a policy named {name:?} exists already"),
        ))?;
    let hash = content_hash(&content);
    queries::insert_version(&mut *tx, &id, 1, &content, "first version", who, now, &hash).await?;
    Event::new("policy.create", "policy", &id)
        .detail(json!({ "name": name, "origin": origin, "version": 1, "content_hash": hash }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(SaveOutcome::Saved {
        policy_id: id,
        version: 1,
        warnings,
    })
}

/// Save `content` as the next version of the policy, if the engine accepts it and it differs from
/// the current version. `base_version` is the version the author edited: if someone saved since,
/// the save is refused as a conflict rather than silently overwriting their work.
pub async fn save(
    db: &Db,
    who: &Principal,
    now: i64,
    key: &str,
    base_version: i64,
    content: Content,
    note: &str,
) -> ServerResult<SaveOutcome> {
    authorize(Some(who), Action::EditPolicies)?;
    let row = find(db, key).await?;
    let (content, checked) = match tidy_and_check(content) {
        Ok(checked) => checked,
        Err(refusal) => return Ok(refusal),
    };
    let warnings = checked.problems.clone();
    if checked.engine != Some(row.engine) {
        return Ok(refused(validate::problem(
            Part::Source,
            1,
            1,
            format!(
                "this policy is a {}; a different engine needs a policy of its own",
                row.engine.label()
            ),
        )));
    }
    if checked.name.as_deref() != Some(row.name.as_str()) {
        return Ok(refused(validate::problem(
            Part::Source,
            1,
            1,
            format!(
                "metadata.name must stay {:?}: clusters know the policy by that name",
                row.name
            ),
        )));
    }
    let mut tx = db.begin().await?;
    let current = queries::version(&mut *tx, &row.id, row.current_version)
        .await?
        .ok_or_else(|| AppError::internal("saving", "the current version is missing"))?;
    if base_version != current.number {
        return Err(AppError::Conflict(format!(
            "version {} was saved after version {base_version}, which you edited: reload, and \
             apply your change to the new version",
            current.number
        ))
        .into());
    }
    let hash = content_hash(&content);
    if hash == current.content_hash {
        return Err(AppError::Invalid(format!(
            "nothing to save: version {} has exactly this content",
            current.number
        ))
        .into());
    }
    let number = current.number + 1;
    let note = note.trim();
    queries::insert_version(&mut *tx, &row.id, number, &content, note, who, now, &hash).await?;
    let moved = queries::advance_policy(&mut *tx, &row.id, current.number, number, now).await?;
    if !moved {
        return Err(AppError::Conflict(
            "someone saved this policy at the same moment: reload and try again".into(),
        )
        .into());
    }
    Event::new("policy.save", "policy", &row.id)
        .detail(json!({ "name": row.name, "version": number, "note": note, "content_hash": hash }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(SaveOutcome::Saved {
        policy_id: row.id,
        version: number,
        warnings,
    })
}

/// The parts of a version as the diff shows them, in order.
fn parts(version: &Version) -> Vec<(&'static str, String)> {
    let tests = serde_yaml_ng::to_string(&version.content.tests).unwrap_or_default();
    vec![
        ("policy.yaml", version.content.source.clone()),
        ("params.yaml", version.content.params.clone()),
        ("description", version.content.description.clone()),
        ("remediation", version.content.remediation.clone()),
        ("controls", version.content.controls.join("\n")),
        ("tests.yaml", tests),
    ]
}

/// The line diff from version `from` to version `to` (any two, either order).
pub async fn diff(
    db: &Db,
    who: &Principal,
    key: &str,
    from: i64,
    to: i64,
) -> ServerResult<VersionDiff> {
    authorize(Some(who), Action::Read)?;
    let row = find(db, key).await?;
    let old = version_of(db, &row.id, from).await?;
    let new = version_of(db, &row.id, to).await?;
    let changed: Vec<_> = parts(&old)
        .into_iter()
        .zip(parts(&new))
        .filter(|((_, a), (_, b))| a != b)
        .collect();
    for ((name, a), (_, b)) in &changed {
        for (number, text) in [(from, a), (to, b)] {
            let lines = text.lines().count();
            if lines > MAX_DIFF_LINES {
                return Err(AppError::Invalid(format!(
                    "{name} has {lines} lines in version {number}: a diff shows parts of up to \
                     {MAX_DIFF_LINES} lines"
                ))
                .into());
            }
        }
    }
    let files = changed
        .into_iter()
        .map(|((name, a), (_, b))| diff_lines(name, &a, &b, 3))
        .collect();
    Ok(VersionDiff { from, to, files })
}

/// The most lines a part of a version may have for the History tab to diff it.
pub const MAX_DIFF_LINES: usize = 20_000;

/// A version about to be tested: its policy, the version's row and its content.
pub struct RunInput {
    pub policy_id: String,
    pub version_id: String,
    pub number: i64,
    pub content: Content,
}

/// What a test run of version `number` of the policy `key` needs, for someone who may edit.
pub async fn run_input(db: &Db, who: &Principal, key: &str, number: i64) -> ServerResult<RunInput> {
    authorize(Some(who), Action::EditPolicies)?;
    let row = find(db, key).await?;
    let version_id = queries::version_id(db.pool(), &row.id, number)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no version {number} of this policy")))?;
    let content = version_of(db, &row.id, number).await?.content;
    Ok(RunInput {
        policy_id: row.id,
        version_id,
        number,
        content,
    })
}

/// Stores the results of a run with its version, and its audit entry, in one transaction.
pub async fn store_run(
    db: &Db,
    who: &Principal,
    now: i64,
    input: &RunInput,
    ran: validate::Ran,
) -> ServerResult<TestRun> {
    authorize(Some(who), Action::EditPolicies)?;
    let run = queries::NewRun {
        id: new_id(),
        version_id: input.version_id.clone(),
        number: input.number,
        now,
        who,
        ran,
    };
    let mut tx = db.begin().await?;
    queries::insert_run(&mut tx, &run).await?;
    let stored = run.into_test_run();
    Event::new("policy.run_tests", "policy", &input.policy_id)
        .detail(json!({
            "version": input.number,
            "passed": stored.summary.passed,
            "failed": stored.summary.failed,
            "skipped": stored.summary.skipped,
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(stored)
}

/// The newest stored test run of version `number`, if it was ever run.
pub async fn latest_run(
    db: &Db,
    who: &Principal,
    key: &str,
    number: i64,
) -> ServerResult<Option<TestRun>> {
    authorize(Some(who), Action::Read)?;
    let row = find(db, key).await?;
    Ok(queries::latest_run(db.pool(), &row.id, number).await?)
}

/// What a policy intends, as the staging view reads it.
#[derive(Debug, Clone)]
pub struct Intent {
    pub policy_id: String,
    pub current: Version,
    pub modes: Vec<EnvironmentMode>,
}

/// The policy with id or name `key`: its current version and its intended mode per environment.
pub async fn intent(db: &Db, who: &Principal, key: &str) -> ServerResult<Intent> {
    authorize(Some(who), Action::Read)?;
    let row = find(db, key).await?;
    let modes = queries::modes_of_policy(db.pool(), &row.id).await?;
    let current = version_of(db, &row.id, row.current_version).await?;
    Ok(Intent {
        modes: modes_of(&modes, &row.id),
        policy_id: row.id,
        current,
    })
}

/// Set (or with `None`, clear) the intended mode of the policy in `environment`.
pub async fn set_mode(
    db: &Db,
    who: &Principal,
    now: i64,
    key: &str,
    environment: &str,
    mode: Option<Mode>,
) -> ServerResult<()> {
    authorize(Some(who), Action::EditPolicies)?;
    let environment = environment.trim();
    if !valid_environment(environment) {
        return Err(AppError::Invalid(format!(
            "{environment:?} is not an environment name: 1 to 40 lower-case letters, digits and `-`"
        ))
        .into());
    }
    let row = find(db, key).await?;
    let mut tx = db.begin().await?;
    let before = queries::mode_of(&mut *tx, &row.id, environment).await?;
    queries::set_mode(&mut tx, &row.id, environment, mode, who, now).await?;
    Event::new("policy.set_mode", "policy", &row.id)
        .detail(json!({
            "environment": environment,
            "from": before,
            "to": mode.map(Mode::as_str),
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every library entry, with the policy adopted from it if any.
pub async fn library(db: &Db, who: &Principal) -> ServerResult<Vec<LibraryEntry>> {
    authorize(Some(who), Action::Read)?;
    let adopted = queries::adopted(db.pool()).await?;
    Ok(library::entries()?
        .iter()
        .map(|entry| {
            let adopted_as = adopted
                .iter()
                .find(|(origin, _)| origin.strip_prefix("library:") == Some(entry.id))
                .map(|(_, id)| id.clone());
            library::describe(entry, adopted_as)
        })
        .collect())
}

/// `(origin, policy id)` of every policy adopted from the built-in library.
pub async fn adopted(db: &Db) -> ServerResult<Vec<(String, String)>> {
    Ok(queries::adopted(db.pool()).await?)
}
