//! The Settings page: one's API tokens (create with a role and expiry, the secret shown once,
//! revoke), one's sessions (an admin sees everyone's); for admins, the people who signed in (to
//! disable or enable) and the sign-in settings in effect.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use super::{NewToken, SessionInfo, TokenInfo, TokenRequest};
use crate::auth::Role;
use crate::error::AppError;
use crate::time::format_time;
use crate::ui::{load_error, DataTable, Loading, PageHeader, PanelHeader};

/// Sign-in as configured, for admins to check (no secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInSettings {
    pub local: bool,
    /// The provider's issuer URL, if single sign-on is on.
    pub issuer: Option<String>,
    pub groups_claim: String,
    /// Each role and the groups that give it, highest role first.
    pub role_groups: Vec<(Role, Vec<String>)>,
    pub idle_minutes: i64,
    pub absolute_hours: i64,
}

#[server(endpoint = "list_my_tokens")]
pub async fn list_my_tokens() -> Result<Vec<TokenInfo>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageOwnTokens)?;
    Ok(super::ssr::list_tokens(&call.db, &call.who, call.who.has(Role::Admin)).await?)
}

#[server(endpoint = "create_my_token")]
pub async fn create_my_token(request: TokenRequest) -> Result<NewToken, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageOwnTokens)?;
    let now = call.now;
    let expires_ms =
        crate::auth::ssr::with_status(super::ssr::validate_request(&call.who, &request, now))?;
    let created = super::ssr::issue_token(
        &call.db,
        &call.who,
        &request.name,
        request.role,
        expires_ms,
        now,
    )
    .await;
    Ok(created?)
}

#[server(endpoint = "revoke_my_token")]
pub async fn revoke_my_token(id: String) -> Result<(), AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageOwnTokens)?;
    Ok(super::ssr::revoke_token(&call.db, &call.who, &id, call.now).await?)
}

#[server(endpoint = "list_my_sessions")]
pub async fn list_my_sessions() -> Result<Vec<SessionInfo>, AppError> {
    use super::{CurrentSession, SessionLimits};
    let call = crate::state::authorized(crate::auth::Action::ManageOwnTokens)?;
    let parts = use_context::<axum::http::request::Parts>();
    let extension = |parts: &axum::http::request::Parts| {
        (
            parts
                .extensions
                .get::<CurrentSession>()
                .map(|c| c.0.clone()),
            parts.extensions.get::<SessionLimits>().copied(),
        )
    };
    let (current, limits) = parts.as_ref().map(extension).unwrap_or_default();
    let limits =
        limits.ok_or_else(|| AppError::internal("listing sessions", "no session limits"))?;
    Ok(super::ssr::list_sessions(
        &call.db,
        &call.who,
        call.who.has(Role::Admin),
        current.as_deref(),
        limits,
        call.now,
    )
    .await?)
}

#[server(endpoint = "revoke_my_session")]
pub async fn revoke_my_session(id: String) -> Result<(), AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageOwnTokens)?;
    Ok(super::ssr::revoke_session(&call.db, &call.who, &id, call.now).await?)
}

#[server(endpoint = "sign_in_settings")]
pub async fn get_sign_in_settings() -> Result<SignInSettings, AppError> {
    crate::auth::ssr::require(crate::auth::Action::ManageSettings)?;
    use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<SignInSettings>().cloned())
        .ok_or_else(|| AppError::internal("reading sign-in settings", "not provided"))
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let me = crate::auth::guard::use_me();
    let create = ServerAction::<CreateMyToken>::new();
    let revoke = ServerAction::<RevokeMyToken>::new();
    let end_session = ServerAction::<RevokeMySession>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_my_tokens(),
    );
    let sessions = Resource::new(move || end_session.version().get(), |_| list_my_sessions());

    view! {
        <Title text="Settings" />
        <PageHeader title="Settings" purpose="API tokens, sessions, and how people sign in." />
        <section class="panel" aria-labelledby="tokens-heading">
            <PanelHeader id="tokens-heading" title="API tokens" />
            <p class="muted">
                "For scripts and CI: send as " <code>"Authorization: Bearer <token>"</code>
                ". A token acts as you, with the role you give it (at most your own)."
            </p>
            <ActionForm action=create attr:class="token-form">
                <label>"Name " <input type="text" name="request[name]" required maxlength="100" /></label>
                <label>
                    "Role "
                    <select name="request[role]">
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                let mine = me.await.map(|p| p.role).unwrap_or(Role::Viewer);
                                Role::ALL
                                    .into_iter()
                                    .filter(|role| *role <= mine)
                                    .map(|role| view! { <option value=role.as_str()>{role.as_str()}</option> })
                                    .collect_view()
                            })}
                        </Transition>
                    </select>
                </label>
                <label>
                    "Expires in "
                    <input type="number" name="request[expires_in_days]" value="30" min="1" max="366" required />
                    " days"
                </label>
                <button type="submit" class="button">"Create token"</button>
            </ActionForm>
            {move || match create.value().get() {
                Some(Ok(created)) => view! {
                    <div class="new-secret" role="status">
                        <p>"Copy this token now; it will not be shown again:"</p>
                        <code class="secret" data-testid="new-token-secret">{created.secret.clone()}</code>
                        " "
                        <crate::ui::CopyButton text=created.secret what="Copy the new token" testid="new-token-copy" />
                    </div>
                }.into_any(),
                Some(Err(err)) => load_error(err),
                None => ().into_any(),
            }}
            <Transition fallback=|| view! { <Loading text="Loading tokens…" /> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty-state"><p>"No API tokens yet."</p></div>
                        }.into_any(),
                        Ok(list) => view! { <TokenTable list revoke /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
        <section class="panel" aria-labelledby="sessions-heading">
            <PanelHeader id="sessions-heading" title="Sessions" />
            <Transition fallback=|| view! { <Loading text="Loading sessions…" /> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty-state"><p>"No signed-in browser sessions (API tokens have none)."</p></div>
                        }.into_any(),
                        Ok(list) => view! { <SessionTable list end_session /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let admin = me.await.map(|p| p.has(Role::Admin)).unwrap_or(false);
                admin.then(|| view! { <super::people::PeoplePanel /> <SignInPanel /> })
            })}
        </Transition>
    }
}

#[component]
fn TokenTable(list: Vec<TokenInfo>, revoke: ServerAction<RevokeMyToken>) -> impl IntoView {
    view! {
        <DataTable columns=&["Name", "Role", "User", "Created", "Expires", "Last used", "State"] class="tokens-table">
                {list.into_iter().map(|t| {
                    let id = t.id.clone();
                    view! {
                        <tr data-token=t.id.clone()>
                            <td>{t.name.clone()}</td>
                            <td>{t.role.as_str()}</td>
                            <td>{t.user_name.clone()}</td>
                            <td>{format_time(t.created_ms)}</td>
                            <td>{format_time(t.expires_ms)}</td>
                            <td>{t.last_used_ms.map_or_else(|| "never".to_owned(), format_time)}</td>
                            <td>
                                {match t.revoked_ms {
                                    Some(at) => format!("revoked {}", format_time(at)).into_any(),
                                    None => view! {
                                        <button type="button" class="button small danger"
                                            on:click=move |_| { revoke.dispatch(RevokeMyToken { id: id.clone() }); }>
                                            "Revoke"
                                        </button>
                                    }.into_any(),
                                }}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
    }
}

#[component]
fn SessionTable(
    list: Vec<SessionInfo>,
    end_session: ServerAction<RevokeMySession>,
) -> impl IntoView {
    view! {
        <DataTable columns=&["User", "Signed in", "Last seen", ""] class="sessions-table">
                {list.into_iter().map(|s| {
                    let id = s.id.clone();
                    view! {
                        <tr>
                            <td>{s.user_name.clone()} {s.current.then_some(" (this session)")}</td>
                            <td>{format_time(s.created_ms)}</td>
                            <td>{format_time(s.last_seen_ms)}</td>
                            <td>
                                <button type="button" class="button small danger"
                                    on:click=move |_| { end_session.dispatch(RevokeMySession { id: id.clone() }); }>
                                    "End session"
                                </button>
                            </td>
                        </tr>
                    }
                }).collect_view()}
        </DataTable>
    }
}

#[component]
fn SignInPanel() -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_sign_in_settings());
    view! {
        <section class="panel" aria-labelledby="signin-heading">
            <PanelHeader id="signin-heading" title="Sign-in and roles" />
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    settings.await.ok().map(|s| view! {
                        <dl class="facts">
                            <dt>"Single sign-on"</dt>
                            <dd>{s.issuer.clone().unwrap_or_else(|| "off (set oidc.issuer_url)".to_owned())}</dd>
                            <dt>"Local bootstrap admin"</dt>
                            <dd>{if s.local { "on" } else { "off" }}</dd>
                            <dt>"Groups claim"</dt>
                            <dd><code>{s.groups_claim.clone()}</code></dd>
                            <dt>"Session timeouts"</dt>
                            <dd>{format!("{} minutes idle, {} hours at most", s.idle_minutes, s.absolute_hours)}</dd>
                        </dl>
                        <DataTable columns=&["Role", "Groups"] class="role-mapping">
                                {s.role_groups.into_iter().map(|(role, groups)| view! {
                                    <tr>
                                        <td>{role.as_str()}</td>
                                        <td>{if groups.is_empty() { "—".to_owned() } else { groups.join(", ") }}</td>
                                    </tr>
                                }).collect_view()}
                            </DataTable>
                    })
                })}
            </Transition>
        </section>
    }
}
