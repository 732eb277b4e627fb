//! Arrange steps done directly on the database, below the HTTP API: registering clusters, creating
//! a library policy, proposing and approving a rollout. Shared by the benchmarks (`support::arrange`)
//! and the integration tests (`tests/it/main.rs` includes this file as `arrange`); each uses a part.
#![allow(dead_code)]

use palisade_app::auth::Principal;
use palisade_app::clusters::ssr::{service as clusters, ClusterConnector, Context};
use palisade_app::clusters::{Cluster, CredentialsInput, NewCluster};
use palisade_app::db::{now_ms, Db};
use palisade_app::policies::{Mode, NewPolicy};
use palisade_app::rollouts::ssr::service;
use palisade_app::rollouts::{NewRollout, NewWave, Selector};
use palisade_app::secrets::Sealer;

/// Registers each of `inputs` as `admin`, reached through `connector`, its credentials sealed
/// with `sealer`; the clusters, in the same order.
pub async fn register_all(
    db: &Db,
    sealer: &Sealer,
    connector: &dyn ClusterConnector,
    admin: &Principal,
    inputs: Vec<NewCluster>,
) -> Vec<Cluster> {
    let context = Context {
        db,
        sealer: Some(sealer),
        connector,
    };
    let mut registered = Vec::new();
    for input in inputs {
        registered.push(
            clusters::register(&context, admin, now_ms(), input)
                .await
                .unwrap(),
        );
    }
    registered
}

/// A cluster named `name`, in `prod`, reached at `api_url` with the bearer `token` (no CA of its
/// own).
pub fn token_cluster(name: String, api_url: String, token: String) -> NewCluster {
    NewCluster {
        name,
        environment: "prod".into(),
        labels: Default::default(),
        credentials: CredentialsInput::Token {
            api_url,
            ca_pem: String::new(),
            token,
        },
    }
}

/// A test bed cluster as Palisade registers it: `name`, in `prod`, reached through the
/// kubeconfig the test bed made for Palisade.
pub fn bed_cluster(name: String, cluster: &palisade_testbed::Cluster) -> NewCluster {
    NewCluster {
        name,
        environment: "prod".into(),
        labels: Default::default(),
        credentials: CredentialsInput::Kubeconfig {
            kubeconfig: std::fs::read_to_string(&cluster.palisade_kubeconfig).unwrap(),
            context: None,
        },
    }
}

/// Creates the library's policy `entry` as `author`.
pub async fn library_policy(db: &Db, author: &Principal, entry: &str) {
    palisade_app::policies::ssr::create(
        db,
        author,
        now_ms(),
        NewPolicy::Library {
            entry: entry.into(),
        },
    )
    .await
    .unwrap();
}

/// A rollout of `policy`'s newest version in `mode` to every cluster in one wave, `all`, that
/// needs one approval and does not soak; no note, no denials acknowledged.
pub fn to_every_cluster(policy: &str, mode: Mode) -> NewRollout {
    NewRollout {
        policy: policy.into(),
        version: None,
        mode,
        waves: vec![NewWave {
            name: "all".into(),
            selector: Selector::default(),
            approvals: 1,
            soak_secs: 0,
            violation_threshold: None,
        }],
        namespaces: Vec::new(),
        note: String::new(),
        acknowledge_denials: false,
    }
}

/// `rollout` proposed by `author` (under the default rules) and approved by `approver` with
/// `reason`; its id.
pub async fn approved_rollout(
    db: &Db,
    (author, approver): (&Principal, &Principal),
    rollout: NewRollout,
    reason: &str,
) -> String {
    let proposed = service::propose(db, author, now_ms(), service::Rules::default(), rollout)
        .await
        .unwrap();
    let id = proposed.summary.id;
    service::decide(db, approver, now_ms(), &id, true, reason)
        .await
        .unwrap();
    id
}
