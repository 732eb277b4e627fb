//! Server-side clusters: credential checks, the connection to a cluster behind a narrow trait, the
//! queries and the service that owns transactions.

pub mod connector;
pub mod credentials;
pub mod queries;
pub mod service;

use crate::db::Db;
use crate::secrets::Sealer;

pub use connector::apiserver::KubeConnector;
pub use connector::{Applied, BoxFuture, BoxStream, Change, ClusterConnector, ClusterError, Probe};
pub use credentials::Credentials;

/// What the cluster service needs: the database, the key for credentials (absent when none is
/// configured) and the way to reach clusters (real, or a fake in unit tests).
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub db: &'a Db,
    pub sealer: Option<&'a Sealer>,
    pub connector: &'a dyn ClusterConnector,
}
