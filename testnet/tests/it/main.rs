//! End-to-end scenarios: real `ledger-node` processes started, disturbed and inspected through the
//! `testnet` CLI, checked through the nodes' HTTP API. Names say the setup: `n4f1` = 4 validators,
//! 1 faulty. Every wait has a deadline; on failure the harness prints the testnet folder and the
//! tail of every node's log, and keeps the folder.

// Tests report through the test runner's captured output; the crate's closed-stream rule
// (clippy.toml) is for the CLI.
#![allow(clippy::disallowed_macros)]

mod api_contract;
mod chaos;
mod cli_ux;
mod deploy;
mod harness;
mod python_client;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harness::{HTTP_TIMEOUT, Testnet, final_location};
use ledger_core::api::TxStatus;
use ledger_core::genesis::DEV_ACCOUNT_BALANCE;
use ledger_core::{Amount, ChainId, Hash, Height, Keypair, Nonce, SignedTransaction, Transaction};
use testnet::client::NodeClient;

const ALL4: [usize; 4] = [0, 1, 2, 3];
const FEE: u64 = 1;
const DEV_ACCOUNTS: u32 = 16;

/// Dev account `from` pays `amount` to dev account `to`.
fn transfer(chain: &ChainId, from: u32, to: u32, nonce: u64, amount: u64) -> SignedTransaction {
    let key = Keypair::dev("account", from);
    Transaction {
        chain_id: chain.clone(),
        from: key.public(),
        to: Keypair::dev("account", to).address(),
        amount: Amount(amount),
        fee: Amount(FEE),
        nonce: Nonce(nonce),
        memo: Vec::new(),
    }
    .sign(&key)
}

fn chain_id(tn: &Testnet) -> ChainId {
    tn.client(0).status().expect("status of node 0").chain_id
}

/// Every CLI command on a one-validator testnet (no peers needed): up, status, load (transfers and
/// reads, by state and by URL), logs, kill, restart, down, up again (resume), reset.
#[test]
fn n1_cli_smoke_every_command() {
    let tn = Testnet::up("n1_cli", &["-n", "1"]);
    let status: serde_json::Value = serde_json::from_str(tn.cli_ok(&["status", "--json"]).trim())
        .expect("status --json is JSON");
    assert_eq!(status["nodes"][0]["alive"], true);
    assert_eq!(status["agree"], true);

    let out = tn.cli_ok(&[
        "load",
        "--rate",
        "200",
        "--duration",
        "3",
        "--accounts",
        "100",
        "--drain-secs",
        "30",
    ]);
    let last = out.lines().last().expect("load prints lines");
    let fields: Vec<(&str, f64)> = last
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k, v.parse().expect("a number"))
        })
        .collect();
    assert_eq!(
        fields.iter().map(|f| f.0).collect::<Vec<_>>(),
        ["final_tps", "p50_ms", "p99_ms"],
        "{last}"
    );
    assert!(fields[0].1 > 0.0, "nothing became final: {out}");
    assert!(out.contains("rss_mb="), "{out}");

    // Transfers not final when the drain ends (no drain at all) make the load exit 3: a run that
    // lost transfers must not look like a measurement.
    let lost = tn.cli(
        &[
            "load",
            "--rate",
            "200",
            "--duration",
            "1",
            "--accounts",
            "10",
            "--drain-secs",
            "0",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(
        lost.code,
        Some(3),
        "load with transfers not final: {}\n{}",
        lost.stdout,
        lost.stderr
    );
    assert!(
        lost.stderr.contains("refused or not final"),
        "{}",
        lost.stderr
    );

    let url = tn.state().node(0).expect("node 0").api_url();
    let out = tn.cli_ok(&[
        "load",
        "--mode",
        "reads",
        "--duration",
        "2",
        "--url",
        &url,
        "--json",
    ]);
    let reads: serde_json::Value = serde_json::from_str(out.trim()).expect("load --json is JSON");
    assert!(reads["read_rps"].as_f64().is_some_and(|r| r > 0.0), "{out}");
    // Both kinds of read were made and every one was answered.
    for kind in ["blocks", "accounts"] {
        assert!(reads[kind].as_u64().is_some_and(|n| n > 0), "{out}");
    }
    assert_eq!(reads["errors"], serde_json::json!({}), "{out}");
    assert!(
        reads["rss_mb_max"].as_u64().is_some_and(|m| m > 0),
        "a testnet node's URL maps to its process: {out}"
    );

    let log = tn.cli_ok(&["logs", "0", "-n", "1000"]);
    assert!(log.contains("testnet: starting node 0"), "{log}");
    tn.cli_ok(&["kill", "0"]);
    assert!(
        !tn.cli(&["kill", "0"], Duration::from_secs(30)).success,
        "killing a dead node fails"
    );
    let h = tn.heights(&[0])[0];
    assert_eq!(h, None, "a killed node does not answer");
    tn.cli_ok(&["restart", "0"]);
    tn.wait_height(&[0], 2, Duration::from_secs(60));
    tn.cli_ok(&["down"]);
    assert!(!tn.state().nodes[0].is_running());
    let out = tn.cli_ok(&["up", "--detach"]);
    assert!(out.contains("time_to_first_final_ms="), "{out}");
    tn.cli_ok(&["down"]);
    // The same resume for scripts: one JSON object naming every node.
    let out = tn.cli_ok(&["up", "--detach", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("up --json prints JSON");
    assert!(v["time_to_first_final_ms"].as_u64().is_some(), "{v}");
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), tn.state().nodes.len(), "{v}");
    assert!(
        nodes[0]["api_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{v}"
    );
    tn.cli_ok(&["reset"]);
    assert!(!tn.dir.exists(), "reset deletes the folder");
}

#[test]
fn n4f0_transfers_final_on_all_nodes() {
    let tn = Testnet::up("n4f0", &["-n", "4"]);
    tn.wait_height(&ALL4, 1, Duration::from_secs(60));
    let chain = chain_id(&tn);
    let clients = tn.clients();

    // Every dev account sends 3 transfers to the next account, each account through "its" node, so
    // the transfers enter the network at all four nodes.
    const PER_ACCOUNT: u64 = 3;
    let mut hashes = Vec::new();
    for a in 0..DEV_ACCOUNTS {
        let c = &clients[a as usize % 4];
        let key = Keypair::dev("account", a);
        let start = c.account(&key.address()).expect("account").next_nonce.0;
        for k in 0..PER_ACCOUNT {
            let tx = transfer(&chain, a, (a + 1) % DEV_ACCOUNTS, start + k, 10);
            let r = c.submit(&tx).expect("submit");
            assert!(
                !matches!(r.status, TxStatus::Rejected { .. }),
                "transfer rejected: {r:?}"
            );
            assert_eq!(r.hash, tx.hash());
            hashes.push(r.hash);
        }
    }
    tn.log(&format!(
        "submitted {} transfers through 4 nodes",
        hashes.len()
    ));

    let took = tn.wait_until(
        "every transfer final on every node",
        Duration::from_secs(90),
        || {
            hashes
                .iter()
                .all(|h| clients.iter().all(|c| final_location(c, h).is_some()))
        },
    );
    tn.log(&format!(
        "all transfers final on all nodes after {:.2} s",
        took.as_secs_f64()
    ));
    let mut max_height = 0;
    for h in &hashes {
        let locs: Vec<_> = clients.iter().map(|c| final_location(c, h)).collect();
        assert!(
            locs.windows(2).all(|w| w[0] == w[1]),
            "tx {h} final at different places: {locs:?}"
        );
        max_height = max_height.max(locs[0].map_or(0, |(h, _)| h.0));
    }

    // Same state everywhere: every account's balance and nonce, and every block and state root.
    tn.wait_height(&ALL4, max_height, Duration::from_secs(30));
    for a in 0..DEV_ACCOUNTS {
        let addr = Keypair::dev("account", a).address();
        let views: Vec<_> = clients
            .iter()
            .map(|c| c.account(&addr).expect("account"))
            .collect();
        for v in &views {
            assert_eq!(v.nonce, Nonce(PER_ACCOUNT), "account {a} nonce");
            // Sent 3 x (10 + fee), received 3 x 10: net 3 fees.
            assert_eq!(
                v.balance,
                Amount(DEV_ACCOUNT_BALANCE - PER_ACCOUNT * FEE),
                "account {a} balance"
            );
        }
    }
    let common = tn.assert_same_chain(&ALL4);
    assert!(common >= max_height);
}

#[test]
fn n4f1_one_validator_killed_chain_keeps_finalizing_then_catches_up() {
    let tn = Testnet::up("n4f1", &["-n", "4"]);
    tn.wait_height(&ALL4, 2, Duration::from_secs(60));
    tn.cli_ok(&["kill", "3"]);
    let others = [0, 1, 2];
    let h0 = tn
        .heights(&others)
        .iter()
        .flatten()
        .copied()
        .max()
        .expect("a height");

    // A transfer still becomes final with 3 of 4 validators.
    let chain = chain_id(&tn);
    let c0 = tn.client(0);
    let nonce = c0
        .account(&Keypair::dev("account", 0).address())
        .expect("account")
        .next_nonce
        .0;
    let tx = transfer(&chain, 0, 1, nonce, 5);
    c0.submit(&tx).expect("submit");
    let took = tn.wait_height(&others, h0 + 3, Duration::from_secs(90));
    tn.log(&format!(
        "3 validators finalized 3 blocks past {h0} in {:.2} s",
        took.as_secs_f64()
    ));
    tn.wait_until(
        "the transfer final with node 3 down",
        Duration::from_secs(60),
        || final_location(&c0, &tx.hash()).is_some(),
    );

    tn.cli_ok(&["restart", "3"]);
    let c3 = tn.client(3);
    let took = tn.wait_until(
        "node 3 within 2 blocks of the others",
        Duration::from_secs(120),
        || {
            let others_max = tn
                .heights(&others)
                .iter()
                .flatten()
                .copied()
                .max()
                .unwrap_or(0);
            c3.status()
                .is_ok_and(|s| s.height.0 + 2 >= others_max && s.height.0 > h0)
        },
    );
    tn.log(&format!("node 3 caught up in {:.2} s", took.as_secs_f64()));
    assert!(
        final_location(&c3, &tx.hash()).is_some(),
        "node 3 has the transfer final after catching up"
    );
    tn.assert_same_chain(&ALL4);
}

#[test]
fn split_2_2_no_finality_then_heals_without_fork() {
    let tn = Testnet::up("split", &["-n", "4"]);
    tn.wait_height(&ALL4, 2, Duration::from_secs(60));
    // Isolating nodes 2 and 3 leaves {0,1}, {2}, {3}: no side has more than 2/3 of the power.
    tn.cli_ok(&["isolate", "2"]);
    tn.cli_ok(&["isolate", "3"]);
    let h_split = tn
        .heights(&ALL4)
        .iter()
        .flatten()
        .copied()
        .max()
        .expect("a height");
    tn.log(&format!("split at height {h_split}"));
    // Several empty-block intervals and round timeouts: nothing may become final meanwhile (one block
    // whose votes were in flight at the split may still complete).
    let watch_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < watch_until {
        let max = tn
            .heights(&ALL4)
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        assert!(
            max <= h_split + 1,
            "a block became final during the split: height {max} > {h_split} + 1"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for i in [2, 3] {
        let peers = tn.client(i).status().expect("status").peers;
        assert_eq!(peers, 0, "isolated node {i} has {peers} peers");
    }
    tn.cli_ok(&["heal", "2"]);
    tn.cli_ok(&["heal", "3"]);
    let took = tn.wait_height(&ALL4, h_split + 3, Duration::from_secs(120));
    tn.log(&format!(
        "finality resumed after healing: +3 blocks on every node in {:.2} s",
        took.as_secs_f64()
    ));
    tn.assert_same_chain(&ALL4);
}

/// A steady transfer load that survives node crashes: 16 dev accounts, up to `WINDOW` transfers in
/// flight each. A transfer's content is fixed by (account, nonce), so resubmitting it after a crash
/// lost it is idempotent. Records every transfer it saw final: (hash, height, index, block hash).
struct Loader {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Hash, Height, u32, Hash)>>,
}

impl Loader {
    const WINDOW: usize = 4;
    const RESEND_AFTER: Duration = Duration::from_secs(3);

    fn start(urls: Vec<String>, chain: ChainId) -> Loader {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || Loader::run(&urls, &chain, &flag));
        Loader { stop, handle }
    }

    fn finish(self) -> Vec<(Hash, Height, u32, Hash)> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("loader thread")
    }

    fn run(urls: &[String], chain: &ChainId, stop: &AtomicBool) -> Vec<(Hash, Height, u32, Hash)> {
        let clients: Vec<NodeClient> = urls
            .iter()
            .map(|u| NodeClient::new(u, HTTP_TIMEOUT))
            .collect();
        let n = clients.len();
        // Per account: the next nonce to create and the transfers in flight (tx, last sent).
        let mut next: Vec<Option<u64>> = vec![None; DEV_ACCOUNTS as usize];
        let mut flight: Vec<VecDeque<(SignedTransaction, Option<Instant>)>> =
            vec![VecDeque::new(); DEV_ACCOUNTS as usize];
        let mut finals = Vec::new();
        let mut round = 0usize;
        // Bounded: the test stops it long before; this is a backstop.
        let deadline = Instant::now() + Duration::from_secs(1800);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            round += 1;
            for a in 0..DEV_ACCOUNTS as usize {
                let home = (a + round) % n;
                if next[a].is_none() {
                    let addr = Keypair::dev("account", a as u32).address();
                    next[a] = (0..n)
                        .find_map(|k| clients[(home + k) % n].account(&addr).ok())
                        .map(|r| r.nonce.0);
                }
                let Some(nonce) = next[a].as_mut() else {
                    continue;
                };
                while flight[a].len() < Self::WINDOW {
                    flight[a].push_back((
                        transfer(chain, a as u32, (a as u32 + 1) % DEV_ACCOUNTS, *nonce, 1),
                        None,
                    ));
                    *nonce += 1;
                }
                // Confirm from the front: nonces finalize in order.
                while let Some((tx, _)) = flight[a].front() {
                    let c = &clients[home];
                    let Some((height, index)) = final_location(c, &tx.hash()) else {
                        break;
                    };
                    let Ok(block) = c.block_light(height.0) else {
                        break;
                    };
                    finals.push((tx.hash(), height, index, block.hash));
                    flight[a].pop_front();
                }
                for (tx, sent) in flight[a].iter_mut() {
                    if sent.is_some_and(|t| t.elapsed() < Self::RESEND_AFTER) {
                        continue;
                    }
                    // Any node that answers; a killed one just fails.
                    if (0..n).any(|k| clients[(home + k) % n].submit(tx).is_ok()) {
                        *sent = Some(Instant::now());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        finals
    }
}

#[test]
fn kill9_each_validator_in_turn_under_load_20_times() {
    const ROUNDS: usize = 20;
    let tn = Testnet::up("kill9", &["-n", "4"]);
    tn.wait_height(&ALL4, 2, Duration::from_secs(60));
    let urls: Vec<String> = tn.state().nodes.iter().map(|n| n.api_url()).collect();
    let loader = Loader::start(urls, chain_id(&tn));
    let start_height = tn
        .heights(&ALL4)
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0);

    for round in 0..ROUNDS {
        let victim = round % 4;
        let others: Vec<usize> = ALL4.iter().copied().filter(|&i| i != victim).collect();
        tn.cli_ok(&["kill", &victim.to_string()]);
        let h = tn
            .heights(&others)
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        // The others keep finalizing while the victim is down.
        tn.wait_height(&others, h + 1, Duration::from_secs(60));
        tn.cli_ok(&["restart", &victim.to_string()]);
        // Wait until the victim is back in step before crashing the next one: two validators down
        // at once would (rightly) stop finality. In step = within 2 blocks and connected to all three
        // others again (were its only peer the next victim, it would be cut off).
        let cv = tn.client(victim);
        tn.wait_until(
            &format!("round {round}: node {victim} back within 2 blocks, with 3 peers"),
            Duration::from_secs(120),
            || {
                let max = tn
                    .heights(&others)
                    .iter()
                    .flatten()
                    .copied()
                    .max()
                    .unwrap_or(0);
                cv.status()
                    .is_ok_and(|s| s.height.0 + 2 >= max && s.peers >= 3)
            },
        );
    }
    let finals = loader.finish();
    let end_height = tn
        .heights(&ALL4)
        .iter()
        .flatten()
        .copied()
        .min()
        .unwrap_or(0);
    tn.log(&format!(
        "{ROUNDS} kill -9 rounds: {} transfers final, height {start_height} -> {end_height}",
        finals.len()
    ));
    assert!(!finals.is_empty(), "the load made no transfer final");
    assert!(
        end_height > start_height + ROUNDS as u64,
        "the chain barely moved"
    );

    // Every transfer reported final is final at the same place, in the same block, on every node.
    let max_final = finals.iter().map(|f| f.1.0).max().unwrap_or(0);
    tn.wait_height(&ALL4, max_final, Duration::from_secs(60));
    let clients = tn.clients();
    for (hash, height, index, block) in &finals {
        for (i, c) in clients.iter().enumerate() {
            assert_eq!(
                final_location(c, hash),
                Some((*height, *index)),
                "node {i}: transfer {hash} is not final at {height}/{index} any more"
            );
            let b = c.block_light(height.0).expect("block");
            assert_eq!(&b.hash, block, "node {i}: block {height} changed");
        }
    }
    tn.assert_same_chain(&ALL4);
}

#[test]
fn late_joiner_syncs() {
    const CHAIN_BLOCKS: u64 = 1000;
    let tn = Testnet::up(
        "late_joiner",
        &["-n", "4", "--empty-block-interval-ms", "20"],
    );
    let took = tn.wait_height(&[0], CHAIN_BLOCKS, Duration::from_secs(600));
    tn.log(&format!(
        "chain reached {CHAIN_BLOCKS} blocks in {:.1} s",
        took.as_secs_f64()
    ));

    let out = tn.cli_ok(&["join", "--json"]);
    let joined: serde_json::Value = serde_json::from_str(out.trim()).expect("join prints JSON");
    let index = joined["index"].as_u64().expect("index") as usize;
    assert_eq!(index, 4);
    let target = tn
        .heights(&ALL4)
        .iter()
        .flatten()
        .copied()
        .max()
        .expect("a height");
    let joiner = tn.client(index);
    assert!(
        joiner.status().expect("status").validator.is_none(),
        "the joiner is a full node"
    );
    let took = tn.wait_until(
        &format!("the joiner reaches height {target}"),
        Duration::from_secs(600),
        || joiner.status().is_ok_and(|s| s.height.0 >= target),
    );
    let speed = target as f64 / took.as_secs_f64().max(1e-3);
    tn.log(&format!(
        "late joiner synced {target} blocks in {:.2} s: {speed:.0} blocks/s",
        took.as_secs_f64()
    ));
    println!(
        "late_joiner_sync_blocks={target} sync_secs={:.2} sync_blocks_per_s={speed:.0}",
        took.as_secs_f64()
    );

    // It follows the head: within 2 of the validators, and still moving.
    let h = joiner.status().expect("status").height.0;
    tn.wait_until(
        "the joiner follows the head",
        Duration::from_secs(120),
        || {
            let max = tn
                .heights(&ALL4)
                .iter()
                .flatten()
                .copied()
                .max()
                .unwrap_or(0);
            joiner
                .status()
                .is_ok_and(|s| s.height.0 >= h + 20 && s.height.0 + 2 >= max)
        },
    );
    tn.assert_same_chain(&[0, index]);
}
