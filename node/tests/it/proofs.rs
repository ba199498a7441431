//! The proof endpoints of a real node (through its router): every answer it serves verifies with
//! the light-client check against the genesis, at the head and at older kept heights, and the
//! questions it cannot answer get their typed 4xx.

use axum::http::StatusCode;
use ledger_core::api::{AccountProofResponse, TxProofResponse};
use ledger_core::genesis::Genesis;
use ledger_core::light::TrustedChain;
use ledger_core::{Address, Hash, Keypair};
use serde_json::Value;

use crate::common::{InProcess, account, transfer};

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("the answer parses as its API type")
}

async fn account_at(n: &InProcess, who: &Address, query: &str) -> (StatusCode, Value) {
    n.get(&format!("/v1/accounts/{who}/proof{query}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_account_and_transaction_proofs_verify_against_the_genesis() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let trust = TrustedChain::new(&n.genesis);
    let (alice, bob) = (account(0), account(1));
    let stranger = Keypair::dev("nobody", 0).address();

    // A block first, so the height before the transfer has a header too.
    n.wait_height(2).await;
    let tx = transfer(&chain, &alice, bob.address(), 1_234, 1, 0);
    let (status, v) = n.post_json("/v1/transactions", &tx).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let fin = n.wait_final(&tx.hash().to_hex()).await;
    let tx_height = fin["height"].as_u64().expect("height");

    // The head: alice paid, bob received, the stranger is absent, all proven.
    let (status, v) = account_at(&n, &alice.address(), "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let a: AccountProofResponse = parse(v);
    let verified = trust
        .verify_account(&alice.address(), &a)
        .expect("alice's answer verifies");
    assert_eq!(verified.account.nonce.0, 1);
    assert!(verified.at.header.height.0 >= tx_height);
    assert_eq!((verified.at.signers, verified.at.validators), (1, 1));
    assert!(a.proof.len() <= ledger_core::api::MAX_STATE_PROOF_BYTES);

    let (_, v) = account_at(&n, &stranger, "").await;
    let s = trust
        .verify_account(&stranger, &parse(v))
        .expect("an absent account's answer verifies");
    assert!(s.account.is_empty());

    // Before the transfer, alice had not sent anything: the older height is proven too.
    let before = tx_height - 1;
    let (status, v) = account_at(&n, &alice.address(), &format!("?height={before}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let old = trust
        .verify_account(&alice.address(), &parse(v))
        .expect("the older answer verifies");
    assert_eq!(old.at.header.height.0, before);
    assert_eq!(old.account.nonce.0, 0);
    assert_eq!(
        old.account.balance.0,
        verified.account.balance.0 + 1_234 + 1
    );

    // The transaction, at its place in its block.
    let (status, v) = n
        .get(&format!("/v1/transactions/{}/proof", tx.hash()))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let t: TxProofResponse = parse(v);
    let vt = trust.verify_tx(&tx.hash(), &t).expect("tx answer verifies");
    assert_eq!(vt.transaction, tx);
    assert_eq!(vt.at.header.height.0, tx_height);

    // The genesis a client that pinned its hash fetches.
    let (status, v) = n.get("/v1/genesis").await;
    assert_eq!(status, StatusCode::OK);
    let g = Genesis::from_value(&v).expect("the served genesis parses");
    assert_eq!(g.hash(), n.genesis.hash());
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_questions_it_cannot_answer_get_typed_errors() {
    let n = InProcess::start_with(|c| c.store.state_versions_kept = 2).await;
    n.wait_height(8).await;
    let who = account(0).address();
    let cases = [
        ("?height=0", StatusCode::BAD_REQUEST, "invalid_height"),
        ("?height=99999999", StatusCode::NOT_FOUND, "not_found"),
        ("?height=1", StatusCode::GONE, "height_not_kept"),
        ("?height=x", StatusCode::BAD_REQUEST, "invalid_query"),
        ("?at=3", StatusCode::BAD_REQUEST, "invalid_query"),
    ];
    for (query, status, code) in cases {
        let (got, v) = account_at(&n, &who, query).await;
        assert_eq!(
            (got, v["code"].as_str()),
            (status, Some(code)),
            "{query}: {v}"
        );
    }
    let (got, v) = n.get("/v1/accounts/ldg1nope/proof").await;
    assert_eq!(
        (got, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_address"))
    );
    let unknown = Hash::digest(b"never sent");
    let (got, v) = n.get(&format!("/v1/transactions/{unknown}/proof")).await;
    assert_eq!(
        (got, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // The node keeps serving.
    let (got, _) = account_at(&n, &who, "").await;
    assert_eq!(got, StatusCode::OK);
    n.stop().await;
}
