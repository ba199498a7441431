//! A small in-process node that speaks the `/v1` API contract with canned behaviour, and records
//! every request and every transaction it is sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_core::api::{
    AccountResponse, ApiError, DropReason, StatusResponse, SubmitTxResponse, TxResponse, TxStatus,
};
use ledger_core::{
    Address, Amount, ChainId, Hash, Height, Keypair, Nonce, SignedTransaction, TimestampMs, TxError,
};

pub const CHAIN: &str = "fake-devnet-1";
/// The height every transaction becomes final at.
pub const FINAL_HEIGHT: u64 = 7;
/// Dev account 0 has 3 final transactions and 2 in the mempool: its next nonce is 5.
pub const DEV0_NONCE: u64 = 3;
pub const DEV0_NEXT_NONCE: u64 = 5;
pub const DEV_BALANCE: u64 = 1_000_000;

/// What the fake node does with the transactions it is sent.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Refuse every submission with this reason (HTTP 422).
    pub reject_on_submit: Option<TxError>,
    /// Accept, then report this reason once the transaction has been asked about.
    pub reject_later: Option<TxError>,
    /// Accept, then report it dropped from the mempool for this reason once asked about.
    pub drop_later: Option<DropReason>,
    /// How many status queries answer "pending" before the transaction is final.
    pub pending_polls: u32,
    /// Never finalize: every query answers "pending".
    pub never_final: bool,
}

#[derive(Debug)]
struct Known {
    tx: SignedTransaction,
    polls: u32,
}

#[derive(Debug)]
struct Inner {
    chain_id: ChainId,
    behaviour: Behaviour,
    requests: Vec<String>,
    received: Vec<SignedTransaction>,
    txs: BTreeMap<Hash, Known>,
    accounts: BTreeMap<Address, (Amount, Nonce, Nonce)>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock has failed already; keep serving the others.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
pub struct FakeNode {
    pub url: String,
    state: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeNode {
    pub fn start(behaviour: Behaviour) -> FakeNode {
        let mut accounts = BTreeMap::new();
        for i in 0..4 {
            let (nonce, next) = if i == 0 {
                (DEV0_NONCE, DEV0_NEXT_NONCE)
            } else {
                (0, 0)
            };
            accounts.insert(
                Keypair::dev("account", i).address(),
                (Amount(DEV_BALANCE), Nonce(nonce), Nonce(next)),
            );
        }
        let state = Arc::new(Mutex::new(Inner {
            chain_id: ChainId::new(CHAIN).expect("valid chain id"),
            behaviour,
            requests: Vec::new(),
            received: Vec::new(),
            txs: BTreeMap::new(),
            accounts,
        }));
        let app = Router::new()
            .route("/v1/status", get(status))
            .route("/v1/accounts/{address}", get(account))
            .route("/v1/transactions", post(submit))
            .route("/v1/transactions/{hash}", get(transaction))
            .fallback(not_found)
            .with_state(state.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binds a free port");
        let addr = listener.local_addr().expect("bound address");
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeNode {
            url: format!("http://{addr}"),
            state,
            runtime: Some(runtime),
        }
    }

    pub fn chain_id(&self) -> ChainId {
        lock(&self.state).chain_id.clone()
    }

    /// Every request so far, as "METHOD /path".
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// Every transaction submitted so far (including refused ones).
    pub fn received(&self) -> Vec<SignedTransaction> {
        lock(&self.state).received.clone()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn api_error(status: StatusCode, e: ApiError) -> Response {
    (status, Json(e)).into_response()
}

async fn not_found(State(s): State<Shared>, uri: Uri) -> Response {
    lock(&s).requests.push(format!("? {uri}"));
    api_error(
        StatusCode::NOT_FOUND,
        ApiError::new("not_found", "no such route"),
    )
}

async fn status(State(s): State<Shared>) -> Json<StatusResponse> {
    let mut s = lock(&s);
    s.requests.push("GET /v1/status".into());
    Json(StatusResponse {
        chain_id: s.chain_id.clone(),
        genesis_hash: Hash::digest(b"fake genesis"),
        height: Height(FINAL_HEIGHT),
        head_hash: Hash::digest(b"fake head"),
        head_time_ms: TimestampMs(1_700_000_000_000),
        state_root: Hash::digest(b"fake root"),
        syncing: false,
        peers: 0,
        validator: None,
        mempool_txs: 0,
        version: "fake".into(),
        token: Some(ledger_core::units::Token::dev()),
    })
}

async fn account(State(s): State<Shared>, Path(address): Path<String>) -> Response {
    let mut s = lock(&s);
    s.requests.push(format!("GET /v1/accounts/{address}"));
    let Ok(address) = address.parse::<Address>() else {
        return api_error(
            StatusCode::BAD_REQUEST,
            ApiError::new("bad_request", "bad address"),
        );
    };
    match s.accounts.get(&address) {
        Some(&(balance, nonce, next_nonce)) => Json(AccountResponse {
            address,
            balance,
            nonce,
            next_nonce,
        })
        .into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            ApiError::new("not_found", "no such account"),
        ),
    }
}

async fn submit(State(s): State<Shared>, Json(tx): Json<SignedTransaction>) -> Response {
    let mut s = lock(&s);
    s.requests.push("POST /v1/transactions".into());
    s.received.push(tx.clone());
    let chain_id = s.chain_id.clone();
    if let Err(e) = tx.clone().verify(&chain_id) {
        return api_error(StatusCode::BAD_REQUEST, ApiError::from_tx_error(&e));
    }
    if let Some(e) = &s.behaviour.reject_on_submit {
        return api_error(StatusCode::UNPROCESSABLE_ENTITY, ApiError::from_tx_error(e));
    }
    let hash = tx.hash();
    s.txs.insert(hash, Known { tx, polls: 0 });
    (
        StatusCode::ACCEPTED,
        Json(SubmitTxResponse {
            hash,
            status: TxStatus::Pending,
        }),
    )
        .into_response()
}

async fn transaction(State(s): State<Shared>, Path(hash): Path<String>) -> Response {
    let mut guard = lock(&s);
    let s = &mut *guard;
    s.requests.push(format!("GET /v1/transactions/{hash}"));
    let Ok(hash) = hash.parse::<Hash>() else {
        return api_error(
            StatusCode::BAD_REQUEST,
            ApiError::new("bad_request", "bad hash"),
        );
    };
    let Some(known) = s.txs.get_mut(&hash) else {
        return api_error(
            StatusCode::NOT_FOUND,
            ApiError::new("not_found", "unknown transaction"),
        );
    };
    known.polls += 1;
    let b = &s.behaviour;
    let status = if b.never_final || known.polls <= b.pending_polls {
        TxStatus::Pending
    } else if let Some(reason) = &b.reject_later {
        TxStatus::Rejected {
            reason: reason.clone(),
        }
    } else if let Some(reason) = &b.drop_later {
        TxStatus::Dropped {
            reason: reason.clone(),
        }
    } else {
        TxStatus::Final {
            height: Height(FINAL_HEIGHT),
            index: 0,
        }
    };
    Json(TxResponse {
        hash,
        status,
        transaction: Some(known.tx.clone()),
        from_address: Some(known.tx.tx.sender()),
    })
    .into_response()
}
