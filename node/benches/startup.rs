//! Start-up time of the `ledger-node` binary on a store of many blocks, and its idle memory.
//!
//! Writes a one-validator chain of `BENCH_BLOCKS` blocks (default 100,000; one transfer each, every
//! block with its commit certificate) straight into a RocksDB store through the node's own
//! `Store::commit_block` (one synced batch per block, as the node commits), then starts the real
//! binary on it `BENCH_STARTS` times (default 5) and times process spawn -> first `200` from
//! `GET /v1/status` reporting the stored head. After each start it waits a moment and reads the
//! process's resident memory.
//!
//! `BENCH_ACCOUNTS` (default 0) adds that many accounts to the genesis state, written through the
//! library (`State::load` into the node's store), not through a genesis file.
//!
//! `cargo bench --workspace --bench startup`; the last line is
//! `startup_blocks=<n> startup_accounts=<n> startup_ms_median=<n> startup_ms_max=<n> idle_rss_mb=<n>`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::genesis::Genesis;
use ledger_core::state::{Account, State};
use ledger_core::validation::{ParentBlock, build_block};
use ledger_core::{
    Address, Amount, CommitCertificate, Hash, Keypair, Nonce, Round, TimestampMs, Transaction,
    Vote, VoteKind,
};
use node::config::StoreConfig;
use node::store::{BlockCommit, Store};
use support::{env_u64, free_addr, one_validator_files, run_command};

const ACCOUNTS: u32 = 16;

fn main() {
    // `cargo bench` passes `--bench`; any other argument (e.g. a filter from `cargo test
    // --benches`) runs nothing heavy.
    if !std::env::args().any(|a| a == "--bench") {
        println!("startup: run with `cargo bench -p node --bench startup`");
        return;
    }
    let blocks = env_u64("BENCH_BLOCKS", 100_000).max(1);
    let extra_accounts = env_u64("BENCH_ACCOUNTS", 0);
    let starts = env_u64("BENCH_STARTS", 5).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (genesis, genesis_path, key_path) =
        one_validator_files(dir.path(), "bench-startup", ACCOUNTS);
    let data = dir.path().join("data");

    let t = Instant::now();
    write_chain(&data, &genesis, blocks, extra_accounts);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "wrote {} accounts and {blocks} blocks ({blocks} transfers) in {secs:.1} s",
        u64::from(ACCOUNTS) + extra_accounts
    );

    let mut times = Vec::new();
    let mut rss = Vec::new();
    for i in 0..starts {
        let api = free_addr();
        let (ms, child_rss) = start_and_time(dir.path(), &genesis_path, &key_path, api, blocks);
        println!(
            "start {}: serving after {ms:.1} ms, {child_rss} MB resident when idle",
            i + 1
        );
        times.push(ms);
        rss.push(child_rss);
    }
    times.sort_by(f64::total_cmp);
    rss.sort_unstable();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!(
        "startup_blocks={blocks} startup_accounts={} startup_ms_median={median:.0} startup_ms_max={max:.0} idle_rss_mb={}",
        u64::from(ACCOUNTS) + extra_accounts,
        rss[rss.len() / 2]
    );
}

/// Genesis's accounts and `extra` more (balance 1 each, addresses from a counter), sorted: a large
/// state made through the library, not a genesis file of a gigabyte. The genesis hash (what the
/// node checks against its genesis file) stays the file's.
fn accounts_with_extra(genesis: &Genesis, extra: u64) -> Vec<(Address, Account)> {
    let mut accounts = genesis.initial_accounts();
    accounts.reserve(extra as usize);
    for i in 0..extra {
        let h = Hash::digest(&i.to_le_bytes());
        let mut a = [0u8; 20];
        a.copy_from_slice(&h.0[..20]);
        accounts.push((
            Address(a),
            Account {
                balance: Amount(1),
                nonce: Nonce(0),
            },
        ));
    }
    accounts.sort_unstable_by_key(|(a, _)| *a);
    accounts
}

/// Builds and commits `blocks` blocks on a fresh store: each carries one transfer between dev
/// accounts and the certificate of its parent, signed by the single validator.
fn write_chain(data: &Path, genesis: &Genesis, blocks: u64, extra_accounts: u64) {
    let store = Arc::new(Store::open(data, &StoreConfig::default()).expect("open store"));
    let mut state = State::load(store.clone(), &accounts_with_extra(genesis, extra_accounts))
        .expect("load the genesis state");
    store
        .init_genesis(genesis.hash(), state.version())
        .expect("init genesis");
    let chain = genesis.chain_context();
    let validator = Keypair::dev("validator", 0);
    let accounts: Vec<Keypair> = (0..ACCOUNTS).map(|i| Keypair::dev("account", i)).collect();
    let mut nonces = vec![0u64; accounts.len()];
    let mut parent = ParentBlock::genesis(genesis);
    let mut last_commit: Option<CommitCertificate> = None;
    for h in 1..=blocks {
        let from = (h % u64::from(ACCOUNTS)) as usize;
        let to = (from + 1) % accounts.len();
        let tx = Transaction {
            chain_id: genesis.chain_id().clone(),
            from: accounts[from].public(),
            to: accounts[to].address(),
            amount: Amount(1),
            fee: Amount(1),
            nonce: Nonce(nonces[from]),
            memo: vec![],
        }
        .sign(&accounts[from])
        .verify(genesis.chain_id())
        .expect("valid transfer");
        nonces[from] += 1;
        // Ten milliseconds apart, starting at the genesis time: all in the past.
        let now = TimestampMs(genesis.genesis_time_ms().0 + h * 10);
        let built = build_block(
            chain,
            &parent,
            &mut state,
            [&tx],
            validator.address(),
            now,
            last_commit.take(),
        )
        .expect("build block");
        assert_eq!(
            built.block.block().txs.len(),
            1,
            "block {h} took its transfer"
        );
        let hash = built.block.hash();
        let height = built.block.header().height;
        let precommit = Vote {
            kind: VoteKind::Precommit,
            height,
            round: Round(0),
            block_hash: Some(hash),
            validator: validator.address(),
        }
        .sign(genesis.chain_id(), &validator);
        let cert = CommitCertificate::from_precommits(
            height,
            Round(0),
            hash,
            chain.validators,
            [&precommit],
        );
        let tx_hashes: Vec<Hash> = built.executed.receipts().iter().map(|r| r.hash).collect();
        store
            .commit_block(&BlockCommit {
                block: built.block.block(),
                hash,
                commit: &cert,
                tx_hashes: &tx_hashes,
                state: built.executed.writes(),
            })
            .expect("commit block");
        state.commit(&built.executed).expect("state commit");
        state.persisted(state.version());
        parent = ParentBlock::of(&built.block);
        last_commit = Some(cert);
        if h % 20_000 == 0 {
            println!("  {h} blocks written");
        }
    }
    // As the node's graceful shutdown does.
    store.flush().expect("flush");
}

/// Starts the node, returns (ms from spawn to serving the stored head, idle RSS in MB), stops it.
fn start_and_time(
    dir: &Path,
    genesis: &Path,
    key: &Path,
    api: SocketAddr,
    blocks: u64,
) -> (f64, u64) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .expect("log file");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let url = format!("http://{api}/v1/status");
    let t = Instant::now();
    let mut child = run_command(dir, genesis, key, api)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn ledger-node");
    let deadline = t + Duration::from_secs(60);
    let ms = loop {
        if let Ok(mut r) = agent.get(&url).call()
            && r.status() == 200
        {
            let elapsed = t.elapsed().as_secs_f64() * 1000.0;
            let v: serde_json::Value = r.body_mut().read_json().expect("status JSON");
            let height = v["height"].as_u64().expect("height");
            assert!(height >= blocks, "serving height {height}, stored {blocks}");
            break elapsed;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "ledger-node exited with {status}; see {}",
                dir.join("node.log").display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "ledger-node did not serve within 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_mb(child.id());
    stop(&mut child);
    (ms, rss)
}

fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// SIGTERM and wait (the node shuts down gracefully and closes its store).
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
