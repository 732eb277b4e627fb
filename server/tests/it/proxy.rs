//! A TCP proxy to put between Palisade and a test-bed apiserver, so a test can cut the network
//! between them while both keep running: [`Proxy::cut`] ends every connection it forwards and
//! closes each new one as soon as it is accepted, until [`Proxy::restore`]. It forwards bytes and
//! knows nothing of TLS, so a client verifying the apiserver's certificate for `127.0.0.1` still
//! does through it. Its tasks stop when it is dropped.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let accepting = tokio::spawn(accept(listener, target.to_owned(), cut.subscribe()));
        Proxy {
            addr,
            cut,
            accepting,
        }
    }

    /// `https://<its address>`: what to give a client in place of the target's URL.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// End every forwarded connection now, and close new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forward new connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The connections' tasks belong to the accepting task's set: aborting it drops them too.
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, target: String, cut: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap the finished ones so the set does not grow for the proxy's whole life.
            Some(_) = connections.join_next() => continue,
        };
        let Ok((client, _)) = accepted else { continue };
        if *cut.borrow() {
            drop(client);
            continue;
        }
        connections.spawn(forward(client, target.clone(), cut.clone()));
    }
}

/// Copy bytes both ways between `client` and a new connection to `target` until either side
/// closes or the proxy is cut; then both sockets are dropped.
async fn forward(mut client: TcpStream, target: String, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
