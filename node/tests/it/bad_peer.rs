//! A misbehaving libp2p peer against a real `ledger-node` process: garbage bytes, badly signed
//! transactions, proposals forged for the validator and copies of a real proposal with another
//! body under its signed header are refused before relay, the sender is
//! penalised until the node disconnects and blocks it, and honest transfers keep becoming final.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::consensus::Proposal;
use ledger_core::{Height, Keypair, Round};
use node::network::wire;
use node::network::{self, NetworkConfig, Topic, Verdict};
use node::rogue::{self, Forger, NoBlocks};
use serde_json::json;

use crate::common::{Process, account, free_addr, one_validator_files, transfer};

/// Proposals rejected because their body is not the one their signed header commits to.
const BODY_MISMATCH_METRIC: &str =
    "ledger_gossip_messages_rejected_total{topic=\"consensus\",reason=\"body_mismatch\"}";

fn peer_ids(p: &Process) -> Vec<String> {
    let (status, v) = p.get("/v1/peers");
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .expect("peers array")
        .iter()
        .filter_map(|x| x["peer_id"].as_str().map(str::to_owned))
        .collect()
}

/// Sum of every sample of a counter family in the Prometheus text (0 when absent).
fn counter_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gossip counters of a metrics text (the rest would bury them in a failure message).
fn gossip_lines(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.starts_with("ledger_gossip") || l.starts_with("ledger_peers"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gossiping_garbage_bad_signatures_and_forged_proposals_is_blocked_while_transfers_finalize()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (genesis, gpath, kpath) = one_validator_files(dir.path());
    let p2p_port = free_addr().port();
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.p2p.listen_addr = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
    });
    let chain = genesis.chain_id().clone();

    // The bad peer: a real libp2p node on the same chain whose own validator accepts everything.
    let accept_all: network::Validator<()> = Arc::new(|_, _| Verdict::Accept(()));
    let (bad, _bad_events) = network::spawn(
        libp2p::identity::Keypair::generate_ed25519(),
        NetworkConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
            bootnodes: vec![
                format!("/ip4/127.0.0.1/tcp/{p2p_port}")
                    .parse()
                    .expect("multiaddr"),
            ],
            max_peers: 8,
            genesis_hash: genesis.hash(),
            peer_book: None,
        },
        accept_all,
        Arc::new(NoBlocks),
    )
    .expect("bad peer starts");
    let bad_id = bad.local_peer_id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !peer_ids(&node).contains(&bad_id) {
        assert!(
            Instant::now() < deadline,
            "the bad peer never connected to the node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejected_before = counter_sum(
        &node.metrics_text(),
        "ledger_gossip_messages_rejected_total",
    );

    // Its three kinds of bad messages, made as `ledger-rogue` makes them.
    let forger = Forger::new(&genesis).expect("forger");
    let bad_sig_hash = forger.badly_signed_tx(0).hash();
    // A copy of a proposal really signed by the validator (as a relayer would see it on the
    // wire), with a transfer slipped into its body under the signed header.
    let validator0 = Keypair::dev("validator", 0);
    let real = Proposal {
        height: forger.block().header().height,
        round: Round(0),
        pol_round: None,
        proposer: validator0.address(),
        block: forger.block().clone(),
    }
    .sign(&chain, &validator0);
    // At the node's next height: gossip validation sets aside messages of committed heights
    // (useless, not invalid) before it decodes them, and the node commits a block a second.
    let tampered = |i: u64, height: u64| {
        let extra = transfer(&chain, &account(4), account(5).address(), 1 + i, 1, i);
        rogue::tampered_proposal(&real, extra, Round(i as u32), Height(height))
    };
    // The tampered proposal goes alone first, once a second until the node has counted it: a run
    // in CI once saw the peer blocked for the other invalid messages with no body mismatch counted
    // (the messages of a round can reach the node before the peer knows the node's subscriptions,
    // or after it is graylisted). Alone, a proposal is either not sent (no known subscriber: a
    // no-op, so retrying is safe) or validated and counted, and one invalid message does not block.
    let body_mismatches = |node: &Process| counter_sum(&node.metrics_text(), BODY_MISMATCH_METRIC);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut round = 0u64;
    'tampered: loop {
        bad.publish(Topic::Consensus, tampered(round, next_height(&node)));
        round += 1;
        let wait_until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < wait_until {
            if body_mismatches(&node) >= 1.0 {
                break 'tampered;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            Instant::now() < deadline,
            "no proposal was rejected for its body after {round} tries:\n{}",
            gossip_lines(&node.metrics_text())
        );
    }
    assert!(
        peer_ids(&node).contains(&bad_id),
        "one invalid proposal got the peer blocked"
    );

    // Honest traffic through the API while the attack runs: these must all become final.
    let mut honest = Vec::new();
    let mut blocked = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0u64.. {
        bad.publish(Topic::Consensus, tampered(round + i, next_height(&node)));
        // Distinct bytes each time (gossip ids are content hashes, so a repeat would be dropped).
        bad.publish(Topic::Transactions, rogue::garbage(2 * i));
        bad.publish(Topic::Consensus, rogue::garbage(2 * i + 1));
        bad.publish(
            Topic::Transactions,
            wire::encode_txs(&[forger.badly_signed_tx(i)]),
        );
        bad.publish(
            Topic::Consensus,
            forger.forged_proposal(i, Height(next_height(&node))),
        );
        if i < 20 {
            let tx = transfer(&chain, &account(2), account(3).address(), 1 + i, 1, i);
            honest.push(node.submit(&tx));
        }
        if i >= 20 && !peer_ids(&node).contains(&bad_id) {
            blocked = true;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node still keeps the bad peer after {i} rounds of bad messages"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(blocked);

    let text = node.metrics_text();
    let rejected = counter_sum(&text, "ledger_gossip_messages_rejected_total") - rejected_before;
    assert!(
        rejected >= 3.0,
        "the node counted {rejected} rejected gossip messages:\n{}",
        gossip_lines(&text)
    );
    // Blocked, not just dropped: it stays away although it keeps dialing its bootnode.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !peer_ids(&node).contains(&bad_id),
        "the bad peer got back in"
    );
    // Nothing it sent reached the ledger.
    let (status, v) = node.get(&format!("/v1/transactions/{bad_sig_hash}"));
    assert_eq!(status, 404, "the badly signed transfer is known: {v}");

    for h in &honest {
        node.wait_final(h);
    }
    let (_, acc) = node.get(&format!("/v1/accounts/{}", account(2).address()));
    assert_eq!(acc["nonce"], json!(20), "{acc}");
}

/// The height the node is deciding: its head + 1.
fn next_height(node: &Process) -> u64 {
    let (status, v) = node.get("/v1/status");
    assert_eq!(status, 200, "{v}");
    v["height"].as_u64().expect("height") + 1
}
