//! Controls that fit the signed-in role: a control the role cannot use is shown disabled, saying
//! which role can, rather than offered and then refused. The server still authorizes every call;
//! this only keeps the page honest about what will work.

use super::{Action, Principal, Role};

/// Why `role` may not do `action` (`Needs the approver role`), or `None` when it may. No role (the
/// caller could not be read) may do nothing.
pub fn needs(role: Option<Role>, action: Action) -> Option<String> {
    let required = action.required_role();
    match role {
        Some(role) if role >= required => None,
        _ => Some(format!("Needs the {} role", required.as_str())),
    }
}

/// The role of a signed-in caller, if known.
pub fn role_of(me: &Result<Principal, crate::error::AppError>) -> Option<Role> {
    me.as_ref().ok().map(|p| p.role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_below_the_action_is_told_which_role_can() {
        assert_eq!(needs(Some(Role::Admin), Action::ManageClusters), None);
        assert_eq!(
            needs(Some(Role::Author), Action::OperateRollout).as_deref(),
            Some("Needs the approver role")
        );
        assert_eq!(
            needs(Some(Role::Approver), Action::ManageClusters).as_deref(),
            Some("Needs the admin role")
        );
        assert!(needs(None, Action::Read).is_some());
    }
}
