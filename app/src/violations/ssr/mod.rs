//! Server side of violations: reading audit events (`events`), ingest tokens and batches
//! (`ingest`), writing (`store`) and reading (`queries`).

pub mod events;
pub mod findings;
pub mod ingest;
pub mod queries;
pub mod scan;
pub mod store;

pub use queries::counts_since;
