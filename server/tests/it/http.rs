//! The server over HTTP: probes, metrics, request ids, pages and a server function, on both databases.

use palisade_app::auth::Role;

use crate::support::{on_each_database, request, Backend, TestServer};

const SECTION_PATHS: [&str; 10] = [
    "/",
    "/policies",
    "/library",
    "/rollouts",
    "/exceptions",
    "/violations",
    "/clusters",
    "/compliance",
    "/audit",
    "/settings",
];

async fn serves_probes_pages_and_metrics(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let token = server.login_token(Role::Viewer).await;
    let bearer = format!("Bearer {token}");
    let as_viewer = |path: &'static str| {
        let bearer = bearer.clone();
        let addr = server.addr;
        async move { request(addr, "GET", path, &[("authorization", &bearer)], "").await }
    };

    let health = server.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = server.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready\n"),
        "{backend:?}"
    );

    // The Overview is rendered on the server, with the navigation and the hydration script.
    let overview = as_viewer("/").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("<h1>Overview</h1>"),
        "{}",
        overview.body
    );
    assert!(
        overview.body.contains("/pkg/palisade.js"),
        "no hydration script"
    );
    for path in SECTION_PATHS {
        assert!(
            overview.body.contains(&format!("href=\"{path}\"")),
            "no link to {path}"
        );
    }

    // The Content-Security-Policy's nonce is the one the page's inline scripts carry, and no
    // inline script goes without it.
    let csp = overview
        .header("content-security-policy")
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy");
    let scripts = overview.body.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        overview.body.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every inline script carries this response's nonce:\n{}",
        overview.body
    );
    let again = as_viewer("/").await;
    assert_ne!(
        again.header("content-security-policy"),
        Some(csp.as_str()),
        "a new nonce each time"
    );

    // Every section renders on its own, with an honest empty state (the library always has
    // its built-in entries).
    for path in &SECTION_PATHS[1..] {
        let page = as_viewer(path).await;
        assert_eq!(page.status, 200, "{path}");
        let expected = match *path {
            "/library" => "data-testid=\"library-entry\"",
            _ => "class=\"empty-state\"",
        };
        assert!(page.body.contains(expected), "{path} has no {expected}");
    }
    // Without a session or token, a page sends the browser to sign in and back.
    let anonymous = server.get("/rollouts?x=1").await;
    assert_eq!(anonymous.status, 303, "{}", anonymous.body);
    assert_eq!(
        anonymous.header("location"),
        Some("/login?next=%2Frollouts%3Fx%3D1")
    );
    let missing = as_viewer("/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"));

    // The Overview's server function reads the live database.
    let status = request(
        server.addr,
        "POST",
        "/api/system_status",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
            ("authorization", &bearer),
        ],
        "",
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.body);
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    let expected = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    assert_eq!(status["database"], expected);
    assert_eq!(status["pending_migrations"], 0);
    assert!(status["schema_version"].as_i64().is_some());
    assert!(
        !status.to_string().contains(&server.db.url),
        "the database URL must not leak"
    );

    // Every response carries a request id; one the client sent is kept.
    let generated = server.get("/healthz").await;
    assert!(generated
        .header("x-request-id")
        .is_some_and(|id| id.len() >= 32));
    let kept = request(
        server.addr,
        "GET",
        "/healthz",
        &[("x-request-id", "trace-me-42")],
        "",
    )
    .await;
    assert_eq!(kept.header("x-request-id"), Some("trace-me-42"));

    // Security headers on pages and probes alike.
    for reply in [&overview, &generated] {
        for (name, value) in palisade_server::headers::SECURITY_HEADERS {
            assert_eq!(reply.header(name), Some(value), "{name}");
        }
    }

    // Metrics count the requests above by route template and status.
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    for line in [
        "palisade_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 3"
            .to_owned(),
        "palisade_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 1"
            .to_owned(),
        "palisade_http_requests_total{route=\"/policies\",method=\"GET\",status=\"200\"} 1"
            .to_owned(),
        "palisade_http_request_duration_seconds_count{route=\"/\",method=\"GET\",status=\"200\"} 2"
            .to_owned(),
        "palisade_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"
            .to_owned(),
    ] {
        assert!(
            metrics.body.contains(&line),
            "missing `{line}` in\n{}",
            metrics.body
        );
    }

    server.stop().await;
}

on_each_database!(
    serves_probes_pages_and_metrics:
    sqlite_serves_probes_pages_and_metrics,
    postgres_serves_probes_pages_and_metrics
);

/// Without migrations the server is alive but not ready, and says why; `palisade migrate` fixes it.
async fn readiness_waits_for_migrations(backend: Backend) {
    let server = TestServer::start(backend, &[("PALISADE__DATABASE__AUTO_MIGRATE", "false")]).await;
    assert_eq!(server.get("/healthz").await.status, 200);
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.body.contains("migration(s) pending"),
        "{}",
        ready.body
    );
    assert!(ready.body.contains("palisade migrate"), "{}", ready.body);

    let stdout = crate::support::palisade_on("migrate", &server.db.url);
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert!(
        stdout.contains(&format!("applied {migrations} migration(s)")),
        "{stdout}"
    );

    assert_eq!(server.get("/readyz").await.status, 200);
    server.stop().await;
}

on_each_database!(
    readiness_waits_for_migrations:
    sqlite_readiness_waits_for_migrations,
    postgres_readiness_waits_for_migrations
);
