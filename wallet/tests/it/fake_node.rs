//! A small in-process node that speaks the `/v1` API contract with canned behaviour, and records
//! every request and every transaction it is sent.
//!
//! Its proof answers are real: a ledger-core `State` of its accounts proves each balance, a block
//! of the one transaction asked about proves its inclusion, and each header carries precommits
//! signed by the dev validator keys of its genesis (`Genesis::dev`; by default the built-in dev
//! chain, so the wallet verifies it without setup). A [`Lie`] makes it alter one part of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_core::api::{
    AccountProofResponse, AccountResponse, ApiError, DropReason, PROOF_FORMAT, StatusResponse,
    SubmitTxResponse, TxProofResponse, TxResponse, TxStatus,
};
use ledger_core::genesis::Genesis;
use ledger_core::light::encode_state_proof;
use ledger_core::merkle::{merkle_root, prove_inclusion};
use ledger_core::state::{Account, State as LedgerState};
use ledger_core::{
    Address, Amount, BlockHeader, ChainId, CommitCertificate, Hash, Height, Keypair, Nonce, Round,
    SignedTransaction, TimestampMs, TxError, Vote, VoteKind,
};

/// The chain the fake node runs unless told otherwise: the wallet's built-in default.
pub const DEV_CHAIN: &str = "ledger-devnet-1";
/// Validators of the fake node's genesis (dev keys `Keypair::dev("validator", i)`).
pub const VALIDATORS: u32 = 4;
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
    /// Alter the proof answers this way.
    pub lie: Option<Lie>,
}

/// How a lying node alters its proof answers (and, for a balance, its plain answer too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// One base unit more than the account holds, on both account endpoints.
    Balance,
    /// The transaction's amount changed, its hash kept.
    Transaction,
    /// The header's timestamp changed after the validators signed it.
    Header,
    /// A certificate signed by one validator of four.
    FewSignatures,
    /// Says a transaction is final but has no proof of it.
    NoTxProof,
}

/// The dev genesis of `chain` with [`VALIDATORS`] validators.
pub fn dev_genesis(chain: &str) -> Genesis {
    Genesis::dev(chain, VALIDATORS, 16).expect("dev genesis")
}

#[derive(Debug)]
struct Known {
    tx: SignedTransaction,
    polls: u32,
}

#[derive(Debug)]
struct Inner {
    genesis: Genesis,
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
    /// A node of the built-in dev chain.
    pub fn start(behaviour: Behaviour) -> FakeNode {
        FakeNode::with_genesis(behaviour, dev_genesis(DEV_CHAIN))
    }

    /// A node of the chain of `genesis` (its validators must be dev keys).
    pub fn with_genesis(behaviour: Behaviour, genesis: Genesis) -> FakeNode {
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
            chain_id: genesis.chain_id().clone(),
            genesis,
            behaviour,
            requests: Vec::new(),
            received: Vec::new(),
            txs: BTreeMap::new(),
            accounts,
        }));
        let app = Router::new()
            .route("/v1/status", get(status))
            .route("/v1/genesis", get(serve_genesis))
            .route("/v1/accounts/{address}", get(account))
            .route("/v1/accounts/{address}/proof", get(account_proof))
            .route("/v1/transactions", post(submit))
            .route("/v1/transactions/{hash}", get(transaction))
            .route("/v1/transactions/{hash}/proof", get(transaction_proof))
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

    pub fn genesis(&self) -> Genesis {
        lock(&self.state).genesis.clone()
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
        genesis_hash: s.genesis.hash(),
        height: Height(FINAL_HEIGHT),
        head_hash: Hash::digest(b"fake head"),
        head_time_ms: TimestampMs(1_700_000_000_000),
        state_root: Hash::digest(b"fake root"),
        syncing: false,
        peers: 0,
        validator: None,
        mempool_txs: 0,
        version: "fake".into(),
        token: s.genesis.token().cloned(),
    })
}

async fn serve_genesis(State(s): State<Shared>) -> Response {
    let mut s = lock(&s);
    s.requests.push("GET /v1/genesis".into());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        s.genesis.to_json(),
    )
        .into_response()
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
    let lie = u64::from(s.behaviour.lie == Some(Lie::Balance));
    match s.accounts.get(&address) {
        Some(&(balance, nonce, next_nonce)) => Json(AccountResponse {
            address,
            balance: Amount(balance.0 + lie),
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
    let status = status_of(&s.behaviour, known);
    Json(TxResponse {
        hash,
        status,
        transaction: Some(known.tx.clone()),
        from_address: Some(known.tx.tx.sender()),
    })
    .into_response()
}

/// Where a known transaction stands, given how often it has been asked about.
fn status_of(b: &Behaviour, known: &Known) -> TxStatus {
    if b.never_final || known.polls <= b.pending_polls {
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
    }
}

/// A header at [`FINAL_HEIGHT`] over `state_root` and a block of `txs`, and its certificate:
/// precommits of every validator, or of one with [`Lie::FewSignatures`]; with [`Lie::Header`] the
/// header is altered after signing.
fn certified(
    genesis: &Genesis,
    lie: Option<Lie>,
    state_root: Hash,
    txs: &[Hash],
) -> (BlockHeader, CommitCertificate) {
    let mut header = BlockHeader {
        chain_id: genesis.chain_id().clone(),
        height: Height(FINAL_HEIGHT),
        prev_hash: Hash::digest(b"fake block 6"),
        timestamp_ms: TimestampMs(1_700_000_000_000),
        proposer: Keypair::dev("validator", 0).address(),
        tx_root: merkle_root(txs),
        tx_count: txs.len() as u32,
        state_root,
        last_commit_hash: Hash::digest(b"fake commit 6"),
    };
    let hash = header.hash();
    let signers = if lie == Some(Lie::FewSignatures) {
        1
    } else {
        VALIDATORS
    };
    let votes: Vec<_> = (0..signers)
        .map(|i| {
            let key = Keypair::dev("validator", i);
            Vote {
                kind: VoteKind::Precommit,
                height: header.height,
                round: Round(0),
                block_hash: Some(hash),
                validator: key.address(),
            }
            .sign(genesis.chain_id(), &key)
        })
        .collect();
    let commit = CommitCertificate::from_precommits(
        header.height,
        Round(0),
        hash,
        genesis.validators(),
        &votes,
    );
    if lie == Some(Lie::Header) {
        header.timestamp_ms = TimestampMs(header.timestamp_ms.0 + 1);
    }
    (header, commit)
}

/// The fake node's accounts as a real state tree.
fn ledger_state(s: &Inner) -> LedgerState {
    LedgerState::from_accounts(
        s.accounts
            .iter()
            .map(|(a, &(balance, nonce, _))| (*a, Account { balance, nonce })),
    )
    .expect("a valid state")
}

async fn account_proof(State(s): State<Shared>, Path(address): Path<String>) -> Response {
    let mut s = lock(&s);
    s.requests.push(format!("GET /v1/accounts/{address}/proof"));
    let Ok(address) = address.parse::<Address>() else {
        return api_error(
            StatusCode::BAD_REQUEST,
            ApiError::new("invalid_address", "bad address"),
        );
    };
    let state = ledger_state(&s);
    let proof = state.prove(&address).expect("a proof");
    let lie = s.behaviour.lie;
    let (header, commit) = certified(&s.genesis, lie, state.root(), &[]);
    let lied = u64::from(lie == Some(Lie::Balance));
    Json(AccountProofResponse {
        format: PROOF_FORMAT,
        chain_id: s.genesis.chain_id().clone(),
        genesis_hash: s.genesis.hash(),
        address,
        balance: Amount(proof.account.balance.0 + lied),
        nonce: proof.account.nonce,
        height: header.height,
        header,
        commit,
        proof: encode_state_proof(&proof.proof),
    })
    .into_response()
}

async fn transaction_proof(State(s): State<Shared>, Path(hash): Path<String>) -> Response {
    let mut guard = lock(&s);
    let s = &mut *guard;
    s.requests
        .push(format!("GET /v1/transactions/{hash}/proof"));
    let not_found = || {
        api_error(
            StatusCode::NOT_FOUND,
            ApiError::new("not_found", "no final transaction with that hash"),
        )
    };
    let Ok(hash) = hash.parse::<Hash>() else {
        return api_error(
            StatusCode::BAD_REQUEST,
            ApiError::new("invalid_hash", "bad hash"),
        );
    };
    let lie = s.behaviour.lie;
    let Some(known) = s.txs.get(&hash) else {
        return not_found();
    };
    if !matches!(status_of(&s.behaviour, known), TxStatus::Final { .. })
        || lie == Some(Lie::NoTxProof)
    {
        return not_found();
    }
    let mut transaction = known.tx.clone();
    let state_root = ledger_state(s).root();
    let (header, commit) = certified(&s.genesis, lie, state_root, &[hash]);
    if lie == Some(Lie::Transaction) {
        transaction.tx.amount = Amount(transaction.tx.amount.0 + 1_000);
    }
    Json(TxProofResponse {
        format: PROOF_FORMAT,
        chain_id: s.genesis.chain_id().clone(),
        genesis_hash: s.genesis.hash(),
        hash,
        transaction,
        height: header.height,
        index: 0,
        header,
        commit,
        proof: prove_inclusion(&[hash], 0).expect("index in range"),
    })
    .into_response()
}
