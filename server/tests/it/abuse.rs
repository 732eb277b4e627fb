//! What an attacker would try against a running server, each as real requests: every attempt is
//! refused or absorbed within its budget, and the server still answers afterwards.

use palisade_app::policies::PolicyDetail;
use serde_json::{json, Value};

use crate::support::{peak_rss_kib_of, request, scratch_dir, Backend, People, Serving, TestServer};

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

/// What approvers review is what the steps apply: the proposed version's manifests, never the
/// policy's current version. An author saves a version 2 and then a version 3, proposes version
/// 2, and the review shows version 2.
#[tokio::test]
async fn the_review_shows_the_proposed_version_not_the_current_one() {
    let server = TestServer::with_key(&[]).await;
    let People { admin, author, .. } = server.people().await;
    server
        .api(&admin)
        .register_unreachable("review-1", "dev")
        .await;
    let detail = server.api(&author).adopt("disallow-privileged").await;
    for (base, marker) in [(1, "proposed-two"), (2, "current-three")] {
        let mut content = serde_json::to_value(&detail.current.content).unwrap();
        content["source"] = json!(detail.current.content.source.replace(
            "message: privileged containers are not allowed",
            &format!("message: {marker} privileged containers are not allowed"),
        ));
        content["base_version"] = json!(base);
        content["note"] = json!(marker);
        save_version(&server, &author, &content).await;
    }
    let rollout = propose_version_2(&server, &author).await;
    let reply = server
        .call(
            "POST",
            "/api/get_proposed_change",
            &admin,
            &json!({ "id": rollout.summary.id }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let change: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(change["version"], 2);
    let manifests = change["manifests"].as_str().unwrap();
    assert!(manifests.contains("proposed-two"), "{manifests}");
    assert!(!manifests.contains("current-three"), "{manifests}");
    // Nothing runs there yet: the diff adds every line of what will be applied.
    let cluster = &change["clusters"][0];
    assert_eq!(cluster["cluster"], "review-1");
    assert!(cluster["running"].is_null());
    assert_eq!(cluster["diff"]["removed"], 0);
    assert_eq!(
        cluster["diff"]["added"].as_u64().unwrap() as usize,
        manifests.lines().count()
    );
    server.stop().await;
}

/// The peak resident memory of this process so far, in KiB (the server runs inside it).
fn peak_rss_kib() -> u64 {
    peak_rss_kib_of("/proc/self/status")
}

/// Nested YAML aliases ("billion laughs"): a 200 KB document that would expand to a gigabyte is
/// refused by every path that reads policy YAML, naming the budget, without the memory.
#[tokio::test]
async fn yaml_alias_bombs_are_refused_without_expanding() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let People { author, .. } = server.people().await;
    let mut bomb = format!("pad: [{}]\n", vec!["x"; 100_000].join(","));
    bomb.push_str(&format!("a0: &a0 [\"{}\"]\n", "lol ".repeat(250)));
    for level in 1..=6 {
        let list = vec![format!("*a{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    assert!(bomb.len() < 250_000, "{}", bomb.len());
    let before = peak_rss_kib();
    let check = server
        .call(
            "POST",
            "/api/v1/policies/check",
            &author,
            &json!({ "source": bomb }).to_string(),
        )
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    let check: Value = serde_json::from_str(&check.body).unwrap();
    assert_eq!(check["valid"], false);
    let problem = check["problems"][0]["message"].as_str().unwrap();
    assert!(problem.contains("YAML aliases"), "{problem}");
    let created = server
        .call(
            "POST",
            "/api/v1/policies",
            &author,
            &json!({ "from": "yaml", "source": bomb }).to_string(),
        )
        .await;
    created.assert_says(400, "YAML aliases");
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("alias bomb: peak RSS grew by {grown_mib} MiB");
    assert!(grown_mib < 150, "peak RSS grew by {grown_mib} MiB");
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

/// Where disallow-privileged's versions are saved and listed.
const VERSIONS: &str = "/api/v1/policies/disallow-privileged/versions";

/// Save `content` as disallow-privileged's next version, as the holder of `token` (201).
async fn save_version(server: &TestServer, token: &str, content: &Value) {
    let saved = server
        .call("POST", VERSIONS, token, &content.to_string())
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
}

/// Propose version 2 of disallow-privileged in audit, to every cluster in one wave.
async fn propose_version_2(server: &TestServer, author: &str) -> palisade_app::rollouts::Rollout {
    server
        .api(author)
        .propose(json!({
            "policy": "disallow-privileged", "version": 2, "mode": "audit",
            "waves": [{ "selector": {} }],
        }))
        .await
}

/// A server with an author who has adopted disallow-privileged: it, the author's token and the
/// policy.
async fn an_author_with_disallow_privileged() -> (TestServer, String, PolicyDetail) {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let People { author, .. } = server.people().await;
    let detail = server.api(&author).adopt("disallow-privileged").await;
    (server, author, detail)
}

/// The History tab's diff: two versions whose descriptions differ in every one of 19,000 lines are
/// diffed in linear memory; a part past 20,000 lines is refused, naming it, instead of diffed.
#[tokio::test]
async fn large_diffs_stay_bounded() {
    let (server, author, detail) = an_author_with_disallow_privileged().await;
    // Short lines, so each version fits in one request: "a" 19,000 times, then "b" 150,000 times.
    for (base, line, lines) in [(1, "a", 19_000), (2, "b", 150_000)] {
        let mut content = serde_json::to_value(&detail.current.content).unwrap();
        content["description"] = json!(vec![line; lines].join("\n"));
        content["base_version"] = json!(base);
        save_version(&server, &author, &content).await;
    }
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    let diff = server
        .call(
            "GET",
            "/api/v1/policies/disallow-privileged/diff?from=1&to=2",
            &author,
            "",
        )
        .await;
    assert_eq!(
        diff.status,
        200,
        "{}",
        &diff.body[..diff.body.len().min(500)]
    );
    let diff: Value = serde_json::from_str(&diff.body).unwrap();
    assert_eq!(diff["files"][0]["name"], "description");
    assert_eq!(diff["files"][0]["added"], 19_000);
    let old_lines = detail.current.content.description.lines().count();
    assert_eq!(
        diff["files"][0]["removed"].as_u64().unwrap() as usize,
        old_lines
    );
    let too_large = server
        .call(
            "GET",
            "/api/v1/policies/disallow-privileged/diff?from=2&to=3",
            &author,
            "",
        )
        .await;
    too_large.assert_says(400, "description has 150000 lines in version 3");
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!(
        "large diffs: {:.2} s, peak RSS grew by {grown_mib} MiB",
        started.elapsed().as_secs_f64()
    );
    assert!(grown_mib < 200, "peak RSS grew by {grown_mib} MiB");
    server.stop().await;
}

/// Four eyes on the change: an approver who wrote the proposed version cannot approve its
/// rollout, though an author proposed it; another approver can.
#[tokio::test]
async fn the_author_of_a_version_cannot_approve_its_rollout() {
    let server = TestServer::with_key(&[]).await;
    let People {
        admin,
        author,
        approver,
    } = server.people().await;
    let other_approver = server.login_token(palisade_app::auth::Role::Approver).await;
    server
        .api(&admin)
        .register_unreachable("sod-1", "dev")
        .await;
    let detail = server.api(&author).adopt("disallow-privileged").await;
    // The approver writes version 2; the author proposes it.
    let mut content = serde_json::to_value(&detail.current.content).unwrap();
    content["remediation"] = json!("written by the approver");
    content["base_version"] = json!(1);
    save_version(&server, &approver, &content).await;
    let rollout = propose_version_2(&server, &author).await;
    let path = format!("/api/v1/rollouts/{}/approve", rollout.summary.id);
    let refused = server.call("POST", &path, &approver, "{}").await;
    refused.assert_says(403, "you wrote version 2");
    let approved = server.call("POST", &path, &other_approver, "{}").await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    server.stop().await;
}

/// A token cannot make a token that outlives it or outranks it, and the audit log says which
/// token made which.
#[tokio::test]
async fn a_token_cannot_outlive_or_outrank_the_token_that_makes_it() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let People { admin, .. } = server.people().await;
    let made = server.api(&admin).new_token("short", "author", 2).await;
    let short = made["secret"].as_str().unwrap().to_owned();
    let short_id = made["token"]["id"].as_str().unwrap().to_owned();
    for (body, why) in [
        (
            r#"{"name":"longer","role":"author","expires_in_days":3}"#,
            "outlive",
        ),
        (
            r#"{"name":"higher","role":"admin","expires_in_days":1}"#,
            "higher role",
        ),
    ] {
        let refused = server.call("POST", "/api/v1/tokens", &short, body).await;
        refused.assert_says(403, why);
    }
    server.api(&short).new_token("child", "viewer", 1).await;
    let audit = server
        .call("GET", "/api/v1/audit?action=token.create", &admin, "")
        .await;
    let audit: Value = serde_json::from_str(&audit.body).unwrap();
    let child_entry = audit["entries"][0]["detail"].as_str().unwrap().to_owned();
    assert!(child_entry.contains(&short_id), "{child_entry}");
    server.stop().await;
}

/// The bootstrap secret is printed only while no admin exists: once the local admin has signed
/// in, a restart prints none (and takes back any unused one); an operator on the host asks for a
/// new one with `palisade bootstrap-secret`, and it works once.
#[tokio::test]
async fn the_bootstrap_secret_is_printed_only_while_no_admin_exists() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    assert!(
        server.bootstrap.is_some(),
        "a fresh installation prints one"
    );
    server.session_cookie().await;
    let env = vec![
        (
            "PALISADE__HTTP__ADDRESS".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("PALISADE__DATABASE__URL".to_owned(), server.db.url.clone()),
    ];
    let config = palisade_server::Config::load_from(None, env).unwrap();
    let mut restarted = palisade_server::Server::start(&config).await.unwrap();
    assert!(
        restarted.take_bootstrap_secret().is_none(),
        "a restart with an admin prints no secret"
    );
    drop(restarted);
    let stdout = crate::support::palisade_on("bootstrap-secret", &server.db.url);
    let secret = stdout
        .split_whitespace()
        .find(|word| word.starts_with("pbs_"))
        .unwrap_or_else(|| panic!("no secret in {stdout}"))
        .to_owned();
    let sign_in = |secret: String| {
        let addr = server.addr;
        async move {
            request(
                addr,
                "POST",
                "/auth/local",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", &format!("http://{addr}")),
                ],
                &format!("secret={secret}&next=%2F"),
            )
            .await
        }
    };
    let first = sign_in(secret.clone()).await;
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"), "the new secret works");
    assert!(crate::support::cookie_of(&first).is_some());
    let again = sign_in(secret).await;
    assert_ne!(again.header("location"), Some("/"), "it works once");
    server.stop().await;
}

/// A server that waits at most a second for the next part of a request
/// (`http.header_read_timeout_secs`).
async fn impatient_server() -> TestServer {
    TestServer::start(
        Backend::Sqlite,
        &[("PALISADE__HTTP__HEADER_READ_TIMEOUT_SECS", "1")],
    )
    .await
}

/// A connection to `server` that sends the start of a request, `head`, and then nothing; the moment
/// it stopped.
async fn stall(server: &TestServer, head: &[u8]) -> (tokio::net::TcpStream, std::time::Instant) {
    use tokio::io::AsyncWriteExt;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(head).await.unwrap();
    (slow, std::time::Instant::now())
}

/// A client that sends its headers slowly ("slowloris") cannot hold a connection open: the
/// server closes it once `http.header_read_timeout_secs` has passed, and keeps answering others.
#[tokio::test]
async fn slow_headers_cannot_hold_a_connection() {
    use tokio::io::AsyncReadExt;
    let server = impatient_server().await;
    let (mut slow, started) = stall(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the connection was still open after 10 s");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900) && waited.as_secs() < 5,
        "closed after {waited:?}"
    );
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

/// A dev cluster, a production one (both unreachable: proposing does not reach them) and the
/// library's disallow-privileged policy.
async fn edge_clusters_and_a_policy(server: &TestServer, admin: &str, author: &str) {
    server
        .api(admin)
        .register_unreachable("edge-dev", "dev")
        .await;
    server
        .api(admin)
        .register_unreachable("edge-prod", "production")
        .await;
    server.api(author).adopt("disallow-privileged").await;
}

/// Propose disallow-privileged in two waves: dev with one approval, then every other cluster
/// (production among them) with `approvals`.
async fn propose_reaching_production(
    server: &TestServer,
    author: &str,
    approvals: u32,
) -> crate::support::Reply {
    let body = json!({ "policy": "disallow-privileged", "mode": "audit", "waves": [
        { "name": "dev", "selector": { "environment": "dev" }, "approvals": 1 },
        { "name": "rest", "selector": {}, "approvals": approvals },
    ] });
    server
        .call("POST", "/api/v1/rollouts", author, &body.to_string())
        .await
}

/// No change reaches a production cluster (by environment name or label) without an approval,
/// whatever wave it is in.
#[tokio::test]
async fn production_waves_need_an_approval() {
    let server = TestServer::with_key(&[]).await;
    let People { admin, author, .. } = server.people().await;
    edge_clusters_and_a_policy(&server, &admin, &author).await;
    let refused = propose_reaching_production(&server, &author, 0).await;
    refused.assert_says(400, "wave `rest` reaches production cluster `edge-prod`");
    // Two waves of one name, or a name past its budget: refused before anything is planned,
    // naming the wave.
    for (waves, expected) in [
        (
            json!([{ "selector": { "environment": "dev" } }, { "name": "dev", "selector": {} }]),
            "wave `dev`: wave 1 already has this name",
        ),
        (
            json!([{ "name": "x".repeat(64), "selector": {} }]),
            "waves[0].name: at most 63 characters",
        ),
    ] {
        let body = json!({ "policy": "disallow-privileged", "mode": "audit", "waves": waves });
        let reply = server
            .call("POST", "/api/v1/rollouts", &author, &body.to_string())
            .await;
        reply.assert_says(400, expected);
    }
    let accepted = propose_reaching_production(&server, &author, 1).await;
    assert_eq!(accepted.status, 201, "{}", accepted.body);
    // It waits for the admin's decision on the Overview, and for nobody's who may not approve.
    let rollout_id = serde_json::from_str::<Value>(&accepted.body).unwrap()["summary"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = server.call("POST", "/api/waiting_for_me", &admin, "").await;
    assert_eq!(waiting.status, 200, "{}", waiting.body);
    let waiting: Value = serde_json::from_str(&waiting.body).unwrap();
    assert_eq!(
        waiting["rollouts"][0]["id"],
        rollout_id.as_str(),
        "{waiting:#}"
    );
    let mine = server
        .call("POST", "/api/waiting_for_me", &author, "")
        .await;
    let mine: Value = serde_json::from_str(&mine.body).unwrap();
    assert_eq!(mine["approver"], false, "{mine:#}");
    assert_eq!(mine["rollouts"], json!([]));
    server.stop().await;

    // An operator who waives the rule (rollouts.production_needs_approval = false) may send a
    // later wave to production without an approval; the first wave still needs one.
    let server =
        TestServer::with_key(&[("PALISADE__ROLLOUTS__PRODUCTION_NEEDS_APPROVAL", "false")]).await;
    let People { admin, author, .. } = server.people().await;
    edge_clusters_and_a_policy(&server, &admin, &author).await;
    let waived = propose_reaching_production(&server, &author, 0).await;
    assert_eq!(waived.status, 201, "{}", waived.body);
    server.stop().await;
}

/// A policy applies only what its engine needs: a ClusterRoleBinding to cluster-admin in its
/// source or its parameters is refused at save, naming the kind and its line, and nothing is
/// saved.
#[tokio::test]
async fn a_policy_cannot_carry_a_cluster_admin_binding() {
    let (server, author, detail) = an_author_with_disallow_privileged().await;
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: palisade-owns-you\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: User\n  name: mallory\n";
    for field in ["source", "params"] {
        let mut content = serde_json::to_value(&detail.current.content).unwrap();
        let text = if field == "source" {
            format!("{}\n---\n{binding}", detail.current.content.source)
        } else {
            binding.to_owned()
        };
        content[field] = json!(text);
        content["base_version"] = json!(1);
        let refused = server
            .call("POST", VERSIONS, &author, &content.to_string())
            .await;
        assert!(
            refused.status == 400 || refused.status == 422,
            "{field}: {} {}",
            refused.status,
            refused.body
        );
        assert!(
            refused
                .body
                .contains("ClusterRoleBinding` is not something a policy may apply"),
            "{field}: {}",
            refused.body
        );
    }
    let versions = server.call("GET", VERSIONS, &author, "").await;
    let versions: Value = serde_json::from_str(&versions.body).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 1, "nothing was saved");
    server.stop().await;
}

/// A body that stops arriving ends its request: the server answers (an error) once
/// `http.header_read_timeout_secs` has passed without a part of the body, instead of waiting for
/// the rest forever.
#[tokio::test]
async fn a_stalled_body_ends_its_request() {
    use tokio::io::AsyncReadExt;
    let server = impatient_server().await;
    let People { author, .. } = server.people().await;
    let head = format!(
        "POST /api/v1/policies/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {author}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"source\": \""
    );
    let (mut slow, started) = stall(&server, head.as_bytes()).await;
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read(&mut answer))
        .await
        .expect("no answer within 10 s to a stalled body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

/// `method path` with `body` as the holder of `token`, to the server at `addr`.
async fn as_token(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> crate::support::Reply {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    request(addr, method, path, &headers, body).await
}

/// As `author` on the server at `addr`: paste `source`, and save it again as version 2 with one
/// case (any ConfigMap, expected to be allowed). The policy's id.
async fn saved_with_one_case(addr: std::net::SocketAddr, author: &str, source: &str) -> String {
    let paste = json!({ "from": "yaml", "source": source }).to_string();
    let created = as_token(addr, author, "POST", "/api/v1/policies", &paste).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = serde_json::from_str::<Value>(&created.body).unwrap()["policy"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let version = json!({
        "base_version": 1,
        "note": "a case",
        "source": source,
        "tests": [{
            "name": "any config map",
            "yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: default\n",
            "expect": "allow",
        }],
    });
    let path = format!("/api/v1/policies/{id}/versions");
    let saved = as_token(addr, author, "POST", &path, &version.to_string()).await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    id
}

/// As `author`, run the cases of version 2 of policy `id`: the run (201), and how long it took.
async fn run_cases(
    addr: std::net::SocketAddr,
    author: &str,
    id: &str,
) -> (Value, std::time::Duration) {
    let path = format!("/api/v1/policies/{id}/versions/2/test-runs");
    let started = std::time::Instant::now();
    let run = as_token(addr, author, "POST", &path, "").await;
    let took = started.elapsed();
    assert_eq!(run.status, 201, "{}", run.body);
    (serde_json::from_str(&run.body).unwrap(), took)
}

/// An author's CEL that would loop nine million times (or build a list of huge lists) is stopped
/// at the apiserver's cost limit, with the apiserver's words, in the test run of a saved version:
/// a per-case failure in well under the time the loop would take, and the server answers on.
#[tokio::test]
async fn runaway_cel_stops_at_the_apiservers_cost_limit() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let People { author, .. } = server.people().await;
    let source = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: runaway
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["configmaps"]
  validations:
    - expression: "lists.range(3000).all(x, lists.range(3000).all(y, x + y >= 0))"
    - expression: "lists.range(100000).map(x, lists.range(100000)).size() > 0"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: runaway
spec:
  policyName: runaway
  validationActions: ["Deny"]
"#;
    let id = saved_with_one_case(server.addr, &author, source).await;
    let before = peak_rss_kib();
    let (run, took) = run_cases(server.addr, &author, &id).await;
    assert_eq!(run["failed"], 1, "{run:#}");
    let text = run.to_string();
    assert!(
        text.contains("operation cancelled: actual cost limit exceeded"),
        "{run:#}"
    );
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("runaway CEL: refused in {took:?}, peak RSS grew by {grown_mib} MiB");
    assert!(grown_mib < 200, "peak RSS grew by {grown_mib} MiB");
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

/// A Gatekeeper template whose Rego doubles a string thirty times (a terabyte, unchecked) stops at
/// the heap ceiling in the test run of a saved version: a per-case failure that names the budget,
/// the server process (started on its own, so its memory is its own) stays near the ceiling, and it
/// answers afterwards.
#[tokio::test]
async fn growing_rego_stops_at_the_heap_ceiling() {
    // Arranges the database (migrations, an author's token); the served process shares its file.
    let arranged = TestServer::start(Backend::Sqlite, &[]).await;
    let author = arranged.login_token(palisade_app::auth::Role::Author).await;
    let dir = scratch_dir("palisade_rego_heap");
    let serving = Serving::start(
        &dir,
        &[
            ("PALISADE__DATABASE__URL", arranged.db.url.as_str()),
            ("PALISADE__EVALUATION__REGO_HEAP_CEILING_MIB", "256"),
            ("PALISADE__INGEST__SCAN_INTERVAL_SECS", "0"),
        ],
    );
    let mut doublings = String::from("          s0 := concat(\"\", [input.parameters.seed])\n");
    for step in 1..=30 {
        doublings.push_str(&format!(
            "          s{step} := concat(\"\", [s{p}, s{p}])\n",
            p = step - 1
        ));
    }
    let seed = "x".repeat(1024);
    let source = format!(
        r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sgrow
spec:
  crd:
    spec:
      names:
        kind: K8sGrow
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sgrow

        violation[{{"msg": msg}}] {{
{doublings}          msg := sprintf("grew to %v", [count(s30)])
        }}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sGrow
metadata:
  name: grow
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["ConfigMap"]
  parameters:
    seed: "{seed}"
"#
    );
    let id = saved_with_one_case(serving.addr, &author, &source).await;

    let before = serving.peak_rss_kib();
    let (run, took) = run_cases(serving.addr, &author, &id).await;
    let after = serving.peak_rss_kib();
    assert_eq!(run["failed"], 1, "{run:#}");
    let text = run.to_string();
    assert!(
        text.contains("evaluation exceeded its budget of memory")
            && text.contains("passed 256 MiB"),
        "{run:#}"
    );
    eprintln!(
        "growing Rego: refused in {took:?}; server peak RSS {} MiB before, {} MiB after (ceiling 256 MiB)",
        before / 1024,
        after / 1024
    );
    // The step that crosses the ceiling may allocate once more what it already held.
    assert!(after < 1024 * 1024, "peak RSS reached {} MiB", after / 1024);
    assert_eq!(
        request(serving.addr, "GET", "/healthz", &[], "")
            .await
            .status,
        200
    );
    let (exit, rest) = serving.stop().await;
    assert!(exit.success(), "exit {exit:?}: {rest}");
    let _ = std::fs::remove_dir_all(&dir);
    arranged.stop().await;
}
