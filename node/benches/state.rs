//! The state in RocksDB at scale: a state of `BENCH_ACCOUNTS` accounts (default 1,000,000) made
//! through the library (`State::load` into the node's `Store`, no genesis file), then:
//!
//! - block validate+apply of a 10,000-transfer block (10,000 funded senders paying accounts spread
//!   over the whole state): validation with `validate_block` as a node that has not seen the block
//!   (every signature checked), then the node's commit (`Store::commit_block`, one synced batch)
//!   and the state's. Once on a freshly opened store (cold: empty caches, and the kernel's page
//!   cache dropped when this runs as root), then on a second block (its accounts and tree paths
//!   are other ones, so most of its reads are still cold), then on a third block after the store's
//!   files were read once (warm: the kernel's page cache holds them, as it does for a node that
//!   has run a while on a machine whose memory exceeds the state's size on disk; RocksDB's own
//!   cache stays bounded by `state_cache_bytes`);
//! - the same block size on the in-memory store (`MemStore`) with 1,000,000 accounts, in the same
//!   run, for comparison;
//! - an account proof at the head and 1,000 heights back (after 1,000 more one-transfer blocks):
//!   its size (canonical encoding and JSON) and the time to read it from the store.
//!
//! `cargo bench --workspace --bench state`; the last line is `state_accounts=<n> load_s=<n>
//! cold_ms=<n> second_block_ms=<n> warm_ms=<n> memory_1m_ms=<n> warm_ratio=<memory/warm>
//! proof_bytes=<n> proof_json_bytes=<n> proof_head_us=<n> proof_1000_back_us=<n> disk_mb=<n>`.

#[allow(dead_code)] // the module is shared with the other benches, which use the rest
mod support;

use std::sync::Arc;
use std::time::Instant;

use ledger_core::genesis::Genesis;
use ledger_core::state::{Account, MemStore, State, StateStore};
use ledger_core::validation::{ParentBlock, build_block, none_verified, validate_block};
use ledger_core::{
    Address, Amount, CommitCertificate, Hash, Height, Keypair, Nonce, Round, SealedBlock,
    TimestampMs, Transaction, VerifiedTransaction, Vote, VoteKind,
};
use node::config::StoreConfig;
use node::store::{BlockCommit, Store};
use support::env_u64;

const TRANSFERS: u64 = 10_000;
const MEMORY_ACCOUNTS: u64 = 1_000_000;
const PROOF_DEPTH: u64 = 1_000;

fn address(i: u64) -> Address {
    let h = Hash::digest_parts(&[b"bench-account", &i.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

struct Chain {
    genesis: Genesis,
    validator: Keypair,
    senders: Vec<Keypair>,
    /// Accounts that only receive: `address(0..receivers)`.
    receivers: u64,
}

impl Chain {
    fn new(receivers: u64) -> Chain {
        let genesis = Genesis::dev("bench-state", 1, 1).expect("dev genesis");
        let senders = (0..TRANSFERS as u32)
            .map(|i| Keypair::dev("bench-sender", i))
            .collect();
        Chain {
            genesis,
            validator: Keypair::dev("validator", 0),
            senders,
            receivers,
        }
    }

    /// The senders (funded) and the receivers, sorted by address.
    fn accounts(&self) -> Vec<(Address, Account)> {
        let funded = Account {
            balance: Amount(1_000_000_000),
            nonce: Nonce(0),
        };
        let mut all: Vec<(Address, Account)> =
            self.senders.iter().map(|k| (k.address(), funded)).collect();
        all.extend((0..self.receivers).map(|i| {
            (
                address(i),
                Account {
                    balance: Amount(1),
                    nonce: Nonce(0),
                },
            )
        }));
        all.sort_unstable_by_key(|(a, _)| *a);
        all
    }

    /// Block `height` of `TRANSFERS` transfers, each sender once (at nonce `nonce`), to receivers
    /// spread over the state, built on `state`.
    fn block(
        &self,
        state: &mut State,
        parent: &ParentBlock,
        nonce: u64,
        count: u64,
        last_commit: Option<CommitCertificate>,
    ) -> SealedBlock {
        let txs: Vec<VerifiedTransaction> = self
            .senders
            .iter()
            .take(count as usize)
            .enumerate()
            .map(|(i, k)| {
                let to = address((i as u64 * 7919 + nonce * 104_729) % self.receivers);
                Transaction {
                    chain_id: self.genesis.chain_id().clone(),
                    from: k.public(),
                    to,
                    amount: Amount(1),
                    fee: Amount(1),
                    nonce: Nonce(nonce),
                    memo: vec![],
                }
                .sign(k)
                .verify(self.genesis.chain_id())
                .expect("valid transfer")
            })
            .collect();
        let now = TimestampMs(parent.timestamp_ms.0 + 10);
        let built = build_block(
            self.genesis.chain_context(),
            parent,
            state,
            txs.iter(),
            self.validator.address(),
            now,
            last_commit,
        )
        .expect("builds");
        assert_eq!(
            built.block.block().txs.len() as u64,
            count,
            "every transfer fits"
        );
        state.discard_speculation();
        built.block
    }

    fn certificate(&self, block: &SealedBlock) -> CommitCertificate {
        let precommit = Vote {
            kind: VoteKind::Precommit,
            height: block.height(),
            round: Round(0),
            block_hash: Some(block.hash()),
            validator: self.validator.address(),
        }
        .sign(self.genesis.chain_id(), &self.validator);
        CommitCertificate::from_precommits(
            block.height(),
            Round(0),
            block.hash(),
            self.genesis.validators(),
            [&precommit],
        )
    }
}

/// Validates `block` (all signatures) and commits it to `store` (if any) and `state`; the time of
/// both, in ms.
fn validate_and_apply(
    chain: &Chain,
    state: &mut State,
    store: Option<&Store>,
    parent: &ParentBlock,
    block: &SealedBlock,
) -> (f64, CommitCertificate) {
    let cert = chain.certificate(block);
    let t = Instant::now();
    let executed = validate_block(
        chain.genesis.chain_context(),
        parent,
        state,
        block,
        None,
        &none_verified,
    )
    .expect("valid block");
    let validated = t.elapsed();
    if let Some(store) = store {
        store
            .commit_block(&BlockCommit {
                block: block.block(),
                hash: block.hash(),
                commit: &cert,
                tx_hashes: block.tx_hashes(),
                state: executed.writes(),
            })
            .expect("commits");
    }
    state.commit(&executed).expect("state commit");
    state.persisted(state.version());
    let total = t.elapsed();
    if block.block().txs.len() > 1 {
        println!(
            "  height {}: validate (execution, tree, signatures) {:.0} ms, commit (synced batch of {} tree nodes) {:.0} ms",
            block.height(),
            validated.as_secs_f64() * 1000.0,
            executed.writes().tree.node_batch.nodes().len(),
            (total - validated).as_secs_f64() * 1000.0
        );
    }
    (total.as_secs_f64() * 1000.0, cert)
}

fn drop_page_cache() -> bool {
    // Dirty pages first, then the clean ones; only root may.
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Reads every file of `path` once (into the kernel's page cache); the megabytes read.
fn read_files(path: &std::path::Path) -> u64 {
    let mut total = 0u64;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            if let Ok(mut f) = std::fs::File::open(e.path()) {
                total += std::io::copy(&mut f, &mut std::io::sink()).unwrap_or(0);
            }
        }
    }
    total / 1_000_000
}

fn dir_mb(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total / 1_000_000
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("state: run with `cargo bench --workspace --bench state`");
        return;
    }
    let accounts = env_u64("BENCH_ACCOUNTS", 1_000_000).max(TRANSFERS);
    let receivers = accounts - TRANSFERS;
    let chain = Chain::new(receivers);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = StoreConfig {
        state_versions_kept: PROOF_DEPTH + 2,
        ..StoreConfig::default()
    };

    // The state, through the library, into the node's store.
    let t = Instant::now();
    let version0 = {
        let store = Arc::new(Store::open(&data, &cfg).expect("opens"));
        let state = State::load(store.clone(), &chain.accounts()).expect("loads");
        store
            .init_genesis(chain.genesis.hash(), state.version())
            .expect("init");
        store.flush().expect("flush");
        state.version()
    };
    let load_s = t.elapsed().as_secs_f64();
    println!("loaded {accounts} accounts into RocksDB in {load_s:.1} s");

    // Block 1, built on a store opened for it; then a cold store validates and applies it.
    let genesis_parent = ParentBlock::genesis(&chain.genesis);
    let block1 = {
        let store = Arc::new(Store::open(&data, &cfg).expect("opens"));
        let mut state = State::open(store, Height(0), version0, None).expect("state");
        chain.block(&mut state, &genesis_parent, 0, TRANSFERS, None)
    };
    let dropped = drop_page_cache();
    let store = Arc::new(Store::open(&data, &cfg).expect("opens"));
    let mut state = State::open(store.clone(), Height(0), version0, None).expect("state");
    let (cold_ms, cert1) =
        validate_and_apply(&chain, &mut state, Some(&store), &genesis_parent, &block1);
    println!(
        "cold (fresh store{}): block 1 of {TRANSFERS} transfers validated and applied in {cold_ms:.0} ms",
        if dropped { ", page cache dropped" } else { "" }
    );
    let parent1 = ParentBlock::of(&block1);
    let block2 = chain.block(&mut state, &parent1, 1, TRANSFERS, Some(cert1));
    let (second_ms, cert2) =
        validate_and_apply(&chain, &mut state, Some(&store), &parent1, &block2);
    println!("second block (other accounts, mostly cold reads): {second_ms:.0} ms");
    let parent2 = ParentBlock::of(&block2);
    let block3 = chain.block(&mut state, &parent2, 2, TRANSFERS, Some(cert2));
    let read_mb = read_files(&data);
    let (warm_ms, cert3) = validate_and_apply(&chain, &mut state, Some(&store), &parent2, &block3);
    println!("warm (the store's {read_mb} MB of files read once): block 3 in {warm_ms:.0} ms");

    // The same in memory, 1,000,000 accounts.
    let memory_ms = {
        let mem_chain = Chain::new(MEMORY_ACCOUNTS - TRANSFERS);
        let mut mem = State::load(Arc::new(MemStore::new()), &mem_chain.accounts()).expect("loads");
        let b1 = mem_chain.block(&mut mem, &genesis_parent, 0, TRANSFERS, None);
        let (ms1, c1) = validate_and_apply(&mem_chain, &mut mem, None, &genesis_parent, &b1);
        let p1 = ParentBlock::of(&b1);
        let b2 = mem_chain.block(&mut mem, &p1, 1, TRANSFERS, Some(c1));
        let (ms2, _) = validate_and_apply(&mem_chain, &mut mem, None, &p1, &b2);
        println!("in memory, 1,000,000 accounts: blocks 1 and 2 in {ms1:.0} and {ms2:.0} ms");
        ms2
    };

    // 1,000 more heights (one transfer each), then proofs at the head and 1,000 heights back.
    let mut parent = ParentBlock::of(&block3);
    let mut last = Some(cert3);
    for h in 0..PROOF_DEPTH {
        let b = chain.block(&mut state, &parent, 3 + h, 1, last.take());
        let (_, c) = validate_and_apply(&chain, &mut state, Some(&store), &parent, &b);
        parent = ParentBlock::of(&b);
        last = Some(c);
    }
    let probe = chain.senders[0].address();
    let head = state.height();
    let back = Height(head.0 - PROOF_DEPTH);
    let time_proof = |height: Height| {
        let mut times = Vec::new();
        let mut proof = None;
        for _ in 0..101 {
            let t = Instant::now();
            let p = state.prove_at(&probe, height).expect("kept");
            times.push(t.elapsed().as_secs_f64() * 1e6);
            proof = Some(p);
        }
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], proof.expect("a proof"))
    };
    let (head_us, head_proof) = time_proof(head);
    let (back_us, back_proof) = time_proof(back);
    assert_eq!(head_proof.verify(&state.root()), Ok(()));
    let back_root = store
        .block(back)
        .expect("reads")
        .expect("kept block")
        .header
        .state_root;
    assert_eq!(back_proof.verify(&back_root), Ok(()));
    assert_ne!(
        head_proof.account, back_proof.account,
        "the account moved in between"
    );
    let proof_bytes = ledger_core::codec::encode(&head_proof).len();
    let proof_json = serde_json::to_string(&head_proof).expect("json").len();
    println!(
        "proof of {probe}: {proof_bytes} bytes ({proof_json} as JSON); read in {head_us:.0} us at the head, {back_us:.0} us {PROOF_DEPTH} heights back"
    );
    // Every account the bench touched is where the store says.
    let stored = StateStore::accounts(store.as_ref(), &[probe]).expect("reads")[0];
    assert_eq!(stored, Some(head_proof.account));
    store.flush().expect("flush");
    let disk_mb = dir_mb(&data);
    println!(
        "state_accounts={accounts} load_s={load_s:.1} cold_ms={cold_ms:.0} second_block_ms={second_ms:.0} warm_ms={warm_ms:.0} memory_1m_ms={memory_ms:.0} warm_ratio={:.2} proof_bytes={proof_bytes} proof_json_bytes={proof_json} proof_head_us={head_us:.0} proof_{PROOF_DEPTH}_back_us={back_us:.0} disk_mb={disk_mb}",
        memory_ms / warm_ms
    );
}
