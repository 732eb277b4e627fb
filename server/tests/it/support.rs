//! Shared test support: real databases (a SQLite file or a fresh PostgreSQL database), a real server
//! on 127.0.0.1:0, and a small HTTP client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use palisade_app::account::ssr::upsert_user;
use palisade_app::auth::{Principal, Role, Via};
use palisade_app::clusters::ssr::Credentials;
use palisade_app::clusters::CredentialsInput;
use palisade_server::config::Config;
use palisade_server::{Server, StartupError};
use sqlx::Connection;

/// The PostgreSQL server the test command starts (`scripts/test`), as an admin URL.
pub const POSTGRES_ENV: &str = "PALISADE_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Two tests of one scenario (an `async fn(Backend)`), named `$sqlite` and `$postgres`: one on a
/// SQLite file, one on a fresh PostgreSQL database.
macro_rules! on_each_database {
    ($scenario:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $scenario($crate::support::Backend::Sqlite).await;
        }

        #[tokio::test]
        async fn $postgres() {
            $scenario($crate::support::Backend::Postgres).await;
        }
    };
}
pub(crate) use on_each_database;

/// The secrets key test servers run with (64 hex digits), so clusters can be registered.
pub const KEY: &str = "5b1f0c3e9a7d4e2f8c6b0a1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f";

/// A database that exists only for one test.
pub struct TestDb {
    pub url: String,
    sqlite_dir: Option<PathBuf>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = scratch_dir("palisade_sqlite");
                TestDb {
                    url: format!("sqlite://{}/palisade.db", dir.display()),
                    sqlite_dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
                    panic!(
                        "{POSTGRES_ENV} is not set: the PostgreSQL tests need a real server. \
                         Run them through `scripts/test`, which starts one, or set {POSTGRES_ENV} \
                         to an admin URL such as postgres://postgres@127.0.0.1:5432/postgres"
                    )
                });
                sqlx::any::install_default_drivers();
                let name = unique("palisade_test");
                let limit = std::time::Duration::from_secs(30);
                let mut conn = tokio::time::timeout(limit, sqlx::AnyConnection::connect(&admin))
                    .await
                    .unwrap_or_else(|_| panic!("{POSTGRES_ENV} did not answer within 30 s"))
                    .unwrap_or_else(|err| panic!("cannot reach {POSTGRES_ENV}: {err}"));
                tokio::time::timeout(
                    limit,
                    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn),
                )
                .await
                .unwrap_or_else(|_| panic!("CREATE DATABASE {name} took over 30 s"))
                .expect("create test database");
                conn.close().await.ok();
                let base = admin
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    sqlite_dir: None,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A real server, in this process, on 127.0.0.1 and a port the OS picked.
pub struct TestServer {
    pub addr: SocketAddr,
    pub db: TestDb,
    /// The server's own pool, for arranging data directly.
    pub pool: palisade_app::db::Db,
    /// The server's authentication state (its session store), for arranging sessions directly.
    pub auth: palisade_server::auth::Auth,
    /// This start's one-time bootstrap secret (local sign-in), if local sign-in is on.
    pub bootstrap: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), StartupError>>>,
}

impl TestServer {
    /// Start against a fresh database of `backend`, with extra `PALISADE__*` settings.
    pub async fn start(backend: Backend, settings: &[(&str, &str)]) -> TestServer {
        let db = TestDb::new(backend).await;
        let mut env = vec![
            (
                "PALISADE__HTTP__ADDRESS".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("PALISADE__DATABASE__URL".to_owned(), db.url.clone()),
            (
                "PALISADE__HTTP__SHUTDOWN_GRACE_SECS".to_owned(),
                "5".to_owned(),
            ),
        ];
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load_from(None, env).expect("test config");
        let mut server =
            tokio::time::timeout(std::time::Duration::from_secs(60), Server::start(&config))
                .await
                .expect("the server did not start within 60 s")
                .expect("start server");
        let addr = server.local_addr().expect("local addr");
        let bootstrap = server
            .take_bootstrap_secret()
            .map(|secret| secret.reveal().to_owned());
        let pool = server.auth().db.clone();
        let auth = server.auth().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            db,
            pool,
            auth,
            bootstrap,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Start on a SQLite file with the secrets key [`KEY`] (so clusters can be registered) and
    /// `settings` on top.
    pub async fn with_key(settings: &[(&str, &str)]) -> TestServer {
        let mut all = vec![("PALISADE__SECRETS__KEY", KEY)];
        all.extend_from_slice(settings);
        TestServer::start(Backend::Sqlite, &all).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], "").await
    }

    /// Tokens of an admin, an author and an approver: the three people most scenarios need.
    pub async fn people(&self) -> People {
        People {
            admin: self.login_token(Role::Admin).await,
            author: self.login_token(Role::Author).await,
            approver: self.login_token(Role::Approver).await,
        }
    }

    /// A user with `role` (created directly in the database) and an API token for them, made
    /// through the same function Settings uses. Returns the token's secret.
    pub async fn login_token(&self, role: Role) -> String {
        self.user_token(role).await.1
    }

    /// Like [`TestServer::login_token`], also returning the user's principal.
    pub async fn user_token(&self, role: Role) -> (Principal, String) {
        let now = palisade_app::db::now_ms();
        let subject = unique(role.as_str());
        let user_id = upsert_user(
            self.pool.pool(),
            "test",
            &subject,
            &format!("Test {role}"),
            "",
            role,
            now,
        )
        .await
        .expect("create user");
        let principal = Principal {
            user_id,
            display_name: format!("Test {role}"),
            role,
            via: Via::Token,
            from: "127.0.0.1".into(),
            token: None,
        };
        let (_, secret) = palisade_server::auth::tokens::issue(
            &self.pool,
            &principal,
            "test",
            role,
            // Longer than any token it may create (a token cannot outlive its creator).
            now + 400 * 24 * 60 * 60 * 1000,
        )
        .await
        .expect("issue token");
        (principal, secret)
    }

    /// `method path` with `Authorization: Bearer <token>` and a JSON body (if not empty).
    pub async fn call(&self, method: &str, path: &str, token: &str, body: &str) -> Reply {
        let bearer = format!("Bearer {token}");
        request(
            self.addr,
            method,
            path,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Sign in as the local admin with this start's bootstrap secret, as a browser's form would;
    /// returns the `Cookie` header value of the new session.
    pub async fn session_cookie(&self) -> String {
        let secret = self.bootstrap.as_deref().expect("local sign-in is on");
        let reply = request(
            self.addr,
            "POST",
            "/auth/local",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &format!("http://{}", self.addr)),
            ],
            &format!("secret={secret}&next=%2F"),
        )
        .await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        cookie_of(&reply).expect("a session cookie")
    }

    /// Tell the server to shut down (as SIGTERM would), without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server has stopped serving altogether.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|task| task.is_finished())
    }

    /// Stop the server and wait for it to finish.
    pub async fn stop(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("the server did not stop within 30 s of its shutdown signal")
                .expect("server task")
                .expect("server result");
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// The `name=value` of the session cookie a reply sets, if any.
pub fn cookie_of(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("palisade_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

impl Reply {
    /// The reply has status `status` and says `words`; if not, fail showing its body.
    #[track_caller]
    pub fn assert_says(&self, status: u16, words: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(words), "{}", self.body);
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// API tokens of three people with different roles.
pub struct People {
    pub admin: String,
    pub author: String,
    pub approver: String,
}

/// `method path` with a JSON `body` as a browser's page would send it: with the session `cookie`,
/// from `origin`.
pub async fn from_page(
    addr: SocketAddr,
    (cookie, origin): (&str, &str),
    method: &str,
    path: &str,
    body: &str,
) -> Reply {
    let headers = [
        ("cookie", cookie),
        ("origin", origin),
        ("content-type", "application/json"),
    ];
    request(addr, method, path, &headers, body).await
}

/// Create an API token (`body`: its name, role and days) from a page signed in with the session
/// `cookie`, from `origin`; fails unless it is created. Its secret.
pub async fn token_from_page(
    addr: SocketAddr,
    (cookie, origin): (&str, &str),
    body: &str,
) -> String {
    let created = from_page(addr, (cookie, origin), "POST", "/api/v1/tokens", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    token["secret"].as_str().unwrap().to_owned()
}

/// Sign out of the session `cookie`, from `origin`, as the page's sign-out button does.
pub async fn sign_out(addr: SocketAddr, cookie: &str, origin: &str) -> Reply {
    let headers = [("cookie", cookie), ("origin", origin)];
    request(addr, "POST", "/auth/logout", &headers, "").await
}

/// One HTTP/1.1 request on a fresh connection; an answer that does not finish within 20 s fails
/// the test with the request named.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let reply = send_once(
        addr,
        method,
        path,
        headers,
        body,
        std::time::Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|| panic!("{method} {path}: no complete answer within 20 s"));
    super::contract::check(
        method,
        path,
        reply.status,
        reply.header("content-type"),
        &reply.body,
    );
    reply
}

/// One request on a fresh connection; `None` when the whole answer did not arrive within `limit`.
pub async fn send_once(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    limit: std::time::Duration,
) -> Option<Reply> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let answer = async {
        let response = sender.send_request(request).await.expect("send request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("read body")
            .to_bytes();
        (status, headers, bytes)
    };
    let (status, headers, bytes) = tokio::time::timeout(limit, answer).await.ok()?;
    Some(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `palisade` binary that cargo built for these tests.
pub fn palisade_bin() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

/// `palisade <command>` on the database at `url`, as an operator runs it; fails unless it succeeds
/// (showing what it wrote). Its standard output.
pub fn palisade_on(command: &str, url: &str) -> String {
    let output = std::process::Command::new(palisade_bin())
        .arg(command)
        .env("PALISADE__DATABASE__URL", url)
        .output()
        .unwrap_or_else(|e| panic!("run palisade {command}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `palisade serve` as a process of its own, in `dir`, with `settings` and JSON logs; the test stops
/// it by its PID (see [`Serving::stop`]).
pub struct Serving {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// What the server wrote to stderr after it logged its address.
    pub stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Serving {
    /// Start it and wait for the line that says where it serves.
    pub fn start(dir: &std::path::Path, settings: &[(&str, &str)]) -> Serving {
        use std::io::BufRead;
        let mut child = std::process::Command::new(palisade_bin())
            .arg("serve")
            .current_dir(dir)
            .env("PALISADE__HTTP__ADDRESS", "127.0.0.1:0")
            .env("PALISADE__LOG__FORMAT", "json")
            .envs(settings.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run palisade serve");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("palisade serve ended before it logged its address");
            }
            let event: serde_json::Value =
                serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if event["message"] == "palisade is serving" {
                let addr = event["address"].as_str().expect("the address is logged");
                break addr.parse().expect("a socket address");
            }
        };
        Serving {
            child,
            addr,
            stderr,
        }
    }

    /// The peak resident memory of the server process so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib_of(&format!("/proc/{}/status", self.child.id()))
    }

    /// Send SIGTERM and wait up to 20 s for the exit; returns its status and the rest of stderr.
    pub async fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait for palisade") {
                break exit;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("palisade did not stop within 20 s of SIGTERM");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stderr, &mut rest);
        (exit, rest)
    }
}

/// A test that panics before [`Serving::stop`] still stops its server: the process is killed by its
/// PID when it has not exited, so no `palisade serve` outlives the test run.
impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The peak resident memory (`VmHWM`) in a `/proc/…/status` file, in KiB.
pub fn peak_rss_kib_of(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).expect("read the process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in the process status")
}

/// The test bed's clusters are shared by every test running at once. A test that puts admission
/// policies on them holds this shared; a test that needs every verdict the apiserver gives to come
/// from its own policy holds it alone.
static ADMISSION: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The test bed, held shared or alone (see [`ADMISSION`]) until dropped.
pub struct Bed {
    testbed: palisade_testbed::Testbed,
    _held: Held,
}

enum Held {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

impl std::ops::Deref for Bed {
    type Target = palisade_testbed::Testbed;

    fn deref(&self) -> &Self::Target {
        &self.testbed
    }
}

fn configured() -> palisade_testbed::Testbed {
    palisade_testbed::Testbed::from_env()
        .unwrap_or_else(|e| panic!("\n\n*** CLUSTER TEST BED NOT CONFIGURED ***\n{e}\n\n"))
}

/// Credentials as Palisade holds a registered cluster's, from the kubeconfig file at `path` (a
/// test bed cluster's `admin_kubeconfig` or `palisade_kubeconfig`), in its current context.
pub fn kubeconfig_credentials(path: &std::path::Path) -> Credentials {
    let kubeconfig =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Credentials::from_input(&CredentialsInput::Kubeconfig {
        kubeconfig,
        context: None,
    })
    .unwrap()
}

/// The test bed, shared with the other tests that use it.
pub async fn testbed() -> Bed {
    let held = Held::Shared(ADMISSION.read().await);
    Bed {
        testbed: configured(),
        _held: held,
    }
}

/// The test bed with no other test's admission policies on it until dropped.
pub async fn testbed_alone() -> Bed {
    let held = Held::Alone(ADMISSION.write().await);
    Bed {
        testbed: configured(),
        _held: held,
    }
}
