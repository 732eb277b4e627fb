//! Every page, loaded many times at once while other servers start in the same process: each
//! answer must finish, with no retry. Leptos works out a router's pages by rendering the app with
//! resource loading switched off by one process-wide flag; before the route list was worked out
//! once per process, a page served while another server was being built waited forever for a
//! resource that never started, and its body stopped half-way (about one whole-suite run in eight,
//! where tests start servers side by side). This test starts servers throughout the loads, so it
//! fails if that window ever opens again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{send_once, Backend, TestServer};

/// Every page a signed-in person opens from the navigation, the form for a new policy, and a
/// page that does not exist.
fn pages() -> Vec<&'static str> {
    palisade_app::sections::SECTIONS
        .iter()
        .map(|s| s.href)
        .chain(["/policies/new", "/no-such-page"])
        .collect()
}
const LOADS_PER_PAGE: usize = 500;
const AT_ONCE: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_loads_500_times_at_once_while_servers_start_without_a_stall() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let cookie = server.session_cookie().await;
    let addr = server.addr;
    let pages = pages();
    let work: Vec<&'static str> = pages
        .iter()
        .flat_map(|page| std::iter::repeat_n(*page, LOADS_PER_PAGE))
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let stalled = Arc::new(std::sync::Mutex::new(Vec::new()));
    let work = Arc::new(work);
    let started = Instant::now();
    // Servers keep starting (and stopping) beside the loads until the loads are done.
    let loading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let starter = tokio::spawn({
        let loading = loading.clone();
        async move {
            let mut started = 0;
            while loading.load(Ordering::Relaxed) {
                TestServer::start(Backend::Sqlite, &[]).await.stop().await;
                started += 1;
            }
            started
        }
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..AT_ONCE {
        let (next, stalled, work, cookie) =
            (next.clone(), stalled.clone(), work.clone(), cookie.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(page) = work.get(i) else { break };
                let headers = [("cookie", cookie.as_str()), ("accept", "text/html")];
                match send_once(addr, "GET", page, &headers, "", Duration::from_secs(20)).await {
                    Some(reply) => {
                        let expected = if *page == "/no-such-page" { 404 } else { 200 };
                        assert_eq!(reply.status, expected, "GET {page}: {}", reply.body);
                        assert!(
                            reply.body.contains("</html>"),
                            "GET {page}: unfinished body"
                        );
                    }
                    None => stalled.lock().unwrap().push(*page),
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    loading.store(false, Ordering::Relaxed);
    let servers_started = starter.await.unwrap();
    let stalled = stalled.lock().unwrap().clone();
    eprintln!(
        "{} page loads, {AT_ONCE} at once, in {:.1} s while {servers_started} other servers started; {} stalled",
        pages.len() * LOADS_PER_PAGE,
        started.elapsed().as_secs_f64(),
        stalled.len()
    );
    assert!(
        servers_started >= 3,
        "only {servers_started} servers started beside the loads: the test proves nothing"
    );
    assert!(
        stalled.is_empty(),
        "pages whose answer never finished: {stalled:?}"
    );
    server.stop().await;
}
