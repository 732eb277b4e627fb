//! Palisade's policy engine.
//!
//! This crate is pure: no I/O, no clock, no network. It decides what a policy means, so it can be
//! unit-tested, benchmarked and later compiled to the browser on its own.
//!
//! - [`source`]: YAML streams into documents; errors with file, line and column.
//! - [`admission`]: the admission request every engine evaluates.
//! - [`apiview`]: a manifest as the apiserver's admission sees it (decoded, defaulted, prepared).
//! - [`verdict`]: what engines answer (allow / audit / warn / deny, with messages).
//! - [`cel`]: CEL as the Kubernetes apiserver evaluates it (compile cache, JSON objects as CEL
//!   values, `has()` on null as in cel-go, the Kubernetes libraries and `authorizer`).
//! - [`vap`]: ValidatingAdmissionPolicy and its bindings, evaluated as the apiserver's admission
//!   plugin does, with its exact messages.
//! - [`pss`]: Pod Security Standards (baseline / restricted), exact per Kubernetes version.
//! - [`gatekeeper`]: Gatekeeper ConstraintTemplates (Rego, through regorus) and Constraints.
//! - [`kyverno`]: Kyverno ClusterPolicy / Policy validate rules, ValidatingPolicy and PolicyExceptions.
//! - [`bundle`]: policies of every engine loaded together and evaluated as one.
//! - [`library`]: the built-in policy library (embedded policies, their suites and controls).
//! - [`sample`]: seeded, varied, valid workloads for benchmarks, differential tests and demos.
//! - [`suite`]: test suites (gator, Kyverno CLI, Palisade) reduced to passed / failed / skipped cases.
//! - [`mode`]: the one mode model (audit → warn → enforce) and how each engine renders it.
//! - [`render`]: a policy rendered into the exact manifests each engine receives in a mode.

pub mod admission;
pub mod apiview;
pub mod bundle;
pub mod cel;
pub mod exclusions;
pub mod gatekeeper;
pub mod go_duration;
pub mod go_url;
pub mod kyverno;
pub mod library;
pub mod mode;
pub mod namespaces;
pub mod patterns;
pub mod pss;
pub mod render;
pub mod sample;
pub mod source;
pub mod suite;
pub mod vap;
pub mod verdict;
pub mod yaml_subset;

pub use admission::{AdmissionRequest, Operation, UserInfo};
pub use mode::{Mode, ParseModeError, PsaLabel, VapAction};
pub use source::{Document, SourceError};
pub use verdict::{Action, EngineKind, Finding, NotEvaluable, Verdict};
