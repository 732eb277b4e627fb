//! The headings: the one every page opens with, and the one at the top of a panel.

use leptos::prelude::*;

/// The page's title and one sentence saying what it is for; anything given as children (a
/// button, a link) sits beside them.
#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(into)] purpose: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <header class="page-header">
            <h1>{title}</h1>
            <p class="purpose">{purpose}</p>
            {children.map(|children| children())}
        </header>
    }
}

/// A panel's heading row: its title, then anything given as children (a badge, a link, a
/// button) and, given `refresh`, a Refresh button that runs it. `id` is the heading's id, which
/// the panel is labelled by; `refresh_testid` names the button for the browser tests.
#[component]
pub fn PanelHeader(
    #[prop(optional)] id: Option<&'static str>,
    #[prop(into)] title: String,
    #[prop(optional, into)] refresh: Option<Callback<()>>,
    #[prop(optional)] refresh_testid: Option<&'static str>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="panel-header">
            <h2 id=id>{title}</h2>
            {children.map(|children| children())}
            {refresh.map(|refresh| view! {
                <button type="button" class="button" data-testid=refresh_testid on:click=move |_| refresh.run(())>
                    "Refresh"
                </button>
            })}
        </div>
    }
}
