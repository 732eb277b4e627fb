//! Sign-in, sessions and API tokens over HTTP, on both databases: the bootstrap secret works once,
//! the session id changes at sign-in, logout and revocation end a session at once, the idle and
//! absolute timeouts hold (time as a parameter), and tokens are bound to a role and revocable.

use palisade_app::auth::Role;
use palisade_app::db::now_ms;
use serde_json::Value;
use tower_sessions::session::{Id, Record};

use crate::support::{cookie_of, on_each_database, request, sign_out, Backend, TestServer};

async fn me(server: &TestServer, cookie: &str) -> u16 {
    request(server.addr, "GET", "/api/v1/me", &[("cookie", cookie)], "")
        .await
        .status
}

async fn sign_in(server: &TestServer, secret: &str, cookie: Option<&str>) -> crate::support::Reply {
    sign_in_from(server, secret, cookie, None).await
}

/// [`sign_in`] with an `X-Forwarded-For` header.
async fn sign_in_from(
    server: &TestServer,
    secret: &str,
    cookie: Option<&str>,
    forwarded_for: Option<&str>,
) -> crate::support::Reply {
    let origin = format!("http://{}", server.addr);
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", origin.as_str()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    if let Some(forwarded_for) = forwarded_for {
        headers.push(("x-forwarded-for", forwarded_for));
    }
    request(
        server.addr,
        "POST",
        "/auth/local",
        &headers,
        &format!("secret={secret}&next=%2Fpolicies"),
    )
    .await
}

async fn sessions_and_sign_in(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let secret = server.bootstrap.clone().expect("a bootstrap secret");
    assert!(secret.starts_with("pbs_") && secret.len() > 40);

    // A wrong secret is refused back to the sign-in page, without a session.
    let wrong = sign_in(&server, "pbs_wrong", None).await;
    assert_eq!(wrong.status, 303);
    assert!(wrong
        .header("location")
        .is_some_and(|l| l.starts_with("/login?error=invalid_secret")));
    assert!(cookie_of(&wrong).is_none());

    // A session planted before sign-in (as an attacker would) is not the one signed in.
    let planted = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    assert!(server
        .auth
        .store
        .create_at(&planted, now_ms())
        .await
        .unwrap());
    let planted_cookie = format!("palisade_session={}", planted.id);
    let signed_in = sign_in(&server, &secret, Some(&planted_cookie)).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.header("location"), Some("/policies"));
    let set_cookie = signed_in.header("set-cookie").unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain http here: {set_cookie}"
    );
    let cookie = cookie_of(&signed_in).unwrap();
    assert_ne!(cookie, planted_cookie, "the session id changes at sign-in");
    assert_eq!(me(&server, &planted_cookie).await, 401);
    assert_eq!(me(&server, &cookie).await, 200);
    let who: Value = serde_json::from_str(
        &request(server.addr, "GET", "/api/v1/me", &[("cookie", &cookie)], "")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(who["role"], "admin");
    assert_eq!(who["via"], "session");

    // Pages render for the session.
    let page = request(server.addr, "GET", "/policies", &[("cookie", &cookie)], "").await;
    assert_eq!(page.status, 200);

    // The bootstrap secret works once.
    let again = sign_in(&server, &secret, None).await;
    assert!(again
        .header("location")
        .is_some_and(|l| l.starts_with("/login?error=invalid_secret")));

    // Logout ends the session: the old cookie is refused afterwards.
    let origin = format!("http://{}", server.addr);
    let out = sign_out(server.addr, &cookie, &origin).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login?signed_out=1"));
    assert_eq!(me(&server, &cookie).await, 401);

    // The audit log has the sign-in and the sign-out, from this address.
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, remote_addr FROM audit_entries WHERE action LIKE 'session.%' ORDER BY at_ms, action",
    )
    .fetch_all(server.pool.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        vec![
            ("session.login".to_owned(), "127.0.0.1".to_owned()),
            ("session.logout".to_owned(), "127.0.0.1".to_owned())
        ]
    );
    server.stop().await;
}

on_each_database!(
    sessions_and_sign_in: sqlite_sessions_and_sign_in, postgres_sessions_and_sign_in
);

/// Idle and absolute timeouts, with the clock as a parameter, and revocation by an admin.
async fn timeouts_and_revocation(backend: Backend) {
    let server = TestServer::start(
        backend,
        &[
            ("PALISADE__AUTH__SESSION_IDLE_MINUTES", "30"),
            ("PALISADE__AUTH__SESSION_ABSOLUTE_HOURS", "2"),
        ],
    )
    .await;
    let store = &server.auth.store;
    let minute = 60_000;
    let t0 = now_ms();
    let record = Record {
        id: Id::default(),
        data: [("uid".to_owned(), Value::from("someone"))].into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(1),
    };
    assert!(store.create_at(&record, t0).await.unwrap());
    // Active every 20 minutes: alive past the idle timeout's length...
    for step in 1..=5 {
        assert!(
            store
                .load_at(&record.id, t0 + step * 20 * minute)
                .await
                .unwrap()
                .is_some(),
            "step {step}"
        );
    }
    // ...but not past the absolute timeout, however active.
    assert!(store
        .load_at(&record.id, t0 + 121 * minute)
        .await
        .unwrap()
        .is_none());

    let idle = Record {
        id: Id::default(),
        ..record.clone()
    };
    assert!(store.create_at(&idle, t0).await.unwrap());
    assert!(store
        .load_at(&idle.id, t0 + 29 * minute)
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .load_at(&idle.id, t0 + 60 * minute)
            .await
            .unwrap()
            .is_none(),
        "idle 31 minutes"
    );

    // An admin lists everyone's sessions and revokes one; its cookie stops working at once.
    let cookie = server.session_cookie().await;
    assert_eq!(me(&server, &cookie).await, 200);
    let admin = server.login_token(Role::Admin).await;
    let listed = server.call("GET", "/api/v1/sessions", &admin, "").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed: Vec<Value> = serde_json::from_str(&listed.body).unwrap();
    let local = listed
        .iter()
        .find(|s| s["user_name"] == "Local admin")
        .expect("the local admin's session is listed");
    let id = local["id"].as_str().unwrap();
    assert_ne!(
        Some(id),
        cookie.strip_prefix("palisade_session="),
        "ids are hashed"
    );
    // A viewer cannot revoke someone else's session (it does not exist for them).
    let viewer = server.login_token(Role::Viewer).await;
    let refused = server
        .call("DELETE", &format!("/api/v1/sessions/{id}"), &viewer, "")
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(me(&server, &cookie).await, 200);
    let revoked = server
        .call("DELETE", &format!("/api/v1/sessions/{id}"), &admin, "")
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_eq!(me(&server, &cookie).await, 401);

    // The sweep removes the ended sessions (too old, idle, revoked) and keeps a live one.
    let live = Record {
        id: Id::default(),
        ..record.clone()
    };
    let now = now_ms();
    assert!(store.create_at(&live, now).await.unwrap());
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions")
            .fetch_one(server.pool.pool())
            .await
            .unwrap()
    };
    let before = count().await;
    // Now: only the revoked session has ended.
    assert_eq!(store.delete_expired_at(now).await.unwrap(), 1);
    assert_eq!(count().await, before - 1);
    assert!(store
        .load_at(&live.id, now + minute)
        .await
        .unwrap()
        .is_some());
    // Past the absolute timeout, every one of them has.
    let removed = store.delete_expired_at(now + 121 * minute).await.unwrap();
    assert_eq!(removed, u64::try_from(before - 1).unwrap());
    assert_eq!(count().await, 0);
    server.stop().await;
}

on_each_database!(
    timeouts_and_revocation: sqlite_timeouts_and_revocation, postgres_timeouts_and_revocation
);

/// Tokens: created with a role no higher than the creator's, shown once, listed without the secret,
/// revocable; expired, revoked and malformed tokens are refused.
async fn api_tokens(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let author = server.login_token(Role::Author).await;
    let too_high = server
        .call(
            "POST",
            "/api/v1/tokens",
            &author,
            r#"{"name":"ci","role":"admin","expires_in_days":30}"#,
        )
        .await;
    assert_eq!(too_high.status, 403, "{}", too_high.body);
    let created = server.api(&author).new_token("ci", "viewer", 30).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    let me: Value =
        serde_json::from_str(&server.call("GET", "/api/v1/me", &secret, "").await.body).unwrap();
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["via"], "token");

    let listed = server.call("GET", "/api/v1/tokens", &author, "").await;
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains(&id));
    assert!(
        !listed.body.contains(secret.rsplit('_').next().unwrap()),
        "no secret in lists"
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM api_tokens")
        .fetch_all(server.pool.pool())
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 64 && !secret.contains(h.as_str())));

    // A tampered secret, a malformed token and (after revocation) the token itself: 401.
    let mut tampered = secret.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    for bad in [tampered.as_str(), "pal_nope", "garbage"] {
        assert_eq!(
            server.call("GET", "/api/v1/me", bad, "").await.status,
            401,
            "{bad}"
        );
    }
    let revoked = server
        .call("DELETE", &format!("/api/v1/tokens/{id}"), &author, "")
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        server.call("GET", "/api/v1/me", &secret, "").await.status,
        401
    );

    // The audit log has the creation and the revocation, for admins only, as a page and as exports.
    let admin = server.login_token(Role::Admin).await;
    assert_eq!(
        server
            .call("GET", "/api/v1/audit", &author, "")
            .await
            .status,
        403
    );
    let page = server
        .call("GET", "/api/v1/audit?action=token.&limit=2", &admin, "")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page: Value = serde_json::from_str(&page.body).unwrap();
    // Three tokens created (two by login_token, one through the API), one revoked; a page of two.
    assert_eq!(page["total"], 4, "{page}");
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    // The rest follows by key: two more, then no further page, and no entry seen twice.
    let next = page["next"].as_str().expect("a next page").to_owned();
    let older = server
        .call(
            "GET",
            &format!("/api/v1/audit?action=token.&limit=2&after={next}"),
            &admin,
            "",
        )
        .await;
    let older: Value = serde_json::from_str(&older.body).unwrap();
    let ids = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (first, second) = (ids(&page), ids(&older));
    assert_eq!(second.len(), 2, "{older}");
    assert!(
        first.iter().all(|id| !second.contains(id)),
        "{first:?} {second:?}"
    );
    let at = |page: &Value, i: usize| page["entries"][i]["at_ms"].as_i64().unwrap();
    assert!(at(&page, 1) >= at(&older, 0), "newest first across pages");
    assert!(
        older["next"].is_null(),
        "the last page has no next: {older}"
    );
    // The audit page pages by the same key, in its URL: from that cursor it shows the two older
    // entries' targets, and none that only the newest page has.
    let cookie = server.session_cookie().await;
    let html = request(
        server.addr,
        "GET",
        &format!("/audit?action=token.&after={next}"),
        &[("cookie", cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(html.status, 200);
    let targets = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target_id"].as_str().unwrap().to_owned())
            .collect()
    };
    for target in targets(&older) {
        assert!(html.body.contains(target.as_str()), "page 2 lacks {target}");
    }
    let (newest, older_targets) = (targets(&page), targets(&older));
    let only_newest: Vec<_> = newest
        .iter()
        .filter(|t| !older_targets.contains(t))
        .collect();
    assert!(!only_newest.is_empty(), "{newest:?} {older_targets:?}");
    for target in only_newest {
        assert!(
            !html.body.contains(target.as_str()),
            "page 2 repeats page 1's {target}"
        );
    }
    // A cursor Palisade did not give out is a 400 that names the parameter.
    let bad = server
        .call("GET", "/api/v1/audit?after=12:not-hex", &admin, "")
        .await;
    bad.assert_says(400, "after:");
    let revokes = server
        .call("GET", "/api/v1/audit?action=token.revoke", &admin, "")
        .await;
    let revokes: Value = serde_json::from_str(&revokes.body).unwrap();
    assert_eq!(revokes["total"], 1, "{revokes}");
    assert_eq!(revokes["entries"][0]["target_id"], id.as_str());
    assert_eq!(revokes["entries"][0]["actor_name"], "Test author");
    let csv = server
        .call(
            "GET",
            "/api/v1/audit/export?format=csv&action=token.revoke",
            &admin,
            "",
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/csv")));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[0].starts_with("id,at_ms,actor,actor_name,action"));
    assert!(lines[1].contains(",token.revoke,token,") && lines[1].contains(&id));
    let json = server
        .call("GET", "/api/v1/audit/export?action=token.", &admin, "")
        .await;
    let json: Vec<Value> = serde_json::from_str(&json.body).unwrap();
    assert_eq!(json.len(), 4);
    assert!(
        !csv.body.contains(secret.rsplit('_').next().unwrap()),
        "no secret in the audit log"
    );

    // An expired token is refused.
    sqlx::query("UPDATE api_tokens SET expires_ms = $1")
        .bind(now_ms() - 1)
        .execute(server.pool.pool())
        .await
        .unwrap();
    assert_eq!(
        server.call("GET", "/api/v1/me", &author, "").await.status,
        401
    );
    server.stop().await;
}

on_each_database!(api_tokens: sqlite_api_tokens, postgres_api_tokens);

/// An admin disables a person: their tokens stop at once and nothing else changes; enabled again,
/// the same tokens work. Nobody disables themselves; a body with anything else is refused.
async fn people_are_disabled_and_enabled(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let (admin_user, admin) = server.user_token(Role::Admin).await;
    let (author_user, author) = server.user_token(Role::Author).await;
    let path = format!("/api/v1/users/{}", author_user.user_id);

    let listed = server.call("GET", "/api/v1/users", &admin, "").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let people: Value = serde_json::from_str(&listed.body).unwrap();
    let row = |people: &Value, id: &str| {
        people
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not listed: {people:#}"))
    };
    assert_eq!(row(&people, &author_user.user_id)["access"], "active");

    let off = server
        .call("PATCH", &path, &admin, r#"{"disabled":true}"#)
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let off: Value = serde_json::from_str(&off.body).unwrap();
    assert_eq!(
        (off["access"].as_str(), off["role"].as_str()),
        (Some("disabled"), Some("author"))
    );
    assert_eq!(
        server.call("GET", "/api/v1/me", &author, "").await.status,
        401
    );
    // Nothing else changed: the token is not revoked, the role is kept.
    let revoked: Option<i64> =
        sqlx::query_scalar("SELECT revoked_ms FROM api_tokens WHERE user_id = $1")
            .bind(&author_user.user_id)
            .fetch_one(server.pool.pool())
            .await
            .unwrap();
    assert_eq!(revoked, None);

    let on = server
        .call("PATCH", &path, &admin, r#"{"disabled":false}"#)
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(
        server.call("GET", "/api/v1/me", &author, "").await.status,
        200
    );

    let own = format!("/api/v1/users/{}", admin_user.user_id);
    let myself = server
        .call("PATCH", &own, &admin, r#"{"disabled":true}"#)
        .await;
    assert_eq!(myself.status, 400, "{}", myself.body);
    assert!(
        myself.body.contains("disabled"),
        "names the field: {}",
        myself.body
    );
    let extra = server
        .call(
            "PATCH",
            &path,
            &admin,
            r#"{"disabled":true,"role":"admin"}"#,
        )
        .await;
    assert!(
        (400..500).contains(&extra.status),
        "{} {}",
        extra.status,
        extra.body
    );
    assert!(
        extra.body.contains("role"),
        "names the field: {}",
        extra.body
    );
    assert_eq!(
        server.call("GET", "/api/v1/me", &author, "").await.status,
        200
    );

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_entries WHERE action LIKE 'user.%' ORDER BY at_ms",
    )
    .fetch_all(server.pool.pool())
    .await
    .unwrap();
    assert_eq!(actions, ["user.disable", "user.enable"]);
    server.stop().await;
}

on_each_database!(
    people_are_disabled_and_enabled:
    sqlite_people_are_disabled_and_enabled,
    postgres_people_are_disabled_and_enabled
);

/// Sign-in attempts are limited per client address: the 4th in a minute gets 429.
async fn sign_in_is_rate_limited(backend: Backend) {
    let server = TestServer::start(
        backend,
        &[("PALISADE__AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "3")],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(sign_in(&server, "pbs_wrong", None).await.status, 303);
    }
    let limited = sign_in(&server, "pbs_wrong", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("60"));
    // Even the right secret waits: the limit is on attempts, not failures.
    let secret = server.bootstrap.clone().unwrap();
    assert_eq!(sign_in(&server, &secret, None).await.status, 429);
    server.stop().await;
}

/// Behind a trusted proxy each client has its own limit, and the local account has one over all
/// addresses; from anyone else, `X-Forwarded-For` is ignored, so forging it buys no attempts.
#[tokio::test]
async fn sign_in_limits_believe_only_trusted_proxies() {
    let server = TestServer::start(
        Backend::Sqlite,
        &[
            ("PALISADE__AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "3"),
            ("PALISADE__HTTP__TRUSTED_PROXIES", "[\"127.0.0.0/8\"]"),
        ],
    )
    .await;
    let from = |n: u32| format!("198.51.100.{n}");
    for _ in 0..3 {
        let reply = sign_in_from(&server, "pbs_wrong", None, Some(&from(1))).await;
        assert_eq!(reply.status, 303);
    }
    let limited = sign_in_from(&server, "pbs_wrong", None, Some(&from(1))).await;
    assert_eq!(
        limited.status, 429,
        "the client behind the proxy is limited"
    );
    // Another client behind the same proxy has its own limit...
    assert_eq!(
        sign_in_from(&server, "pbs_wrong", None, Some(&from(2)))
            .await
            .status,
        303
    );
    // ...until the account's own limit (ten clients' worth, 30) is spent: 4 attempts so far.
    let mut allowed = 0;
    for n in 3..40 {
        match sign_in_from(&server, "pbs_wrong", None, Some(&from(n)))
            .await
            .status
        {
            303 => allowed += 1,
            429 => break,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        allowed, 26,
        "the local account allows 30 attempts a minute in all"
    );
    server.stop().await;

    let server = TestServer::start(
        Backend::Sqlite,
        &[("PALISADE__AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "3")],
    )
    .await;
    for n in 1..=3 {
        let reply = sign_in_from(&server, "pbs_wrong", None, Some(&from(n))).await;
        assert_eq!(reply.status, 303);
    }
    let forged = sign_in_from(&server, "pbs_wrong", None, Some(&from(4))).await;
    assert_eq!(forged.status, 429, "a forged X-Forwarded-For buys nothing");
    server.stop().await;
}

on_each_database!(
    sign_in_is_rate_limited: sqlite_sign_in_is_rate_limited, postgres_sign_in_is_rate_limited
);

/// Behind https: the session cookie is `Secure` and HSTS is on; a cross-site sign-in form is refused.
async fn https_hardening(backend: Backend) {
    let server = TestServer::start(
        backend,
        &[("PALISADE__HTTP__PUBLIC_URL", "https://palisade.example.com")],
    )
    .await;
    let secret = server.bootstrap.clone().unwrap();
    let forged = request(
        server.addr,
        "POST",
        "/auth/local",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        &format!("secret={secret}"),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let signed_in = sign_in(&server, &secret, None).await;
    assert_eq!(
        signed_in.status, 303,
        "the forged attempt did not use the secret up"
    );
    let set_cookie = signed_in.header("set-cookie").unwrap();
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    assert_eq!(
        signed_in.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    server.stop().await;
}

on_each_database!(https_hardening: sqlite_https_hardening, postgres_https_hardening);
