//! Who is asking, and may they? The one authorization function every server function and REST handler
//! goes through.
//!
//! A request carries at most one [`Principal`]: the signed-in user of a session, or the holder of an
//! API token. The server's authentication middleware puts it in the request's extensions; nothing
//! else does. Every server function and REST handler names the [`Action`] it performs and calls
//! [`authorize`] (through `ssr::require` or `ssr::Caller::require`) before touching any data. Roles
//! are ordered, `viewer < author < approver < admin`, and each action needs one role or higher.

pub mod guard;
pub mod pages;

use crate::wire::wire_enum;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

wire_enum! {
    /// A user's role, from their group claims (or an API token's own role). Higher roles include lower.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Role as "role" {
        /// Reads everything a team sees: policies, tests, rollouts, clusters, violations, compliance.
        Viewer = "viewer",
        /// Writes policies and their tests, proposes rollouts, requests exceptions.
        Author = "author",
        /// Approves or rejects rollouts and exceptions (never their own) and operates rollouts.
        Approver = "approver",
        /// Manages clusters, sign-in, roles and tokens of others; reads the audit log.
        Admin = "admin",
    }
}

/// How people can sign in on this installation; shown by the sign-in page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct SignInOptions {
    /// The one-time bootstrap secret of the local admin is accepted.
    pub local: bool,
    /// Single sign-on through the configured OpenID provider.
    pub sso: bool,
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A browser session (OIDC or the local bootstrap admin).
    Session,
    /// An API token sent as `Authorization: Bearer …`.
    Token,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Principal {
    /// Stable user id: the same person always gets the same id (for OIDC, derived from issuer and
    /// subject). An API token acts as the user who created it, with the token's role.
    pub user_id: String,
    /// What people see: a name or e-mail address.
    pub display_name: String,
    pub role: Role,
    pub via: Via,
    /// Where the request came from (client address), for the audit log.
    pub from: String,
    /// The API token behind the request, when there is one (never sent to browsers).
    #[serde(skip)]
    pub token: Option<TokenRef>,
}

/// Which API token a request came with, and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub id: String,
    pub expires_ms: i64,
}

impl Principal {
    /// A principal for unit tests and for code that acts on behalf of the server itself.
    pub fn new(user_id: &str, display_name: &str, role: Role) -> Principal {
        Principal {
            user_id: user_id.to_owned(),
            display_name: display_name.to_owned(),
            role,
            via: Via::Session,
            from: String::new(),
            token: None,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Everything a caller can ask to do, each needing one minimum [`Role`]. A new server function or
/// REST route picks the action it performs; if none fits, add one here (and to the table test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read policies, versions, test results, the library, clusters, rollouts, violations, compliance.
    Read,
    /// Create and edit policies, their versions and test cases; run tests; set intended modes.
    EditPolicies,
    /// Propose a rollout of a policy version.
    ProposeRollout,
    /// Request an exception to a policy.
    RequestException,
    /// Approve or reject a rollout or an exception (never one's own: see [`ensure_not_own`]).
    Approve,
    /// Pause, resume, abort or roll back a rollout.
    OperateRollout,
    /// Create API tokens for oneself, with a role no higher than one's own; list and revoke them.
    ManageOwnTokens,
    /// Register, edit and remove clusters and their credentials.
    ManageClusters,
    /// Sign-in settings, other people's sessions and tokens, disabling people, notification
    /// settings.
    ManageSettings,
    /// Read and export the audit log.
    ReadAuditLog,
}

impl Action {
    /// Every action, for table tests.
    pub const ALL: [Action; 10] = [
        Action::Read,
        Action::EditPolicies,
        Action::ProposeRollout,
        Action::RequestException,
        Action::Approve,
        Action::OperateRollout,
        Action::ManageOwnTokens,
        Action::ManageClusters,
        Action::ManageSettings,
        Action::ReadAuditLog,
    ];

    /// The lowest role allowed to perform this action.
    pub fn required_role(self) -> Role {
        match self {
            Action::Read | Action::ManageOwnTokens => Role::Viewer,
            Action::EditPolicies | Action::ProposeRollout | Action::RequestException => {
                Role::Author
            }
            Action::Approve | Action::OperateRollout => Role::Approver,
            Action::ManageClusters | Action::ManageSettings | Action::ReadAuditLog => Role::Admin,
        }
    }

    /// How the action reads in an error message: "edit policies".
    pub fn describe(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::EditPolicies => "edit policies",
            Action::ProposeRollout => "propose rollouts",
            Action::RequestException => "request exceptions",
            Action::Approve => "approve",
            Action::OperateRollout => "operate rollouts",
            Action::ManageOwnTokens => "manage API tokens",
            Action::ManageClusters => "manage clusters",
            Action::ManageSettings => "manage settings",
            Action::ReadAuditLog => "read the audit log",
        }
    }
}

/// The one authorization decision: no principal is `Unauthenticated` (401); a role below the
/// action's is `Forbidden` (403) with a message saying which role is needed.
pub fn authorize(principal: Option<&Principal>, action: Action) -> Result<Principal, AppError> {
    let principal = principal.ok_or(AppError::Unauthenticated)?;
    let needed = action.required_role();
    if principal.has(needed) {
        Ok(principal.clone())
    } else {
        Err(AppError::Forbidden(format!(
            "to {} you need the {needed} role; you have {}",
            action.describe(),
            principal.role
        )))
    }
}

/// Separation of duties: nobody approves what they proposed or requested themselves.
pub fn ensure_not_own(
    principal: &Principal,
    owner_user_id: &str,
    what: &str,
) -> Result<(), AppError> {
    if principal.user_id == owner_user_id {
        Err(AppError::Forbidden(format!(
            "you cannot approve your own {what}; another approver must"
        )))
    } else {
        Ok(())
    }
}

/// The comment on an approval or a rejection, trimmed; a rejection must say why, and without a
/// comment it is refused with `missing`.
pub fn decision_comment<'a>(
    approve: bool,
    comment: &'a str,
    missing: &str,
) -> Result<&'a str, AppError> {
    let comment = comment.trim();
    if !approve && comment.is_empty() {
        return Err(AppError::Invalid(missing.to_owned()));
    }
    Ok(comment)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Reaching the request's principal from a server function or an axum handler.

    use std::convert::Infallible;

    use axum::extract::FromRequestParts;
    use axum::http::request::Parts;
    use leptos::prelude::use_context;

    use super::{authorize, Action, Principal};
    use crate::error::AppError;

    /// The principal the authentication middleware attached to the current request, if any.
    pub fn current_principal() -> Option<Principal> {
        use_context::<Parts>().and_then(|parts| parts.extensions.get::<Principal>().cloned())
    }

    /// For server functions: authorize the current request for `action`, returning who it is.
    /// A refusal also sets the response's status (401 or 403), so server functions answer like
    /// REST handlers do.
    pub fn require(action: Action) -> Result<Principal, AppError> {
        with_status(authorize(current_principal().as_ref(), action))
    }

    /// The Content-Security-Policy nonce of this response, put in the request's extensions by the
    /// server's header middleware; the shell hands it to Leptos so its inline scripts carry it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CspNonce(pub String);

    /// For server functions: give a failed result its HTTP status (404, 403, …) instead of 500.
    pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
        result.inspect_err(AppError::answer_with_status)
    }

    /// For REST handlers: the request's principal, if any. Extracting never fails; call
    /// [`Caller::require`] with the handler's action before anything else.
    #[derive(Debug, Clone)]
    pub struct Caller(pub Option<Principal>);

    impl Caller {
        pub fn require(&self, action: Action) -> Result<Principal, AppError> {
            authorize(self.0.as_ref(), action)
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Caller {
        type Rejection = Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            Ok(Caller(parts.extensions.get::<Principal>().cloned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_by_name() {
        assert!(Role::Viewer < Role::Author && Role::Author < Role::Approver);
        assert!(Role::Approver < Role::Admin);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse(" Admin "), None);
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn every_action_is_allowed_from_its_role_up_and_refused_below() {
        for action in Action::ALL {
            for role in Role::ALL {
                let principal = Principal::new("u1", "Ada", role);
                let result = authorize(Some(&principal), action);
                if role >= action.required_role() {
                    assert_eq!(result, Ok(principal), "{action:?} as {role}");
                } else {
                    let Err(AppError::Forbidden(message)) = result else {
                        panic!("{action:?} as {role} should be forbidden, got {result:?}");
                    };
                    assert!(
                        message.contains(action.required_role().as_str()),
                        "{message}"
                    );
                }
            }
            assert_eq!(authorize(None, action), Err(AppError::Unauthenticated));
        }
    }

    #[test]
    fn the_role_table_is_what_the_product_promises() {
        let viewer = Principal::new("v", "Viewer", Role::Viewer);
        let author = Principal::new("a", "Author", Role::Author);
        assert!(authorize(Some(&viewer), Action::Read).is_ok());
        assert!(authorize(Some(&viewer), Action::EditPolicies).is_err());
        assert!(authorize(Some(&author), Action::EditPolicies).is_ok());
        assert!(authorize(Some(&author), Action::Approve).is_err());
        let approver = Principal::new("p", "Approver", Role::Approver);
        assert!(authorize(Some(&approver), Action::ManageClusters).is_err());
    }

    #[test]
    fn nobody_approves_their_own_work() {
        let approver = Principal::new("u1", "Ada", Role::Approver);
        assert!(matches!(
            ensure_not_own(&approver, "u1", "rollout"),
            Err(AppError::Forbidden(_))
        ));
        assert_eq!(ensure_not_own(&approver, "u2", "rollout"), Ok(()));
    }

    #[test]
    fn a_rejection_says_why() {
        assert_eq!(
            decision_comment(false, "  ", "say why"),
            Err(AppError::Invalid("say why".into()))
        );
        assert_eq!(
            decision_comment(false, " too risky ", "say why"),
            Ok("too risky")
        );
        assert_eq!(decision_comment(true, "  ", "say why"), Ok(""));
    }
}
