//! Control endpoints for chaos testing: cut this node off from its peers, and heal it.
//!
//! Off unless the node is started with a control token. When on, they are reachable only from
//! loopback (the peer address of the TCP connection, not a header) and only with
//! `Authorization: Bearer <token>`; nobody on the network can change a node's behaviour.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use ledger_core::api::ApiError;

use super::NetworkHandle;

#[derive(Clone)]
struct Control {
    network: NetworkHandle,
    token: String,
}

/// `POST /control/isolate` and `POST /control/heal`. Serve the app with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the loopback check can see the peer.
pub fn router(network: NetworkHandle, token: String) -> Router {
    Router::new()
        .route("/control/isolate", post(isolate))
        .route("/control/heal", post(heal))
        .with_state(Control { network, token })
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(ApiError::new(code, message))).into_response()
}

// The error is the ready-made refusal response; it is built once per refused request, so its
// size does not matter.
#[allow(clippy::result_large_err)]
fn authorize(c: &Control, peer: SocketAddr, headers: &HeaderMap) -> Result<(), Response> {
    // A dual-stack listener reports IPv4 loopback as ::ffff:127.0.0.1.
    if !peer.ip().to_canonical().is_loopback() {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "control endpoints are only served to loopback clients",
        ));
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison is unnecessary for a loopback-only dev token, but cheap.
    let ok = presented.is_some_and(|p| {
        p.len() == c.token.len()
            && p.bytes()
                .zip(c.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong control token",
        ))
    }
}

async fn set(c: &Control, isolated: bool) -> Response {
    match c.network.set_isolated(isolated).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "isolated": isolated })),
        )
            .into_response(),
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "network_stopped",
            &e.to_string(),
        ),
    }
}

async fn isolate(
    State(c): State<Control>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match authorize(&c, peer, &headers) {
        Ok(()) => set(&c, true).await,
        Err(r) => r,
    }
}

async fn heal(
    State(c): State<Control>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match authorize(&c, peer, &headers) {
        Ok(()) => set(&c, false).await,
        Err(r) => r,
    }
}
