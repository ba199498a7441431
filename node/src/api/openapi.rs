//! The OpenAPI document, served at `/v1/openapi.json`, generated from the handlers' annotations so
//! it cannot list a route the router does not have (a test checks the reverse).

use axum::Json;
use utoipa::{OpenApi, ToSchema};

use super::routes;

/// Every error answer's shape.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `nonce_too_low`, `not_found`, `invalid_field`.
    code: String,
    /// One human sentence.
    message: String,
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "ledger-node API",
        description = "A minimal BFT ledger node: submit signed transfers, read blocks, transactions, \
            accounts and their transaction history, validators, peers, and follow new blocks as \
            Server-Sent Events. Every error is JSON `{code, message, ...fields}`."
    ),
    paths(
        routes::submit_tx,
        routes::submit_batch,
        routes::get_tx,
        routes::get_account,
        routes::get_account_txs,
        routes::get_block,
        routes::get_latest_block,
        routes::get_block_by_hash,
        routes::get_blocks,
        routes::status,
        routes::validators,
        routes::peers,
        routes::events,
        routes::metrics,
    ),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
