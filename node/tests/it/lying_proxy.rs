//! A lying node, for tests of clients that must not believe one: an HTTP reverse proxy in front of
//! a real node's API that forwards everything (the explorer's page and assets, JSON, the event
//! stream) and, when told, alters the JSON answers, one kind of lie at a time ([`Lie`]).
//!
//! The lies are the ones a light client has to catch: a balance that is not the chain's, a
//! transaction whose content is not what was signed, a header that was never signed, and a
//! certificate without a quorum or with a forged signature. They are applied wherever the field
//! appears in an answer under `/v1/` (plain and proof answers, blocks, account histories), so a
//! client cannot pass by reading the value from another endpoint.
//!
//! `LyingProxy::start` binds 127.0.0.1:0 and runs on a thread and runtime of its own, so it can be
//! used from synchronous and asynchronous tests alike; dropping it stops it (open connections, such
//! as an event stream, are cut).

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ledger_core::block::BlockHeader;
use serde_json::Value;
use tokio::sync::oneshot;

/// Largest upstream JSON answer the proxy rewrites (a full block of transfers is a few MB).
const MAX_REWRITE_BYTES: usize = 64 * 1024 * 1024;

/// One kind of lie. Each alters only what it names and leaves the rest of every answer as the
/// node sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Forward everything unchanged.
    None,
    /// An account's `balance` (in `/v1/accounts/{address}` and `/v1/accounts/{address}/proof`)
    /// is 1,000,000 base units more than the node said.
    Balance,
    /// Every transaction's `amount` is one more (in `/v1/transactions/{hash}` and its proof,
    /// blocks, account histories).
    TxContent,
    /// Every header that comes with a certificate (proof answers, blocks) has another
    /// `state_root` and `tx_root`; the certificate's `block_hash` (and a block's `hash`) is
    /// re-pointed at the forged header, so the lie is consistent up to the signatures.
    Header,
    /// Every certificate's first signature is corrupted (one hex digit changed).
    Certificate,
    /// Every certificate keeps only its first third of signatures (rounded down), below the
    /// two-thirds quorum for validators of equal power (none at all on a one-validator chain).
    CertificateQuorum,
}

/// A running proxy. Stops when dropped.
#[derive(Debug)]
pub struct LyingProxy {
    addr: SocketAddr,
    lie: Arc<Mutex<Lie>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone)]
struct Shared {
    upstream: SocketAddr,
    lie: Arc<Mutex<Lie>>,
    client: Client<HttpConnector, Body>,
}

impl LyingProxy {
    /// Starts a proxy in front of the node API at `upstream`, telling `lie`.
    pub fn start(upstream: SocketAddr, lie: Lie) -> LyingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("proxy address");
        let lie = Arc::new(Mutex::new(lie));
        let (stop, stopped) = oneshot::channel::<()>();
        let shared_lie = lie.clone();
        let thread = std::thread::Builder::new()
            .name("lying-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let shared = Shared {
                        upstream,
                        lie: shared_lie,
                        client: Client::builder(TokioExecutor::new()).build_http(),
                    };
                    let app = Router::new().fallback(forward).with_state(shared);
                    tokio::select! {
                        r = axum::serve(listener, app) => {
                            if let Err(e) = r {
                                panic!("lying proxy stopped: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime ends the connection tasks (an open event stream too).
                runtime.shutdown_background();
            })
            .expect("proxy thread");
        LyingProxy {
            addr,
            lie,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Tells another lie from the next answer on.
    pub fn set_lie(&self, lie: Lie) {
        *self.lie.lock().unwrap_or_else(PoisonError::into_inner) = lie;
    }

    pub fn lie(&self) -> Lie {
        *self.lie.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards one request; rewrites the answer when a lie applies to it.
async fn forward(State(s): State<Shared>, mut req: Request) -> Response {
    let lie = *s.lie.lock().unwrap_or_else(PoisonError::into_inner);
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let Ok(uri) = format!("http://{}{path_and_query}", s.upstream).parse::<Uri>() else {
        return (StatusCode::BAD_REQUEST, "bad uri").into_response();
    };
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    for hop in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ] {
        headers.remove(hop);
    }
    headers.remove("keep-alive");
    if let Ok(host) = HeaderValue::from_str(&s.upstream.to_string()) {
        headers.insert(header::HOST, host);
    }
    // A rewritten answer must not be answered 304 from the browser's copy of the true one.
    let rewrite = lie != Lie::None && path.starts_with("/v1/") && path != "/v1/events";
    if rewrite {
        headers.remove(header::IF_NONE_MATCH);
    }
    let upstream = match s.client.request(req).await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
    };
    let (mut parts, body) = upstream.into_parts();
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !(rewrite && is_json) {
        return Response::from_parts(parts, Body::new(body));
    }
    let bytes = match http_body_util::Limited::new(body, MAX_REWRITE_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("upstream body: {e}")).into_response(),
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    tell(lie, &path, &mut v);
    let out = serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::ETAG);
    Response::from_parts(parts, Body::from(out))
}

/// Applies `lie` to the JSON answer of `path`.
pub fn tell(lie: Lie, path: &str, v: &mut Value) {
    match lie {
        Lie::None => {}
        Lie::Balance => {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let account_answer = matches!(segments.as_slice(), ["v1", "accounts", _])
                || matches!(segments.as_slice(), ["v1", "accounts", _, "proof"]);
            if account_answer && let Some(b) = v.get("balance").and_then(Value::as_u64) {
                v["balance"] = Value::from(b.wrapping_add(1_000_000));
            }
        }
        Lie::TxContent => walk(v, &mut |o| {
            if let Some(amount) = o
                .get_mut("transaction")
                .and_then(|t| t.get_mut("tx"))
                .and_then(|t| t.get_mut("amount"))
                && let Some(a) = amount.as_u64()
            {
                *amount = Value::from(a.wrapping_add(1));
            }
        }),
        Lie::Header => walk(v, &mut |o| {
            if !(o.contains_key("header") && o.get("commit").is_some_and(Value::is_object)) {
                return;
            }
            for root in ["state_root", "tx_root"] {
                if let Some(Value::String(hex)) = o.get_mut("header").and_then(|h| h.get_mut(root))
                {
                    flip_hex(hex);
                }
            }
            let forged = o
                .get("header")
                .and_then(|h| serde_json::from_value::<BlockHeader>(h.clone()).ok())
                .map(|h| h.hash().to_hex());
            if let Some(hash) = forged {
                if let Some(c) = o.get_mut("commit").and_then(Value::as_object_mut) {
                    c.insert("block_hash".into(), Value::from(hash.clone()));
                }
                if o.contains_key("hash") && o.contains_key("txs") {
                    o.insert("hash".into(), Value::from(hash));
                }
            }
        }),
        Lie::Certificate => walk(v, &mut |o| {
            if let Some(Value::String(sig)) = o
                .get_mut("commit")
                .and_then(|c| c.get_mut("signatures"))
                .and_then(|s| s.get_mut(0))
                .and_then(|s| s.get_mut("signature"))
            {
                flip_hex(sig);
            }
        }),
        Lie::CertificateQuorum => walk(v, &mut |o| {
            if let Some(Value::Array(sigs)) =
                o.get_mut("commit").and_then(|c| c.get_mut("signatures"))
            {
                let keep = sigs.len() / 3;
                sigs.truncate(keep);
            }
        }),
    }
}

/// Calls `f` on every JSON object in `v`, outermost first.
fn walk(v: &mut Value, f: &mut impl FnMut(&mut serde_json::Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            for child in o.values_mut() {
                walk(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, f);
            }
        }
        _ => {}
    }
}

/// Changes the first hex digit of `hex` to another one.
fn flip_hex(hex: &mut String) {
    if let Some(c) = hex.chars().next() {
        let flipped = if c == '0' { '1' } else { '0' };
        hex.replace_range(..c.len_utf8(), &flipped.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_lie_changes_only_what_it_names() {
        let answer = json!({
            "balance": 10, "nonce": 1,
            "header": {"state_root": "00aa", "tx_root": "11bb"},
            "commit": {"block_hash": "cc", "signatures": [{"signature": "ab"}, {"signature": "cd"}, {"signature": "ef"}]},
            "transaction": {"tx": {"amount": 5}},
        });
        let mut v = answer.clone();
        tell(Lie::None, "/v1/accounts/x/proof", &mut v);
        assert_eq!(v, answer);
        let mut v = answer.clone();
        tell(Lie::Balance, "/v1/accounts/x/proof", &mut v);
        assert_eq!(v["balance"], 1_000_010);
        let mut v = answer.clone();
        tell(Lie::Balance, "/v1/transactions/x/proof", &mut v);
        assert_eq!(v, answer, "no balance lie outside account answers");
        let mut v = answer.clone();
        tell(Lie::TxContent, "/v1/transactions/x/proof", &mut v);
        assert_eq!(v["transaction"]["tx"]["amount"], 6);
        let mut v = answer.clone();
        tell(Lie::Certificate, "/v1/transactions/x/proof", &mut v);
        assert_eq!(v["commit"]["signatures"][0]["signature"], "0b");
        let mut v = answer.clone();
        tell(Lie::CertificateQuorum, "/v1/transactions/x/proof", &mut v);
        assert_eq!(v["commit"]["signatures"].as_array().map(Vec::len), Some(1));
        let mut v = answer.clone();
        tell(Lie::Header, "/v1/transactions/x/proof", &mut v);
        assert_eq!(v["header"]["state_root"], "10aa");
        assert_eq!(v["header"]["tx_root"], "01bb");
    }
}
