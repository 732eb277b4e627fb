//! Reaching a cluster, behind a narrow trait: the real one speaks to kube-apiservers through
//! `kube::Client`; unit tests use a fake. Only the verbs Palisade uses are here: probe,
//! server-side apply, read-back and delete.

pub mod apiserver;
pub mod cache;
mod manifests;

use std::future::Future;
use std::pin::Pin;

use super::credentials::Credentials;
use crate::clusters::Capabilities;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The apiserver's `gitVersion`, e.g. `v1.37.2`.
    pub version: String,
    pub capabilities: Capabilities,
}

/// Why a cluster could not be reached or refused us, in words an operator can act on. Never holds
/// a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("the credentials cannot be used: {0}")]
    Credentials(String),
    #[error("the cluster refused the credentials (401 Unauthorized): the token or certificate is wrong or expired")]
    Unauthorized,
    #[error("the cluster's API answered {code}: {message}")]
    Api { code: u16, message: String },
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
}

/// What one apply left on the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The object as the cluster now holds it.
    pub object: serde_json::Value,
    /// The apiserver's warnings, in its words: for example that existing pods already violate a
    /// Pod Security level just enforced on their namespace.
    pub warnings: Vec<String>,
}

impl Applied {
    /// An apply the apiserver had nothing to say about.
    pub fn quietly(object: serde_json::Value) -> Applied {
        Applied {
            object,
            warnings: Vec::new(),
        }
    }
}

/// How Palisade talks to clusters.
pub trait ClusterConnector: Send + Sync {
    /// Version and admission capabilities of the cluster these credentials reach.
    fn probe<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Probe, ClusterError>>;

    /// Server-side apply of one manifest with field manager `palisade` (forcing ownership of the
    /// fields it sets); returns the object as the cluster now holds it, and what the apiserver
    /// warned of while applying it.
    fn apply<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Applied, ClusterError>>;

    /// The live object named like `manifest` (same apiVersion, kind, namespace and name), or
    /// `None` when the cluster has none: for read-back and drift checks.
    fn get<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClusterError>>;

    /// Delete the live object named like `manifest`; `Ok(false)` when there was none.
    fn delete<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<bool, ClusterError>>;

    /// One page (at most `limit`) of every object of a kind, in all namespaces, and the token of
    /// the next page. A kind the cluster does not serve is an empty list.
    fn list<'a>(
        &'a self,
        credentials: &'a Credentials,
        api_version: &'a str,
        kind: &'a str,
        continue_token: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<ListPage, ClusterError>> {
        let _ = (credentials, api_version, kind, continue_token, limit);
        Box::pin(async { Ok((Vec::new(), None)) })
    }

    /// Every object of a kind in all namespaces, then its changes as they happen (see
    /// [`Change`]). The stream may end; the caller starts it again. The default lists once.
    fn watch<'a>(
        &'a self,
        credentials: &'a Credentials,
        api_version: &'a str,
        kind: &'a str,
    ) -> BoxStream<'a, Result<Change, ClusterError>> {
        listed_once(self, credentials, api_version, kind)
    }
}

/// Objects of one list call and the continue token of the next, if any.
pub type ListPage = (Vec<serde_json::Value>, Option<String>);

pub type BoxStream<'a, T> = Pin<Box<dyn futures_util::Stream<Item = T> + Send + 'a>>;

/// What a watch of one kind reports, in order: `Restart`, every object `Listed` then, `Synced`
/// once the list is complete, then `Applied` and `Deleted` as the cluster changes. A `Restart` can
/// come again (the watch was cut for longer than the apiserver remembers): what the following list
/// does not name is gone.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Restart,
    Listed(serde_json::Value),
    Synced,
    Applied(serde_json::Value),
    Deleted(serde_json::Value),
}

/// One complete paginated list of a kind as a watch that ends after `Synced`: what a connector
/// without watches offers (the caller lists again on a timer).
pub fn listed_once<'a>(
    connector: &'a (impl ClusterConnector + ?Sized),
    credentials: &'a Credentials,
    api_version: &'a str,
    kind: &'a str,
) -> BoxStream<'a, Result<Change, ClusterError>> {
    use futures_util::stream::{self, StreamExt};
    // The state: `None` before the first page, `Some(token)` while pages remain, and done.
    enum Next {
        First,
        Page(String),
        Done,
    }
    let pages = stream::unfold(Next::First, move |next| async move {
        let token = match next {
            Next::First => None,
            Next::Page(token) => Some(token),
            Next::Done => return None,
        };
        match connector
            .list(credentials, api_version, kind, token.as_deref(), LIST_PAGE)
            .await
        {
            Ok((items, more)) => {
                let mut changes: Vec<Result<Change, ClusterError>> = Vec::new();
                if token.is_none() {
                    changes.push(Ok(Change::Restart));
                }
                changes.extend(items.into_iter().map(|item| Ok(Change::Listed(item))));
                let next = match more {
                    Some(token) => Next::Page(token),
                    None => {
                        changes.push(Ok(Change::Synced));
                        Next::Done
                    }
                };
                Some((stream::iter(changes), next))
            }
            Err(err) => Some((stream::iter(vec![Err(err)]), Next::Done)),
        }
    });
    Box::pin(pages.flatten())
}

/// Objects per list call when listing a whole kind.
pub const LIST_PAGE: u32 = 250;

/// The field manager of everything Palisade applies.
pub const FIELD_MANAGER: &str = "palisade";

/// A kube error in an operator's words: the apiserver's own message for API errors, the innermost
/// cause for network and TLS failures.
pub fn from_kube(err: kube::Error) -> ClusterError {
    match err {
        kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized,
        kube::Error::Api(status) => ClusterError::Api {
            code: status.code,
            message: status.message.clone(),
        },
        other => {
            let mut cause: &dyn std::error::Error = &other;
            while let Some(next) = cause.source() {
                cause = next;
            }
            ClusterError::Unreachable(cause.to_string())
        }
    }
}
