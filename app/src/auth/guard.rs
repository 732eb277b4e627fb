//! Controls that fit the signed-in role: a control the role cannot use is shown disabled, saying
//! which role can, rather than offered and then refused. The server still authorizes every call;
//! this only keeps the page honest about what will work.

use leptos::prelude::*;

use super::{Action, Principal, Role};
use crate::error::AppError;

/// The signed-in caller, read once for the whole frame (the [`crate::layout::Layout`] provides
/// it) and shared by the user menu and every page that fits its controls to the role.
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Result<Principal, AppError>>);

/// The one place the caller is read (one resource type, so the browser bundle holds its code
/// once).
fn read_me() -> Me {
    Me(Resource::new(|| (), |_| super::pages::who_am_i()))
}

/// Reads the caller once and offers it to everything inside the frame.
pub fn provide_me() -> Me {
    let me = read_me();
    provide_context(me);
    me
}

/// The caller read by the frame; outside one (a page drawn alone), read here.
pub fn use_me() -> Resource<Result<Principal, AppError>> {
    use_context::<Me>().unwrap_or_else(read_me).0
}

/// `children` when the signed-in role may do `action`; otherwise one quiet line saying what
/// needs which role (`Proposing a rollout: needs the author role.`), so nobody fills in a form
/// the server will refuse.
#[component]
pub fn Allowed(
    action: Action,
    /// What the controls do, as a noun phrase: "Proposing a rollout".
    doing: &'static str,
    /// `data-testid` of the line shown instead.
    testid: &'static str,
    children: ChildrenFn,
) -> impl IntoView {
    let me = use_me();
    view! {
        <Transition fallback=|| ()>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match needs(role_of(&me.await), action) {
                        None => children().into_any(),
                        Some(reason) => view! {
                            <p class="muted needs-role" data-testid=testid>
                                {format!("{doing}: {}.", reason.to_lowercase())}
                            </p>
                        }
                        .into_any(),
                    }
                })
            }}
        </Transition>
    }
}

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
