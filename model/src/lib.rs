//! The basic types Palisade's engine, server and browser share, below every domain: how hard a
//! policy bites ([`Mode`]), which engine runs it ([`Engine`]), whether a cluster still holds what was
//! applied ([`Drift`]), and [`wire_enum!`], the one way an enum is written as text.
//!
//! It depends on serde alone (and sqlx in the server build), so the browser build can use it.

pub mod mode;
pub mod wire;

pub use mode::{Mode, PsaLabel, VapAction};
pub use wire::UnknownValue;

use serde::{Deserialize, Serialize};

wire_enum! {
    /// Which engine evaluates and enforces a policy.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Engine as "engine" {
        /// ValidatingAdmissionPolicy + binding (CEL).
        Vap = "vap",
        /// Gatekeeper ConstraintTemplate + Constraint (Rego).
        Gatekeeper = "gatekeeper",
        /// A Pod Security Standards level, as namespace labels (`PodSecurityEntry`).
        PodSecurity = "pod-security",
        /// Kyverno ClusterPolicy / Policy (validate rules) or ValidatingPolicy (CEL).
        Kyverno = "kyverno",
    }
}

impl Engine {
    pub fn label(self) -> &'static str {
        match self {
            Engine::Vap => "ValidatingAdmissionPolicy (CEL)",
            Engine::Gatekeeper => "Gatekeeper (Rego)",
            Engine::PodSecurity => "Pod Security Standards",
            Engine::Kyverno => "Kyverno",
        }
    }
}

wire_enum! {
    /// Whether the live objects still match what Palisade applied.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Drift as "drift" {
        Unknown = "unknown",
        InSync = "in_sync",
        Drifted = "drifted",
    }
}
