//! Every error answer of the API: JSON `ApiError { code, message, ...fields }` with a fitting status.
//!
//! Client errors say exactly what is wrong; internal errors are logged with their cause and the
//! client only learns that something failed inside the node (nothing about paths or database keys).

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger_core::TxError;
use ledger_core::api::ApiError;

use crate::mempool::{AdmitError, MempoolError};
use crate::store::StoreError;

/// An error answer: a status code and the JSON body.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: ApiError,
}

impl ApiFailure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            body: ApiError::new(code, message),
        }
    }

    pub fn with_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiFailure {
        self.body.fields.insert(key.into(), value.into());
        self
    }

    /// 400 `bad_json`: the body is not JSON at all.
    pub fn bad_json(e: &serde_json::Error) -> ApiFailure {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("request body is not valid JSON: {e}"),
        )
    }

    /// 400 `invalid_field`: JSON, but a field is missing, unknown, of the wrong type or out of range.
    pub fn invalid_field(e: &serde_json::Error) -> ApiFailure {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("request body has an invalid field: {e}"),
        )
    }

    /// 413 `body_too_large`, wherever the body limit is met (announced, read, extracted).
    pub fn body_too_large() -> ApiFailure {
        ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body is too large",
        )
    }

    pub fn not_found(what: &str) -> ApiFailure {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 422 with the transaction error's own code and fields.
    pub fn tx(e: &TxError) -> ApiFailure {
        ApiFailure {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ApiError::from_tx_error(e),
        }
    }

    /// 500: logged here with its cause, answered without it.
    pub fn internal(context: &str, e: &dyn std::fmt::Display) -> ApiFailure {
        tracing::error!(error = %e, "api: {context}");
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the node's log",
        )
    }

    pub fn unavailable(code: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        ApiFailure::internal("store read failed", &e)
    }
}

impl From<MempoolError> for ApiFailure {
    fn from(_: MempoolError) -> Self {
        ApiFailure::unavailable("shutting_down", "the node is shutting down")
    }
}

impl From<AdmitError> for ApiFailure {
    fn from(e: AdmitError) -> Self {
        match e {
            AdmitError::Tx(t) => ApiFailure::tx(&t),
            AdmitError::Full { txs, bytes } => {
                ApiFailure::unavailable("mempool_full", e.to_string())
                    .with_field("txs", txs)
                    .with_field("bytes", bytes)
            }
            AdmitError::SenderFull { max } => ApiFailure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sender_pending_limit",
                e.to_string(),
            )
            .with_field("max", max),
            AdmitError::Store(s) => ApiFailure::internal("mempool account read failed", &s),
        }
    }
}

impl From<BytesRejection> for ApiFailure {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiFailure::body_too_large()
        } else {
            ApiFailure::new(r.status(), "bad_body", r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiFailure {
    fn from(r: QueryRejection) -> Self {
        ApiFailure::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

/// Parses a JSON body, telling malformed JSON (`bad_json`) from well-formed JSON with a bad field
/// (`invalid_field`: unknown field, wrong type, number out of range, bad hex or address).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiFailure> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiFailure::invalid_field(&e),
        _ => ApiFailure::bad_json(&e),
    })
}
