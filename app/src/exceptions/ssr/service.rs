//! The exceptions service: request, decide, revoke, read. Every function takes the principal,
//! authorizes again, owns its transaction and records the audit entry inside it. Time is a
//! parameter.

use serde_json::json;

use super::queries;
use crate::audit::ssr::Event;
use crate::auth::{authorize, decision_comment, ensure_not_own, Action, Principal};
use crate::clusters::{tidy_namespaces, validate_labels, validate_name};
use crate::db::{new_id, Db};
use crate::error::{AppError, ServerError, ServerResult};
use crate::exceptions::{Exception, ExceptionState, NewException, Scope, DAY_MS, MAX_DAYS};
use crate::model::Engine;
use crate::policies::ssr as policies;
use crate::policies::ssr::queries::PolicyRow;

/// Most namespaces one exception may name.
const MAX_NAMESPACES: usize = 50;
/// Most labels one selector may have.
const MAX_LABELS: usize = 10;

/// The state as of `now`: a requested or approved exception whose expiry passed is expired.
fn as_of(mut exception: Exception, now: i64) -> Exception {
    if matches!(
        exception.state,
        ExceptionState::Requested | ExceptionState::Approved
    ) && now >= exception.expires_ms
    {
        exception.state = ExceptionState::Expired;
    }
    exception
}

async fn policy_id(db: &Db, key: &str) -> ServerResult<PolicyRow> {
    match policies::find(db, key).await {
        Err(ServerError::User(AppError::NotFound(_))) => {
            Err(AppError::NotFound(format!("policy: there is no policy {key:?}")).into())
        }
        found => found,
    }
}

pub async fn list(
    db: &Db,
    who: &Principal,
    now: i64,
    policy: Option<&str>,
) -> ServerResult<Vec<Exception>> {
    authorize(Some(who), Action::Read)?;
    let filter = match policy.map(str::trim).filter(|p| !p.is_empty()) {
        Some(key) => Some(policy_id(db, key).await?.id),
        None => None,
    };
    Ok(queries::list(db.pool(), filter.as_deref())
        .await?
        .into_iter()
        .map(|e| as_of(e, now))
        .collect())
}

/// The exception requests waiting for `who`'s decision: requested, and not by them. Empty for a
/// role that may not approve.
pub async fn awaiting(db: &Db, who: &Principal, now: i64) -> ServerResult<Vec<Exception>> {
    authorize(Some(who), Action::Read)?;
    if authorize(Some(who), Action::Approve).is_err() {
        return Ok(Vec::new());
    }
    Ok(list(db, who, now, None)
        .await?
        .into_iter()
        .filter(|e| e.state == ExceptionState::Requested && e.requester_id != who.user_id)
        .collect())
}

pub async fn get(db: &Db, who: &Principal, now: i64, id: &str) -> ServerResult<Exception> {
    authorize(Some(who), Action::Read)?;
    load(db, now, id).await
}

async fn load(db: &Db, now: i64, id: &str) -> ServerResult<Exception> {
    Ok(queries::get(db.pool(), id.trim())
        .await?
        .map(|e| as_of(e, now))
        .ok_or_else(|| AppError::NotFound(format!("no exception {id:?}")))?)
}

/// A resource kind as Kubernetes spells it: `Deployment`, `CronJob`.
fn validate_kind(kind: &str) -> ServerResult<()> {
    let ok = kind.len() <= 63
        && kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "scope.resource_kind `{kind}` must be a Kubernetes kind such as `Deployment`: a capital \
             letter, then letters and digits"
        )).into())
    }
}

/// An object name: a DNS subdomain (lowercase letters, digits, `-` and `.`, at most 253).
fn validate_object_name(name: &str) -> ServerResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "scope.name `{name}` must be a Kubernetes object name: lowercase letters, digits, `-` \
             and `.`, starting and ending with a letter or digit"
        ))
        .into())
    }
}

/// The scope, trimmed and checked; errors name the field.
fn clean_scope(scope: Scope) -> ServerResult<Scope> {
    match scope {
        Scope::Namespaces { namespaces } => {
            let namespaces = tidy_namespaces(&namespaces);
            if namespaces.is_empty() || namespaces.len() > MAX_NAMESPACES {
                return Err(AppError::Invalid(format!(
                    "scope.namespaces: name 1 to {MAX_NAMESPACES} namespaces"
                ))
                .into());
            }
            for namespace in &namespaces {
                validate_name("scope.namespaces: namespace", namespace)?;
            }
            Ok(Scope::Namespaces { namespaces })
        }
        Scope::Selector { labels } => {
            let labels: std::collections::BTreeMap<String, String> = labels
                .into_iter()
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            if labels.is_empty() || labels.len() > MAX_LABELS {
                return Err(AppError::Invalid(format!(
                    "scope.labels: give 1 to {MAX_LABELS} labels (key=value) that the excepted \
                     objects all carry"
                ))
                .into());
            }
            validate_labels(&labels)
                .map_err(|err| AppError::Invalid(format!("scope.labels: {err}")))?;
            Ok(Scope::Selector { labels })
        }
        Scope::Resource {
            resource_kind,
            namespace,
            name,
        } => {
            let (kind, namespace, name) = (
                resource_kind.trim().to_owned(),
                namespace.trim().to_owned(),
                name.trim().to_owned(),
            );
            validate_kind(&kind)?;
            if !namespace.is_empty() {
                validate_name("scope.namespace", &namespace)?;
            }
            validate_object_name(&name)?;
            Ok(Scope::Resource {
                resource_kind: kind,
                namespace,
                name,
            })
        }
    }
}

fn target(engine: Engine) -> palisade_engine::exclusions::Target {
    use palisade_engine::exclusions::Target;
    match engine {
        Engine::Gatekeeper => Target::Gatekeeper,
        Engine::PodSecurity => Target::PodSecurity,
        Engine::Vap => Target::Vap,
        Engine::Kyverno => Target::Kyverno,
    }
}

/// Request an exception: checked now (fields, expiry, and that the policy's engine can express
/// the scope), stored as `requested`, audited.
pub async fn request(
    db: &Db,
    who: &Principal,
    now: i64,
    input: NewException,
) -> ServerResult<Exception> {
    authorize(Some(who), Action::RequestException)?;
    if input.policy.trim().is_empty() {
        return Err(AppError::Invalid("policy: pick the policy to except".into()).into());
    }
    let justification = input.justification.trim();
    if justification.is_empty() {
        return Err(AppError::Invalid(
            "justification: say why the policy cannot be met here (required)".into(),
        )
        .into());
    }
    if justification.chars().count() > 4000 {
        return Err(AppError::Invalid("justification: at most 4000 characters".into()).into());
    }
    let ticket = input.ticket.trim();
    if ticket.chars().count() > 200 {
        return Err(AppError::Invalid("ticket: at most 200 characters".into()).into());
    }
    if input.expires_ms <= now {
        return Err(
            AppError::Invalid("expires_ms: the expiry must lie in the future".into()).into(),
        );
    }
    if input.expires_ms > now + MAX_DAYS * DAY_MS {
        return Err(AppError::Invalid(format!(
            "expires_ms: an exception runs at most {MAX_DAYS} days; request again to renew it"
        ))
        .into());
    }
    let scope = clean_scope(input.scope)?;
    let policy = policy_id(db, input.policy.trim()).await?;
    palisade_engine::exclusions::supported(target(policy.engine), &super::engine_scope(&scope))
        .map_err(|why| AppError::Invalid(format!("scope: policy `{}`: {why}", policy.name)))?;

    let exception = Exception {
        id: new_id(),
        policy_id: policy.id.clone(),
        policy_name: policy.name.clone(),
        scope,
        justification: justification.to_owned(),
        ticket: ticket.to_owned(),
        expires_ms: input.expires_ms,
        state: ExceptionState::Requested,
        requester_id: who.user_id.clone(),
        requester_name: who.display_name.clone(),
        decider_id: String::new(),
        decider_name: String::new(),
        decision_comment: String::new(),
        decided_ms: 0,
        created_ms: now,
        updated_ms: now,
    };
    let mut tx = db.begin().await?;
    queries::insert(&mut *tx, &exception).await?;
    Event::new("exception.requested", "exception", &exception.id)
        .detail(json!({
            "policy": policy.name,
            "scope": exception.scope.describe(),
            "ticket": exception.ticket,
            "expires_ms": exception.expires_ms,
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(exception)
}

/// Approve or reject a requested, unexpired exception. Nobody decides on their own request; a
/// rejection says why.
pub async fn decide(
    db: &Db,
    who: &Principal,
    now: i64,
    id: &str,
    approve: bool,
    comment: &str,
) -> ServerResult<Exception> {
    authorize(Some(who), Action::Approve)?;
    let exception = load(db, now, id).await?;
    ensure_not_own(who, &exception.requester_id, "exception request")?;
    if exception.state != ExceptionState::Requested {
        return Err(AppError::Conflict(format!(
            "this exception is {}, not waiting for a decision",
            exception.state.as_str()
        ))
        .into());
    }
    let comment = decision_comment(
        approve,
        comment,
        "comment: say why when you reject an exception",
    )?;
    let (to, action) = if approve {
        (ExceptionState::Approved, "exception.approved")
    } else {
        (ExceptionState::Rejected, "exception.rejected")
    };
    change(db, who, now, &exception, to, action, comment).await
}

/// End a requested or approved exception before its expiry.
pub async fn revoke(
    db: &Db,
    who: &Principal,
    now: i64,
    id: &str,
    comment: &str,
) -> ServerResult<Exception> {
    authorize(Some(who), Action::Approve)?;
    let exception = load(db, now, id).await?;
    if !matches!(
        exception.state,
        ExceptionState::Requested | ExceptionState::Approved
    ) {
        return Err(AppError::Conflict(format!(
            "this exception is {} already",
            exception.state.as_str()
        ))
        .into());
    }
    change(
        db,
        who,
        now,
        &exception,
        ExceptionState::Revoked,
        "exception.revoked",
        comment.trim(),
    )
    .await
}

async fn change(
    db: &Db,
    who: &Principal,
    now: i64,
    exception: &Exception,
    to: ExceptionState,
    action: &str,
    comment: &str,
) -> ServerResult<Exception> {
    let mut tx = db.begin().await?;
    let changed = queries::transition(
        &mut *tx,
        &exception.id,
        exception.state,
        to,
        (&who.user_id, &who.display_name),
        comment,
        now,
    )
    .await?;
    if !changed {
        return Err(
            AppError::Conflict("this exception changed meanwhile; reload it".into()).into(),
        );
    }
    Event::new(action, "exception", &exception.id)
        .detail(json!({
            "policy": exception.policy_name,
            "scope": exception.scope.describe(),
            "comment": comment,
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    load(db, now, &exception.id).await
}

/// Record as `expired` every requested or approved exception whose expiry has passed at `now`,
/// each with an `exception.expired` audit entry by the server itself; returns how many. Reads
/// derive expiry anyway: this makes it visible in the audit log and the stored state.
pub async fn sweep_expired(db: &Db, now: i64) -> ServerResult<usize> {
    let server = Principal::new("palisade", "Palisade", crate::auth::Role::Admin);
    let due = queries::due_to_expire(db.pool(), now).await?;
    let mut expired = 0;
    for (id, state) in due {
        let mut tx = db.begin().await?;
        if !queries::mark_expired(&mut *tx, &id, &state, now).await? {
            continue;
        }
        Event::new("exception.expired", "exception", &id)
            .detail(json!({ "was": state }))
            .record(&mut *tx, &server, now)
            .await?;
        tx.commit().await?;
        expired += 1;
    }
    Ok(expired)
}
