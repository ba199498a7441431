//! A blocking client of the node's HTTP API (`/v1/...`), with connect and request timeouts and a
//! bound on the size of every answer it reads.

use std::time::Duration;

use ledger_core::api::{
    AccountProofResponse, AccountResponse, ApiError, StatusResponse, SubmitTxResponse,
    TxProofResponse, TxResponse,
};
use ledger_core::{Address, Amount, Hash, Nonce, SignedTransaction, TxError};
use serde::de::DeserializeOwned;

use crate::args::NodeUrl;

/// How long to wait for a TCP connection to the node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer body read from the node, in bytes (the largest expected is a proof answer: a
/// header, a certificate of every validator's signature and a state proof of at most 16,709 bytes
/// in hex). The genesis has its own bound, [`crate::trust::MAX_GENESIS_BYTES`].
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Why a call to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No HTTP answer at all: refused, unresolvable, timed out, reset.
    #[error("cannot reach node at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The node answered with an error (`{code, message, ...fields}`).
    #[error("node at {url} refused {path} ({status} {}): {}", .error.code, .error.message)]
    Api {
        url: String,
        path: String,
        status: u16,
        error: Box<ApiError>,
    },
    /// Something answered, but not the way a ledger node does.
    #[error("unexpected answer from {url}{path} (is it a ledger node?): {detail}")]
    BadResponse {
        url: String,
        path: String,
        detail: String,
    },
}

impl NodeError {
    /// The node's typed reason when it refused a transaction (a 4xx answer carrying a `TxError`).
    pub fn tx_rejection(&self) -> Option<TxError> {
        match self {
            NodeError::Api { status, error, .. } if (400..500).contains(status) => error.tx_error(),
            _ => None,
        }
    }
}

/// One node's API.
#[derive(Debug, Clone)]
pub struct NodeClient {
    url: NodeUrl,
    agent: ureq::Agent,
    request_timeout: Duration,
}

impl NodeClient {
    pub fn new(url: NodeUrl, request_timeout: Duration) -> NodeClient {
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(request_timeout))
            // Error answers carry a JSON body we want to read.
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ledger-wallet/", env!("CARGO_PKG_VERSION")));
        // A node on this machine is reached directly, never through a proxy from the environment
        // (HTTP_PROXY, ALL_PROXY): the proxy would resolve `127.0.0.1` on its own machine, and the
        // signed transfer would go to whatever listens there. Remote nodes keep the proxy.
        if url.is_loopback() {
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config.build().into();
        NodeClient {
            url,
            agent,
            request_timeout,
        }
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<StatusResponse, NodeError> {
        self.get("/v1/status")
    }

    /// `GET /v1/accounts/{address}`. An account the node has never seen is empty (balance 0,
    /// nonce 0), whether the node says so or answers `not_found`.
    pub fn account(&self, address: &Address) -> Result<AccountResponse, NodeError> {
        match self.get(&format!("/v1/accounts/{address}")) {
            Err(NodeError::Api {
                status: 404, error, ..
            }) if error.code == "not_found" => Ok(AccountResponse {
                address: *address,
                balance: Amount(0),
                nonce: Nonce(0),
                next_nonce: Nonce(0),
            }),
            other => other,
        }
    }

    /// `POST /v1/transactions`. A refusal is `Err(NodeError::Api)`; see [`NodeError::tx_rejection`].
    pub fn submit(&self, tx: &SignedTransaction) -> Result<SubmitTxResponse, NodeError> {
        let path = "/v1/transactions";
        let result = self.agent.post(self.url.join(path)).send_json(tx);
        self.answer(path, result)
    }

    /// `GET /v1/transactions/{hash}`; `None` when the node does not know the transaction.
    pub fn tx(&self, hash: &Hash) -> Result<Option<TxResponse>, NodeError> {
        match self.get(&format!("/v1/transactions/{hash}")) {
            Ok(r) => Ok(Some(r)),
            Err(NodeError::Api {
                status: 404, error, ..
            }) if error.code == "not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/accounts/{address}/proof`: the account at the node's final head, with what it
    /// takes to check it ([`crate::verify`]). `not_found` when the chain has no final block yet.
    pub fn account_proof(&self, address: &Address) -> Result<AccountProofResponse, NodeError> {
        self.get(&format!("/v1/accounts/{address}/proof"))
    }

    /// `GET /v1/transactions/{hash}/proof`; `None` when the node has no final transaction with
    /// that hash.
    pub fn tx_proof(&self, hash: &Hash) -> Result<Option<TxProofResponse>, NodeError> {
        match self.get(&format!("/v1/transactions/{hash}/proof")) {
            Ok(r) => Ok(Some(r)),
            Err(NodeError::Api {
                status: 404, error, ..
            }) if error.code == "not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/genesis`: the node's genesis document as it sent it (checked by the caller).
    pub fn genesis_json(&self) -> Result<String, NodeError> {
        let path = "/v1/genesis";
        let result = self.agent.get(self.url.join(path)).call();
        let (status, body) = self.read(path, result, crate::trust::MAX_GENESIS_BYTES)?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(self.error_answer(path, status, &body))
    }

    /// The node's base URL, for messages.
    pub fn url(&self) -> &NodeUrl {
        &self.url
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, NodeError> {
        let result = self.agent.get(self.url.join(path)).call();
        self.answer(path, result)
    }

    /// Turns an HTTP exchange into the typed answer or a typed error.
    fn answer<T: DeserializeOwned>(
        &self,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, NodeError> {
        let (status, body) = self.read(path, result, MAX_RESPONSE_BYTES)?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&body).map_err(|e| NodeError::BadResponse {
                url: self.url.to_string(),
                path: path.to_string(),
                detail: format!("HTTP {status} with a body that does not parse: {e}"),
            });
        }
        Err(self.error_answer(path, status, &body))
    }

    /// The status and body (at most `limit` bytes) of an HTTP exchange.
    fn read(
        &self,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: u64,
    ) -> Result<(u16, String), NodeError> {
        let mut response = result.map_err(|e| self.transport_error(path, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(|e| self.transport_error(path, e))?;
        Ok((status, body))
    }

    /// The typed error of a non-2xx answer.
    fn error_answer(&self, path: &str, status: u16, body: &str) -> NodeError {
        match serde_json::from_str::<ApiError>(body) {
            Ok(error) => NodeError::Api {
                url: self.url.to_string(),
                path: path.to_string(),
                status,
                error: Box::new(error),
            },
            Err(_) => NodeError::BadResponse {
                url: self.url.to_string(),
                path: path.to_string(),
                detail: format!("HTTP {status} without a JSON error body"),
            },
        }
    }

    fn transport_error(&self, path: &str, e: ureq::Error) -> NodeError {
        use std::io::ErrorKind;
        let secs = self.request_timeout.as_secs_f64();
        let reason = match &e {
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".to_string(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                    "connection reset".to_string()
                }
                ErrorKind::TimedOut => format!("no answer within {secs}s"),
                ErrorKind::HostUnreachable => "host unreachable".to_string(),
                ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
                ErrorKind::UnexpectedEof => "connection closed before an answer".to_string(),
                _ => io.to_string(),
            },
            ureq::Error::Timeout(ureq::Timeout::Connect) => {
                format!("connection timed out after {}s", CONNECT_TIMEOUT.as_secs())
            }
            ureq::Error::Timeout(_) => format!("no answer within {secs}s"),
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::ConnectionFailed => "connection failed".to_string(),
            other => {
                return NodeError::BadResponse {
                    url: self.url.to_string(),
                    path: path.to_string(),
                    detail: other.to_string(),
                };
            }
        };
        NodeError::Unreachable {
            url: self.url.to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_4xx_carrying_a_tx_error_is_a_rejection() {
        let reason = TxError::InsufficientFunds {
            have: Amount(5),
            need: Amount(12),
        };
        let e = NodeError::Api {
            url: "http://n:1".into(),
            path: "/v1/transactions".into(),
            status: 422,
            error: Box::new(ApiError::from_tx_error(&reason)),
        };
        assert_eq!(e.tx_rejection(), Some(reason.clone()));
        let server_side = NodeError::Api {
            url: "http://n:1".into(),
            path: "/v1/transactions".into(),
            status: 503,
            error: Box::new(ApiError::from_tx_error(&reason)),
        };
        assert_eq!(server_side.tx_rejection(), None);
        let other = NodeError::Api {
            url: "http://n:1".into(),
            path: "/v1/transactions".into(),
            status: 429,
            error: Box::new(ApiError::new("rate_limited", "too many requests")),
        };
        assert_eq!(other.tx_rejection(), None);
        assert_eq!(
            other.to_string(),
            "node at http://n:1 refused /v1/transactions (429 rate_limited): too many requests"
        );
    }

    #[test]
    fn a_closed_port_is_unreachable_with_a_plain_reason() {
        // Bind and drop to find a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binds");
        let url: NodeUrl = format!("http://127.0.0.1:{port}")
            .parse()
            .expect("valid url");
        let client = NodeClient::new(url, Duration::from_secs(2));
        let e = client.status().expect_err("nothing listens");
        assert_eq!(
            e.to_string(),
            format!("cannot reach node at http://127.0.0.1:{port}: connection refused")
        );
    }
}
