//! Crash safety: under a steady load of transfers, `kill -9` the real node at random moments and
//! restart it. Every transaction the API reported final is still final at the same place, and the
//! stored chain replays from genesis to exactly the stored state after every crash.
//!
//! The seed comes from `LEDGER_TEST_SEED` (default: random) and is printed, so a failing run can
//! be replayed with the same kill times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::common::{Process, account, free_addr, one_validator_files, transfer, verify_cli};

const CRASHES: usize = 20;
const SENDERS: u32 = 4;

fn seed() -> u64 {
    match std::env::var("LEDGER_TEST_SEED") {
        Ok(s) => s.parse().expect("LEDGER_TEST_SEED must be a u64"),
        Err(_) => {
            let mut b = [0u8; 8];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
                .expect("urandom");
            u64::from_le_bytes(b)
        }
    }
}

/// Final transactions as the API reported them: hash -> (height, index).
type Finals = Arc<Mutex<HashMap<String, (u64, u64)>>>;

/// Submits batches of transfers from `SENDERS` accounts and records what becomes final, until
/// `stop` or the node goes away.
fn load(p: &Process, chain: &ledger_core::ChainId, stop: &AtomicBool, finals: &Finals) {
    let mut nonces: Vec<u64> = (0..SENDERS)
        .map(|i| {
            let (_, v) = p.get(&format!("/v1/accounts/{}", account(i).address()));
            v["nonce"].as_u64().unwrap_or(0)
        })
        .collect();
    let mut outstanding: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut batch = Vec::new();
        for (i, nonce) in nonces.iter_mut().enumerate() {
            for _ in 0..5 {
                let tx = transfer(
                    chain,
                    &account(i as u32),
                    account(7).address(),
                    1,
                    1,
                    *nonce,
                );
                *nonce += 1;
                batch.push(serde_json::to_value(&tx).expect("json"));
            }
        }
        let Ok((200, v)) = p.post("/v1/transactions/batch", &Value::Array(batch)) else {
            return;
        };
        for r in v["results"].as_array().into_iter().flatten() {
            if r["status"] == "pending" || r["status"] == "final" {
                outstanding.push(r["hash"].as_str().unwrap_or_default().to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(30));
        let mut still = Vec::new();
        for h in outstanding.drain(..) {
            let Ok(mut r) = p.agent.get(&p.url(&format!("/v1/transactions/{h}"))).call() else {
                return;
            };
            let v: Value = r.body_mut().read_json().unwrap_or(Value::Null);
            if v["status"] == "final" {
                let loc = (
                    v["height"].as_u64().unwrap_or(0),
                    v["index"].as_u64().unwrap_or(0),
                );
                finals.lock().expect("lock").insert(h, loc);
            } else {
                still.push(h);
            }
        }
        outstanding = still;
    }
}

#[test]
fn kill_9_at_random_moments_never_loses_a_final_transaction() {
    let seed = seed();
    println!("crash test seed: {seed} (replay with LEDGER_TEST_SEED={seed})");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let (genesis, gpath, kpath) = one_validator_files(dir.path());
    let chain = genesis.chain_id().clone();
    let finals: Finals = Arc::new(Mutex::new(HashMap::new()));
    let mut last_height = 0u64;

    for round in 0..CRASHES {
        let api = free_addr();
        let mut p = Process::start(dir.path(), &gpath, &kpath, api);
        // Everything reported final before must still be final, at the same place.
        {
            let known = finals.lock().expect("lock").clone();
            for (h, (height, index)) in known.iter().take(200) {
                let (status, v) = p.get(&format!("/v1/transactions/{h}"));
                assert_eq!(
                    status, 200,
                    "seed {seed} round {round}: final tx {h} lost: {v}"
                );
                assert_eq!(v["status"], "final", "seed {seed} round {round}: {h}: {v}");
                assert_eq!(
                    (v["height"].as_u64(), v["index"].as_u64()),
                    (Some(*height), Some(*index)),
                    "seed {seed} round {round}: {h} moved"
                );
            }
        }
        let (_, st) = p.get("/v1/status");
        let h = st["height"].as_u64().expect("height");
        assert!(
            h >= last_height,
            "seed {seed} round {round}: head went back from {last_height} to {h}"
        );

        let stop = Arc::new(AtomicBool::new(false));
        let kill_after = Duration::from_millis(rng.random_range(150..1200));
        std::thread::scope(|s| {
            let loader = {
                let (stop, finals, chain) = (stop.clone(), finals.clone(), chain.clone());
                let p = &p;
                s.spawn(move || load(p, &chain, &stop, &finals))
            };
            std::thread::sleep(kill_after);
            // SIGKILL while the loader may be mid-request: no goodbye, no flush.
            let pid = p.child.id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            stop.store(true, Ordering::Relaxed);
            let _ = loader.join();
        });
        p.kill9();

        // Offline: the chain replays from genesis to the stored accounts, and the stored state
        // tree has every kept height's root: nothing half-written.
        let report = verify_cli(dir.path(), &gpath);
        last_height = report["height"].as_u64().expect("height");
        assert_eq!(
            report["state_versions_checked"].as_u64(),
            Some(last_height + 1),
            "seed {seed} round {round}: every height's tree is kept and checked: {report}"
        );
    }

    // Last start: all finals are there; the served state root is the replayed one.
    let p = Process::start(dir.path(), &gpath, &kpath, free_addr());
    let known = finals.lock().expect("lock").clone();
    assert!(
        !known.is_empty(),
        "seed {seed}: the load never saw a final transaction"
    );
    for (h, (height, index)) in &known {
        let (status, v) = p.get(&format!("/v1/transactions/{h}"));
        assert_eq!(status, 200, "seed {seed}: final tx {h} lost: {v}");
        assert_eq!(
            (v["height"].as_u64(), v["index"].as_u64()),
            (Some(*height), Some(*index))
        );
    }
    drop(p);
    let report = verify_cli(dir.path(), &gpath);
    println!(
        "crash test: {} final txs checked, chain height {}, {} txs replayed",
        known.len(),
        report["height"],
        report["txs"]
    );
}
