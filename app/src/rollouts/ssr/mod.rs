//! Server-side rollouts: the queries, the service behind the server functions and REST handlers,
//! the pure plan of a step, the pure wave state machine, the executor loop and the drift check.

pub mod drift;
pub mod executor;
pub mod impact;
pub mod machine;
pub mod plan;
pub mod queries;
pub mod review;
pub mod service;
#[cfg(feature = "test-support")]
pub mod simulated;

pub use drift::DriftReport;
pub use executor::{Executor, Settings};
