//! The people who have signed in, for admins: each one's role, when they last signed in, and
//! whether they may act. An admin can disable a person (their sessions and API tokens stop at
//! once; nothing else of theirs changes) and enable them again. Single sign-on also ends access
//! by itself: a sign-in with none of the mapped groups turns the person's sessions and tokens off
//! until a sign-in with one (see `lose_groups`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::error::AppError;
use crate::time::format_time;
use crate::ui::{load_error, DataTable, Loading, PanelHeader};
use crate::wire::wire_enum;

wire_enum! {
    /// Whether a person's sessions and tokens work.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Access as "access" {
        Active = "active",
        /// An admin disabled them.
        Disabled = "disabled",
        /// Their last single sign-on showed none of the groups that give a role.
        NoGroup = "no_group",
    }
}

/// A person as admins see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Person {
    pub id: String,
    pub display_name: String,
    pub email: String,
    /// The role their last sign-in gave them.
    pub role: Role,
    /// `local` for the bootstrap admin, else the identity provider's issuer.
    pub issuer: String,
    pub last_login_ms: i64,
    pub access: Access,
}

/// What an admin changes of a person: only whether they are disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PersonChange {
    pub disabled: bool,
}

#[server(endpoint = "list_people")]
pub async fn list_people() -> Result<Vec<Person>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageSettings)?;
    Ok(ssr::list(&call.db, &call.who).await?)
}

#[server(endpoint = "set_person_disabled")]
pub async fn set_person_disabled(id: String, disabled: bool) -> Result<Person, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageSettings)?;
    Ok(ssr::change(
        &call.db,
        &call.who,
        call.now,
        &id,
        &PersonChange { disabled },
    )
    .await?)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use sqlx::any::AnyRow;
    use sqlx::Row;

    use super::{Access, Person, PersonChange};
    use crate::audit::ssr::Event;
    use crate::auth::{authorize, Action, Principal, Role};
    use crate::db::Db;
    use crate::error::{AppError, ServerResult};

    const COLUMNS: &str =
        "id, display_name, email, role, issuer, last_login_ms, disabled, groups_lost_ms";

    fn person(row: &AnyRow) -> Result<Person, sqlx::Error> {
        let role: String = row.try_get("role")?;
        let access = if row.try_get::<i64, _>("disabled")? != 0 {
            Access::Disabled
        } else if row.try_get::<i64, _>("groups_lost_ms")? != 0 {
            Access::NoGroup
        } else {
            Access::Active
        };
        Ok(Person {
            id: row.try_get("id")?,
            display_name: row.try_get("display_name")?,
            email: row.try_get("email")?,
            role: Role::decode(&role)?,
            issuer: row.try_get("issuer")?,
            last_login_ms: row.try_get("last_login_ms")?,
            access,
        })
    }

    /// Everyone who has signed in, most recent first.
    pub async fn list(db: &Db, who: &Principal) -> ServerResult<Vec<Person>> {
        authorize(Some(who), Action::ManageSettings)?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users ORDER BY last_login_ms DESC, display_name"
        ))
        .fetch_all(db.pool())
        .await?;
        Ok(rows.iter().map(person).collect::<Result<_, _>>()?)
    }

    /// Disable or enable person `id`. Nobody disables themselves (so an admin who may act always
    /// remains to enable others). Nothing else of theirs changes: their tokens and sessions work
    /// again once enabled, unless they expired or were revoked meanwhile.
    pub async fn change(
        db: &Db,
        who: &Principal,
        now: i64,
        id: &str,
        change: &PersonChange,
    ) -> ServerResult<Person> {
        authorize(Some(who), Action::ManageSettings)?;
        if change.disabled && id == who.user_id {
            return Err(AppError::Invalid(
                "disabled: you cannot disable yourself; ask another admin".into(),
            )
            .into());
        }
        let mut tx = db.begin().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no person {id}")))?;
        let before = person(&row)?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(change.disabled))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let action = if change.disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        Event::new(action, "user", id)
            .detail(serde_json::json!({
                "name": before.display_name,
                "was": before.access.as_str(),
            }))
            .record(&mut *tx, who, now)
            .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let after = person(&row)?;
        tx.commit().await?;
        Ok(after)
    }
}

/// How a person's access reads in the table.
fn access_text(access: Access) -> &'static str {
    match access {
        Access::Active => "active",
        Access::Disabled => "disabled by an admin",
        Access::NoGroup => "no mapped group at last sign-in",
    }
}

/// The people panel of the Settings page (admins only; the server refuses anyone else).
#[component]
pub fn PeoplePanel() -> impl IntoView {
    let set = ServerAction::<SetPersonDisabled>::new();
    let people = Resource::new(move || set.version().get(), |_| list_people());
    view! {
        <section class="panel" aria-labelledby="people-heading" data-testid="people">
            <PanelHeader id="people-heading" title="People" />
            <p class="muted">
                "Everyone who has signed in. Disabling someone stops their sessions and API tokens at once and changes nothing else; enabling them lets both work again."
            </p>
            {move || match set.value().get() {
                Some(Err(err)) => load_error(err),
                _ => ().into_any(),
            }}
            <Transition fallback=|| view! { <Loading text="Loading people…" /> }>
                {move || Suspend::new(async move {
                    match people.await {
                        Ok(list) => view! {
                            <DataTable columns=&["Name", "E-mail", "Role", "Signs in with", "Last sign-in", "Access", ""] class="people-table">
                                {list.into_iter().map(|p| {
                                    let id = p.id.clone();
                                    let disable = p.access != Access::Disabled;
                                    view! {
                                        <tr data-person=p.id.clone()>
                                            <td>{p.display_name.clone()}</td>
                                            <td>{p.email.clone()}</td>
                                            <td>{p.role.as_str()}</td>
                                            <td>{p.issuer.clone()}</td>
                                            <td>{format_time(p.last_login_ms)}</td>
                                            <td data-testid="person-access">{access_text(p.access)}</td>
                                            <td>
                                                <button type="button"
                                                    class=if disable { "button small danger" } else { "button small" }
                                                    on:click=move |_| { set.dispatch(SetPersonDisabled { id: id.clone(), disabled: disable }); }>
                                                    {if disable { "Disable" } else { "Enable" }}
                                                </button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </DataTable>
                        }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
    }
}
