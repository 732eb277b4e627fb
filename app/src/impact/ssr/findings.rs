//! Impact object by object (`POST /api/v1/impact`): a stored version or a source judged on every
//! enabled cluster, or the ones named, through the same [`judge_clusters`] as the Impact tab.

use super::service::{judge_clusters, Judged, Subject};
use crate::auth::{authorize, Action, Principal};
use crate::clusters::ssr::service as clusters;
use crate::db::Db;
use crate::error::{AppError, OrFault, ServerResult};
use crate::impact::findings::{
    ClusterFindings, ImpactFindings, ImpactRequest, FINDINGS_SHOWN, MAX_CLUSTERS, MAX_SOURCE_BYTES,
};
use crate::policies::Content;

/// What enforcing the request's policy would do to each object of the clusters' inventories.
/// A stored version needs [`Action::Read`]; a source, like a draft's preview,
/// [`Action::EditPolicies`]. Sizes are checked before any work.
pub async fn findings(
    db: &Db,
    who: &Principal,
    now: i64,
    request: ImpactRequest,
) -> ServerResult<ImpactFindings> {
    let ImpactRequest {
        policy,
        version,
        source,
        params,
        clusters: only,
    } = request;
    let needed = if source.is_some() {
        Action::EditPolicies
    } else {
        Action::Read
    };
    authorize(Some(who), needed)?;
    if let Some(ids) = &only {
        if ids.len() > MAX_CLUSTERS {
            return Err(invalid(format!(
                "clusters: name at most {MAX_CLUSTERS} clusters, not {}",
                ids.len()
            )));
        }
    }
    let (policy_id, content) = match (policy, source) {
        (Some(_), Some(_)) => {
            return Err(invalid("policy, source: give one of them, not both".into()))
        }
        (None, None) => {
            return Err(invalid(
                "policy, source: give a stored policy (id or name) or a policy source".into(),
            ))
        }
        (None, Some(source)) => {
            if version.is_some() {
                return Err(invalid("version: only with policy".into()));
            }
            let params = params.unwrap_or_default();
            let size = source.len() + params.len();
            if size > MAX_SOURCE_BYTES {
                return Err(invalid(format!(
                    "source: {size} bytes with its params, at most {MAX_SOURCE_BYTES}"
                )));
            }
            // No stored policy has an empty id: nothing runs under it, no exception names it.
            let content = Content {
                source,
                params,
                ..Content::default()
            };
            (String::new(), content)
        }
        (Some(key), None) => {
            if params.is_some() {
                return Err(invalid("params: only with source".into()));
            }
            let detail = crate::policies::ssr::detail(db, who, &key).await?;
            let content = match version {
                Some(number) if number != detail.current.number => {
                    crate::policies::ssr::version(db, who, &detail.policy.id, number)
                        .await?
                        .content
                }
                _ => detail.current.content,
            };
            (detail.policy.id, content)
        }
    };
    if let Some(ids) = &only {
        for id in ids {
            // An unknown id is a 404 naming it.
            if clusters::get(db, id).await?.disabled {
                return Err(invalid(format!(
                    "clusters: {id} is disabled; enable it to judge it"
                )));
            }
        }
    }
    let judged = judge_clusters(
        db,
        &policy_id,
        &Subject::Content(content),
        only.as_deref(),
        now,
        None,
    )
    .await?;
    // Sorting a large cluster's findings is work: off the async threads.
    let clusters =
        tokio::task::spawn_blocking(move || judged.into_iter().map(of_cluster).collect::<Vec<_>>())
            .await
            .or_fault()?;
    Ok(ImpactFindings { clusters })
}

fn invalid(message: String) -> crate::error::ServerError {
    AppError::Invalid(message).into()
}

/// One cluster's judged inventory as its findings.
fn of_cluster(judged: Judged) -> ClusterFindings {
    let complete = judged.complete();
    let mut out = ClusterFindings::new(
        judged.cluster.id.clone(),
        judged.judge.objects(),
        judged.judge.findings(FINDINGS_SHOWN),
    );
    out.complete = complete;
    out.partial = judged.partial;
    out.unreadable = judged
        .inventory
        .unreadable()
        .map(|k| k.kind.clone())
        .collect();
    out
}
