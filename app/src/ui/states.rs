//! What a page shows instead of its data: an error, nothing yet, or still loading.

use leptos::prelude::*;

use crate::error::AppError;

/// A read that failed, as the page shows it in place of what it could not load.
pub fn load_error(err: AppError) -> AnyView {
    view! { <p class="error" role="alert" data-testid="load-error">{err.to_string()}</p> }
        .into_any()
}

/// An error under a form or an action, named by `testid` for the browser tests.
#[component]
pub fn ErrorNote(#[prop(into)] text: String, testid: &'static str) -> impl IntoView {
    view! { <p class="error" role="alert" data-testid=testid>{text}</p> }
}

/// A calm, explicit "nothing here yet" panel.
#[component]
pub fn EmptyState(message: &'static str) -> impl IntoView {
    view! {
        <section class="empty-state" aria-label="Empty state">
            <p>{message}</p>
        </section>
    }
}

/// What a `Suspense` or `Transition` shows while it waits.
#[component]
pub fn Loading(text: &'static str) -> impl IntoView {
    view! { <p class="muted" aria-busy="true">{text}</p> }
}

/// False while the page renders on the server and during hydration, true once it runs in the
/// browser: a resource keyed on it leaves a read the server need not do (a whole fleet for a
/// form that works only in the browser) to the browser.
pub fn in_browser() -> RwSignal<bool> {
    let running = RwSignal::new(false);
    Effect::new(move |_| running.set(true));
    running
}
