//! The pages of the policies domain.

use leptos::prelude::*;

#[component]
pub fn PoliciesPage() -> impl IntoView {
    view! { <h1>"Policies"</h1> }
}

#[component]
pub fn NewPolicyPage() -> impl IntoView {
    view! { <h1>"New policy"</h1> }
}

#[component]
pub fn PolicyPage() -> impl IntoView {
    view! { <h1>"Policy"</h1> }
}

#[component]
pub fn LibraryPage() -> impl IntoView {
    view! { <h1>"Library"</h1> }
}
