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
pub mod impact;
pub mod inventory;
pub mod layout;
pub mod model;
pub mod notify;
pub mod overview;
pub mod policies;
pub mod posture;
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
use leptos_router::{lazy_route, path, Lazy, LazyRoute};

pub use error::AppError;
#[cfg(feature = "ssr")]
pub use error::{OrFault, ServerError, ServerResult};

use crate::layout::{Layout, NotFound};

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
                    <Route path=path!("/") view={Lazy::<OverviewRoute>::new()} />
                    <Route path=path!("/login") view={Lazy::<LoginRoute>::new()} />
                    <Route path=path!("/policies") view={Lazy::<PoliciesRoute>::new()} />
                    <Route path=path!("/policies/new") view={Lazy::<NewPolicyRoute>::new()} />
                    <Route path=path!("/policies/:id") view={Lazy::<PolicyRoute>::new()} />
                    <Route path=path!("/library") view={Lazy::<LibraryRoute>::new()} />
                    <Route path=path!("/rollouts") view={Lazy::<RolloutsRoute>::new()} />
                    <Route path=path!("/rollouts/:id") view={Lazy::<RolloutRoute>::new()} />
                    <Route path=path!("/violations") view={Lazy::<ViolationsRoute>::new()} />
                    <Route path=path!("/exceptions") view={Lazy::<ExceptionsRoute>::new()} />
                    <Route path=path!("/clusters") view={Lazy::<ClustersRoute>::new()} />
                    <Route path=path!("/clusters/:id") view={Lazy::<ClusterRoute>::new()} />
                    <Route path=path!("/compliance") view={Lazy::<ComplianceRoute>::new()} />
                    <Route path=path!("/audit") view={Lazy::<AuditRoute>::new()} />
                    <Route path=path!("/settings") view={Lazy::<SettingsRoute>::new()} />
                </Routes>
            </Layout>
        </Router>
    }
}

/// A page whose code the browser loads the first time it is visited. Each one is a split point of
/// the browser bundle (`scripts/lib.sh::build_site` cuts the wasm there), so the first page a
/// person opens downloads the shell and that page only. The server renders them as any page.
macro_rules! lazy_page {
    ($($route:ident => $page:path;)*) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page /> <layout::PageHydrated /> }.into_any()
            }
        }
    )*};
}

lazy_page! {
    OverviewRoute => overview::OverviewPage;
    LoginRoute => auth::pages::LoginPage;
    PoliciesRoute => policies::PoliciesPage;
    NewPolicyRoute => policies::NewPolicyPage;
    PolicyRoute => policies::PolicyPage;
    LibraryRoute => policies::LibraryPage;
    RolloutsRoute => rollouts::pages::RolloutsPage;
    RolloutRoute => rollouts::pages::RolloutPage;
    ViolationsRoute => violations::pages::ViolationsPage;
    ExceptionsRoute => exceptions::pages::ExceptionsPage;
    ClustersRoute => clusters::pages::ClustersPage;
    ClusterRoute => clusters::pages::ClusterPage;
    ComplianceRoute => compliance::pages::CompliancePage;
    AuditRoute => audit::pages::AuditLogPage;
    SettingsRoute => account::settings::SettingsPage;
}
