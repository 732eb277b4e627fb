//! The heading every page opens with.

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
