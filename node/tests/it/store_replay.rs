//! The store through a running node: commit, shut down, reopen; the state root equals a replay of
//! the stored blocks, and the node resumes where it stopped.

use axum::http::StatusCode;
use node::store::Store;
use node::verify::verify_chain;

use crate::common::{InProcess, account, transfer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_blocks_survive_reopen_and_replay_to_the_same_root() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let mut last = String::new();
    for i in 0..4u32 {
        let from = account(i);
        for nonce in 0..5 {
            let tx = transfer(
                &chain,
                &from,
                account(7).address(),
                100 + u64::from(i),
                2,
                nonce,
            );
            let (status, v) = n.post_json("/v1/transactions", &tx).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            last = v["hash"].as_str().expect("hash").to_string();
        }
    }
    let fin = n.wait_final(&last).await;
    let head_before = n.node.head.borrow().clone();
    assert!(head_before.height.0 >= fin["height"].as_u64().expect("height"));

    let InProcess { dir, node, genesis } = n;
    node.shutdown().await.expect("clean shutdown");

    // Reopen the store directly: the head is there, and replaying every block from genesis
    // reproduces each block's state root and exactly the stored accounts.
    let data = dir.path().join("data");
    let cfg = node::config::StoreConfig::default();
    let report = {
        let store = Store::open(&data, &cfg).expect("reopens");
        assert!(store.head_height().expect("head") >= head_before.height);
        verify_chain(&store, &genesis).expect("replays")
    };
    assert!(report.height >= head_before.height);
    assert_eq!(report.txs, 20);

    // Start again on the same data dir: same chain, continues above the old head.
    let gpath = dir.path().join("genesis.json");
    let mut cfg =
        crate::common::test_config(dir.path(), gpath, "127.0.0.1:0".parse().expect("addr"));
    cfg.log_level = "warn".into();
    let node = node::node::start(&cfg, genesis.clone(), Some(crate::common::validator(0)))
        .await
        .expect("restarts");
    assert_eq!(node.head.borrow().height, report.height);
    assert_eq!(node.head.borrow().state_root, report.state_root);
    let n = InProcess { dir, node, genesis };
    n.wait_height(report.height.0 + 2).await;
    let (_, acc) = n
        .get(&format!("/v1/accounts/{}", account(0).address()))
        .await;
    assert_eq!(acc["nonce"], 5);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_chain_is_refused() {
    let n = InProcess::start().await;
    n.wait_height(1).await;
    let InProcess { dir, node, .. } = n;
    node.shutdown().await.expect("clean shutdown");
    let other = ledger_core::genesis::Genesis::dev("other-chain", 1, 2).expect("genesis");
    let cfg = crate::common::test_config(
        dir.path(),
        dir.path().join("genesis.json"),
        "127.0.0.1:0".parse().expect("addr"),
    );
    let err = node::node::start(&cfg, other, None)
        .await
        .expect_err("must refuse");
    assert!(err.to_string().contains("belongs to chain"), "{err}");
}
