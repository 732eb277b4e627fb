//! Single sign-on against a real OpenID provider (npm `oidc-provider`, started from
//! `e2e/oidc/provider.mjs`; install it with `npm ci` in `e2e/`): code + PKCE, state and nonce
//! checks, group → role mapping, and RP-initiated logout, on both databases.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{
    cookie_of, free_port, on_each_database, request, sign_out, token_from_page, Backend, Reply,
    TestServer,
};

const CLIENT_SECRET: &str = "test-client-secret-1b7e";

struct Provider {
    child: Child,
    issuer: String,
    /// The groups file the provider reads at every sign-in (user → groups).
    groups: std::path::PathBuf,
}

impl Provider {
    /// From the next sign-in on, `user` is in exactly `groups`.
    fn set_groups(&self, user: &str, groups: &[&str]) {
        std::fs::write(
            &self.groups,
            serde_json::json!({ user: groups }).to_string(),
        )
        .unwrap();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.groups);
    }
}

fn start_provider(palisade: &str) -> Provider {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e");
    assert!(
        std::path::Path::new(e2e)
            .join("node_modules/oidc-provider")
            .is_dir(),
        "the OIDC tests need npm `oidc-provider`: run `npm ci` in e2e/"
    );
    let groups = std::env::temp_dir().join(format!(
        "palisade-oidc-groups-{}-{}.json",
        std::process::id(),
        free_port()
    ));
    let mut child = Command::new("node")
        .arg("oidc/provider.mjs")
        .current_dir(e2e)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_GROUPS_FILE", &groups)
        .env(
            "OIDC_REDIRECT_URI",
            format!("{palisade}/auth/oidc/callback"),
        )
        .env(
            "OIDC_POST_LOGOUT_URI",
            format!("{palisade}/login?signed_out=1"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node e2e/oidc/provider.mjs");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // The provider keeps writing notices on stdout; a closed pipe would crash it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let issuer = serde_json::from_str::<Value>(&line).expect("the provider's first line")["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    Provider {
        child,
        issuer,
        groups,
    }
}

/// `http://host:port/path?query` → (address, path and query).
fn split(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    (host.parse().unwrap(), format!("/{path}"))
}

/// A browser's part of the provider's login: follow redirects, fill the development login form
/// as `user`, confirm consent, and stop at the redirect back to Palisade (returned, not followed).
async fn through_provider(start: &str, user: &str, palisade: &str) -> String {
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut next = (start.to_owned(), "GET", String::new());
    for _ in 0..20 {
        let (url, method, body) = next.clone();
        if url.starts_with(palisade) {
            return url;
        }
        let (addr, path) = split(&url);
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let reply = request(
            addr,
            method,
            &path,
            &[
                ("cookie", &jar),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &body,
        )
        .await;
        for set in reply.headers.get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(location) = reply.header("location") {
            let absolute = if location.starts_with('/') {
                format!("http://{addr}{location}")
            } else {
                location.to_owned()
            };
            next = (absolute, "GET", String::new());
        } else if reply.status == 200 && path.starts_with("/interaction/") {
            let uid = path
                .trim_start_matches("/interaction/")
                .split('/')
                .next()
                .unwrap();
            next = if reply.body.contains("name=\"login\"") {
                (
                    format!("http://{addr}/interaction/{uid}"),
                    "POST",
                    format!("prompt=login&login={user}&password=any"),
                )
            } else {
                (
                    format!("http://{addr}/interaction/{uid}"),
                    "POST",
                    "prompt=consent".to_owned(),
                )
            };
        } else {
            panic!(
                "unexpected answer from the provider at {path}: {} {}",
                reply.status, reply.body
            );
        }
    }
    panic!("the provider never sent the browser back");
}

async fn start_sign_in(server: &TestServer) -> (String, String) {
    let reply = request(
        server.addr,
        "GET",
        "/auth/oidc/start?next=%2Fpolicies",
        &[],
        "",
    )
    .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = cookie_of(&reply).expect("a pre-sign-in session");
    (cookie, reply.header("location").unwrap().to_owned())
}

/// Palisade sent the browser back to its sign-in page with error `code`.
fn assert_refused(reply: &Reply, code: &str) {
    let location = reply.header("location");
    assert!(
        location.is_some_and(|l| l.starts_with(&format!("/login?error={code}"))),
        "{location:?}"
    );
}

async fn finish(server: &TestServer, callback: &str, cookie: &str, palisade: &str) -> Reply {
    let path = callback.strip_prefix(palisade).unwrap();
    request(server.addr, "GET", path, &[("cookie", cookie)], "").await
}

/// A whole sign-in as `user`: Palisade's answer to the provider's redirect back.
async fn sign_in_as(server: &TestServer, user: &str, palisade: &str) -> Reply {
    let (pre, authorize) = start_sign_in(server).await;
    let callback = through_provider(&authorize, user, palisade).await;
    finish(server, &callback, &pre, palisade).await
}

async fn single_sign_on(backend: Backend) {
    let port = free_port();
    let palisade = format!("http://127.0.0.1:{port}");
    let provider = start_provider(&palisade);
    let address = format!("127.0.0.1:{port}");
    let server = TestServer::start(
        backend,
        &[
            ("PALISADE__HTTP__ADDRESS", &address),
            ("PALISADE__HTTP__PUBLIC_URL", &palisade),
            ("PALISADE__OIDC__ISSUER_URL", &provider.issuer),
            ("PALISADE__OIDC__CLIENT_ID", "palisade"),
            // Every start and callback counts as a sign-in attempt; this test makes many.
            ("PALISADE__AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "100"),
            ("PALISADE__OIDC__CLIENT_SECRET", CLIENT_SECRET),
            ("PALISADE__OIDC__VIEWER_GROUPS", "[\"palisade-viewers\"]"),
            ("PALISADE__OIDC__AUTHOR_GROUPS", "[\"palisade-authors\"]"),
            (
                "PALISADE__OIDC__APPROVER_GROUPS",
                "[\"palisade-approvers\"]",
            ),
            ("PALISADE__OIDC__ADMIN_GROUPS", "[\"palisade-admins\"]"),
        ],
    )
    .await;
    assert!(
        server.bootstrap.is_none(),
        "no local admin once SSO is configured"
    );

    // Each role group signs in with its role; the session id changes at sign-in.
    for (user, role) in [
        ("author", "author"),
        ("approver", "approver"),
        ("viewer", "viewer"),
    ] {
        let (pre, authorize) = start_sign_in(&server).await;
        assert!(authorize.starts_with(&provider.issuer), "{authorize}");
        for part in [
            "code_challenge=",
            "code_challenge_method=S256",
            "state=",
            "nonce=",
        ] {
            assert!(authorize.contains(part), "{part} missing in {authorize}");
        }
        let callback = through_provider(&authorize, user, &palisade).await;
        let done = finish(&server, &callback, &pre, &palisade).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.header("location"), Some("/policies"));
        let cookie = cookie_of(&done).expect("a signed-in session");
        assert_ne!(cookie, pre, "the session id changes at sign-in");
        let me = request(server.addr, "GET", "/api/v1/me", &[("cookie", &cookie)], "").await;
        assert_eq!(me.status, 200, "{}", me.body);
        let me: Value = serde_json::from_str(&me.body).unwrap();
        assert_eq!(
            (me["role"].as_str(), me["display_name"].as_str()),
            (Some(role), Some(user))
        );
        // The old (pre-sign-in) cookie gives nobody.
        let old = request(server.addr, "GET", "/api/v1/me", &[("cookie", &pre)], "").await;
        assert_eq!(old.status, 401);

        if user == "viewer" {
            // Logout ends the session here and sends the browser to the provider's logout.
            let origin = palisade.clone();
            let out = sign_out(server.addr, &cookie, &origin).await;
            assert_eq!(out.status, 303);
            let location = out.header("location").unwrap();
            assert!(location.starts_with(&provider.issuer), "{location}");
            assert!(location.contains("id_token_hint="), "{location}");
            assert!(location.contains("post_logout_redirect_uri="), "{location}");
            let after = request(server.addr, "GET", "/api/v1/me", &[("cookie", &cookie)], "").await;
            assert_eq!(after.status, 401, "the old cookie is refused after logout");
        }
    }

    // A user in no mapped group gets no role and no session.
    let (pre, authorize) = start_sign_in(&server).await;
    let callback = through_provider(&authorize, "outsider", &palisade).await;
    let refused = finish(&server, &callback, &pre, &palisade).await;
    assert_refused(&refused, "no_role");

    // Someone who leaves every mapped group loses their role at their next sign-in attempt: the
    // session and API token they hold stop at once; back in a group, a sign-in restores both.
    let signed_in = sign_in_as(&server, "author", &palisade).await;
    let cookie = cookie_of(&signed_in).expect("a signed-in session");
    let secret = token_from_page(
        server.addr,
        (&cookie, &palisade),
        r#"{"name":"ci","role":"author","expires_in_days":7}"#,
    )
    .await;
    let bearer = format!("Bearer {secret}");
    let me_by = |headers: Vec<(&'static str, String)>| {
        let addr = server.addr;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request(addr, "GET", "/api/v1/me", &headers, "")
                .await
                .status
        }
    };
    assert_eq!(me_by(vec![("cookie", cookie.clone())]).await, 200);
    assert_eq!(me_by(vec![("authorization", bearer.clone())]).await, 200);
    provider.set_groups("author", &["somewhere-else"]);
    let refused = sign_in_as(&server, "author", &palisade).await;
    assert_refused(&refused, "no_role");
    assert_eq!(
        me_by(vec![("cookie", cookie.clone())]).await,
        401,
        "the live session stopped"
    );
    assert_eq!(
        me_by(vec![("authorization", bearer.clone())]).await,
        401,
        "the token stopped"
    );
    let lost: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE action = 'user.groups_lost'")
            .fetch_one(server.pool.pool())
            .await
            .unwrap();
    assert_eq!(lost, 1);
    provider.set_groups("author", &["palisade-authors"]);
    let back = sign_in_as(&server, "author", &palisade).await;
    assert_eq!(back.header("location"), Some("/policies"));
    assert_eq!(
        me_by(vec![("authorization", bearer.clone())]).await,
        200,
        "back in a group"
    );

    // A tampered state is refused, and the attempt is used up.
    let (pre, authorize) = start_sign_in(&server).await;
    let callback = through_provider(&authorize, "author", &palisade).await;
    let tampered = callback.replace("state=", "state=x");
    let refused = finish(&server, &tampered, &pre, &palisade).await;
    assert_refused(&refused, "state");
    let replay = finish(&server, &callback, &pre, &palisade).await;
    assert!(
        replay
            .header("location")
            .is_some_and(|l| l.starts_with("/login?error=expired")),
        "the genuine callback cannot be replayed after a refusal: {:?}",
        replay.header("location")
    );

    // A tampered nonce (the one kept in the session) is refused: the ID token does not match.
    let (pre, authorize) = start_sign_in(&server).await;
    let callback = through_provider(&authorize, "author", &palisade).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, data FROM sessions WHERE data LIKE '%nonce%'")
            .fetch_all(server.pool.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "one sign-in in progress");
    let (id, data) = &rows[0];
    let mut data: Value = serde_json::from_str(data).unwrap();
    data["oidc_pending"]["nonce"] = Value::from("tampered");
    sqlx::query("UPDATE sessions SET data = $1 WHERE id = $2")
        .bind(data.to_string())
        .bind(id)
        .execute(server.pool.pool())
        .await
        .unwrap();
    let refused = finish(&server, &callback, &pre, &palisade).await;
    assert_refused(&refused, "nonce");

    let logins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE action = 'session.login'")
            .fetch_one(server.pool.pool())
            .await
            .unwrap();
    assert_eq!(logins, 5, "three roles, and the author twice more");
    server.stop().await;
    drop(provider);
}

on_each_database!(single_sign_on: sqlite_single_sign_on, postgres_single_sign_on);
