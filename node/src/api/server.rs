//! The HTTP server loop: hyper connections with a header-read timeout and connection caps, in all
//! and per client address, so a client that opens sockets and never finishes a request (slowloris)
//! holds them for seconds, not forever, and cannot take every connection slot from the others.
//!
//! axum's `serve` has neither (hyper's header timeout needs a timer it does not set), so this is
//! the same loop with those limits: accept, count, serve HTTP/1.1 with hyper (the client address
//! as axum's `ConnectInfo`), and on shutdown ask every connection to finish its request and close.
//! Plain HTTP/1, not hyper-util's auto builder: that one first reads up to 24 bytes to tell an
//! HTTP/2 preface from HTTP/1, with no timer, so a socket that sends nothing (or half a preface)
//! would hold its slot for ever. Here the header timer runs from the first moment.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use super::limits::{ClientSlot, ClientSlots};
use crate::metrics::Metrics;

/// The server's limits (from `api.*` in the config).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// A client must send a request's whole head within this (also bounds an idle keep-alive
    /// connection: the timer runs while the server waits for the next head).
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

/// Open connections, in all and per client address (the client key of [`ClientSlots`]).
#[derive(Debug)]
struct Connections {
    total: Arc<Semaphore>,
    per_client: Arc<ClientSlots>,
}

/// A connection's place in both counts; both free when it drops.
struct Slot {
    _total: OwnedSemaphorePermit,
    _client: ClientSlot,
}

impl Connections {
    fn new(limits: &ServerLimits) -> Connections {
        Connections {
            total: Arc::new(Semaphore::new(limits.max_connections)),
            per_client: ClientSlots::new(limits.max_connections_per_client),
        }
    }

    fn try_open(&self, ip: IpAddr) -> Option<Slot> {
        let client = self.per_client.try_open(ip)?;
        let total = self.total.clone().try_acquire_owned().ok()?;
        Some(Slot {
            _total: total,
            _client: client,
        })
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then asks every open connection to
/// finish and close, and returns once all have (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let conns = Connections::new(&limits);
    // Each connection task holds a receiver; `closed()` on the sender resolves when all are gone.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a little
                    // rather than spin, and keep serving.
                    tracing::debug!(%e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(slot) = conns.try_open(peer.ip()) else {
            // Closed at once: a client at its cap (or a full server) gets no slot to hold.
            metrics.api_connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.map(Body::new)
            },
        );
        let service = TowerToHyperService::new(service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(%peer, %e, "connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_are_capped_per_client_and_in_all_and_freed_on_drop() {
        let limits = ServerLimits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_connections_per_client: 2,
        };
        let conns = Connections::new(&limits);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let a1 = conns.try_open(a).expect("first");
        let a2 = conns.try_open(a).expect("second");
        assert!(conns.try_open(a).is_none(), "a is at its cap");
        let b1 = conns.try_open(b).expect("b has its own cap");
        assert!(conns.try_open(b).is_none(), "the server is full");
        drop(a1);
        let a3 = conns.try_open(a).expect("a slot freed");
        drop((a2, a3, b1));
        assert_eq!(conns.total.available_permits(), 3);
        assert_eq!(
            conns.per_client.clients_open(),
            0,
            "no state left for gone clients"
        );
    }
}
