//! A simulated fleet behind the cluster trait, for the executor's benchmark and its replica tests:
//! each "cluster" (told apart by API URL) keeps what was applied to it in memory, every call waits
//! a fixed latency, and the fleet counts applies per cluster and the most calls ever in flight at
//! once, so a test can check that nothing was sent twice and that the concurrency limit held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::plan::identity;
use crate::clusters::ssr::{
    Applied, BoxFuture, ClusterConnector, ClusterError, Credentials, Probe,
};
use crate::clusters::Capabilities;

#[derive(Debug, Default)]
pub struct SimulatedFleet {
    pub latency: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    applies: Mutex<HashMap<String, usize>>,
    objects: Mutex<HashMap<(String, String), Value>>,
}

/// Counts a call in flight for as long as it lives.
struct InFlight<'a>(&'a SimulatedFleet);

impl<'a> InFlight<'a> {
    fn enter(fleet: &'a SimulatedFleet) -> InFlight<'a> {
        let now = fleet.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        fleet.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(fleet)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SimulatedFleet {
    pub fn new(latency: Duration) -> SimulatedFleet {
        SimulatedFleet {
            latency,
            ..SimulatedFleet::default()
        }
    }

    /// The most calls that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Applies sent to each cluster (by API URL).
    pub fn applies(&self) -> HashMap<String, usize> {
        self.applies.lock().map(|a| a.clone()).unwrap_or_default()
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

impl ClusterConnector for SimulatedFleet {
    fn probe<'a>(
        &'a self,
        _credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Probe, ClusterError>> {
        Box::pin(async {
            Ok(Probe {
                version: "v1.37.2".into(),
                capabilities: Capabilities {
                    validating_admission_policy: true,
                    ..Capabilities::default()
                },
            })
        })
    }

    fn apply<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a Value,
    ) -> BoxFuture<'a, Result<Applied, ClusterError>> {
        Box::pin(async move {
            let _call = InFlight::enter(self);
            self.pause().await;
            if let Ok(mut applies) = self.applies.lock() {
                *applies.entry(credentials.api_url.clone()).or_default() += 1;
            }
            if let Ok(mut objects) = self.objects.lock() {
                objects.insert(
                    (credentials.api_url.clone(), identity(manifest)),
                    manifest.clone(),
                );
            }
            Ok(Applied::quietly(manifest.clone()))
        })
    }

    fn get<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a Value,
    ) -> BoxFuture<'a, Result<Option<Value>, ClusterError>> {
        Box::pin(async move {
            let _call = InFlight::enter(self);
            self.pause().await;
            Ok(self.objects.lock().ok().and_then(|objects| {
                objects
                    .get(&(credentials.api_url.clone(), identity(manifest)))
                    .cloned()
            }))
        })
    }

    fn delete<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a Value,
    ) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(async move {
            let _call = InFlight::enter(self);
            self.pause().await;
            Ok(self
                .objects
                .lock()
                .ok()
                .and_then(|mut objects| {
                    objects.remove(&(credentials.api_url.clone(), identity(manifest)))
                })
                .is_some())
        })
    }
}
