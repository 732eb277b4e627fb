//! A required choice among options read from the server.

use leptos::prelude::*;

/// A labelled `<select>` bound to `value`, with a first empty option that says what to choose;
/// `options` are `(value, text)` pairs.
#[component]
pub fn Select(
    label: &'static str,
    name: &'static str,
    testid: &'static str,
    value: RwSignal<String>,
    placeholder: &'static str,
    options: Vec<(String, String)>,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <select
                name=name
                required
                data-testid=testid
                bind:value=value
            >
                <option value="">{placeholder}</option>
                {options
                    .into_iter()
                    .map(|(value, text)| view! { <option value=value>{text}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}
