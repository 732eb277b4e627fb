//! Simulated clusters behind a real server, for the tests that drive an executor or a scanner of
//! their own: the server's admin, the sealer of its secrets key, and a fleet that answers every
//! cluster call after a set latency.

use std::sync::Arc;
use std::time::Duration;

use palisade_app::auth::{Principal, Role};
use palisade_app::clusters::ssr::{service as clusters, Context};
use palisade_app::clusters::{Cluster, CredentialsInput, NewCluster};
use palisade_app::rollouts::ssr::simulated::SimulatedFleet;
use palisade_app::secrets::Sealer;

use crate::support::{Backend, TestServer, KEY};

/// A server on `backend` with the secrets key [`KEY`], whose own executor sleeps for the whole
/// test (it polls once an hour), so that only the executors the test drives work.
pub async fn with_idle_executor(backend: Backend) -> TestServer {
    TestServer::start(
        backend,
        &[
            ("PALISADE__SECRETS__KEY", KEY),
            ("PALISADE__ROLLOUTS__POLL_MS", "3600000"),
        ],
    )
    .await
}

pub struct Simulated {
    /// An admin of the server, for registering clusters directly.
    pub admin: Principal,
    /// The sealer of [`KEY`], which the server must run with.
    pub sealer: Arc<Sealer>,
    pub fleet: Arc<SimulatedFleet>,
}

impl Simulated {
    /// An admin of `server` and a fleet whose every call takes `latency`.
    pub async fn new(server: &TestServer, latency: Duration) -> Simulated {
        let (admin, _) = server.user_token(Role::Admin).await;
        Simulated {
            admin,
            sealer: Arc::new(Sealer::from_hex(KEY).unwrap()),
            fleet: Arc::new(SimulatedFleet::new(latency)),
        }
    }

    /// Register a simulated cluster `name` in `environment` (at `https://{name}.example:6443`)
    /// at `now`, as the admin.
    pub async fn register(
        &self,
        server: &TestServer,
        name: &str,
        environment: &str,
        now: i64,
    ) -> Cluster {
        let context = Context {
            db: &server.pool,
            sealer: Some(&self.sealer),
            connector: self.fleet.as_ref(),
        };
        let input = NewCluster {
            name: name.to_owned(),
            environment: environment.into(),
            labels: Default::default(),
            credentials: CredentialsInput::Token {
                api_url: format!("https://{name}.example:6443"),
                ca_pem: String::new(),
                token: format!("token-{name}"),
            },
        };
        clusters::register(&context, &self.admin, now, input)
            .await
            .unwrap()
    }
}
