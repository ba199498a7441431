//! Shared helpers: a fast one-validator genesis, signed transfers, an in-process node driven through
//! its router, and a real `ledger-node` process.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ledger_core::genesis::Genesis;
use ledger_core::{
    Address, Amount, ChainId, ConsensusParams, Keypair, Nonce, SignedTransaction, Transaction,
};
use node::config::Config;
use node::node::RunningNode;
use serde_json::Value;
use tower::ServiceExt;

/// A dev genesis with short timeouts so tests do not wait a second per empty block.
pub fn fast_genesis(validators: u32, accounts: u32) -> Genesis {
    let dev = Genesis::dev("it-chain", validators, accounts).expect("dev genesis");
    let params = ConsensusParams {
        timeout_propose_ms: 500,
        timeout_prevote_ms: 300,
        timeout_precommit_ms: 300,
        timeout_delta_ms: 200,
        block_fill_pause_ms: 10,
        empty_block_interval_ms: 200,
        ..ConsensusParams::default()
    };
    Genesis::new(
        dev.chain_id().clone(),
        dev.genesis_time_ms(),
        None,
        params,
        dev.validators().validators().to_vec(),
        dev.accounts().to_vec(),
    )
    .expect("valid genesis")
    .with_token(dev.token().cloned())
}

pub fn account(i: u32) -> Keypair {
    Keypair::dev("account", i)
}

pub fn validator(i: u32) -> Keypair {
    Keypair::dev("validator", i)
}

pub fn transfer(
    chain: &ChainId,
    from: &Keypair,
    to: Address,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> SignedTransaction {
    Transaction {
        chain_id: chain.clone(),
        from: from.public(),
        to,
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        memo: vec![],
    }
    .sign(from)
}

/// A config for tests: data in `dir`, generous limits, a given API address.
pub fn test_config(dir: &Path, genesis_path: PathBuf, api: SocketAddr) -> Config {
    let mut cfg = Config {
        data_dir: dir.join("data"),
        genesis: genesis_path,
        ..Config::default()
    };
    cfg.api.listen_addr = api;
    // Any free port: tests run in parallel, and a fixed p2p port would be taken by the first.
    cfg.p2p.listen_addr = "/ip4/127.0.0.1/tcp/0".into();
    cfg.log_level = "warn".into();
    cfg
}

/// A node running inside the test's runtime; requests go through the router without a socket.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub node: RunningNode,
    pub genesis: Genesis,
}

impl InProcess {
    pub async fn start() -> InProcess {
        InProcess::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let genesis = fast_genesis(1, 8);
        let gpath = dir.path().join("genesis.json");
        std::fs::write(&gpath, genesis.to_json()).expect("write genesis");
        let mut cfg = test_config(dir.path(), gpath, "127.0.0.1:0".parse().expect("addr"));
        tune(&mut cfg);
        let node = node::node::start(&cfg, genesis.clone(), Some(validator(0)))
            .await
            .expect("node starts");
        InProcess { dir, node, genesis }
    }

    /// Clean shutdown: the store is closed before the test process exits (RocksDB must not be
    /// open while the process tears down).
    pub async fn stop(self) {
        self.node.shutdown().await.expect("clean shutdown");
    }

    pub fn chain(&self) -> ChainId {
        self.genesis.chain_id().clone()
    }

    /// One request through the router; the JSON answer (or `Value::Null` for a non-JSON body).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let resp = self
            .node
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, None).await
    }

    pub async fn post_json(&self, uri: &str, v: &impl serde::Serialize) -> (StatusCode, Value) {
        self.call("POST", uri, Some(serde_json::to_vec(v).expect("json")))
            .await
    }

    /// Polls until the transaction is final; returns its status JSON.
    pub async fn wait_final(&self, hash: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, v) = self.get(&format!("/v1/transactions/{hash}")).await;
            if status == StatusCode::OK && v["status"] == "final" {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "tx {hash} not final in time: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_height(&self, h: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.node.head.borrow().height.0 < h {
            assert!(Instant::now() < deadline, "height {h} not reached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A free TCP port on loopback (bound, then released for the child to take).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A real `ledger-node run` process.
pub struct Process {
    pub child: Child,
    pub api: SocketAddr,
    pub agent: ureq::Agent,
}

impl Process {
    /// Writes a config file and starts the binary with it.
    pub fn start(dir: &Path, genesis_path: &Path, key_path: &Path, api: SocketAddr) -> Process {
        Process::start_with(dir, genesis_path, key_path, api, |_| {})
    }

    /// Like [`Process::start`], with the config adjusted by `tune` before it is written.
    pub fn start_with(
        dir: &Path,
        genesis_path: &Path,
        key_path: &Path,
        api: SocketAddr,
        tune: impl FnOnce(&mut Config),
    ) -> Process {
        let mut cfg = test_config(dir, genesis_path.to_path_buf(), api);
        cfg.node_key = Some(key_path.to_path_buf());
        tune(&mut cfg);
        let cfg_path = dir.join("node.toml");
        std::fs::write(&cfg_path, cfg.to_toml()).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ledger-node"))
            .arg("run")
            .arg("--config")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ledger-node");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let p = Process { child, api, agent };
        p.wait_ready();
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.agent.get(&self.url("/v1/status")).call()
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node did not come up on {}",
                self.api
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        match self.agent.get(&self.url(path)).call() {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let v = r.body_mut().read_json::<Value>().unwrap_or(Value::Null);
                (status, v)
            }
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        let mut r = self
            .agent
            .get(&self.url("/metrics"))
            .call()
            .expect("GET /metrics");
        r.body_mut().read_to_string().expect("metrics text")
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ureq::Error> {
        let mut r = self.agent.post(&self.url(path)).send_json(body)?;
        let status = r.status().as_u16();
        Ok((
            status,
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        ))
    }

    /// Submits one signed transfer through `POST /v1/transactions`; its hash.
    pub fn submit(&self, tx: &SignedTransaction) -> String {
        let (status, v) = self
            .post("/v1/transactions", &serde_json::to_value(tx).expect("json"))
            .expect("POST /v1/transactions");
        assert_eq!(status, 200, "transfer refused: {v}");
        v["hash"].as_str().expect("hash").to_owned()
    }

    /// Polls until the transaction is final (at most 30 s); its status JSON.
    pub fn wait_final(&self, hash: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, v) = self.get(&format!("/v1/transactions/{hash}"));
            if status == 200 && v["status"] == "final" {
                return v;
            }
            assert!(Instant::now() < deadline, "transfer {hash} not final: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!("node did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ledger-node verify` on a data dir and returns its JSON report.
pub fn verify_cli(dir: &Path, genesis_path: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-node"))
        .arg("verify")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--genesis")
        .arg(genesis_path)
        .output()
        .expect("run verify");
    assert!(
        out.status.success(),
        "verify failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("verify prints JSON")
}

/// Writes a one-validator fast genesis and validator 0's dev key into `dir`.
pub fn one_validator_files(dir: &Path) -> (Genesis, PathBuf, PathBuf) {
    one_validator_files_for(dir, fast_genesis(1, 8))
}

/// [`one_validator_files`] for a given one-validator genesis.
pub fn one_validator_files_for(dir: &Path, genesis: Genesis) -> (Genesis, PathBuf, PathBuf) {
    let gpath = dir.join("genesis.json");
    std::fs::write(&gpath, genesis.to_json()).expect("write genesis");
    let kpath = dir.join("validator.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-node"))
        .args(["dev-key", "--validator", "0", "--out"])
        .arg(&kpath)
        .output()
        .expect("dev-key");
    assert!(
        out.status.success(),
        "dev-key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (genesis, gpath, kpath)
}

/// The `wallet` binary of this workspace, next to `ledger-node` (the test command builds the
/// whole workspace before it runs tests).
pub fn wallet_bin() -> PathBuf {
    let wallet = Path::new(env!("CARGO_BIN_EXE_ledger-node")).with_file_name("wallet");
    assert!(
        wallet.is_file(),
        "{} is missing: build the workspace first (`cargo build --release --workspace`, as \
         scripts/build.sh does)",
        wallet.display()
    );
    wallet
}
