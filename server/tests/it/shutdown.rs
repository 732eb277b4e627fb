//! Graceful shutdown: once told to stop, the server takes no new connections but finishes the request
//! it is in the middle of.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use palisade_app::auth::Role;

use crate::support::{Backend, TestServer};

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut server = TestServer::start(Backend::Sqlite, &[]).await;
    let token = server.login_token(Role::Viewer).await;
    let body = "reason=in-flight";
    let (first, rest) = body.split_at(6);

    // The head and part of the body: the server is now in the middle of this request.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/system_status HTTP/1.1\r\nhost: {}\r\naccept: application/json\r\n\
         authorization: Bearer {token}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        server.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    sleep(Duration::from_millis(200)).await;

    server.signal_stop();
    sleep(Duration::from_millis(300)).await;
    assert!(
        !server.is_finished(),
        "the server quit with a request in flight"
    );
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "a stopping server must not accept new connections"
    );

    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the in-flight request was answered")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"database\":\"SQLite\""), "{response}");

    timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stopped after the request");
}
