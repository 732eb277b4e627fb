//! Exceptions: a policy left out for one namespace (or several), a label selector or one named
//! resource, with a justification, a ticket and an expiry. An author requests one; an approver
//! other than the requester approves or rejects it; anyone with the approver role can revoke it.
//!
//! An exception is *active* while it is approved and its expiry lies ahead ([`Exception::covers`]
//! takes the time as a parameter). Active exceptions are rendered into each engine's own exclusion
//! at the policy's next rollout (`palisade_engine::exclusions`), make local test cases they cover
//! pass as allowed, and are what the violation scan asks through `ssr::active_for`. Expiry is
//! derived at read time; the stored state stays `approved` until a later change.

pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::wire::wire_enum;
use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Longest an exception may run: a year. Renewing means requesting again.
pub const MAX_DAYS: i64 = 365;

pub use crate::time::DAY_MS;

wire_enum! {
    /// Where an exception is in its life.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ExceptionState as "exception state" {
        /// Waits for an approver.
        Requested = "requested",
        Approved = "approved",
        Rejected = "rejected",
        Revoked = "revoked",
        /// Its expiry passed (derived from `expires_ms` when read).
        Expired = "expired",
    }
}

/// What an exception leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Every object in these namespaces.
    Namespaces { namespaces: Vec<String> },
    /// Every object carrying all these labels.
    Selector { labels: BTreeMap<String, String> },
    /// One object: its kind (`Deployment`), namespace (empty when cluster-scoped) and name.
    Resource {
        resource_kind: String,
        namespace: String,
        name: String,
    },
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Namespaces { .. } => "namespaces",
            Scope::Selector { .. } => "selector",
            Scope::Resource { .. } => "resource",
        }
    }

    /// `namespaces team-a, team-b` / `labels app=db, tier=data` / `Deployment shop/web`.
    pub fn describe(&self) -> String {
        match self {
            Scope::Namespaces { namespaces } => format!("namespaces {}", namespaces.join(", ")),
            Scope::Selector { labels } => format!(
                "labels {}",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Scope::Resource {
                resource_kind,
                namespace,
                name,
            } if namespace.is_empty() => format!("{resource_kind} {name}"),
            Scope::Resource {
                resource_kind,
                namespace,
                name,
            } => format!("{resource_kind} {namespace}/{name}"),
        }
    }
}

/// A request for an exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NewException {
    /// The policy's id or name.
    pub policy: String,
    pub scope: Scope,
    /// Why the policy cannot be met here (required).
    pub justification: String,
    /// The change or risk ticket, e.g. `SEC-1234` (optional).
    #[serde(default)]
    pub ticket: String,
    /// When it stops applying, in milliseconds since the epoch: in the future, at most
    /// [`MAX_DAYS`] ahead.
    pub expires_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Exception {
    pub id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub scope: Scope,
    pub justification: String,
    pub ticket: String,
    pub expires_ms: i64,
    /// As of the read: `expired` once `expires_ms` has passed for a requested or approved one.
    pub state: ExceptionState,
    pub requester_id: String,
    pub requester_name: String,
    pub decider_id: String,
    pub decider_name: String,
    pub decision_comment: String,
    pub decided_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Exception {
    /// An exception for the tests: its policy, what it leaves out, its state and expiry as given;
    /// the rest is filler no test reads.
    #[cfg(test)]
    pub(crate) fn example(
        id: &str,
        policy_id: &str,
        scope: Scope,
        state: ExceptionState,
        expires_ms: i64,
    ) -> Exception {
        Exception {
            id: id.to_owned(),
            policy_id: policy_id.to_owned(),
            policy_name: "no-privileged".into(),
            scope,
            justification: "legacy agent".into(),
            ticket: "SEC-1".into(),
            expires_ms,
            state,
            requester_id: "u1".into(),
            requester_name: "Ada".into(),
            decider_id: String::new(),
            decider_name: String::new(),
            decision_comment: String::new(),
            decided_ms: 0,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    /// Approved and not expired at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.state == ExceptionState::Approved && now_ms < self.expires_ms
    }

    /// Whether this exception, at `now_ms`, leaves out the object of `kind` named `name` in
    /// `namespace` (empty for cluster-scoped objects) that carries `labels`.
    pub fn covers(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> bool {
        self.is_active(now_ms)
            && match &self.scope {
                // As the apiserver matches a namespace selector: a Namespace object by its own
                // name, anything else by the namespace it lives in.
                Scope::Namespaces { namespaces } => {
                    let place = if kind == "Namespace" { name } else { namespace };
                    !place.is_empty() && namespaces.iter().any(|n| n == place)
                }
                Scope::Selector { labels: wanted } => {
                    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
                }
                Scope::Resource {
                    resource_kind,
                    namespace: ns,
                    name: wanted,
                    // Exactly as the match condition on `request.kind.kind` compares it.
                } => resource_kind == kind && ns == namespace && wanted == name,
            }
    }
}

/// Exceptions, newest first; only one policy's when `policy` is set.
#[server(endpoint = "list_exceptions", input = Json)]
pub async fn list_exceptions(policy: Option<String>) -> Result<Vec<Exception>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::list(&call.db, &call.who, call.now, policy.as_deref()).await?)
}

#[server(endpoint = "get_exception", input = Json)]
pub async fn get_exception(id: String) -> Result<Exception, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::get(&call.db, &call.who, call.now, &id).await?)
}

/// Request an exception; it waits for an approver other than you.
#[server(endpoint = "request_exception", input = Json)]
pub async fn request_exception(input: NewException) -> Result<Exception, AppError> {
    let call = crate::state::authorized(crate::auth::Action::RequestException)?;
    Ok(ssr::service::request(&call.db, &call.who, call.now, input).await?)
}

/// Approve or reject a requested exception, with a comment (required to reject).
#[server(endpoint = "decide_exception", input = Json)]
pub async fn decide_exception(
    id: String,
    approve: bool,
    comment: String,
) -> Result<Exception, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Approve)?;
    Ok(ssr::service::decide(&call.db, &call.who, call.now, &id, approve, &comment).await?)
}

/// End an exception before its expiry (requested or approved ones).
#[server(endpoint = "revoke_exception", input = Json)]
pub async fn revoke_exception(id: String, comment: String) -> Result<Exception, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Approve)?;
    Ok(ssr::service::revoke(&call.db, &call.who, call.now, &id, &comment).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exception(scope: Scope, state: ExceptionState) -> Exception {
        Exception::example("e1", "p1", scope, state, 1_000)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_namespace_exception_covers_everything_in_its_namespaces_until_it_expires() {
        let e = exception(
            Scope::Namespaces {
                namespaces: vec!["team-a".into(), "team-b".into()],
            },
            ExceptionState::Approved,
        );
        let none = BTreeMap::new();
        assert!(e.covers("Pod", "team-b", "x", &none, 999));
        assert!(!e.covers("Pod", "team-c", "x", &none, 999));
        assert!(e.covers("Namespace", "", "team-a", &none, 999));
        assert!(!e.covers("Namespace", "", "team-c", &none, 999));
        assert!(!e.covers("Pod", "team-a", "x", &none, 1_000), "expired");
    }

    #[test]
    fn only_approved_exceptions_cover() {
        for state in [
            ExceptionState::Requested,
            ExceptionState::Rejected,
            ExceptionState::Revoked,
            ExceptionState::Expired,
        ] {
            let e = exception(
                Scope::Namespaces {
                    namespaces: vec!["a".into()],
                },
                state,
            );
            assert!(!e.covers("Pod", "a", "x", &BTreeMap::new(), 0), "{state:?}");
        }
    }

    #[test]
    fn a_selector_needs_every_label() {
        let e = exception(
            Scope::Selector {
                labels: labels(&[("app", "db"), ("tier", "data")]),
            },
            ExceptionState::Approved,
        );
        let both = labels(&[("app", "db"), ("tier", "data"), ("x", "y")]);
        assert!(e.covers("Deployment", "any", "x", &both, 0));
        assert!(!e.covers("Deployment", "any", "x", &labels(&[("app", "db")]), 0));
        assert!(!e.covers(
            "Deployment",
            "any",
            "x",
            &labels(&[("app", "db"), ("tier", "web")]),
            0
        ));
        let empty = exception(
            Scope::Selector {
                labels: BTreeMap::new(),
            },
            ExceptionState::Approved,
        );
        assert!(
            !empty.covers("Pod", "a", "b", &both, 0),
            "empty covers nothing"
        );
    }

    #[test]
    fn a_resource_exception_names_one_object() {
        let e = exception(
            Scope::Resource {
                resource_kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "web".into(),
            },
            ExceptionState::Approved,
        );
        let none = BTreeMap::new();
        assert!(e.covers("Deployment", "shop", "web", &none, 0));
        assert!(
            !e.covers("deployment", "shop", "web", &none, 0),
            "kinds are exact"
        );
        assert!(!e.covers("Deployment", "other", "web", &none, 0));
        assert!(!e.covers("Pod", "shop", "web", &none, 0));
        assert!(!e.covers("Deployment", "shop", "api", &none, 0));
        assert_eq!(e.scope.describe(), "Deployment shop/web");
    }

    #[test]
    fn states_print_and_parse_back() {
        for state in ExceptionState::ALL {
            assert_eq!(ExceptionState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ExceptionState::parse("pending"), None);
    }
}
