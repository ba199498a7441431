//! Node configuration: defaults < config file (TOML or JSON) < environment (`LEDGER_*`) < flags.
//!
//! The file is parsed strictly (unknown fields are errors, so a typo does not silently fall back to a
//! default), and the merged value is validated once by [`Config::validate`], whose errors name the
//! offending field the way a user writes it in the file (`api.max_body_bytes`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything a node needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the RocksDB database lives. Created on first start.
    pub data_dir: PathBuf,
    /// The chain's genesis file. Its hash is stored in the database; a node refuses to open a data
    /// dir that belongs to another chain.
    pub genesis: PathBuf,
    /// The validator key file (see `ledger-node keygen`). Absent: the node runs as a full node that
    /// follows committed blocks and never votes.
    pub node_key: Option<PathBuf>,
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter such as `info,node=debug`.
    pub log_level: String,
    pub api: ApiConfig,
    pub p2p: P2pConfig,
    pub mempool: MempoolConfig,
    pub store: StoreConfig,
}

/// The HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Default 127.0.0.1:8700, where the wallet looks by default.
    pub listen_addr: SocketAddr,
    /// Largest request body; larger requests get 413.
    pub max_body_bytes: usize,
    /// Requests per second per client address (a token bucket each); beyond it that client's
    /// requests get 429, the others' do not.
    pub rate_limit_per_sec: u32,
    /// Requests a client's bucket lets through at once after a quiet period.
    pub rate_limit_burst: u32,
    /// Loopback clients (this machine's tools, e.g. the testnet's load generator) are not rate
    /// limited.
    pub rate_limit_exempt_loopback: bool,
    /// Requests processed at once; beyond it new requests are shed with 503 instead of queueing,
    /// so a flood cannot build an unbounded backlog in front of other clients.
    pub max_concurrent_requests: usize,
    /// A request that takes longer is answered with 503.
    pub request_timeout_ms: u64,
    /// Most transactions in one `POST /v1/transactions/batch`.
    pub max_batch_txs: usize,
    /// Most blocks in one `GET /v1/blocks?from=&to=`.
    pub max_block_range: u64,
    /// Events buffered per `/v1/events` subscriber before it lags (and is told so).
    pub events_buffer: usize,
    /// A client must send a request's head (line and headers) within this, or the connection is
    /// closed; it also closes a keep-alive connection idle that long.
    pub header_read_timeout_ms: u64,
    /// Open connections in all; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Open connections per client IP address; beyond, its new ones are closed at once.
    pub max_connections_per_client: usize,
    /// `/v1/events` subscriptions per client address (of the node's 256 in all).
    pub max_event_subscribers_per_client: usize,
}

/// Peer-to-peer settings, used by the network module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// A libp2p multiaddr, e.g. `/ip4/0.0.0.0/tcp/30333`.
    pub listen_addr: String,
    /// Multiaddrs of peers to dial at start (with `/p2p/<peer id>` where known).
    pub bootnodes: Vec<String>,
    pub max_peers: u32,
}

/// Mempool limits and admission rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Pending transactions one sender may have.
    pub max_txs_per_account: usize,
    /// A transaction's nonce may be at most this far above the sender's committed nonce.
    pub nonce_window: u64,
    /// Smallest fee (base units) admitted.
    pub min_fee: u64,
    /// A transaction still pending after this long is dropped (and reported as expired).
    pub tx_ttl_secs: u64,
    /// Recently rejected or dropped transactions remembered for `GET /v1/transactions/{hash}`.
    pub rejected_cache_len: usize,
}

/// RocksDB sizing, for a small machine by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The one LRU block cache shared by all column families, in MiB.
    pub block_cache_mib: usize,
    pub max_open_files: i32,
    /// RocksDB's own info logs: how many files are kept and how large each grows.
    pub keep_log_file_num: usize,
    pub max_log_file_bytes: usize,
    /// The LRU cache of the state tree's nodes and values (their own, apart from
    /// `block_cache_mib`), in bytes: the node's memory for the state, whatever its size on disk.
    pub state_cache_bytes: usize,
    /// How many recent heights' states stay provable (the head's included); older tree nodes are
    /// pruned as blocks commit. Ignored with `keep_all_versions`.
    pub state_versions_kept: u64,
    /// Keep every height's state (an archive node): nothing is pruned.
    pub keep_all_versions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            genesis: PathBuf::from("genesis.json"),
            node_key: None,
            log_level: "info".into(),
            api: ApiConfig::default(),
            p2p: P2pConfig::default(),
            mempool: MempoolConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8700)),
            max_body_bytes: 2 * 1024 * 1024,
            rate_limit_per_sec: 20_000,
            rate_limit_burst: 40_000,
            max_concurrent_requests: 1024,
            request_timeout_ms: 10_000,
            max_batch_txs: 2_000,
            max_block_range: 100,
            events_buffer: 1024,
            header_read_timeout_ms: 5_000,
            max_connections: 2_048,
            max_connections_per_client: 128,
            rate_limit_exempt_loopback: false,
            max_event_subscribers_per_client: 16,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/30333".into(),
            bootnodes: Vec::new(),
            max_peers: 50,
        }
    }
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 100_000,
            max_bytes: 64 * 1024 * 1024,
            max_txs_per_account: 2_000,
            nonce_window: 2_000,
            min_fee: 1,
            tx_ttl_secs: 600,
            rejected_cache_len: 10_000,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            block_cache_mib: 64,
            max_open_files: 256,
            keep_log_file_num: 5,
            max_log_file_bytes: 8 * 1024 * 1024,
            state_cache_bytes: 128 * 1024 * 1024,
            state_versions_kept: 1_000,
            keep_all_versions: false,
        }
    }
}

/// Why a configuration was refused. Every variant names the file or the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown format (use .toml or .json)")]
    UnknownFormat { path: PathBuf },
    #[error("config field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads a TOML (`.toml`) or JSON (`.json`) config file. Missing fields take their defaults.
    /// Relative paths in it (`data_dir`, `genesis`, `node_key`, given or defaulted) are relative to
    /// the file's folder, so a node folder (config, genesis, key) works wherever it is copied or
    /// mounted; paths from flags and the environment stay relative to the working directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::parse_file(path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.data_dir);
        resolve(&mut config.genesis);
        if let Some(key) = &mut config.node_key {
            resolve(key);
        }
        Ok(config)
    }

    fn parse_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("toml") => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            Some("json") => serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            _ => Err(ConfigError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The config as TOML, for `ledger-node print-config`.
    pub fn to_toml(&self) -> String {
        // Serializing plain structs of strings, numbers and lists cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every value that serde's types do not already constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.genesis.as_os_str().is_empty() {
            return Err(invalid("genesis", "must not be empty"));
        }
        if let Some(k) = &self.node_key
            && k.as_os_str().is_empty()
        {
            return Err(invalid("node_key", "must not be empty when given"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(invalid(
                "log_level",
                format!(
                    "`{}` is not a level or filter (try info or debug)",
                    self.log_level
                ),
            ));
        }
        let a = &self.api;
        positive(
            "api.max_body_bytes",
            a.max_body_bytes as u64,
            1024,
            256 * 1024 * 1024,
        )?;
        positive(
            "api.rate_limit_per_sec",
            a.rate_limit_per_sec as u64,
            1,
            10_000_000,
        )?;
        positive(
            "api.rate_limit_burst",
            a.rate_limit_burst as u64,
            1,
            10_000_000,
        )?;
        positive(
            "api.max_concurrent_requests",
            a.max_concurrent_requests as u64,
            1,
            1_000_000,
        )?;
        positive("api.request_timeout_ms", a.request_timeout_ms, 1, 3_600_000)?;
        positive("api.max_batch_txs", a.max_batch_txs as u64, 1, 100_000)?;
        positive("api.max_block_range", a.max_block_range, 1, 10_000)?;
        positive("api.events_buffer", a.events_buffer as u64, 1, 1_000_000)?;
        positive(
            "api.header_read_timeout_ms",
            a.header_read_timeout_ms,
            100,
            3_600_000,
        )?;
        positive(
            "api.max_connections",
            a.max_connections as u64,
            1,
            1_000_000,
        )?;
        positive(
            "api.max_event_subscribers_per_client",
            a.max_event_subscribers_per_client as u64,
            1,
            crate::api::MAX_EVENT_SUBSCRIBERS as u64,
        )?;
        positive(
            "api.max_connections_per_client",
            a.max_connections_per_client as u64,
            1,
            a.max_connections as u64,
        )?;
        if self.p2p.listen_addr.parse::<libp2p::Multiaddr>().is_err() {
            return Err(invalid(
                "p2p.listen_addr",
                format!(
                    "`{}` is not a multiaddr (e.g. /ip4/0.0.0.0/tcp/30333)",
                    self.p2p.listen_addr
                ),
            ));
        }
        for b in &self.p2p.bootnodes {
            if b.parse::<libp2p::Multiaddr>().is_err() {
                return Err(invalid(
                    "p2p.bootnodes",
                    format!("`{b}` is not a multiaddr"),
                ));
            }
        }
        positive("p2p.max_peers", self.p2p.max_peers as u64, 1, 10_000)?;
        let m = &self.mempool;
        positive("mempool.max_txs", m.max_txs as u64, 1, 10_000_000)?;
        positive(
            "mempool.max_bytes",
            m.max_bytes as u64,
            4096,
            16 * 1024 * 1024 * 1024,
        )?;
        positive(
            "mempool.max_txs_per_account",
            m.max_txs_per_account as u64,
            1,
            10_000_000,
        )?;
        positive("mempool.nonce_window", m.nonce_window, 1, 1_000_000)?;
        positive("mempool.tx_ttl_secs", m.tx_ttl_secs, 1, 30 * 24 * 3600)?;
        positive(
            "mempool.rejected_cache_len",
            m.rejected_cache_len as u64,
            1,
            10_000_000,
        )?;
        let s = &self.store;
        positive(
            "store.block_cache_mib",
            s.block_cache_mib as u64,
            1,
            1024 * 1024,
        )?;
        if s.max_open_files != -1 && !(16..=1_000_000).contains(&s.max_open_files) {
            return Err(invalid(
                "store.max_open_files",
                format!(
                    "must be -1 (unbounded) or 16..=1000000, got {}",
                    s.max_open_files
                ),
            ));
        }
        positive(
            "store.state_cache_bytes",
            s.state_cache_bytes as u64,
            1024 * 1024,
            1 << 40,
        )?;
        positive(
            "store.state_versions_kept",
            s.state_versions_kept,
            1,
            u64::MAX,
        )?;
        positive(
            "store.keep_log_file_num",
            s.keep_log_file_num as u64,
            1,
            1000,
        )?;
        positive(
            "store.max_log_file_bytes",
            s.max_log_file_bytes as u64,
            4096,
            1 << 34,
        )?;
        Ok(())
    }
}

fn positive(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            field,
            format!("must be in {min}..={max}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_wallet() {
        let c = Config::default();
        c.validate().expect("defaults validate");
        assert_eq!(c.api.listen_addr.to_string(), "127.0.0.1:8700");
    }

    #[test]
    fn toml_round_trips_and_partial_files_take_defaults() {
        let c = Config::default();
        let back: Config = toml::from_str(&c.to_toml()).expect("parses");
        assert_eq!(back, c);
        let partial: Config =
            toml::from_str("data_dir = \"/x\"\n[api]\nmax_batch_txs = 5\n").expect("parses");
        assert_eq!(partial.data_dir, PathBuf::from("/x"));
        assert_eq!(partial.api.max_batch_txs, 5);
        assert_eq!(
            partial.api.max_body_bytes,
            ApiConfig::default().max_body_bytes
        );
    }

    #[test]
    fn unknown_fields_are_errors_naming_the_field() {
        let e = toml::from_str::<Config>("[api]\nmax_body_byte = 5\n").expect_err("unknown field");
        assert!(e.to_string().contains("max_body_byte"), "{e}");
        let e = serde_json::from_str::<Config>(r#"{"mempool":{"max_tx":1}}"#)
            .expect_err("unknown field");
        assert!(e.to_string().contains("max_tx"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut c = Config::default();
        c.api.max_block_range = 0;
        let e = c.validate().expect_err("invalid").to_string();
        assert!(e.contains("api.max_block_range"), "{e}");
        let mut c = Config::default();
        c.p2p.listen_addr = "not an addr".into();
        assert!(
            c.validate()
                .expect_err("invalid")
                .to_string()
                .contains("p2p.listen_addr")
        );
        let c = Config {
            log_level: "loud[".into(),
            ..Config::default()
        };
        assert!(
            c.validate()
                .expect_err("invalid")
                .to_string()
                .contains("log_level")
        );
    }

    #[test]
    fn file_format_follows_the_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.json");
        std::fs::write(&p, r#"{"api":{"listen_addr":"127.0.0.1:9000"}}"#).expect("write");
        let c = Config::from_file(&p).expect("parses");
        assert_eq!(c.api.listen_addr.port(), 9000);
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "x").expect("write");
        assert!(matches!(
            Config::from_file(&p),
            Err(ConfigError::UnknownFormat { .. })
        ));
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "[api]\nlisten_addr = 5\n").expect("write");
        let e = Config::from_file(&p).expect_err("bad type").to_string();
        assert!(e.contains("listen_addr"), "{e}");
    }

    #[test]
    fn relative_paths_in_a_config_file_are_relative_to_its_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = dir.path().join("node-2");
        std::fs::create_dir(&node).expect("mkdir");
        let p = node.join("config.json");
        std::fs::write(
            &p,
            r#"{"genesis":"genesis.json","node_key":"node_key.json","data_dir":"/var/lib/ledger"}"#,
        )
        .expect("write");
        let c = Config::from_file(&p).expect("parses");
        assert_eq!(c.genesis, node.join("genesis.json"));
        assert_eq!(c.node_key, Some(node.join("node_key.json")));
        assert_eq!(
            c.data_dir,
            PathBuf::from("/var/lib/ledger"),
            "absolute stays"
        );
        std::fs::write(&p, "{}").expect("write");
        let c = Config::from_file(&p).expect("parses");
        assert_eq!(c.data_dir, node.join("data"), "a default is the file's too");
        assert_eq!(c.node_key, None);
    }
}
