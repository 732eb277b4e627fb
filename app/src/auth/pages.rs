//! Signing in, and who is signed in: the `/login` page and the user menu in the layout.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{Principal, SignInOptions};
use crate::error::AppError;
use crate::ui::url::encode;
use crate::ui::Loading;

/// How people can sign in here. Public: the sign-in page needs it before anyone is signed in, and
/// it says nothing but which buttons to show.
#[server(endpoint = "sign_in_options")]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    Ok(use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<SignInOptions>().cloned())
        .unwrap_or_default())
}

/// The signed-in caller.
#[server(endpoint = "who_am_i")]
pub async fn who_am_i() -> Result<Principal, AppError> {
    super::ssr::require(super::Action::Read)
}

/// What an error code in `/login?error=…` means.
pub fn describe_error(code: &str) -> &'static str {
    match code {
        "invalid_secret" => {
            "That secret is wrong or was already used. Run `palisade bootstrap-secret` on the host for a new one."
        }
        "state" => "The sign-in could not be completed: its state did not match. Start again.",
        "nonce" => "The identity provider's answer did not match this sign-in. Start again.",
        "denied" => "The identity provider did not sign you in.",
        "no_role" => {
            "Your account is in none of the groups that give a role in Palisade. Ask an admin."
        }
        "disabled" => "An admin has disabled your account in Palisade. Ask an admin.",
        "expired" => "The sign-in took too long. Start again.",
        _ => "Sign-in failed. Start again; if it keeps failing, the server log has the details.",
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let options = Resource::new(|| (), |_| get_sign_in_options());
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_owned());
    let error = move || query.read().get("error");
    let signed_out = move || query.read().get("signed_out").is_some();

    view! {
        <Title text="Sign in" />
        <section class="login" aria-labelledby="login-heading">
            <h1 id="login-heading">"Sign in to Palisade"</h1>
            <Show when=signed_out>
                <p class="notice" role="status">"You are signed out."</p>
            </Show>
            {move || {
                error()
                    .map(|code| {
                        view! {
                            <p class="error" role="alert" data-error=code.clone()>
                                {describe_error(&code)}
                            </p>
                        }
                    })
            }}
            <Suspense fallback=|| view! { <Loading text="Loading…" /> }>
                {move || Suspend::new(async move {
                    let options = options.await.unwrap_or_default();
                    view! {
                        <Show when=move || options.sso>
                            <a
                                class="button primary"
                                rel="external"
                                href=move || format!("/auth/oidc/start?next={}", encode(&next()))
                            >
                                "Sign in with single sign-on"
                            </a>
                        </Show>
                        <Show when=move || options.local>
                            <form class="login-local" method="post" action="/auth/local">
                                <input type="hidden" name="next" value=next />
                                <label for="bootstrap-secret">"One-time bootstrap secret"</label>
                                <input
                                    id="bootstrap-secret"
                                    name="secret"
                                    type="password"
                                    autocomplete="off"
                                    required
                                />
                                <p class="muted">
                                    "Printed once on the server's standard output at start. It signs in the local admin, once."
                                </p>
                                <button type="submit" class="button">"Sign in as local admin"</button>
                            </form>
                        </Show>
                        <Show when=move || !options.sso && !options.local>
                            <p class="error">"No sign-in method is configured."</p>
                        </Show>
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The signed-in user's name and role, and the sign-out button; nothing when signed out.
#[component]
pub fn UserMenu() -> impl IntoView {
    let me = super::guard::use_me();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                me.await
                    .ok()
                    .map(|me| {
                        view! {
                            <div class="user-menu">
                                <span class="user-name">{me.display_name.clone()}</span>
                                <span class="role-badge" data-role=me.role.as_str()>
                                    {me.role.as_str()}
                                </span>
                                <form method="post" action="/auth/logout">
                                    <button type="submit" class="button small">"Sign out"</button>
                                </form>
                            </div>
                        }
                    })
            })}
        </Transition>
    }
}
