//! Proposing a rollout: the proposal checked and planned (each wave's clusters and the manifests
//! fixed now), what it would do judged from the inventories, and the proposal written.

use serde_json::json;

use super::{is_production, load, Rules};
use crate::audit::ssr::Event;
use crate::auth::{authorize, Action, Principal};
use crate::clusters::{tidy_namespaces, validate_name, Capabilities};
use crate::db::{new_id, Db};
use crate::error::{AppError, ServerResult};
use crate::policies::ssr as policies;
use crate::rollouts::ssr::impact;
use crate::rollouts::ssr::queries::{self, NewRolloutRow, NewWaveRow};
use crate::rollouts::{
    NewRollout, Rollout, RolloutKind, RolloutState, WaveState, MAX_APPROVALS, MAX_WAVES,
    MAX_WAVE_NAME,
};

/// Propose moving a policy version to a mode, in waves. The clusters of each wave are chosen now
/// (a cluster belongs to the first wave that selects it), so approvers see exactly where it goes;
/// the manifests are rendered now too, so a policy that cannot render is refused here.
/// A proposal checked and planned, before anything is written: the policy and version, the
/// objects every step will apply, and each wave's clusters.
struct Planned<'a> {
    policy: crate::policies::ssr::queries::PolicyRow,
    number: i64,
    namespaces: Vec<String>,
    exclusions: Vec<palisade_engine::exclusions::Exclusion>,
    objects: Vec<serde_json::Value>,
    waves: Vec<PlannedWave<'a>>,
}

/// A planned wave: its name, what was asked, and the clusters it takes.
type PlannedWave<'a> = (
    String,
    &'a crate::rollouts::NewWave,
    Vec<crate::clusters::Cluster>,
);

/// Each wave's position, name and cluster ids, as the impact groups them.
fn wave_clusters(waves: &[PlannedWave<'_>]) -> Vec<impact::WaveClusters> {
    waves
        .iter()
        .enumerate()
        .map(|(position, (name, _, members))| {
            (
                i64::try_from(position).unwrap_or(i64::MAX),
                name.clone(),
                members.iter().map(|c| c.id.clone()).collect(),
            )
        })
        .collect()
}

/// What the rollout `input` describes would do on each of its clusters, judged from their
/// inventories, before it is proposed (the propose form shows it per wave), counting into
/// `progress` as it goes.
pub async fn proposal_impact(
    db: &Db,
    who: &Principal,
    now: i64,
    rules: Rules,
    input: NewRollout,
    progress: Option<&crate::impact::ssr::progress::Progress>,
) -> ServerResult<crate::rollouts::RolloutImpact> {
    authorize(Some(who), Action::ProposeRollout)?;
    let planned = plan_proposal(db, now, rules, &input).await?;
    impact::judge(
        db,
        &planned.policy.id,
        input.mode,
        planned.objects.clone(),
        &wave_clusters(&planned.waves),
        now,
        progress,
    )
    .await
}

pub async fn propose(
    db: &Db,
    who: &Principal,
    now: i64,
    rules: Rules,
    input: NewRollout,
) -> ServerResult<Rollout> {
    authorize(Some(who), Action::ProposeRollout)?;
    let Planned {
        policy,
        number,
        namespaces,
        exclusions,
        objects,
        waves,
    } = plan_proposal(db, now, rules, &input).await?;
    // Enforcing what would deny running workloads needs the proposer to say they know, and the
    // number goes on record with the proposal.
    let impact = if input.mode == crate::model::Mode::Enforce {
        let impact = impact::judge(
            db,
            &policy.id,
            input.mode,
            objects,
            &wave_clusters(&waves),
            now,
            None,
        )
        .await?;
        if let Some(why) = impact::refusal(&impact, number, input.acknowledge_denials) {
            return Err(AppError::Invalid(why).into());
        }
        Some(impact)
    } else {
        None
    };
    let mut tx = db.begin().await?;
    let id = new_id();
    queries::insert(
        &mut *tx,
        &NewRolloutRow {
            id: &id,
            kind: RolloutKind::Apply,
            parent_id: "",
            policy_id: &policy.id,
            version: number,
            mode: input.mode,
            namespaces: &namespaces,
            state: RolloutState::PendingApproval,
            proposer_id: &who.user_id,
            proposer_name: &who.display_name,
            note: input.note.trim(),
            now,
            acknowledged_denials: impact.as_ref().map(|i| i.denied),
        },
    )
    .await?;
    // Checked after the insert, in the same transaction: the insert takes the write lock first.
    if let Some(other) = queries::unfinished_of_policy(&mut *tx, &policy.id, &id).await? {
        return Err(AppError::Conflict(format!(
            "rollout {other} of policy `{}` has not finished: let it finish, or abort or reject it first",
            policy.name
        )).into());
    }
    crate::exceptions::ssr::save_rollout_exclusions(&mut tx, &id, &exclusions).await?;
    for (position, (name, wave, members)) in waves.iter().enumerate() {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        queries::insert_wave(
            &mut *tx,
            &id,
            &NewWaveRow {
                position,
                name,
                selector: &wave.selector,
                approvals_required: i64::from(wave.approvals),
                soak_secs: i64::try_from(wave.soak_secs).unwrap_or(i64::MAX),
                violation_threshold: wave
                    .violation_threshold
                    .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                state: if position == 0 {
                    WaveState::Approval
                } else {
                    WaveState::Waiting
                },
                started_ms: 0,
            },
        )
        .await?;
        for cluster in members {
            queries::insert_step(
                &mut *tx,
                &new_id(),
                &id,
                position,
                &cluster.id,
                &cluster.name,
                "",
            )
            .await?;
        }
    }
    Event::new("rollout.propose", "rollout", &id)
        .detail(json!({
            "policy": policy.name,
            "version": number,
            "mode": input.mode.as_str(),
            "exceptions": exclusions.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            "waves": waves.iter().map(|(name, wave, members)| json!({
                "name": name,
                "selector": wave.selector.describe(),
                "approvals": wave.approvals,
                "clusters": members.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "impact": impact.as_ref().map(impact::on_record),
        }))
        .record(&mut *tx, who, now)
        .await?;
    let first = waves.first().map_or("", |(name, _, _)| name.as_str());
    crate::notify::ssr::enqueue(
        &mut tx,
        now,
        &crate::notify::Notice {
            kind: crate::notify::NoticeKind::ApprovalRequested,
            title: format!(
                "Approval requested: {} to {}",
                policy.name,
                input.mode.as_str()
            ),
            text: format!(
                "{} proposed version {number} of {} in {} mode; wave {first} waits for approval.",
                who.display_name,
                policy.name,
                input.mode.as_str()
            ),
            link: Some(format!("/rollouts/{id}")),
        },
    )
    .await?;
    tx.commit().await?;
    load(db, &id).await
}

/// An engine beside Kubernetes that a policy's objects can need.
struct NeededEngine {
    /// How the API groups of its objects end.
    group_suffix: &'static str,
    name: &'static str,
    installed: fn(&Capabilities) -> bool,
}

/// The engines a proposal checks each cluster of its waves for.
const ENGINES: [NeededEngine; 2] = [
    NeededEngine {
        group_suffix: "gatekeeper.sh",
        name: "Gatekeeper",
        installed: |c| c.gatekeeper,
    },
    NeededEngine {
        group_suffix: "kyverno.io",
        name: "Kyverno",
        installed: |c| c.kyverno,
    },
];

/// Check a proposal and plan it: the version renders, every wave takes at least one enabled
/// cluster, production is approved, Gatekeeper is there where needed.
async fn plan_proposal<'a>(
    db: &Db,
    now: i64,
    rules: Rules,
    input: &'a NewRollout,
) -> ServerResult<Planned<'a>> {
    let policy = policies::find(db, input.policy.trim()).await?;
    let number = input.version.unwrap_or(policy.current_version);
    let version = policies::version_of(db, &policy.id, number).await?;
    if input.waves.is_empty() || input.waves.len() > MAX_WAVES {
        return Err(AppError::Invalid(format!(
            "a rollout has 1 to {MAX_WAVES} waves; this one has {}",
            input.waves.len()
        ))
        .into());
    }
    let namespaces = tidy_namespaces(&input.namespaces);
    for namespace in &namespaces {
        validate_name("namespace", namespace)?;
    }
    // The policy's active exceptions are fixed now, with the rollout, so every step applies
    // exactly the exclusions the approvers saw.
    let exclusions = crate::exceptions::ssr::exclusions(db, &policy.id, now).await?;
    let objects = crate::policies::ssr::render::desired_objects(
        &version.content,
        input.mode,
        &namespaces,
        &exclusions,
    )
    .map_err(|err| AppError::Invalid(format!("version {number} cannot be rolled out: {err}")))?;
    let needs = |suffix: &str| {
        objects.iter().any(|o| {
            o.get("apiVersion")
                .and_then(serde_json::Value::as_str)
                .and_then(|v| v.split_once('/'))
                .is_some_and(|(group, _)| group.ends_with(suffix))
        })
    };
    let engines_needed: Vec<&NeededEngine> = ENGINES
        .iter()
        .filter(|engine| needs(engine.group_suffix))
        .collect();

    let clusters = crate::clusters::ssr::service::list(db).await?;
    let mut taken: Vec<String> = Vec::new();
    let mut waves = Vec::new();
    for (position, wave) in input.waves.iter().enumerate() {
        let name = match wave.name.trim() {
            "" => wave
                .selector
                .environment
                .clone()
                .unwrap_or_else(|| format!("wave {}", position + 1)),
            name => name.to_owned(),
        };
        if position == 0 && wave.approvals == 0 {
            return Err(
                AppError::Invalid("the first wave needs at least one approval".into()).into(),
            );
        }
        if wave.approvals > MAX_APPROVALS {
            return Err(AppError::Invalid(format!(
                "wave `{name}`: at most {MAX_APPROVALS} approvals can be required"
            ))
            .into());
        }
        if name.chars().count() > MAX_WAVE_NAME {
            return Err(AppError::Invalid(format!(
                "waves[{position}].name: at most {MAX_WAVE_NAME} characters"
            ))
            .into());
        }
        if let Some(earlier) = waves
            .iter()
            .position(|(taken_name, _, _)| *taken_name == name)
        {
            return Err(AppError::Invalid(format!(
                "wave `{name}`: wave {} already has this name; give each wave its own name",
                earlier + 1
            ))
            .into());
        }
        let members: Vec<_> = clusters
            .iter()
            .filter(|c| !c.disabled && !taken.contains(&c.id))
            .filter(|c| wave.selector.matches(&c.environment, &c.labels))
            .cloned()
            .collect();
        if members.is_empty() {
            return Err(AppError::Invalid(format!(
                "wave `{name}` ({}) selects no enabled cluster that an earlier wave does not already take",
                wave.selector.describe()
            )).into());
        }
        if wave.approvals == 0 && rules.production_needs_approval {
            if let Some(production) = members
                .iter()
                .find(|c| is_production(&c.environment, &c.labels))
            {
                return Err(AppError::Invalid(format!(
                    "wave `{name}` reaches production cluster `{}`: it needs at least one approval",
                    production.name
                ))
                .into());
            }
        }
        for engine in &engines_needed {
            if let Some(without) = members
                .iter()
                .find(|c| !(engine.installed)(&c.capabilities))
            {
                return Err(AppError::Invalid(format!(
                    "cluster `{}` has no {}, which this policy needs",
                    without.name, engine.name
                ))
                .into());
            }
        }
        taken.extend(members.iter().map(|c| c.id.clone()));
        waves.push((name, wave, members));
    }

    Ok(Planned {
        policy,
        number,
        namespaces,
        exclusions,
        objects,
        waves,
    })
}
