//! Integration tests of the `palisade` server: one test binary, against a real SQLite file and a real
//! PostgreSQL server (started by `scripts/test`), over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
#[path = "../../examples/support/arrange.rs"]
mod arrange;
mod authz;
mod client;
mod clusters;
mod compliance;
mod contract;
mod exceptions;
mod gatekeeper;
mod http;
mod impact;
mod impact_findings;
mod inventory;
mod kyverno;
mod notify;
mod offline;
mod oidc;
mod pages_load;
mod policies;
mod posture;
mod proxy;
mod rollout_impact;
mod rollouts;
mod secrets;
mod sessions;
mod shutdown;
mod simulated;
mod startup;
mod support;
mod tls;
mod violations;
