//! Palisade's web application, shared by the server (feature `ssr`) and the browser (feature `hydrate`).
//!
//! Layout: [`shell`] is the HTML document the server renders; [`App`] is the router inside it.
//! Each section of the product has a module named after its domain; [`sections`] is the one table
//! that drives navigation and the empty states. Server-only code (database, state) sits behind
//! `#[cfg(feature = "ssr")]` so it never reaches the wasm bundle.
// Deeply nested views (the policy pages) exceed the default when the browser build computes their
// layouts; 256 is what Leptos suggests.
#![recursion_limit = "256"]

pub mod account;
pub mod audit;
pub mod auth;
pub mod clusters;
pub mod compliance;
pub mod error;
pub mod exceptions;
pub mod layout;
pub mod model;
pub mod notify;
pub mod overview;
pub mod policies;
pub mod rollouts;
pub mod sections;
pub mod staging;
pub mod testruns;
pub mod time;
pub mod ui;
pub mod violations;
pub mod wire;

#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod secrets;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

pub use error::AppError;
#[cfg(feature = "ssr")]
pub use error::{OrFault, ServerError, ServerResult};

use crate::clusters::page::ClustersPage;
use crate::compliance::pages::CompliancePage;
use crate::exceptions::pages::ExceptionsPage;
use crate::layout::{Layout, NotFound};
use crate::overview::OverviewPage;
use crate::policies::{LibraryPage, NewPolicyPage, PoliciesPage, PolicyPage};
use crate::rollouts::pages::{RolloutPage, RolloutsPage};
use crate::violations::pages::ViolationsPage;

/// The whole HTML document, rendered on the server for every page request.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Inline scripts carry the nonce of this response's Content-Security-Policy.
    #[cfg(feature = "ssr")]
    if let Some(nonce) = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<auth::ssr::CspNonce>().cloned())
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: stylesheet, title and the routes of every section.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/palisade.css" />
        <Title formatter=|page: String| format!("{page} · Palisade") />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=OverviewPage />
                    <Route path=path!("/login") view=auth::pages::LoginPage />
                    <Route path=path!("/policies") view=PoliciesPage />
                    <Route path=path!("/policies/new") view=NewPolicyPage />
                    <Route path=path!("/policies/:id") view=PolicyPage />
                    <Route path=path!("/library") view=LibraryPage />
                    <Route path=path!("/rollouts") view=RolloutsPage />
                    <Route path=path!("/rollouts/:id") view=RolloutPage />
                    <Route path=path!("/violations") view=ViolationsPage />
                    <Route path=path!("/exceptions") view=ExceptionsPage />
                    <Route path=path!("/clusters") view=ClustersPage />
                    <Route path=path!("/compliance") view=CompliancePage />
                    <Route path=path!("/audit") view=audit::pages::AuditLogPage />
                    <Route path=path!("/settings") view=account::settings::SettingsPage />
                </Routes>
            </Layout>
        </Router>
    }
}
