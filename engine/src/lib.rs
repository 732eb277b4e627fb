//! Palisade's policy engine.
//!
//! This crate is pure: no I/O, no clock, no network. It decides what a policy means, so it can be
//! unit-tested, benchmarked and later compiled to the browser on its own.
//!
//! - [`source`]: YAML streams into documents; errors with file, line and column.
//! - [`admission`]: the admission request every engine evaluates.
//! - [`verdict`]: what engines answer (allow / audit / warn / deny, with messages).
//! - [`suite`]: test suites (gator, Kyverno CLI, Palisade) reduced to passed / failed / skipped cases.
//! - [`mode`]: the one mode model (audit → warn → enforce) and how each engine renders it.
//! - [`cel`]: CEL as the Kubernetes apiserver evaluates it (compile cache, JSON objects as CEL
//!   values, `has()` on null as in cel-go, the `authorizer` library).
//! - [`vap`]: ValidatingAdmissionPolicy and its bindings, evaluated as the apiserver's admission
//!   plugin does, with its exact messages.

pub mod admission;
pub mod cel;
pub mod mode;
pub mod source;
pub mod suite;
pub mod vap;
pub mod verdict;

pub use admission::{AdmissionRequest, Operation, UserInfo};
pub use mode::{Mode, ParseModeError, PsaLabel, VapAction};
pub use source::{Document, SourceError};
pub use verdict::{Action, EngineKind, Finding, NotEvaluable, Verdict};
