//! What every request handler and server function can reach on the server.

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::db::Db;

/// Shared, cheaply clonable state of a running server.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Where the site's files are and how to render; read by leptos_axum.
    pub leptos_options: LeptosOptions,
    /// The connection pool, SQLite or PostgreSQL.
    pub db: Db,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
