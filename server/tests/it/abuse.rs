//! What an attacker would try against a running server, each as real requests: every attempt is
//! refused or absorbed within its budget, and the server still answers afterwards.

use crate::support::{request, Backend, TestServer};

/// Made-up HTTP methods (any token is a valid method on the wire) share one `other` label, so
/// unauthenticated requests cannot grow `/metrics` without bound.
#[tokio::test]
async fn made_up_methods_cannot_grow_the_metrics() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let before = server.get("/metrics").await.body.len();
    for i in 0..1_000 {
        let method = format!("X{i:04}{}", "M".repeat(200));
        request(server.addr, &method, "/healthz", &[], "").await;
    }
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.len() < before + 8_192,
        "/metrics grew from {before} to {} bytes",
        metrics.body.len()
    );
    assert!(
        !metrics.body.contains("X0001"),
        "a made-up method became a label"
    );
    let other = metrics
        .body
        .lines()
        .find(|l| l.starts_with("palisade_http_requests_total") && l.contains("method=\"other\""))
        .unwrap_or_else(|| panic!("no `other` series in\n{}", metrics.body));
    assert!(other.ends_with(" 1000"), "{other}");
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}
