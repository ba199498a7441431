//! A blocking client of one node's HTTP API (`/v1/...` and the loopback control endpoint).
//!
//! Every request has a total timeout: a dead, stopped or isolated node must never hang a command.
//! Answers are read with a size limit. Non-2xx answers become [`ClientError::Status`] carrying the
//! node's typed [`ApiError`] when the body is one.

use std::time::Duration;

use ledger_core::api::{
    AccountResponse, ApiError, BlockResponse, StatusResponse, SubmitTxResponse, TxResponse,
};
use ledger_core::{Address, Hash, Height, SignedTransaction};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Largest answer read, in bytes. A range of 100 full blocks stays below it.
pub const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused or reset, timeout.
    #[error("{url}: {source}")]
    Transport { url: String, source: ureq::Error },
    /// The node answered with a non-2xx status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        error: Option<ApiError>,
        message: String,
    },
    /// The node answered 2xx but not with the expected JSON.
    #[error("{url}: unexpected answer: {reason}")]
    Decode { url: String, reason: String },
}

impl ClientError {
    /// Worth trying again later: no answer, or the node said it is busy (429, 503).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status { status, .. } => *status == 429 || *status == 503,
            ClientError::Decode { .. } => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Status { status: 404, .. })
    }

    /// A short machine-readable reason, for counting failures by kind.
    pub fn reason_code(&self) -> String {
        match self {
            ClientError::Transport { .. } => "transport".into(),
            ClientError::Status { error: Some(e), .. } => e.code.clone(),
            ClientError::Status { status, .. } => format!("http_{status}"),
            ClientError::Decode { .. } => "bad_answer".into(),
        }
    }
}

/// One entry of the `POST /v1/transactions/batch` answer: the transaction's status (pending, final,
/// rejected with its typed reason), or an error that is not about the transaction itself (a full
/// mempool), given either as `{hash, status: "error", error: {code, message}}` or as a bare error.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BatchEntry {
    Submitted(SubmitTxResponse),
    Failed { hash: Option<Hash>, error: ApiError },
    Error(ApiError),
}

impl BatchEntry {
    /// The node's error for this entry, when it is one (not a transaction status).
    pub fn error(&self) -> Option<&ApiError> {
        match self {
            BatchEntry::Submitted(_) => None,
            BatchEntry::Failed { error, .. } | BatchEntry::Error(error) => Some(error),
        }
    }
}

/// The batch answer: `{accepted, rejected, results: [...]}`, or a bare list of entries.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BatchAnswer {
    Wrapped { results: Vec<BatchEntry> },
    Bare(Vec<BatchEntry>),
}

/// A block reduced to what the load tracker needs. Deserializing only hashes keeps the tracker cheap
/// when blocks carry thousands of transactions (serde skips the rest).
#[derive(Debug, Clone, Deserialize)]
pub struct LightBlock {
    pub hash: Hash,
    pub header: LightHeader,
    pub txs: Vec<LightTx>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LightHeader {
    pub height: Height,
    pub state_root: Hash,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LightTx {
    pub hash: Hash,
}

/// `GET /v1/blocks?from=&to=` answers a list; accept it bare or wrapped as `{ "blocks": [...] }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BlockList<T> {
    Bare(Vec<T>),
    Wrapped { blocks: Vec<T> },
}

/// The client of one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

impl NodeClient {
    /// `base` is the API's root URL, e.g. `http://127.0.0.1:8700`. Every request times out after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> NodeClient {
        let config = ureq::Agent::config_builder()
            // Non-2xx answers carry the node's typed error; we read it instead of getting an opaque error.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(2))))
            // The testnet's nodes are on this machine: a proxy from the environment would resolve
            // `127.0.0.1` on its own machine instead.
            .proxy(None)
            .build();
        NodeClient {
            base: base.trim_end_matches('/').to_string(),
            agent: config.into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn status(&self) -> Result<StatusResponse, ClientError> {
        self.get_json("/v1/status")
    }

    pub fn account(&self, address: &Address) -> Result<AccountResponse, ClientError> {
        self.get_json(&format!("/v1/accounts/{address}"))
    }

    pub fn block(&self, height: u64) -> Result<BlockResponse, ClientError> {
        self.get_json(&format!("/v1/blocks/{height}"))
    }

    /// The block at `height` with transaction hashes only.
    pub fn block_light(&self, height: u64) -> Result<LightBlock, ClientError> {
        self.get_json(&format!("/v1/blocks/{height}"))
    }

    /// Blocks `from..=to` (the node caps a range at 100), transaction hashes only.
    pub fn blocks_light(&self, from: u64, to: u64) -> Result<Vec<LightBlock>, ClientError> {
        let list: BlockList<LightBlock> =
            self.get_json(&format!("/v1/blocks?from={from}&to={to}"))?;
        Ok(match list {
            BlockList::Bare(v) | BlockList::Wrapped { blocks: v } => v,
        })
    }

    /// Blocks `from..=to` (the node caps a range at 100) with full content and certificates.
    pub fn blocks(&self, from: u64, to: u64) -> Result<Vec<BlockResponse>, ClientError> {
        let list: BlockList<BlockResponse> =
            self.get_json(&format!("/v1/blocks?from={from}&to={to}"))?;
        Ok(match list {
            BlockList::Bare(v) | BlockList::Wrapped { blocks: v } => v,
        })
    }

    pub fn transaction(&self, hash: &Hash) -> Result<TxResponse, ClientError> {
        self.get_json(&format!("/v1/transactions/{hash}"))
    }

    pub fn peers(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/peers")
    }

    pub fn submit(&self, tx: &SignedTransaction) -> Result<SubmitTxResponse, ClientError> {
        let body = serde_json::to_vec(tx).map_err(|e| ClientError::Decode {
            url: self.url("/v1/transactions"),
            reason: e.to_string(),
        })?;
        self.post_json("/v1/transactions", &body)
    }

    /// `POST /v1/transactions/batch` with an already serialized JSON array of signed transactions
    /// (the load generator serializes before it starts the clock).
    pub fn submit_batch_raw(&self, body: &[u8]) -> Result<Vec<BatchEntry>, ClientError> {
        let answer: BatchAnswer = self.post_json("/v1/transactions/batch", body)?;
        Ok(match answer {
            BatchAnswer::Wrapped { results: v } | BatchAnswer::Bare(v) => v,
        })
    }

    /// `POST /control/<action>` with the bearer token (isolate, heal).
    pub fn control(&self, action: &str, token: &str) -> Result<serde_json::Value, ClientError> {
        let path = format!("/control/{action}");
        let url = self.url(&path);
        let resp = self
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send_empty()
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        // The control endpoint may answer with an empty body; that is a success too.
        let (status, bytes) = read_body(url.clone(), resp)?;
        check_status(&url, status, &bytes)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).or_else(|_| {
            Ok(serde_json::Value::String(
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path`, checked for a 2xx status; returns the body's length without decoding it (what a
    /// read benchmark needs: the node did all its work once the whole body has arrived).
    pub fn get_raw(&self, path: &str) -> Result<usize, ClientError> {
        let (url, bytes) = self.get_ok(path)?;
        if bytes.is_empty() {
            return Err(ClientError::Decode {
                url,
                reason: "empty body".into(),
            });
        }
        Ok(bytes.len())
    }

    /// `GET path`, a 2xx answer decoded as JSON.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (url, bytes) = self.get_ok(path)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// `GET path`: the URL and the body of a 2xx answer.
    fn get_ok(&self, path: &str) -> Result<(String, Vec<u8>), ClientError> {
        let url = self.url(path);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let (status, bytes) = read_body(url.clone(), resp)?;
        check_status(&url, status, &bytes)?;
        Ok((url, bytes))
    }

    fn post_json<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        decode(url, resp)
    }
}

fn read_body(
    url: String,
    mut resp: ureq::http::Response<ureq::Body>,
) -> Result<(u16, Vec<u8>), ClientError> {
    let status = resp.status().as_u16();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|source| ClientError::Transport { url, source })?;
    Ok((status, bytes))
}

fn check_status(url: &str, status: u16, bytes: &[u8]) -> Result<(), ClientError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let error = serde_json::from_slice::<ApiError>(bytes).ok();
    let message = match &error {
        Some(e) => format!("{} ({})", e.message, e.code),
        None => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                .trim()
                .to_string();
            if text.is_empty() {
                "(empty answer)".into()
            } else {
                text
            }
        }
    };
    Err(ClientError::Status {
        url: url.to_string(),
        status,
        error,
        message,
    })
}

fn decode<T: DeserializeOwned>(
    url: String,
    resp: ureq::http::Response<ureq::Body>,
) -> Result<T, ClientError> {
    let (status, bytes) = read_body(url.clone(), resp)?;
    check_status(&url, status, &bytes)?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
        url,
        reason: e.to_string(),
    })
}
