//! Adversarial review of the proof endpoints of a real node (through its router): odd request
//! parameters get typed answers, every 200 verifies against the genesis at the height asked, and
//! requests racing with commits and pruning get a verified answer or a typed 4xx, never a 500.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use ledger_core::api::{AccountProofResponse, TxProofResponse};
use ledger_core::light::TrustedChain;
use ledger_core::{Address, Height, Keypair};
use serde_json::Value;

use crate::common::{InProcess, account, transfer};

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("the answer parses as its API type")
}

fn head(n: &InProcess) -> u64 {
    n.node.head.borrow().height.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_review_odd_parameters_get_typed_answers() {
    let n = InProcess::start_with(|c| c.store.state_versions_kept = 3).await;
    n.wait_height(3).await;
    let who = account(0).address();
    let cases = [
        (
            "?height=18446744073709551615",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "?height=18446744073709551616",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        ("?height=-1", StatusCode::BAD_REQUEST, "invalid_query"),
        ("?height=", StatusCode::BAD_REQUEST, "invalid_query"),
        (
            "?height=1&height=2",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        ("?height=1.5", StatusCode::BAD_REQUEST, "invalid_query"),
        ("?height=0x2", StatusCode::BAD_REQUEST, "invalid_query"),
    ];
    for (query, status, code) in cases {
        let (got, v) = n.get(&format!("/v1/accounts/{who}/proof{query}")).await;
        assert_eq!(
            (got, v["code"].as_str()),
            (status, Some(code)),
            "{query}: {v}"
        );
    }
    // A transaction that is pending (or unknown) has no proof; a malformed hash is a 400.
    let (got, v) = n.get("/v1/transactions/zz/proof").await;
    assert_eq!(
        (got, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_hash")),
        "{v}"
    );
    let (got, _) = n
        .get(&format!("/v1/transactions/{}/proof", "0".repeat(64)))
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    n.stop().await;
}

/// Every kept height answers at that very height and verifies; the height just below the kept
/// window is a 410, never a 500 or another height's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_review_every_kept_height_verifies_at_the_height_asked() {
    let kept = 3u64;
    let n = InProcess::start_with(|c| c.store.state_versions_kept = kept).await;
    let trust = TrustedChain::new(&n.genesis);
    n.wait_height(6).await;
    let who = account(1).address();
    for _ in 0..20 {
        let h0 = head(&n);
        for h in h0.saturating_sub(kept + 1).max(1)..=h0 + 1 {
            let (status, v) = n.get(&format!("/v1/accounts/{who}/proof?height={h}")).await;
            let h1 = head(&n);
            match status {
                StatusCode::OK => {
                    let a: AccountProofResponse = parse(v);
                    let verified = trust.verify_account(&who, &a).expect("a 200 verifies");
                    assert_eq!(verified.at.header.height, Height(h), "asked {h}");
                }
                StatusCode::GONE => assert!(
                    h + kept <= h1,
                    "height {h} refused as not kept with head {h0}..{h1} and {kept} kept: {v}"
                ),
                StatusCode::NOT_FOUND => assert!(h > h0, "{h} of head {h0}: {v}"),
                other => panic!("height {h} (head {h0}..{h1}): {other} {v}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n.stop().await;
}

/// The OpenAPI description of the 410 promises an `oldest_kept` field saying which height is
/// still kept, so a client can ask again there; the answer carries only `height` and `head`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_review_a_410_says_which_height_is_the_oldest_kept() {
    let n = InProcess::start_with(|c| c.store.state_versions_kept = 2).await;
    n.wait_height(6).await;
    let who = account(0).address();
    let (status, v) = n.get(&format!("/v1/accounts/{who}/proof?height=1")).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::GONE, Some("height_not_kept")),
        "{v}"
    );
    let oldest = v["oldest_kept"].as_u64();
    n.stop().await;
    let oldest = oldest.unwrap_or_else(|| panic!("no oldest_kept in {v}"));
    assert!(
        oldest > 1 && oldest <= v["head"].as_u64().unwrap_or(0),
        "{v}"
    );
}

/// A block of several transactions: each one's proof verifies at its own index, and another
/// transaction's answer is not accepted for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_review_every_transaction_of_a_busy_block_verifies_at_its_index() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let trust = TrustedChain::new(&n.genesis);
    n.wait_height(1).await;
    let to = Keypair::dev("nobody", 1).address();
    let txs: Vec<_> = (0..6)
        .flat_map(|i| (0..3).map(move |nonce| (i, nonce)))
        .map(|(i, nonce)| transfer(&chain, &account(i), to, 10 + u64::from(i), 1, nonce))
        .collect();
    for tx in &txs {
        let (status, v) = n.post_json("/v1/transactions", tx).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let mut answers = Vec::new();
    for tx in &txs {
        n.wait_final(&tx.hash().to_hex()).await;
        let (status, v) = n
            .get(&format!("/v1/transactions/{}/proof", tx.hash()))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let a: TxProofResponse = parse(v);
        let verified = trust.verify_tx(&tx.hash(), &a).expect("verifies");
        assert_eq!(&verified.transaction, tx);
        answers.push(a);
    }
    assert!(
        answers.iter().any(|a| a.header.tx_count > 1),
        "at least one block holds several of them"
    );
    for (i, a) in answers.iter().enumerate() {
        let other = &txs[(i + 1) % txs.len()];
        assert!(trust.verify_tx(&other.hash(), a).is_err());
    }
    n.stop().await;
}

/// Proof requests racing with commits that prune (`state_versions_kept = 1`: each commit deletes
/// the previous head's tree nodes). Each answer must verify at the height asked, or be a typed 4xx
/// (410 for a height that the race made old); a 500 breaks "unanswerable questions get typed
/// 4xx" and makes an honest node look broken to a wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_review_requests_racing_with_pruning_commits_never_get_a_500() {
    let n = Arc::new(InProcess::start_with(|c| c.store.state_versions_kept = 1).await);
    let trust = Arc::new(TrustedChain::new(&n.genesis));
    n.wait_height(2).await;
    let chain = n.chain();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, gone, internal) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    // Keep blocks coming faster than the empty-block interval: a stream of transfers.
    let sender = {
        let (n, stop) = (n.clone(), stop.clone());
        tokio::spawn(async move {
            let to = Keypair::dev("nobody", 2).address();
            let mut nonce = 0;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..8 {
                    let tx = transfer(&chain, &account(i), to, 1, 1, nonce);
                    let _ = n.post_json("/v1/transactions", &tx).await;
                }
                nonce += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let mut readers = Vec::new();
    for r in 0..4u32 {
        let (n, trust, stop) = (n.clone(), trust.clone(), stop.clone());
        let (ok, gone, internal) = (ok.clone(), gone.clone(), internal.clone());
        readers.push(tokio::spawn(async move {
            let who: Address = account(r).address();
            while !stop.load(Ordering::Relaxed) {
                // The oldest height still kept (the store prunes one commit late, so with one
                // version kept the height below the head is still there): the next commit
                // prunes it, possibly in the middle of this request.
                let asked = head(&n).saturating_sub(u64::from(r % 2)).max(1);
                let (status, v) = n
                    .get(&format!("/v1/accounts/{who}/proof?height={asked}"))
                    .await;
                match status {
                    StatusCode::OK => {
                        let a: AccountProofResponse = parse(v);
                        let v = trust.verify_account(&who, &a).expect("a 200 verifies");
                        assert_eq!(v.at.header.height, Height(asked));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::GONE => {
                        gone.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::INTERNAL_SERVER_ERROR => {
                        internal.fetch_add(1, Ordering::Relaxed);
                        stop.store(true, Ordering::Relaxed);
                    }
                    other => panic!("{other}: {v}"),
                }
            }
        }));
    }
    let start = Instant::now();
    let h0 = head(&n);
    while start.elapsed() < Duration::from_secs(25) && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("reader");
    }
    sender.await.expect("sender");
    let blocks = head(&n) - h0;
    let (ok, gone, internal) = (
        ok.load(Ordering::Relaxed),
        gone.load(Ordering::Relaxed),
        internal.load(Ordering::Relaxed),
    );
    eprintln!("{blocks} blocks: {ok} verified, {gone} gone, {internal} internal errors");
    let n = Arc::try_unwrap(n).ok().expect("the only handle");
    n.stop().await;
    assert!(ok > 0);
    assert_eq!(
        internal, 0,
        "{internal} requests for the head got a 500 ({gone} got a 410)"
    );
}
