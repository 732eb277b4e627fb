//! Palisade terminating TLS itself (`http.tls_cert_file` / `http.tls_key_file`): a real
//! kube-apiserver of the test bed posts its audit events straight to the https ingest URL with the
//! cluster's ingest token (no relay in between), cookies and HSTS follow the https scheme, plain
//! http gets no answer, and a renewed certificate is served without a restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{free_port, Backend, TestServer};

const KEY: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn clusters_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/clusters")
}

/// A CA and a server certificate for 127.0.0.1 in `dir`, made by the test bed's helper.
fn pki(dir: &Path, name: &str) {
    let status = Command::new(clusters_script())
        .arg("pki")
        .arg(dir)
        .arg(name)
        .status()
        .expect("run e2e/clusters pki");
    assert!(
        status.success(),
        "e2e/clusters pki {} failed",
        dir.display()
    );
}

/// An answer read over TLS: status, the head's text (lower-case names) and the body.
struct TlsReply {
    status: u16,
    head: String,
    body: String,
}

impl TlsReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// One request over TLS, trusting only the CA in `ca`; `Err` when the handshake fails.
async fn tls_call(
    addr: SocketAddr,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<TlsReply, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // A server that closes without close_notify still sent a whole answer.
    let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(TlsReply {
        status,
        head: head.to_owned(),
        body,
    })
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A one-cluster test bed of its own, in `state`, stopped (by its PIDs) when dropped.
struct OwnTestbed {
    state: PathBuf,
}

impl Drop for OwnTestbed {
    fn drop(&mut self) {
        let _ = Command::new(clusters_script())
            .arg("down")
            .env("PALISADE_TESTBED_DIR", &self.state)
            .status();
    }
}

#[tokio::test]
async fn an_apiserver_posts_audit_events_straight_to_palisade_over_https() {
    let dir = std::env::temp_dir().join(format!(
        "palisade-tls-it-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (dir.join("first"), dir.join("second"));
    pki(&first, "palisade-first");
    pki(&second, "palisade-second");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::copy(first.join("apiserver.crt"), &cert).unwrap();
    std::fs::copy(first.join("apiserver.key"), &key).unwrap();

    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let public = format!("https://{address}");
    let server = TestServer::start(
        Backend::Sqlite,
        &[
            ("PALISADE__HTTP__ADDRESS", &address),
            ("PALISADE__HTTP__PUBLIC_URL", &public),
            ("PALISADE__HTTP__TLS_CERT_FILE", cert.to_str().unwrap()),
            ("PALISADE__HTTP__TLS_KEY_FILE", key.to_str().unwrap()),
            ("PALISADE__SECRETS__KEY", KEY),
        ],
    )
    .await;
    let ca = first.join("ca.crt");
    let addr = server.addr;

    // https answers, with HSTS; plain http on the same port gets no answer.
    let health = tls_call(addr, &ca, "GET", "/healthz", &[], "")
        .await
        .unwrap();
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(
        health
            .header("strict-transport-security")
            .is_some_and(|v| v.contains("max-age")),
        "{}",
        health.head
    );
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain http was answered: {}",
        String::from_utf8_lossy(&answer)
    );

    // The sign-in page's session cookie is Secure.
    let login = tls_call(addr, &ca, "GET", "/login", &[], "").await.unwrap();
    if let Some(cookie) = login.header("set-cookie") {
        assert!(cookie.contains("Secure"), "{cookie}");
    }

    // A cluster and its ingest token, over https.
    let admin = server.login_token(palisade_app::auth::Role::Admin).await;
    let bearer = format!("Bearer {admin}");
    let auth = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let body = json!({
        "name": "direct", "environment": "dev",
        "credentials": { "kind": "token", "api_url": "https://127.0.0.1:9", "ca_pem": "", "token": "t" },
    })
    .to_string();
    let created = tls_call(addr, &ca, "POST", "/api/v1/clusters", &auth, &body)
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let cluster_id = serde_json::from_str::<Value>(&created.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = tls_call(
        addr,
        &ca,
        "POST",
        &format!("/api/v1/clusters/{cluster_id}/ingest-token"),
        &auth,
        "",
    )
    .await
    .unwrap();
    assert_eq!(token.status, 200, "{}", token.body);
    let token: Value = serde_json::from_str(&token.body).unwrap();
    let ingest_url = token["url"].as_str().unwrap().to_owned();
    assert!(ingest_url.starts_with(&public), "{ingest_url}");
    let token_file = dir.join("ingest.token");
    std::fs::write(&token_file, token["token"].as_str().unwrap()).unwrap();

    // A kube-apiserver whose audit webhook is Palisade's https ingest URL, trusting its CA.
    let state = dir.join("testbed");
    let testbed = OwnTestbed {
        state: state.clone(),
    };
    let up = Command::new(clusters_script())
        .arg("up")
        .arg("1")
        .arg("--owner-pid")
        .arg(std::process::id().to_string())
        .arg("--audit-webhook-url")
        .arg(&ingest_url)
        .arg("--audit-webhook-ca")
        .arg(&ca)
        .arg("--audit-webhook-token")
        .arg(&token_file)
        .env("PALISADE_TESTBED_DIR", &state)
        .status()
        .expect("run e2e/clusters up");
    assert!(up.success(), "e2e/clusters up 1 failed");
    let client =
        palisade_testbed::client_from_kubeconfig(&state.join("cluster-1/admin.kubeconfig"))
            .await
            .unwrap();

    // A privileged Deployment in a namespace audited at baseline: the apiserver's Pod Security
    // audit finding reaches Palisade as a violation of that cluster.
    let namespace = palisade_testbed::unique_name("tls-direct");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": namespace, "labels": {
                    "pod-security.kubernetes.io/audit": "baseline",
                } },
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client, &namespace);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "privileged" },
                "spec": {
                    "selector": { "matchLabels": { "app": "privileged" } },
                    "template": {
                        "metadata": { "labels": { "app": "privileged" } },
                        "spec": { "containers": [{
                            "name": "app", "image": "registry.example.com/app:1.0",
                            "securityContext": { "privileged": true },
                        }] },
                    },
                },
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut found = 0;
    for _ in 0..60 {
        found = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM violations WHERE cluster_id = $1 AND namespace = $2",
        )
        .bind(&cluster_id)
        .bind(&namespace)
        .fetch_one(server.pool.pool())
        .await
        .unwrap();
        if found > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        found > 0,
        "no violation arrived from the apiserver over https within 30 s"
    );
    drop(testbed);

    // A renewed certificate (another CA's) is served without a restart.
    std::fs::copy(second.join("apiserver.crt"), &cert).unwrap();
    std::fs::copy(second.join("apiserver.key"), &key).unwrap();
    let new_ca = second.join("ca.crt");
    let mut renewed = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(reply) = tls_call(addr, &new_ca, "GET", "/healthz", &[], "").await {
            assert_eq!(reply.status, 200);
            renewed = true;
            break;
        }
    }
    assert!(
        renewed,
        "the renewed certificate was not served within 10 s"
    );
    assert!(
        tls_call(addr, &ca, "GET", "/healthz", &[], "")
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bad certificate setting stops start-up and names the setting and the file.
#[tokio::test]
async fn a_missing_certificate_names_the_setting() {
    let missing = std::env::temp_dir().join("palisade-no-such-cert.pem");
    let config = palisade_server::config::Config::load_from(
        None,
        vec![
            (
                "PALISADE__HTTP__ADDRESS".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            (
                "PALISADE__HTTP__TLS_CERT_FILE".to_owned(),
                missing.to_string_lossy().into_owned(),
            ),
            (
                "PALISADE__HTTP__TLS_KEY_FILE".to_owned(),
                missing.to_string_lossy().into_owned(),
            ),
        ],
    )
    .expect("the settings themselves are well formed");
    let err = palisade_server::Server::start(&config)
        .await
        .err()
        .expect("start-up refuses a missing certificate")
        .to_string();
    assert!(err.contains("http.tls_cert_file"), "{err}");
    assert!(err.contains("palisade-no-such-cert.pem"), "{err}");
    let half = palisade_server::config::Config::load_from(
        None,
        vec![(
            "PALISADE__HTTP__TLS_KEY_FILE".to_owned(),
            missing.to_string_lossy().into_owned(),
        )],
    )
    .expect_err("a key without a certificate is refused")
    .to_string();
    assert!(half.contains("http.tls_cert_file"), "{half}");
}
