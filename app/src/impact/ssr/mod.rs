//! Server-side impact: the pure evaluation over one cluster's inventory, and the service that
//! gathers what it needs.

pub mod findings;
pub mod judge;
pub mod progress;
pub mod readiness;
pub mod service;
