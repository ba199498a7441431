//! The light-client check on the wallet's side: the size of an account's answer in a state of
//! 1,000,000 accounts and the time to verify it on one core (`ledger_core::light`).
//!
//! The answer is what the node serves at `/v1/accounts/{address}/proof`: the account, its state
//! proof, the header and a certificate of the default testnet's 4 validators. Half of the asked
//! addresses exist, half do not (their proofs show the absence). Verification runs in a one-thread
//! rayon pool, as a wallet on one core would: the certificate's 4 signatures, the header hash and
//! the proof.
//!
//! Prints the figures and a last line `light_1m: ...`. `BENCH_ACCOUNTS` changes the state's size.

use std::time::{Duration, Instant};

use ledger_core::api::{AccountProofResponse, PROOF_FORMAT};
use ledger_core::genesis::Genesis;
use ledger_core::light::{TrustedChain, encode_state_proof};
use ledger_core::state::{Account, State, checked_accounts};
use ledger_core::{
    Address, Amount, BlockHeader, CommitCertificate, Hash, Height, Keypair, Nonce, Round,
    TimestampMs, Vote, VoteKind,
};

/// Addresses asked (half present, half absent).
const ASKED: u64 = 2_000;
const VALIDATORS: u32 = 4;

fn address(i: u64) -> Address {
    let h = Hash::digest_parts(&[b"account", &i.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("light: run with `cargo bench --workspace --bench light`");
        return;
    }
    let accounts: u64 = std::env::var("BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let all = checked_accounts((0..accounts).map(|i| {
        (
            address(i),
            Account {
                balance: Amount(1_000 + i),
                nonce: Nonce(i % 7),
            },
        )
    }))
    .expect("valid accounts");
    let state = State::from_accounts(all).expect("loads");
    println!(
        "loaded {accounts} accounts in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let genesis = Genesis::dev("ledger-dev", VALIDATORS, 4).expect("dev genesis");
    let trust = TrustedChain::new(&genesis);
    let header = BlockHeader {
        chain_id: genesis.chain_id().clone(),
        height: Height(1_000),
        prev_hash: Hash::digest(b"previous"),
        timestamp_ms: TimestampMs(1_700_000_000_000),
        proposer: Keypair::dev("validator", 0).address(),
        tx_root: Hash::ZERO,
        tx_count: 0,
        state_root: state.root(),
        last_commit_hash: Hash::digest(b"last commit"),
    };
    let hash = header.hash();
    let votes: Vec<_> = (0..VALIDATORS)
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

    // Present accounts are spread over the whole state; absent ones are beyond it.
    let asked: Vec<Address> = (0..ASKED)
        .map(|i| {
            if i % 2 == 0 {
                address(i * (accounts / ASKED).max(1) % accounts.max(1))
            } else {
                address(accounts + i)
            }
        })
        .collect();
    let answers: Vec<AccountProofResponse> = asked
        .iter()
        .map(|a| {
            let p = state.prove(a).expect("proof");
            AccountProofResponse {
                format: PROOF_FORMAT,
                chain_id: genesis.chain_id().clone(),
                genesis_hash: genesis.hash(),
                address: *a,
                balance: p.account.balance,
                nonce: p.account.nonce,
                height: header.height,
                header: header.clone(),
                commit: commit.clone(),
                proof: encode_state_proof(&p.proof),
            }
        })
        .collect();
    let mut proof_bytes: Vec<usize> = answers.iter().map(|a| a.proof.len()).collect();
    proof_bytes.sort_unstable();
    let mut json_bytes: Vec<usize> = answers
        .iter()
        .map(|a| serde_json::to_vec(a).expect("serializes").len())
        .collect();
    json_bytes.sort_unstable();

    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let (mut whole, mut header_only) = (Vec::new(), Vec::new());
    one_core.install(|| {
        // Warm up caches and the pool.
        for (a, ans) in asked.iter().zip(&answers).take(50) {
            trust.verify_account(a, ans).expect("verifies");
        }
        for (a, ans) in asked.iter().zip(&answers) {
            let t = Instant::now();
            let v = trust.verify_account(a, ans);
            whole.push(t.elapsed());
            assert!(v.is_ok(), "an honest answer failed: {v:?}");
            let t = Instant::now();
            let h = trust.verify_header(&ans.header, &ans.commit);
            header_only.push(t.elapsed());
            assert!(h.is_ok());
        }
    });
    whole.sort_unstable();
    header_only.sort_unstable();
    let median = |v: &[usize]| v[v.len() / 2];
    println!(
        "state proof bytes: median {} max {} (present and absent accounts, {accounts} accounts)",
        median(&proof_bytes),
        proof_bytes[proof_bytes.len() - 1]
    );
    println!(
        "answer JSON bytes: median {} max {}",
        median(&json_bytes),
        json_bytes[json_bytes.len() - 1]
    );
    println!(
        "verify on one core: median {:.0} us, p99 {:.0} us; of which header + {VALIDATORS} signatures {:.0} us",
        us(percentile(&whole, 0.5)),
        us(percentile(&whole, 0.99)),
        us(percentile(&header_only, 0.5)),
    );
    println!(
        "light_{}: proof_bytes_median={} proof_bytes_max={} answer_json_bytes_median={} verify_us_median={:.0} verify_us_p99={:.0} header_us_median={:.0}",
        if accounts == 1_000_000 {
            "1m".to_string()
        } else {
            accounts.to_string()
        },
        median(&proof_bytes),
        proof_bytes[proof_bytes.len() - 1],
        median(&json_bytes),
        us(percentile(&whole, 0.5)),
        us(percentile(&whole, 0.99)),
        us(percentile(&header_only, 0.5)),
    );
}
