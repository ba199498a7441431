//! The handlers. Each parses its input at the edge (hashes, addresses, heights are newtypes parsed
//! once) and answers with the shared `ledger_core::api` types.

use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use ledger_core::api::{
    AccountProofResponse, AccountResponse, AccountTx, AccountTxsResponse, BlockResponse, BlockTx,
    PROOF_FORMAT, StatusResponse, SubmitTxResponse, TxCursor, TxProofResponse, TxResponse,
    TxStatus,
};
use ledger_core::{
    Address, Block, CommitCertificate, Hash, Height, SignedTransaction, ValidatorSet,
};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use std::sync::Arc;

use ledger_core::light::encode_state_proof;
use ledger_core::merkle::prove_inclusion;
use ledger_core::state::{State as LedgerState, StateError, StateStore};

use super::error::{ApiFailure, parse_json};
use super::{ApiContext, ChainInfo};
use crate::mempool::{AdmitError, Admitted, PoolStatus};
use crate::network::PeerInfo;
use crate::store::{MAX_ACCOUNT_TXS, Store, TxLocation};

// ---------------------------------------------------------------------------------------------
// Parsing path parameters.

fn parse_hash(s: &str) -> Result<Hash, ApiFailure> {
    s.parse::<Hash>().map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_hash",
            format!("`{}` is not a hash: {e}", clip(s)),
        )
    })
}

fn parse_address(s: &str) -> Result<Address, ApiFailure> {
    s.parse::<Address>().map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_address",
            format!("`{}` is not an address: {e}", clip(s)),
        )
    })
}

fn parse_height(s: &str) -> Result<Height, ApiFailure> {
    s.parse::<u64>().map(Height).map_err(|_| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_height",
            format!(
                "`{}` is not a block height (a non-negative integer)",
                clip(s)
            ),
        )
    })
}

fn parse_cursor(s: &str) -> Result<TxCursor, ApiFailure> {
    s.parse::<TxCursor>().map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            format!("`{}` is not a cursor: {e}", clip(s)),
        )
    })
}

/// Echoes at most 80 characters of user input back in messages.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

// ---------------------------------------------------------------------------------------------
// Transactions.

/// One entry of the batch answer: a transaction status, or an error that is not about the
/// transaction itself (a full mempool).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchEntry {
    pub hash: Hash,
    #[serde(flatten)]
    pub status: BatchStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchStatus {
    Pending,
    Final {
        height: Height,
        index: u32,
    },
    Rejected {
        reason: ledger_core::TxError,
    },
    /// Not answered today (a transaction the pool dropped is admitted afresh when sent again);
    /// here so that every [`TxStatus`] has its batch form.
    Dropped {
        reason: ledger_core::api::DropReason,
    },
    Error {
        #[schema(value_type = super::openapi::ErrorBody)]
        error: ledger_core::api::ApiError,
    },
}

/// `POST /v1/transactions/batch` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<BatchEntry>,
}

/// Submits transactions: final ones are answered from the store, the rest go to the mempool.
async fn submit(
    ctx: &ApiContext,
    txs: Vec<SignedTransaction>,
) -> Result<Vec<(Hash, Result<TxStatus, AdmitError>)>, ApiFailure> {
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    let lookup = hashes.clone();
    let finals = ctx
        .read(move |s| {
            lookup
                .iter()
                .map(|h| s.tx_location(h))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let mut out: Vec<Option<(Hash, Result<TxStatus, AdmitError>)>> = vec![None; txs.len()];
    let mut fresh = Vec::new();
    let mut fresh_idx = Vec::new();
    for (i, (tx, loc)) in txs.into_iter().zip(finals).enumerate() {
        match loc {
            Some(l) => {
                out[i] = Some((
                    hashes[i],
                    Ok(TxStatus::Final {
                        height: l.height,
                        index: l.index,
                    }),
                ))
            }
            None => {
                fresh.push(tx);
                fresh_idx.push(i);
            }
        }
    }
    if !fresh.is_empty() {
        let results = ctx.mempool.submit(fresh).await?;
        for (i, (hash, r)) in fresh_idx.into_iter().zip(results) {
            let r = r.map(|a| match a {
                Admitted::Added | Admitted::AlreadyPending => TxStatus::Pending,
            });
            if let Err(e) = &r {
                ctx.metrics.rejected(admit_code(e));
            }
            out[i] = Some((hash, r));
        }
    }
    Ok(out.into_iter().flatten().collect())
}

fn admit_code(e: &AdmitError) -> &'static str {
    match e {
        AdmitError::Tx(t) => t.code(),
        AdmitError::Full { .. } => "mempool_full",
        AdmitError::SenderFull { .. } => "sender_pending_limit",
        AdmitError::Store(_) => "internal",
    }
}

#[utoipa::path(post, path = "/v1/transactions", tag = "transactions",
    request_body(content = SignedTransaction, content_type = "application/json",
        description = "A signed transfer (how to sign it: docs/WIRE.md)"),
    responses(
        (status = 200, description = "Admitted to the mempool (`pending`) or already final", body = SubmitTxResponse),
        (status = 400, description = "bad_json / invalid_field", body = super::openapi::ErrorBody),
        (status = 413, description = "body_too_large", body = super::openapi::ErrorBody),
        (status = 422, description = "The transaction is invalid; `code` is the TxError code (nonce_too_low, insufficient_funds, bad_signature, ...) with its fields", body = super::openapi::ErrorBody),
        (status = 429, description = "rate_limited / sender_pending_limit", body = super::openapi::ErrorBody),
        (status = 503, description = "mempool_full / overloaded", body = super::openapi::ErrorBody),
    ))]
pub async fn submit_tx(
    State(ctx): State<ApiContext>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SubmitTxResponse>, ApiFailure> {
    let tx: SignedTransaction = parse_json(&body?)?;
    let mut results = submit(&ctx, vec![tx]).await?;
    let Some((hash, result)) = results.pop() else {
        return Err(ApiFailure::internal(
            "submit",
            &"no result for the transaction",
        ));
    };
    Ok(Json(SubmitTxResponse {
        hash,
        status: result?,
    }))
}

#[utoipa::path(post, path = "/v1/transactions/batch", tag = "transactions",
    request_body(content = Vec<SignedTransaction>, content_type = "application/json",
        description = "Signed transfers (at most `api.max_batch_txs`, the document's `maxItems`)"),
    responses(
        (status = 200, description = "Each transaction's outcome, in request order", body = BatchResponse),
        (status = 400, description = "bad_json / invalid_field", body = super::openapi::ErrorBody),
        (status = 413, description = "body_too_large / batch_too_large", body = super::openapi::ErrorBody),
    ))]
pub async fn submit_batch(
    State(ctx): State<ApiContext>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiFailure> {
    let txs: Vec<SignedTransaction> = parse_json(&body?)?;
    let max = ctx.limits.max_batch_txs;
    if txs.len() > max {
        return Err(ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("batch has {} transactions, the limit is {max}", txs.len()),
        )
        .with_field("max", max)
        .with_field("got", txs.len()));
    }
    let results = submit(&ctx, txs).await?;
    let mut accepted = 0;
    let mut rejected = 0;
    let results = results
        .into_iter()
        .map(|(hash, r)| {
            let status = match r {
                Ok(TxStatus::Pending) => BatchStatus::Pending,
                Ok(TxStatus::Final { height, index }) => BatchStatus::Final { height, index },
                Ok(TxStatus::Rejected { reason }) | Err(AdmitError::Tx(reason)) => {
                    BatchStatus::Rejected { reason }
                }
                Ok(TxStatus::Dropped { reason }) => BatchStatus::Dropped { reason },
                Err(e) => BatchStatus::Error {
                    error: ApiFailure::from(e).body,
                },
            };
            match status {
                BatchStatus::Pending | BatchStatus::Final { .. } => accepted += 1,
                _ => rejected += 1,
            }
            BatchEntry { hash, status }
        })
        .collect();
    Ok(Json(BatchResponse {
        accepted,
        rejected,
        results,
    }))
}

#[utoipa::path(get, path = "/v1/transactions/{hash}", tag = "transactions",
    params(("hash" = Hash, Path, description = "Transaction hash")),
    responses(
        (status = 200, description = "`pending`; `final` (with its place); `rejected` (invalid: `reason` is the TxError code with its fields); or `dropped` (valid, but let go of by the mempool: `reason.code` is `evicted` (with `by_fee`), `replaced` (with `by`, the replacement's hash) or `expired` (with `ttl_secs`); send it again to retry)", body = TxResponse),
        (status = 400, description = "invalid_hash", body = super::openapi::ErrorBody),
        (status = 404, description = "not_found: never seen, or rejected or dropped long ago", body = super::openapi::ErrorBody),
    ))]
pub async fn get_tx(
    State(ctx): State<ApiContext>,
    Path(hash): Path<String>,
) -> Result<Json<TxResponse>, ApiFailure> {
    let hash = parse_hash(&hash)?;
    if let Some((tx, loc)) = ctx.read(move |s| s.transaction(&hash)).await? {
        return Ok(Json(TxResponse {
            hash,
            status: TxStatus::Final {
                height: loc.height,
                index: loc.index,
            },
            from_address: Some(tx.tx.sender()),
            transaction: Some(tx),
        }));
    }
    match ctx.mempool.status(hash).await? {
        PoolStatus::Pending(tx) => Ok(Json(TxResponse {
            hash,
            status: TxStatus::Pending,
            from_address: Some(tx.tx.sender()),
            transaction: Some(*tx),
        })),
        PoolStatus::Rejected(reason) => Ok(Json(TxResponse {
            hash,
            status: TxStatus::Rejected { reason },
            transaction: None,
            from_address: None,
        })),
        PoolStatus::Dropped(reason) => Ok(Json(TxResponse {
            hash,
            status: TxStatus::Dropped { reason },
            transaction: None,
            from_address: None,
        })),
        PoolStatus::Unknown => {
            // It may have been committed between the two reads.
            match ctx.read(move |s| s.transaction(&hash)).await? {
                Some((tx, loc)) => Ok(Json(TxResponse {
                    hash,
                    status: TxStatus::Final {
                        height: loc.height,
                        index: loc.index,
                    },
                    from_address: Some(tx.tx.sender()),
                    transaction: Some(tx),
                })),
                None => Err(ApiFailure::not_found("transaction")),
            }
        }
    }
}

#[utoipa::path(get, path = "/v1/transactions/{hash}/proof", tag = "transactions",
    params(("hash" = Hash, Path, description = "Transaction hash")),
    responses(
        (status = 200, description = "A final transaction with its inclusion proof against the `tx_root` of its block, that block's header and the header's commit certificate (`ledger_core::light`). `format` is 1; the audit path has at most 64 hashes.", body = TxProofResponse),
        (status = 400, description = "invalid_hash", body = super::openapi::ErrorBody),
        (status = 404, description = "not_found: no final transaction with that hash (it may still be pending: see /v1/transactions/{hash})", body = super::openapi::ErrorBody),
    ))]
pub async fn get_tx_proof(
    State(ctx): State<ApiContext>,
    Path(hash): Path<String>,
) -> Result<Json<TxProofResponse>, ApiFailure> {
    let hash = parse_hash(&hash)?;
    let chain = ctx.chain.clone();
    ctx.read(move |s| Ok(tx_proof(s, &chain, &hash)))
        .await?
        .map(Json)
}

/// The transaction answer, read from the store (on a blocking thread).
fn tx_proof(s: &Store, chain: &ChainInfo, hash: &Hash) -> Result<TxProofResponse, ApiFailure> {
    let Some(loc) = s.tx_location(hash)? else {
        return Err(ApiFailure::not_found("final transaction"));
    };
    let (Some(block), Some(commit)) = (s.block(loc.height)?, s.cert(loc.height)?) else {
        return Err(ApiFailure::internal(
            "transaction proof",
            &format!("block or certificate {} missing", loc.height),
        ));
    };
    let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
    let index = loc.index as usize;
    let (Some(proof), Some(transaction)) = (
        prove_inclusion(&hashes, index),
        block.txs.get(index).cloned(),
    ) else {
        return Err(ApiFailure::internal(
            "transaction proof",
            &format!("index {index} outside block {}", loc.height),
        ));
    };
    if hashes[index] != *hash {
        return Err(ApiFailure::internal(
            "transaction proof",
            &format!(
                "the index points at another transaction in block {}",
                loc.height
            ),
        ));
    }
    Ok(TxProofResponse {
        format: PROOF_FORMAT,
        chain_id: chain.chain_id.clone(),
        genesis_hash: chain.genesis_hash,
        hash: *hash,
        transaction,
        height: loc.height,
        index: loc.index,
        header: block.header,
        commit,
        proof,
    })
}

// ---------------------------------------------------------------------------------------------
// Accounts.

#[utoipa::path(get, path = "/v1/accounts/{address}", tag = "accounts",
    params(("address" = Address, Path, description = "Account address (ldg1...)")),
    responses(
        (status = 200, description = "Balance and nonces (zero for an unused address)", body = AccountResponse),
        (status = 400, description = "invalid_address", body = super::openapi::ErrorBody),
    ))]
pub async fn get_account(
    State(ctx): State<ApiContext>,
    Path(address): Path<String>,
) -> Result<Json<AccountResponse>, ApiFailure> {
    let address = parse_address(&address)?;
    // Hot accounts are answered from RocksDB's memory on this worker; a read that would touch a
    // file goes to the blocking pool.
    let account = match ctx.store.account_if_cached(&address)? {
        Some(account) => account,
        None => ctx.read(move |s| s.account(&address)).await?,
    }
    .unwrap_or_default();
    let next_nonce = ctx
        .mempool
        .next_nonce(address)
        .await?
        .unwrap_or(account.nonce)
        .max(account.nonce);
    Ok(Json(AccountResponse {
        address,
        balance: account.balance,
        nonce: account.nonce,
        next_nonce,
    }))
}

/// `GET /v1/accounts/{address}/proof?height=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// The final height to read at; the head when absent.
    pub height: Option<u64>,
}

#[utoipa::path(get, path = "/v1/accounts/{address}/proof", tag = "accounts",
    params(
        ("address" = Address, Path, description = "Account address (ldg1...)"),
        ("height" = Option<u64>, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_u64, description = "A final height (default: the head). Heights older than the node's `state_versions_kept` are gone (410)."),
    ),
    responses(
        (status = 200, description = "The account's balance and nonce at a final height (zero for an unused address) with its state-tree proof, the header it is proven against and that header's commit certificate: enough to check it against the genesis without trusting this node (`ledger_core::light`). `format` is 1; the proof is the hex of its canonical encoding, at most 16,709 bytes.", body = AccountProofResponse),
        (status = 400, description = "invalid_address, invalid_height", body = super::openapi::ErrorBody),
        (status = 404, description = "not_found: the height is above the head, or the chain has no final block yet", body = super::openapi::ErrorBody),
        (status = 410, description = "height_not_kept: the state at that height was pruned (`oldest_kept` is the oldest height still kept, `head` the head)", body = super::openapi::ErrorBody),
    ))]
pub async fn get_account_proof(
    State(ctx): State<ApiContext>,
    Path(address): Path<String>,
    query: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Json<AccountProofResponse>, ApiFailure> {
    let address = parse_address(&address)?;
    let Query(q) = query?;
    let store = ctx.store.clone();
    let chain = ctx.chain.clone();
    ctx.read(move |s| Ok(account_proof(&store, s, &chain, &address, q.height)))
        .await?
        .map(Json)
}

/// The account answer, read from the store (on a blocking thread).
fn account_proof(
    store: &Arc<Store>,
    s: &Store,
    chain: &ChainInfo,
    address: &Address,
    height: Option<u64>,
) -> Result<AccountProofResponse, ApiFailure> {
    let head = s.head_height()?;
    if head == Height(0) {
        return Err(no_final_block());
    }
    let height = match height {
        None => head,
        Some(0) => {
            return Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_height",
                "height 0 is the genesis, which has no header to prove against; ask for 1 or above",
            ));
        }
        Some(h) if h > head.0 => {
            return Err(ApiFailure::not_found("final block at that height")
                .with_field("height", h)
                .with_field("head", head.0));
        }
        Some(h) => Height(h),
    };
    let (Some(header), Some(commit)) = (s.header(height)?, s.cert(height)?) else {
        return Err(ApiFailure::internal(
            "account proof",
            &format!("block or certificate {height} missing below the head {head}"),
        ));
    };
    let not_kept = |head: Height| {
        let oldest = s.oldest_kept_height(head).max(Height(1));
        ApiFailure::new(
            StatusCode::GONE,
            "height_not_kept",
            format!(
                "this node no longer keeps the state at height {height}; the oldest it keeps is {oldest}"
            ),
        )
        .with_field("height", height.0)
        .with_field("head", head.0)
        .with_field("oldest_kept", oldest.0)
    };
    if height < s.oldest_kept_height(head) {
        return Err(not_kept(head));
    }
    let version = s.state_genesis_version()? + head.0;
    let state_store: Arc<dyn StateStore> = store.clone();
    let proof = match LedgerState::open(state_store, head, version, None)
        .and_then(|state| state.prove_at(address, height))
    {
        Ok(proof) => proof,
        // Blocks committed while the tree was read may have pruned `height` meanwhile: that is
        // a height no longer kept, not a fault.
        Err(e) => {
            let now = s.head_height()?;
            if height < s.oldest_kept_height(now) || matches!(e, StateError::HeightNotKept { .. }) {
                return Err(not_kept(now));
            }
            return Err(ApiFailure::internal("account proof", &e));
        }
    };
    // A proof that does not match our own header is corruption; never serve it.
    proof
        .verify(&header.state_root)
        .map_err(|e| ApiFailure::internal("account proof against the stored header", &e))?;
    Ok(AccountProofResponse {
        format: PROOF_FORMAT,
        chain_id: chain.chain_id.clone(),
        genesis_hash: chain.genesis_hash,
        address: *address,
        balance: proof.account.balance,
        nonce: proof.account.nonce,
        height,
        header,
        commit,
        proof: encode_state_proof(&proof.proof),
    })
}

fn no_final_block() -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "the chain has no final block yet; try again in a second",
    )
}

/// `GET /v1/accounts/{address}/transactions?limit=&before=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountTxsQuery {
    pub limit: Option<u64>,
    pub before: Option<String>,
}

/// Transactions per page when the query gives no `limit`.
const DEFAULT_ACCOUNT_TXS_LIMIT: usize = 25;

#[utoipa::path(get, path = "/v1/accounts/{address}/transactions", tag = "accounts",
    params(
        ("address" = Address, Path, description = "Account address (ldg1...)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100, description = "Transactions per page (default 25)"),
        ("before" = Option<TxCursor>, Query, description = "The `next` of the previous page; lists the transactions before it"),
    ),
    responses(
        (status = 200, description = "Final transactions sent or received by the address, newest first (a transfer to oneself once); `next` is the cursor of the following page, null on the last", body = AccountTxsResponse),
        (status = 400, description = "invalid_address / invalid_limit / invalid_cursor / invalid_query", body = super::openapi::ErrorBody),
    ))]
pub async fn get_account_txs(
    State(ctx): State<ApiContext>,
    Path(address): Path<String>,
    query: Result<Query<AccountTxsQuery>, QueryRejection>,
) -> Result<Json<AccountTxsResponse>, ApiFailure> {
    let address = parse_address(&address)?;
    let Query(q) = query?;
    let limit = match q.limit {
        None => DEFAULT_ACCOUNT_TXS_LIMIT,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_ACCOUNT_TXS).contains(n))
            .ok_or_else(|| {
                ApiFailure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_limit",
                    format!("limit must be between 1 and {MAX_ACCOUNT_TXS}, got {n}"),
                )
                .with_field("min", 1)
                .with_field("max", MAX_ACCOUNT_TXS)
                .with_field("got", n)
            })?,
    };
    let before = q
        .before
        .as_deref()
        .map(parse_cursor)
        .transpose()?
        .map(|c| TxLocation {
            height: c.height,
            index: c.index,
        });
    let page = ctx
        .read(move |s| s.account_transactions(&address, before, limit))
        .await?;
    let txs = page
        .txs
        .into_iter()
        .map(|t| AccountTx {
            hash: t.hash,
            height: t.location.height,
            index: t.location.index,
            timestamp_ms: t.timestamp_ms,
            from_address: t.tx.tx.sender(),
            transaction: t.tx,
        })
        .collect();
    Ok(Json(AccountTxsResponse {
        address,
        txs,
        next: page.next.map(|l| TxCursor {
            height: l.height,
            index: l.index,
        }),
    }))
}

// ---------------------------------------------------------------------------------------------
// Blocks.

fn block_response(block: Block, commit: Option<CommitCertificate>) -> BlockResponse {
    let hash = block.hash();
    let txs = block
        .txs
        .into_iter()
        .map(|t| BlockTx {
            hash: t.hash(),
            from_address: t.tx.sender(),
            transaction: t,
        })
        .collect();
    BlockResponse {
        hash,
        header: block.header,
        txs,
        commit,
    }
}

/// The block at `height` as JSON: from the cache, else read, serialized once and cached (a
/// committed block never changes).
async fn block_at(ctx: &ApiContext, height: Height) -> Result<Response, ApiFailure> {
    let json = match ctx.block_json.get(&height.0) {
        Some(json) => json,
        None => {
            let Some(cb) = ctx.read(move |s| s.committed_block(height)).await? else {
                return Err(ApiFailure::not_found(&format!("block {height}")));
            };
            let body = serde_json::to_vec(&block_response(cb.block, Some(cb.commit)))
                .map_err(|e| ApiFailure::internal("cannot serialize a block", &e))?;
            let json = Bytes::from(body);
            ctx.block_json.insert(height.0, json.clone());
            json
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[utoipa::path(get, path = "/v1/blocks/{height}", tag = "blocks",
    params(("height" = Height, Path, description = "Block height (the first block is 1)")),
    responses(
        (status = 200, description = "The block, its transactions and the certificate that made it final", body = BlockResponse),
        (status = 400, description = "invalid_height", body = super::openapi::ErrorBody),
        (status = 404, description = "not_found", body = super::openapi::ErrorBody),
    ))]
pub async fn get_block(
    State(ctx): State<ApiContext>,
    Path(height): Path<String>,
) -> Result<Response, ApiFailure> {
    let height = parse_height(&height)?;
    block_at(&ctx, height).await
}

#[utoipa::path(get, path = "/v1/blocks/latest", tag = "blocks",
    responses(
        (status = 200, description = "The head block", body = BlockResponse),
        (status = 404, description = "not_found: no block committed yet", body = super::openapi::ErrorBody),
    ))]
pub async fn get_latest_block(State(ctx): State<ApiContext>) -> Result<Response, ApiFailure> {
    // The head as the driver published it (after its block was durably stored).
    let height = ctx.head.borrow().height;
    if height.0 == 0 {
        return Err(ApiFailure::not_found(
            "block 0 (nothing is committed yet, so the latest block)",
        ));
    }
    block_at(&ctx, height).await
}

#[utoipa::path(get, path = "/v1/blocks/hash/{hash}", tag = "blocks",
    params(("hash" = Hash, Path, description = "Block hash")),
    responses(
        (status = 200, description = "The block", body = BlockResponse),
        (status = 400, description = "invalid_hash", body = super::openapi::ErrorBody),
        (status = 404, description = "not_found", body = super::openapi::ErrorBody),
    ))]
pub async fn get_block_by_hash(
    State(ctx): State<ApiContext>,
    Path(hash): Path<String>,
) -> Result<Response, ApiFailure> {
    let hash = parse_hash(&hash)?;
    match ctx.read(move |s| s.height_of_hash(&hash)).await? {
        Some(h) => block_at(&ctx, h).await,
        None => Err(ApiFailure::not_found("block")),
    }
}

/// `GET /v1/blocks?from=&to=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRange {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// Blocks listed when the query gives no `from`.
const DEFAULT_BLOCK_LIST_LEN: u64 = 10;

#[utoipa::path(get, path = "/v1/blocks", tag = "blocks",
    params(
        ("from" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "First height (default: `to` - 9)"),
        ("to" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "Last height, inclusive (default: the head)"),
    ),
    responses(
        (status = 200, description = "The blocks, ascending; heights above the head are left out", body = Vec<BlockResponse>),
        (status = 400, description = "invalid_query / invalid_range (`from` above `to`) / range_too_large (more than `api.max_block_range` blocks): rules between the two values that the schema cannot state", body = super::openapi::ErrorBody),
    ))]
pub async fn get_blocks(
    State(ctx): State<ApiContext>,
    query: Result<Query<BlockRange>, QueryRejection>,
) -> Result<Json<Vec<BlockResponse>>, ApiFailure> {
    let Query(q) = query?;
    // The document declares heights as `int64` (utoipa's mapping of u64), so a height above
    // i64::MAX is outside the contract; no chain reaches it, and accepting it made the server
    // answer 200 to a schema-violating request (schemathesis ST201).
    for (name, v) in [("from", q.from), ("to", q.to)] {
        if v.is_some_and(|v| v > i64::MAX as u64) {
            return Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("`{name}` is above the largest height {}", i64::MAX),
            ));
        }
    }
    let head = ctx.head.borrow().height.0;
    let to = q.to.unwrap_or(head);
    let from = q
        .from
        .unwrap_or_else(|| to.saturating_sub(DEFAULT_BLOCK_LIST_LEN - 1).max(1));
    if from > to {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_range",
            format!("from ({from}) is after to ({to})"),
        ));
    }
    let max = ctx.limits.max_block_range;
    let len = to - from + 1;
    if len > max {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "range_too_large",
            format!("range has {len} blocks, the limit is {max}"),
        )
        .with_field("max", max)
        .with_field("got", len));
    }
    let blocks = ctx
        .read(move |s| {
            let mut out = Vec::new();
            for h in from.max(1)..=to {
                match s.committed_block(Height(h))? {
                    Some(cb) => out.push(cb),
                    None => break,
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(
        blocks
            .into_iter()
            .map(|cb| block_response(cb.block, Some(cb.commit)))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Chain.

#[utoipa::path(get, path = "/v1/status", tag = "chain",
    responses((status = 200, description = "Chain id, genesis hash, head, state root, sync state, peers, this node's validator address, mempool size, version and display unit", body = StatusResponse)))]
pub async fn status(State(ctx): State<ApiContext>) -> Result<Json<StatusResponse>, ApiFailure> {
    let head = ctx.head.borrow().clone();
    let peers = ctx.peers.borrow().len();
    let pool = ctx.mempool.stats();
    Ok(Json(StatusResponse {
        chain_id: ctx.chain.chain_id.clone(),
        genesis_hash: ctx.chain.genesis_hash,
        height: head.height,
        head_hash: head.hash,
        head_time_ms: head.time_ms,
        state_root: head.state_root,
        syncing: head.syncing,
        peers,
        validator: ctx.chain.validator,
        mempool_txs: pool.txs,
        version: env!("CARGO_PKG_VERSION").to_string(),
        token: ctx.chain.token.clone(),
    }))
}

#[utoipa::path(get, path = "/v1/genesis", tag = "chain",
    responses((status = 200, description = "The genesis this node runs, as its genesis.json: a client that pinned the genesis hash fetches it here, checks its hash (SHA-256 of its canonical encoding) and trusts its validators from then on", body = Object)))]
pub async fn genesis(State(ctx): State<ApiContext>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ctx.chain.genesis_json.clone(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/validators", tag = "chain",
    responses((status = 200, description = "The validators of the genesis, sorted by address, and their total voting power", body = ValidatorSet)))]
pub async fn validators(State(ctx): State<ApiContext>) -> Json<ValidatorSet> {
    Json(ctx.chain.validators.clone())
}

#[utoipa::path(get, path = "/v1/peers", tag = "chain",
    responses((status = 200, description = "The connected peers", body = Vec<PeerInfo>)))]
pub async fn peers(State(ctx): State<ApiContext>) -> Json<Vec<PeerInfo>> {
    Json(ctx.peers.borrow().clone())
}

#[utoipa::path(get, path = "/v1/events", tag = "chain",
    responses(
        (status = 200, description = "Server-Sent Events: `block` {height, hash, timestamp_ms, proposer, tx_count}, `tx` {hash, height, index}, and `lagged` {skipped} when this subscriber fell behind", content_type = "text/event-stream", body = super::openapi::ServerSentEvent),
        (status = 503, description = "too_many_subscribers", body = super::openapi::ErrorBody),
    ))]
pub async fn events(
    State(ctx): State<ApiContext>,
    request: axum::extract::Request,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiFailure> {
    // One client's share first, so it cannot take the slots of all the others.
    let client_slot = ctx
        .event_slots
        .try_open(super::client_ip(request.extensions()))
        .ok_or_else(|| {
            ApiFailure::unavailable(
                "too_many_subscribers",
                "this client has too many event subscriptions open (api.max_event_subscribers_per_client)",
            )
        })?;
    let permit = ctx
        .event_subscribers
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiFailure::unavailable(
                "too_many_subscribers",
                "too many event subscribers; retry later",
            )
        })?;
    let metrics = ctx.metrics.clone();
    let stream = BroadcastStream::new(ctx.events.subscribe()).map(move |item| {
        // The permits live as long as the stream: the slots free when the client leaves.
        let _slots = (&permit, &client_slot);
        let event = match item {
            Ok(ev) => Event::default()
                .event(ev.name())
                .json_data(&ev)
                .unwrap_or_else(|_| Event::default().event("error")),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                metrics.events_lagged.inc_by(n);
                Event::default()
                    .event("lagged")
                    .data(format!("{{\"skipped\":{n}}}"))
            }
        };
        Ok(event)
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/metrics", tag = "chain",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub async fn metrics(State(ctx): State<ApiContext>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.encode(),
    )
        .into_response()
}

pub async fn unknown_route() -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        "unknown_route",
        "no such endpoint; see /v1/openapi.json",
    )
}

pub async fn method_not_allowed() -> ApiFailure {
    ApiFailure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}
