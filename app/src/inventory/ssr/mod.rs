//! Server-side inventory: the kinds it keeps, how watch changes become writes (pure), the
//! queries, the keeper that holds each cluster's watches (and how replicas share them), and the
//! reads other domains use.

pub mod changes;
pub mod keeper;
pub mod kinds;
pub mod owners;
pub mod queries;
pub mod service;
pub mod share;

use serde_json::Value;

/// The string at `pointer` in an object, or "" when there is none.
pub fn text_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}
