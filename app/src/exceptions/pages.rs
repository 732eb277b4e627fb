//! `/exceptions`: every exception with its state as of now (expired ones say so), the form that
//! requests one, and, for approvers, approve or reject with a comment, and revoke.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;

use super::{
    decide_exception, list_exceptions, request_exception, revoke_exception, Exception,
    ExceptionState, NewException, Scope, DAY_MS,
};
use crate::auth::guard::Allowed;
use crate::auth::{Action as Permission, Principal, Role};
use crate::policies::PolicyPicker;
use crate::sections::EXCEPTIONS;
use crate::time::{days_from_civil, format_time};
use crate::ui::{load_error, DataTable, EmptyState, ErrorNote, FormPanel, PageHeader, PanelHeader};

// ---------------------------------------------------------------------------------------------
// Parsing the form

/// `2027-03-31` (what a date input gives) as the end of that day, UTC, in milliseconds: the
/// exception holds through the whole day.
pub fn parse_expiry(text: &str) -> Result<i64, String> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let numbers: Option<Vec<i64>> = match parts.as_slice() {
        [y, m, d] => [y, m, d].iter().map(|p| p.parse::<i64>().ok()).collect(),
        _ => None,
    };
    let Some([year, month, day]) = numbers.as_deref().map(|n| [n[0], n[1], n[2]]) else {
        return Err("Expires: pick a date (YYYY-MM-DD).".to_owned());
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return Err(format!("Expires: `{}` is not a date.", text.trim()));
    }
    Ok((days_from_civil(year, month, day) + 1) * DAY_MS - 1)
}

/// The scope from the form's fields: namespaces comma separated; labels `key=value, key=value`;
/// a resource `Kind namespace/name` (or `Kind name` when cluster-scoped).
pub fn parse_scope(kind: &str, text: &str) -> Result<Scope, String> {
    let text = text.trim();
    match kind {
        "namespaces" => {
            let namespaces: Vec<String> = text
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect();
            if namespaces.is_empty() {
                return Err("Scope: name at least one namespace.".to_owned());
            }
            Ok(Scope::Namespaces { namespaces })
        }
        "selector" => {
            let mut labels = BTreeMap::new();
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(format!("Scope: `{pair}` is not key=value."));
                };
                labels.insert(key.trim().to_owned(), value.trim().to_owned());
            }
            if labels.is_empty() {
                return Err("Scope: give at least one label, key=value.".to_owned());
            }
            Ok(Scope::Selector { labels })
        }
        "resource" => {
            let mut words = text.split_whitespace();
            let (Some(resource_kind), Some(place), None) =
                (words.next(), words.next(), words.next())
            else {
                return Err(
                    "Scope: a resource is `Kind namespace/name`, e.g. `Deployment shop/web`."
                        .to_owned(),
                );
            };
            let (namespace, name) = place.split_once('/').unwrap_or(("", place));
            Ok(Scope::Resource {
                resource_kind: resource_kind.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        }
        other => Err(format!("Scope: unknown kind `{other}`.")),
    }
}

fn scope_placeholder(kind: &str) -> &'static str {
    match kind {
        "selector" => "app=legacy-agent, tier=system",
        "resource" => "Deployment shop/web",
        _ => "legacy-agents, batch",
    }
}

fn state_tone(state: ExceptionState) -> &'static str {
    match state {
        ExceptionState::Approved => "good",
        ExceptionState::Requested => "waiting",
        ExceptionState::Rejected | ExceptionState::Revoked => "bad",
        ExceptionState::Expired => "muted",
    }
}

// ---------------------------------------------------------------------------------------------
// /exceptions

#[component]
pub fn ExceptionsPage() -> impl IntoView {
    let version = RwSignal::new(0u64);
    let exceptions = Resource::new(move || version.get(), |_| list_exceptions(None));
    let me = crate::auth::guard::use_me();
    let refresh = move || version.update(|v| *v += 1);

    view! {
        <Title text=EXCEPTIONS.title />
        <PageHeader title=EXCEPTIONS.title purpose=EXCEPTIONS.purpose />
        <Allowed action=Permission::RequestException doing="Requesting an exception" testid="request-needs-role">
            <RequestForm refresh />
        </Allowed>
        <section class="panel" aria-labelledby="exceptions-heading">
            <PanelHeader id="exceptions-heading" title="All exceptions" refresh=refresh />
            <Transition fallback=|| view! { <p class="muted" data-testid="loading">"Loading exceptions…"</p> }>
                {move || Suspend::new(async move {
                    let me = me.await.ok();
                    match exceptions.await {
                        Ok(list) if list.is_empty() => {
                            view! { <EmptyState message=EXCEPTIONS.empty /> }.into_any()
                        }
                        Ok(list) => view! { <ExceptionTable list me refresh /> }.into_any(),
                        Err(err) => load_error(err),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ExceptionTable(
    list: Vec<Exception>,
    me: Option<Principal>,
    refresh: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <DataTable columns=&["Policy", "Scope", "State", "Expires", "Requested by", "Ticket", "Justification", "Decision"] testid="exceptions-table">
                    {list
                        .into_iter()
                        .map(|e| view! { <ExceptionRow exception=e me=me.clone() refresh /> })
                        .collect_view()}
                </DataTable>
    }
}

#[component]
fn ExceptionRow(
    exception: Exception,
    me: Option<Principal>,
    refresh: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let id = exception.id.clone();
    let decide = {
        let id = id.clone();
        Action::new(move |approve: &bool| {
            let (id, approve, text) = (id.clone(), *approve, comment.get_untracked());
            async move {
                match decide_exception(id, approve, text).await {
                    Ok(_) => refresh(),
                    Err(err) => error.set(Some(err.to_string())),
                }
            }
        })
    };
    let revoke = Action::new(move |_: &()| {
        let (id, text) = (id.clone(), comment.get_untracked());
        async move {
            match revoke_exception(id, text).await {
                Ok(_) => refresh(),
                Err(err) => error.set(Some(err.to_string())),
            }
        }
    });
    let approver = me.as_ref().is_some_and(|p| p.has(Role::Approver));
    let own = me
        .as_ref()
        .is_some_and(|p| p.user_id == exception.requester_id);
    let can_decide = approver && !own && exception.state == ExceptionState::Requested;
    let can_revoke = approver
        && matches!(
            exception.state,
            ExceptionState::Requested | ExceptionState::Approved
        );
    let state = exception.state.as_str();
    let decision = if exception.decider_name.is_empty() {
        String::new()
    } else {
        format!(
            "{} on {}: {}",
            exception.decider_name,
            format_time(exception.decided_ms),
            exception.decision_comment
        )
    };
    let ticket = if exception.ticket.is_empty() {
        "—".to_owned()
    } else {
        exception.ticket.clone()
    };
    view! {
        <tr data-testid="exception-row" data-id=exception.id.clone()>
            <th scope="row">
                <a href=format!("/policies/{}", exception.policy_id)>{exception.policy_name.clone()}</a>
            </th>
            <td>{exception.scope.describe()}</td>
            <td>
                <span class=format!("badge {}", state_tone(exception.state)) data-state=state>{state}</span>
            </td>
            <td>{format_time(exception.expires_ms)}</td>
            <td>{exception.requester_name.clone()}</td>
            <td>{ticket}</td>
            <td>{exception.justification.clone()}</td>
            <td>
                <p class="small">{decision}</p>
                {(can_decide || can_revoke).then(|| view! {
                    <input
                        type="text"
                        name="comment"
                        placeholder="comment"
                        data-testid="exception-comment"
                        bind:value=comment
                    />
                })}
                <div class="actions">
                    {can_decide.then(|| view! {
                        <button type="button" class="button primary" data-testid="exception-approve" on:click=move |_| { decide.dispatch(true); }>
                            "Approve"
                        </button>
                        <button type="button" class="button danger" data-testid="exception-reject" on:click=move |_| { decide.dispatch(false); }>
                            "Reject"
                        </button>
                    })}
                    {can_revoke.then(|| view! {
                        <button type="button" class="button" data-testid="exception-revoke" on:click=move |_| { revoke.dispatch(()); }>
                            "Revoke"
                        </button>
                    })}
                </div>
                {move || error.get().map(|text| view! { <p class="error" role="alert">{text}</p> })}
            </td>
        </tr>
    }
}

#[component]
fn RequestForm(refresh: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let policy = RwSignal::new(String::new());
    let kind = RwSignal::new("namespaces".to_owned());
    let scope = RwSignal::new(String::new());
    let justification = RwSignal::new(String::new());
    let ticket = RwSignal::new(String::new());
    let expires = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);

    let request = Action::new(move |_: &()| {
        let input = parse_scope(&kind.get_untracked(), &scope.get_untracked()).and_then(|s| {
            Ok(NewException {
                policy: policy.get_untracked(),
                scope: s,
                justification: justification.get_untracked(),
                ticket: ticket.get_untracked(),
                expires_ms: parse_expiry(&expires.get_untracked())?,
            })
        });
        async move {
            let Ok(input) = input.map_err(|text| error.set(Some(text))) else {
                return;
            };
            match request_exception(input).await {
                Ok(created) => {
                    error.set(None);
                    done.set(Some(format!(
                        "Requested: {} on {}. An approver other than you decides.",
                        created.scope.describe(),
                        created.policy_name
                    )));
                    scope.set(String::new());
                    justification.set(String::new());
                    ticket.set(String::new());
                    refresh();
                }
                Err(err) => {
                    done.set(None);
                    error.set(Some(err.to_string()));
                }
            }
        }
    });
    let pending = request.pending();

    view! {
        <FormPanel id="request" title="Request an exception" testid="request-exception" on_submit=move || { request.dispatch(()); }>
                <div class="row">
                    <PolicyPicker value=policy testid="exception-policy" purpose="to make an exception to" />
                    <label>
                        "Scope"
                        <select
                            name="scope-kind"
                            data-testid="exception-scope-kind"
                            bind:value=kind
                        >
                            <option value="namespaces">"Namespaces"</option>
                            <option value="selector">"Label selector"</option>
                            <option value="resource">"Named resource"</option>
                        </select>
                    </label>
                    <label>
                        "Expires"
                        <input
                            type="date"
                            name="expires"
                            required
                            data-testid="exception-expires"
                            bind:value=expires
                        />
                    </label>
                </div>
                <label>
                    "Leave out"
                    <input
                        type="text"
                        name="scope"
                        required
                        data-testid="exception-scope"
                        placeholder=move || scope_placeholder(&kind.get())
                        bind:value=scope
                    />
                    <span class="muted small">
                        "Namespaces comma separated; labels as key=value, key=value (objects carrying all of them); "
                        "a resource as Kind namespace/name. Pod Security policies take namespaces only; "
                        "Gatekeeper policies take namespaces or one label."
                    </span>
                </label>
                <label>
                    "Justification"
                    <textarea
                        name="justification"
                        rows="3"
                        required
                        data-testid="exception-justification"
                        placeholder="why the policy cannot be met here, and what compensates"
                        bind:value=justification
                    ></textarea>
                </label>
                <label>
                    "Ticket"
                    <input
                        type="text"
                        name="ticket"
                        placeholder="SEC-1234"
                        data-testid="exception-ticket"
                        bind:value=ticket
                    />
                </label>
                <button type="submit" class="button primary" disabled=move || pending.get()>
                    "Request exception"
                </button>
                {move || error.get().map(|text| view! {
                    <ErrorNote text=text testid="exception-error" />
                })}
                {move || done.get().map(|text| view! {
                    <p class="notice" role="status" data-testid="exception-done">{text}</p>
                })}
        </FormPanel>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_date_holds_through_its_whole_day() {
        // 2027-01-01T00:00:00Z is 1_798_761_600_000 ms.
        assert_eq!(parse_expiry("2026-12-31"), Ok(1_798_761_600_000 - 1));
        assert_eq!(parse_expiry("1970-01-01"), Ok(DAY_MS - 1));
        assert!(parse_expiry("").unwrap_err().contains("Expires"));
        assert!(parse_expiry("2026-13-01").is_err());
    }

    #[test]
    fn scopes_read_from_the_form() {
        assert_eq!(
            parse_scope("namespaces", " a, b ,"),
            Ok(Scope::Namespaces {
                namespaces: vec!["a".into(), "b".into()]
            })
        );
        let Ok(Scope::Selector { labels }) = parse_scope("selector", "app=db, tier = data") else {
            panic!("a selector");
        };
        assert_eq!(labels.get("tier").map(String::as_str), Some("data"));
        assert!(parse_scope("selector", "app").is_err());
        assert_eq!(
            parse_scope("resource", "Deployment shop/web"),
            Ok(Scope::Resource {
                resource_kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "web".into()
            })
        );
        assert!(parse_scope("resource", "Deployment").is_err());
        assert!(parse_scope("namespaces", "").is_err());
    }
}
