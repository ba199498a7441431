//! The HTTP API: axum, JSON, everything under `/v1`, Prometheus at `/metrics`, and the explorer
//! page at `/`.
//!
//! Handlers never touch shared mutable state: reads go to the store (an `Arc`, read-mostly, on a
//! blocking thread) and to the owner tasks through their handles (mempool) or published values
//! (the head `watch`, the peers `watch`, the events `broadcast`).
//!
//! Protection, outermost first: connection caps in all and per client address and a header-read
//! timeout (the server loop, `server`), a body announced above the limit refused from its
//! `Content-Length` before it is read (413), a token-bucket rate limit per client address (429;
//! loopback can be exempt), a global concurrency limit that sheds instead of queueing (503), a per-request timeout (503), a request
//! body limit (413), bounded batch sizes and block ranges (413/400), and event subscribers bounded
//! in all and per client address. Extra routes (the chaos-test controls) are merged inside all of these.

mod error;
mod limits;
mod openapi;
mod routes;
mod server;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledger_core::{Address, ChainId, Hash, TimestampMs, ValidatorSet};
use tokio::sync::{Semaphore, broadcast, watch};
use tower::ServiceBuilder;

pub use error::{ApiFailure, parse_json};
pub use limits::{ClientRateLimits, ClientSlots, RateLimiter};
pub use openapi::ApiDoc;
pub use server::{ServerLimits, serve};

use crate::config::ApiConfig;
use crate::events::{HeadInfo, NodeEvent};
use crate::mempool::MempoolHandle;
use crate::metrics::Metrics;
use crate::network::PeerInfo;
use crate::store::Store;

/// Most `/v1/events` subscribers at once; each holds a broadcast receiver.
pub const MAX_EVENT_SUBSCRIBERS: usize = 256;

/// Fixed facts about the chain and this node.
#[derive(Debug)]
pub struct ChainInfo {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub genesis_time_ms: TimestampMs,
    pub validators: ValidatorSet,
    /// This node's validator address, if it has a key.
    pub validator: Option<Address>,
    /// The genesis as JSON (`Genesis::to_json`), served at `/v1/genesis`.
    pub genesis_json: axum::body::Bytes,
    /// The genesis's display unit, if it names one.
    pub token: Option<ledger_core::units::Token>,
}

/// What every handler gets: handles and read-mostly shared values only, behind one `Arc` so that
/// axum's per-request clone of the state is one reference count, not one per field.
#[derive(Clone, Debug)]
pub struct ApiContext(Arc<ApiParts>);

impl From<ApiParts> for ApiContext {
    fn from(parts: ApiParts) -> Self {
        ApiContext(Arc::new(parts))
    }
}

impl std::ops::Deref for ApiContext {
    type Target = ApiParts;
    fn deref(&self) -> &ApiParts {
        &self.0
    }
}

/// The fields of an [`ApiContext`].
#[derive(Debug)]
pub struct ApiParts {
    pub store: Arc<Store>,
    pub mempool: MempoolHandle,
    pub head: watch::Receiver<HeadInfo>,
    pub peers: watch::Receiver<Vec<PeerInfo>>,
    pub events: broadcast::Sender<NodeEvent>,
    pub metrics: Arc<Metrics>,
    pub chain: Arc<ChainInfo>,
    pub limits: Arc<ApiConfig>,
    pub rate_limits: Arc<ClientRateLimits>,
    pub event_subscribers: Arc<Semaphore>,
    /// `/v1/events` subscriptions per client address.
    pub event_slots: Arc<ClientSlots>,
    /// Serialized `BlockResponse`s by height: a committed block never changes, so its JSON is
    /// built once and served as bytes until evicted.
    pub block_json: BlockJsonCache,
}

/// Bytes of block JSON the cache keeps at most.
pub const BLOCK_JSON_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Committed blocks' JSON by height, bounded by total bytes (moka: concurrent, TinyLFU eviction).
pub type BlockJsonCache = moka::sync::Cache<u64, axum::body::Bytes>;

/// An empty cache of at most [`BLOCK_JSON_CACHE_BYTES`].
pub fn block_json_cache() -> BlockJsonCache {
    moka::sync::Cache::builder()
        .max_capacity(BLOCK_JSON_CACHE_BYTES)
        .weigher(|_, v: &axum::body::Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
        .build()
}

impl ApiContext {
    /// Runs a blocking store read off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiFailure::internal("blocking read task failed", &e))?
            .map_err(ApiFailure::from)
    }
}

/// The whole API as one router (tests drive it with `tower::ServiceExt::oneshot`).
pub fn router(ctx: ApiContext) -> Router {
    router_with(ctx, Router::new())
}

/// [`router`] with `extra` routes merged inside the same limits.
pub fn router_with(ctx: ApiContext, extra: Router) -> Router {
    let limits = ctx.limits.clone();
    let v1 = Router::new()
        .route("/transactions", post(routes::submit_tx))
        .route("/transactions/batch", post(routes::submit_batch))
        .route("/transactions/{hash}", get(routes::get_tx))
        .route("/transactions/{hash}/proof", get(routes::get_tx_proof))
        .route("/accounts/{address}", get(routes::get_account))
        .route("/accounts/{address}/proof", get(routes::get_account_proof))
        .route(
            "/accounts/{address}/transactions",
            get(routes::get_account_txs),
        )
        .route("/blocks", get(routes::get_blocks))
        .route("/blocks/latest", get(routes::get_latest_block))
        .route("/blocks/hash/{hash}", get(routes::get_block_by_hash))
        .route("/blocks/{height}", get(routes::get_block))
        .route("/status", get(routes::status))
        .route("/validators", get(routes::validators))
        .route("/genesis", get(routes::genesis))
        .route("/peers", get(routes::peers))
        .route("/events", get(routes::events))
        .route("/openapi.json", get(openapi::serve));
    Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(routes::metrics))
        .with_state(ctx.clone())
        // The block explorer page at `/` (embedded files, no state, no fallback of its own).
        .merge(crate::explorer::router())
        .merge(extra)
        .fallback(routes::unknown_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests,
                ))
                .timeout(Duration::from_millis(limits.request_timeout_ms)),
        )
        .layer(middleware::from_fn_with_state(ctx, observe))
}

/// Load shedding and timeouts surface as errors of the middleware stack: answer them as JSON.
async fn overloaded(err: tower::BoxError) -> Result<Response, Infallible> {
    let failure = if err.is::<tower::timeout::error::Elapsed>() {
        ApiFailure::unavailable("timeout", "the request took too long")
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiFailure::unavailable("overloaded", "the node is busy; retry shortly")
    } else {
        ApiFailure::internal("middleware failed", &err)
    };
    Ok(failure.into_response())
}

/// Buffers the request body within `api.max_body_bytes` and `api.request_timeout_ms`.
async fn read_body(req: Request, limits: &ApiConfig) -> Result<Request, ApiFailure> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let read = tokio::time::timeout(
        Duration::from_millis(limits.request_timeout_ms),
        limited.collect(),
    )
    .await;
    match read {
        Ok(Ok(collected)) => Ok(Request::from_parts(
            parts,
            axum::body::Body::from(collected.to_bytes()),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiFailure::body_too_large().with_field("max", limits.max_body_bytes))
        }
        Ok(Err(e)) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the request body could not be read: {e}"),
        )),
        Err(_) => Err(ApiFailure::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive in time",
        )),
    }
}

/// The client's address, as the server loop recorded it ([`limits::UNKNOWN_CLIENT`] without one).
pub fn client_ip(extensions: &axum::http::Extensions) -> std::net::IpAddr {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(limits::UNKNOWN_CLIENT, |c| c.0.ip())
}

/// Body announcement, rate limit, body read and metrics for every request. Runs first, so a
/// flood is refused before it costs more than a cache lookup and one atomic operation.
async fn observe(State(ctx): State<ApiContext>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let start = Instant::now();
    // A body announced above the limit is refused now, not after the client has sent it.
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if announced.is_some_and(|n| n > ctx.limits.max_body_bytes as u64) {
        ApiFailure::body_too_large()
            .with_field("max", ctx.limits.max_body_bytes)
            .into_response()
    } else if ctx.rate_limits.try_acquire(client_ip(req.extensions())) {
        // The body is read here, before the concurrency limit: a client that uploads slowly holds
        // its own connection (capped per client), not one of the permits everyone shares.
        match read_body(req, &ctx.limits).await {
            Ok(req) => next.run(req).await,
            Err(refusal) => refusal.into_response(),
        }
    } else {
        ApiFailure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        )
        .into_response()
    };
    ctx.metrics.observe_api(
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}
