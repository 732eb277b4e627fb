//! Palisade's policy engine.
//!
//! This crate is pure: no I/O, no clock, no network. It decides what a policy means, so it can be
//! unit-tested, benchmarked and later compiled to the browser on its own.
//!
//! - [`gatekeeper`]: Gatekeeper ConstraintTemplates (Rego, via regorus) and Constraints.
//! - [`source`]: YAML streams into documents; errors with file, line and column.
//! - [`admission`]: the admission request every engine evaluates.
//! - [`verdict`]: what engines answer (allow / audit / warn / deny, with messages).
//! - [`suite`]: test suites (gator, Kyverno CLI, Palisade) reduced to passed / failed / skipped cases.
//! - [`mode`]: the one mode model (audit → warn → enforce) and how each engine renders it.
//! - [`pss`]: Pod Security Standards (baseline / restricted), exact per Kubernetes version.
//! - [`cel`]: the CEL environment (compile cache, JSON objects as CEL values, Kubernetes libraries).
//! - [`vap`]: ValidatingAdmissionPolicy evaluation, as the apiserver does it.
//! - [`gatekeeper`]: Gatekeeper ConstraintTemplates and Constraints (Rego, through regorus).
//! - [`library`]: the built-in policy library (embedded policies, their suites and controls).
//! - [`bundle`]: policies of every engine loaded together and evaluated as one.

pub mod admission;
pub mod bundle;
pub mod cel;
pub mod gatekeeper;
pub mod library;
pub mod mode;
pub mod pss;
pub mod source;
pub mod suite;
pub mod vap;
pub mod verdict;

pub use admission::{AdmissionRequest, Operation, UserInfo};
pub use mode::{Mode, ParseModeError, PsaLabel, VapAction};
pub use source::{Document, SourceError};
pub use verdict::{Action, EngineKind, Finding, NotEvaluable, Verdict};
