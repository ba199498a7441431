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
        let store = std::sync::Arc::new(Store::open(&data, &cfg).expect("reopens"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_tree_that_disagrees_with_the_head_block_is_refused_as_corruption() {
    let n = InProcess::start().await;
    n.wait_height(2).await;
    let InProcess { dir, node, genesis } = n;
    node.shutdown().await.expect("clean shutdown");
    // Forge a "committed" block whose state root the stored tree does not give.
    {
        let store = std::sync::Arc::new(
            Store::open(
                &dir.path().join("data"),
                &node::config::StoreConfig::default(),
            )
            .expect("reopens"),
        );
        let head = store.head_height().expect("head");
        let version = store.state_genesis_version().expect("version") + head.0;
        let mut state =
            ledger_core::state::State::open(store.clone(), head, version, None).expect("state");
        let writes = state
            .speculate(head.next(), vec![])
            .expect("empty block's writes");
        let prev = store.block(head).expect("reads").expect("head block");
        let mut block = prev.clone();
        block.header.height = head.next();
        block.header.prev_hash = prev.hash();
        block.header.state_root = ledger_core::Hash::digest(b"not the state");
        block.txs.clear();
        block.header.tx_count = 0;
        let hash = block.hash();
        let cert = ledger_core::CommitCertificate {
            height: head.next(),
            round: ledger_core::Round(0),
            block_hash: hash,
            signatures: vec![],
        };
        store
            .commit_block(&node::store::BlockCommit {
                block: &block,
                hash,
                commit: &cert,
                tx_hashes: &[],
                state: &writes,
            })
            .expect("writes");
    }
    let cfg = crate::common::test_config(
        dir.path(),
        dir.path().join("genesis.json"),
        "127.0.0.1:0".parse().expect("addr"),
    );
    let err = node::node::start(&cfg, genesis, Some(crate::common::validator(0)))
        .await
        .expect_err("must refuse a corrupt data dir");
    assert!(
        matches!(err, node::node::NodeError::StateRootMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_node_applies_synced_blocks_and_ignores_a_bad_certificate() {
    // A validator produces a few blocks with a transfer in them.
    let v = InProcess::start().await;
    let chain = v.chain();
    let tx = crate::common::transfer(&chain, &account(0), account(1).address(), 77, 1, 0);
    let (_, r) = v.post_json("/v1/transactions", &tx).await;
    let fin = v.wait_final(r["hash"].as_str().expect("hash")).await;
    let target = fin["height"].as_u64().expect("height") + 1;
    v.wait_height(target).await;
    let blocks: Vec<ledger_core::CommittedBlock> = (1..=target)
        .map(|h| {
            v.node
                .store
                .committed_block(ledger_core::Height(h))
                .expect("reads")
                .expect("present")
        })
        .collect();
    let root = v
        .node
        .store
        .block(ledger_core::Height(target))
        .expect("reads")
        .expect("present")
        .header
        .state_root;
    let genesis = v.genesis.clone();
    v.stop().await;

    // A full node (no key) on the same genesis, fed by "sync".
    let dir = tempfile::tempdir().expect("tempdir");
    let gpath = dir.path().join("genesis.json");
    std::fs::write(&gpath, genesis.to_json()).expect("write genesis");
    let cfg = crate::common::test_config(dir.path(), gpath, "127.0.0.1:0".parse().expect("addr"));
    let mut node = node::node::start(&cfg, genesis.clone(), None)
        .await
        .expect("starts");
    let net = node.net.take().expect("net ends");
    // First a block whose certificate is for another block: ignored.
    let mut forged = blocks[0].clone();
    forged.commit.block_hash = ledger_core::Hash::digest(b"other");
    net.sync_in
        .send(node::net_types::NetInbound::Blocks(vec![forged]))
        .await
        .expect("send");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(node.head.borrow().height.0, 0);
    // Then the real ones, in two messages, with an overlap.
    net.sync_in
        .send(node::net_types::NetInbound::Blocks(blocks[..2].to_vec()))
        .await
        .expect("send");
    net.sync_in
        .send(node::net_types::NetInbound::Blocks(blocks.clone()))
        .await
        .expect("send");
    let n = InProcess { dir, node, genesis };
    n.wait_height(target).await;
    assert_eq!(n.node.head.borrow().state_root, root);
    let (_, acc) = n
        .get(&format!("/v1/accounts/{}", account(1).address()))
        .await;
    assert_eq!(
        acc["balance"],
        ledger_core::genesis::DEV_ACCOUNT_BALANCE + 77
    );
    let (_, st) = n.get("/v1/status").await;
    assert_eq!(st["validator"], serde_json::Value::Null);
    drop(net);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_stored_tree_version_that_differs_from_the_replay() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let tx = transfer(&chain, &account(0), account(1).address(), 5, 1, 0);
    let (status, v) = n.post_json("/v1/transactions", &tx).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    n.wait_final(v["hash"].as_str().expect("hash")).await;
    // Read the head first: a watch borrow held across the wait would block the driver.
    let next = n.node.head.borrow().height.0 + 1;
    n.wait_height(next).await;
    let InProcess { dir, node, genesis } = n;
    node.shutdown().await.expect("clean shutdown");
    let data = dir.path().join("data");
    let cfg = node::config::StoreConfig::default();
    let (head, version) = {
        let store = std::sync::Arc::new(Store::open(&data, &cfg).expect("reopens"));
        let report = verify_chain(&store, &genesis).expect("an untouched store verifies");
        assert_eq!(report.state_versions_checked, report.height.0 + 1);
        let head = store.head_height().expect("head");
        (
            head,
            store.state_genesis_version().expect("version") + head.0,
        )
    };
    // Replace the tree's root at the height before the head with the head's root node: the
    // transfer changed the state in between, so that height's stored root is now wrong.
    {
        let names: Vec<&str> = node::store::Table::ALL.iter().map(|t| t.name()).collect();
        let db =
            rocksdb::DB::open_cf(&rocksdb::Options::default(), &data, names).expect("raw open");
        let nodes = db.cf_handle("state_nodes").expect("state_nodes");
        let root_key = |v: u64| {
            let mut k = v.to_be_bytes().to_vec();
            // The empty nibble path's encoding: length 0 (u64), no bytes (u32 length 0).
            k.extend_from_slice(&[0u8; 12]);
            k
        };
        let head_root = db
            .get_cf(&nodes, root_key(version))
            .expect("reads")
            .expect("head root");
        let mut changed = None;
        for back in 1..=head.0 {
            let old = db
                .get_cf(&nodes, root_key(version - back))
                .expect("reads")
                .expect("kept");
            if old != head_root {
                db.put_cf(&nodes, root_key(version - back), &head_root)
                    .expect("writes");
                changed = Some(head.0 - back);
                break;
            }
        }
        assert!(changed.is_some(), "the transfer changed some earlier root");
    }
    let store = std::sync::Arc::new(Store::open(&data, &cfg).expect("reopens"));
    let err = verify_chain(&store, &genesis).expect_err("a wrong stored root is found");
    assert!(
        matches!(err, node::verify::VerifyError::TreeRoot { .. }),
        "{err}"
    );
}
