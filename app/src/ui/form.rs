//! A form in its own panel, the way every page asks for something new.

use leptos::prelude::*;

/// A panel with a heading and one form; submitting runs `on_submit` instead of leaving the page.
/// `id` names the heading (`{id}-heading`) the panel is labelled by; `testid` names the form.
#[component]
pub fn FormPanel(
    id: &'static str,
    title: &'static str,
    testid: &'static str,
    #[prop(into)] on_submit: Callback<()>,
    children: Children,
) -> impl IntoView {
    let heading = format!("{id}-heading");
    let labelled_by = heading.clone();
    view! {
        <section class="panel" aria-labelledby=labelled_by>
            <h2 id=heading>{title}</h2>
            <form
                class="form"
                data-testid=testid
                on:submit=move |ev| {
                    ev.prevent_default();
                    on_submit.run(());
                }
            >
                {children()}
            </form>
        </section>
    }
}
