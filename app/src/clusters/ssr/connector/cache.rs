//! What the real connector keeps per cluster: a client for each set of credentials (by digest,
//! least recently used dropped first), and the kinds discovery found through it.

use std::time::Duration;

use kube::Client;

use crate::clusters::ssr::credentials::Credentials;

/// Clients kept at most, and how long one unused is kept.
const CACHED_CLIENTS: usize = 256;
const UNUSED_FOR: Duration = Duration::from_secs(600);

/// What identifies a client: the SHA-256 of the whole kubeconfig (API URL, CA and credential), so
/// changed credentials never reuse an old client, and no secret is kept as a key.
pub fn cache_key(credentials: &Credentials) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, credentials.kubeconfig.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Which cached clients to drop before adding one at `now`: those unused for [`UNUSED_FOR`], then
/// the least recently used while the cache would hold more than `capacity`.
fn evictions(
    last_used: &[([u8; 32], std::time::Instant)],
    now: std::time::Instant,
    capacity: usize,
) -> Vec<[u8; 32]> {
    let mut by_age: Vec<_> = last_used.to_vec();
    by_age.sort_by_key(|(_, used)| *used);
    let mut keep = by_age.len();
    let mut out = Vec::new();
    for (key, used) in by_age {
        if now.saturating_duration_since(used) >= UNUSED_FOR || keep >= capacity {
            out.push(key);
            keep -= 1;
        }
    }
    out
}

/// Each cached connection by its key, with when it was last used.
type Clients = std::collections::HashMap<[u8; 32], (Connection, std::time::Instant)>;

/// How long a kind found by discovery is trusted before it is looked up again.
const KINDS_FOR: Duration = Duration::from_secs(300);

/// What discovery found of each kind (`group/version/Kind`), and when.
type Kinds = std::collections::HashMap<
    String,
    (
        kube::core::ApiResource,
        kube::discovery::ApiCapabilities,
        std::time::Instant,
    ),
>;

/// Whether a kind found at `found` may still be used at `now`.
fn still_fresh(found: std::time::Instant, now: std::time::Instant) -> bool {
    now.saturating_duration_since(found) < KINDS_FOR
}

/// One cluster's client and the kinds discovery found through it, shared by every call with the
/// same credentials. Only kinds found are kept: one not served yet (a custom resource a
/// controller is about to install) is asked for again on the next call.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    kinds: std::sync::Arc<std::sync::Mutex<Kinds>>,
}

impl Connection {
    pub(super) fn new(client: Client) -> Connection {
        Connection {
            client,
            kinds: std::sync::Arc::default(),
        }
    }

    fn kind_key(gvk: &kube::core::GroupVersionKind) -> String {
        format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind)
    }

    /// Where a kind is served and how: from this connection's memory while fresh, else from
    /// discovery.
    pub(super) async fn kind(
        &self,
        gvk: &kube::core::GroupVersionKind,
    ) -> Result<(kube::core::ApiResource, kube::discovery::ApiCapabilities), kube::Error> {
        let key = Connection::kind_key(gvk);
        let now = std::time::Instant::now();
        let known = self.kinds.lock().ok().and_then(|kinds| {
            kinds
                .get(&key)
                .filter(|(_, _, found)| still_fresh(*found, now))
                .map(|(resource, capabilities, _)| (resource.clone(), capabilities.clone()))
        });
        if let Some(known) = known {
            return Ok(known);
        }
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, gvk).await?;
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.insert(key, (resource.clone(), capabilities.clone(), now));
        }
        Ok((resource, capabilities))
    }

    /// Drops what discovery said of a kind, after the apiserver answered that it does not serve
    /// it (a custom resource definition removed since).
    pub(super) fn forget(&self, gvk: &kube::core::GroupVersionKind) {
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.remove(&Connection::kind_key(gvk));
        }
    }
}

/// The cached clients, shared by clones of the connector.
#[derive(Clone, Default)]
pub(super) struct ClientCache(std::sync::Arc<std::sync::Mutex<Clients>>);

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("ClientCache")
            .field("clients", &count)
            .finish()
    }
}

impl ClientCache {
    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Connection> {
        let mut clients = self.0.lock().ok()?;
        let (connection, used) = clients.get_mut(key)?;
        *used = std::time::Instant::now();
        Some(connection.clone())
    }

    pub(super) fn put(&self, key: [u8; 32], connection: Connection) {
        let Ok(mut clients) = self.0.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        let ages: Vec<_> = clients.iter().map(|(k, (_, used))| (*k, *used)).collect();
        for old in evictions(&ages, now, CACHED_CLIENTS) {
            clients.remove(&old);
        }
        clients.insert(key, (connection, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn credentials(kubeconfig: &str) -> Credentials {
        Credentials {
            kubeconfig: kubeconfig.to_owned(),
            api_url: "https://127.0.0.1:6443".into(),
        }
    }

    #[test]
    fn changed_credentials_never_reuse_a_client() {
        let first = cache_key(&credentials("server: a\ntoken: one"));
        assert_eq!(first, cache_key(&credentials("server: a\ntoken: one")));
        assert_ne!(first, cache_key(&credentials("server: a\ntoken: two")));
        assert_ne!(first, cache_key(&credentials("server: b\ntoken: one")));
        // The key is a digest: the token is not in it.
        assert!(!first.windows(3).any(|w| w == b"one"));
    }

    #[test]
    fn kinds_found_are_trusted_for_five_minutes() {
        let found = Instant::now();
        assert!(still_fresh(found, found));
        assert!(still_fresh(
            found,
            found + KINDS_FOR - Duration::from_millis(1)
        ));
        assert!(!still_fresh(found, found + KINDS_FOR));
    }

    #[test]
    fn unused_and_least_recent_clients_are_dropped() {
        let now = Instant::now() + UNUSED_FOR * 2;
        let key = |n: u8| [n; 32];
        let recent = now - Duration::from_secs(1);
        let older = now - Duration::from_secs(2);
        let stale = now - UNUSED_FOR;
        // Under capacity: only the stale one goes.
        let ages = [(key(1), recent), (key(2), stale), (key(3), older)];
        assert_eq!(evictions(&ages, now, 10), vec![key(2)]);
        // At capacity: room is made for one more by dropping the least recently used.
        let ages = [(key(1), recent), (key(3), older)];
        assert_eq!(evictions(&ages, now, 2), vec![key(3)]);
        assert!(evictions(&[], now, 2).is_empty());
    }
}
