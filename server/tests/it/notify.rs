//! Notifications: a proposed rollout and a deny spike reach a Slack-compatible webhook (a real HTTP
//! receiver in the test), once each, after a failed first delivery is retried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_app::auth::Role;
use serde_json::{json, Value};

use crate::support::{on_each_database, request, Backend, TestServer, KEY};

#[derive(Default)]
struct Hook {
    calls: AtomicUsize,
    delivered: Mutex<Vec<Value>>,
}

/// A webhook that answers the first call 500 and every later one 200, keeping what it accepted.
async fn start_hook() -> (std::net::SocketAddr, Arc<Hook>) {
    let hook = Arc::new(Hook::default());
    let state = hook.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                if state.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                state.delivered.lock().unwrap().push(value);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hook)
}

async fn wait_for(hook: &Hook, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(hit) = hook
            .delivered
            .lock()
            .unwrap()
            .iter()
            .find(|v| pred(v))
            .cloned()
        {
            return hit;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not delivered within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn notices_reach_the_webhook(backend: Backend) {
    let (addr, hook) = start_hook().await;
    let url = format!("http://{addr}/hook");
    let server = TestServer::start(
        backend,
        &[
            ("PALISADE__SECRETS__KEY", KEY),
            ("PALISADE__NOTIFICATIONS__WEBHOOK_URL", &url),
            ("PALISADE__HTTP__PUBLIC_URL", "https://palisade.example.com"),
            ("PALISADE__INGEST__DENY_SPIKE_PER_HOUR", "2"),
            ("PALISADE__ROLLOUTS__POLL_MS", "3600000"),
        ],
    )
    .await;
    let admin = server.login_token(Role::Admin).await;
    let author = server.login_token(Role::Author).await;
    let cluster = server
        .api(&admin)
        .register_unreachable("notify-1", "dev")
        .await
        .id;
    let author_api = server.api(&author);
    author_api.adopt("disallow-privileged").await;
    let rollout = author_api
        .propose(json!({ "policy": "disallow-privileged", "mode": "audit", "waves": [{ "selector": {} }] }))
        .await
        .summary
        .id;

    // The first delivery is refused (500); the retry lands, once.
    let approval = wait_for(&hook, "the approval request", |v| {
        v["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Approval requested: disallow-privileged to audit")
    })
    .await;
    let text = approval["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "<https://palisade.example.com/rollouts/{rollout}>"
        )),
        "{text}"
    );
    assert_eq!(approval["blocks"][0]["text"]["text"], text);
    assert_eq!(approval["palisade"]["kind"], "approval_requested");
    // The webhook sees the notice before the sender hears back and marks it sent: wait for that.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (attempts, sent) = loop {
        let (attempts, sent): (i64, i64) = sqlx::query_as(
            "SELECT attempts, sent_ms FROM notifications WHERE kind = 'approval_requested'",
        )
        .fetch_one(server.pool.pool())
        .await
        .unwrap();
        if sent > 0 || Instant::now() > deadline {
            break (attempts, sent);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts, 2, "refused once, then delivered");
    assert!(sent > 0, "delivered but never marked sent");

    // Three denials of one constraint within the hour cross a threshold of two: one spike notice.
    let token = server.api(&admin).ingest_token(&cluster).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let denial = |id: &str| {
        json!({
            "kind": "Event", "auditID": id, "stage": "ResponseComplete",
            "objectRef": { "resource": "pods", "namespace": "shop", "name": id },
            "responseStatus": { "code": 403, "message": "admission webhook \"validation.gatekeeper.sh\" denied the request: [must-have-owner] owner label missing" },
        })
    };
    let batch = json!({ "kind": "EventList", "items": [denial("d1"), denial("d2"), denial("d3")] })
        .to_string();
    let bearer = format!("Bearer {token}");
    let reply = request(
        server.addr,
        "POST",
        "/api/v1/ingest/audit",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
        ],
        &batch,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let spike = wait_for(&hook, "the deny spike", |v| {
        v["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Deny spike: must-have-owner")
    })
    .await;
    assert!(
        spike["text"]
            .as_str()
            .unwrap()
            .contains("3 requests denied"),
        "{spike:#}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = hook.delivered.lock().unwrap().clone();
    assert_eq!(
        delivered.len(),
        2,
        "each notice exactly once: {delivered:#?}"
    );
    server.stop().await;
}

on_each_database!(
    notices_reach_the_webhook: sqlite_notices_reach_the_webhook, postgres_notices_reach_the_webhook
);
