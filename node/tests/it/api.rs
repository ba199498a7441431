//! The HTTP API through the router (no socket): the happy paths and every kind of bad input.

use axum::http::StatusCode;
use ledger_core::{ChainId, Keypair};
use serde_json::{Value, json};

use crate::common::{InProcess, account, transfer};

/// `GET /metrics` through the router: the Prometheus text.
async fn metrics_text(n: &InProcess) -> String {
    let req = axum::http::Request::builder()
        .uri("/metrics")
        .body(axum::body::Body::empty())
        .expect("request");
    let resp = tower::ServiceExt::oneshot(n.node.router.clone(), req)
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of the unlabelled sample `name` in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_validator_commits_a_transfer_and_serves_it_back() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let (alice, bob) = (account(0), account(1));
    let tx = transfer(&chain, &alice, bob.address(), 1_000, 1, 0);
    let (status, v) = n.post_json("/v1/transactions", &tx).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "pending");
    let hash = v["hash"].as_str().expect("hash").to_string();
    assert_eq!(hash, tx.hash().to_hex());

    let fin = n.wait_final(&hash).await;
    let height = fin["height"].as_u64().expect("height");
    assert_eq!(fin["from_address"], alice.address().to_string());
    assert_eq!(fin["transaction"]["tx"]["amount"], 1_000);

    // Submitting it again answers "final", not an error.
    let (status, v) = n.post_json("/v1/transactions", &tx).await;
    assert_eq!(
        (status, v["status"].clone()),
        (StatusCode::OK, json!("final"))
    );

    let (status, block) = n.get(&format!("/v1/blocks/{height}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(block["txs"][0]["hash"], hash);
    assert!(
        block["commit"]["signatures"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    );
    let block_hash = block["hash"].as_str().expect("hash").to_string();
    let (status, by_hash) = n.get(&format!("/v1/blocks/hash/{block_hash}")).await;
    assert_eq!(
        (status, by_hash["header"]["height"].as_u64()),
        (StatusCode::OK, Some(height))
    );
    // The second read of a block comes from the JSON cache: the same answer.
    assert_eq!(by_hash, block);
    assert_eq!(n.get(&format!("/v1/blocks/{height}")).await.1, block);

    let (status, acc) = n.get(&format!("/v1/accounts/{}", bob.address())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        acc["balance"],
        ledger_core::genesis::DEV_ACCOUNT_BALANCE + 1_000
    );
    let (_, acc) = n.get(&format!("/v1/accounts/{}", alice.address())).await;
    assert_eq!(acc["nonce"], 1);
    assert_eq!(acc["next_nonce"], 1);

    let (status, latest) = n.get("/v1/blocks/latest").await;
    assert_eq!(status, StatusCode::OK);
    assert!(latest["header"]["height"].as_u64().expect("height") >= height);
    let (status, list) = n.get(&format!("/v1/blocks?from=1&to={height}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(height as usize));

    let (status, st) = n.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(st["chain_id"], "it-chain");
    assert_eq!(
        st["validator"],
        crate::common::validator(0).address().to_string()
    );
    assert_eq!(st["genesis_hash"], n.genesis.hash().to_hex());

    let (status, vals) = n.get("/v1/validators").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vals["validators"].as_array().map(Vec::len), Some(1));
    let (status, peers) = n.get("/v1/peers").await;
    assert_eq!((status, peers), (StatusCode::OK, json!([])));

    // The commit and the admission of the transfer show in the metrics.
    let text = metrics_text(&n).await;
    for (name, at_least) in [
        ("ledger_consensus_rounds_per_height_count", 1.0),
        ("ledger_signature_verify_seconds_count", 1.0),
        ("ledger_txs_finalized_total", 1.0),
    ] {
        let got = sample(&text, name);
        assert!(
            got.is_some_and(|v| v >= at_least),
            "{name} = {got:?}, want >= {at_least}:\n{text}"
        );
    }
    // Rounds, not round numbers: every height needs at least one.
    let (sum, count) = (
        sample(&text, "ledger_consensus_rounds_per_height_sum"),
        sample(&text, "ledger_consensus_rounds_per_height_count"),
    );
    assert!(
        sum.zip(count).is_some_and(|(s, c)| s >= c),
        "rounds sum {sum:?} < count {count:?}"
    );
    assert_eq!(sample(&text, "ledger_peers"), Some(0.0));
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_transactions_are_listed_newest_first_page_by_page() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let (alice, bob, carol) = (account(6), account(7), account(3));
    let txs = vec![
        transfer(&chain, &alice, bob.address(), 10, 1, 0),
        transfer(&chain, &bob, alice.address(), 20, 1, 0),
        transfer(&chain, &alice, carol.address(), 30, 1, 1),
    ];
    let (status, v) = n.post_json("/v1/transactions/batch", &txs).await;
    assert_eq!(
        (status, v["accepted"].clone()),
        (StatusCode::OK, json!(3)),
        "{v}"
    );
    // A later block, so the history spans blocks.
    for t in &txs {
        n.wait_final(&t.hash().to_hex()).await;
    }
    let late = transfer(&chain, &alice, bob.address(), 40, 1, 2);
    let (_, v) = n.post_json("/v1/transactions", &late).await;
    let fin = n.wait_final(v["hash"].as_str().expect("hash")).await;
    let late_height = fin["height"].as_u64().expect("height");

    let (status, all) = n
        .get(&format!("/v1/accounts/{}/transactions", alice.address()))
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["address"], alice.address().to_string());
    assert_eq!(all["next"], Value::Null);
    let entries = all["txs"].as_array().expect("txs");
    assert_eq!(entries.len(), 4, "{all}");
    let newest = &entries[0];
    assert_eq!(newest["hash"], late.hash().to_hex());
    assert_eq!(newest["height"], late_height);
    assert_eq!(newest["from_address"], alice.address().to_string());
    assert_eq!(newest["transaction"]["tx"]["to"], bob.address().to_string());
    assert_eq!(newest["transaction"]["tx"]["amount"], 40);
    assert_eq!(newest["transaction"]["tx"]["fee"], 1);
    assert_eq!(newest["transaction"]["tx"]["nonce"], 2);
    assert!(newest["timestamp_ms"].as_u64().is_some_and(|t| t > 0));
    let position = |e: &Value| {
        (
            e["height"].as_u64().expect("height"),
            e["index"].as_u64().expect("index"),
        )
    };
    let positions: Vec<(u64, u64)> = entries.iter().map(position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {positions:?}"
    );
    let mut hashes: Vec<String> = entries
        .iter()
        .map(|e| e["hash"].as_str().expect("hash").to_string())
        .collect();
    hashes.sort();
    let mut want: Vec<String> = txs
        .iter()
        .chain([&late])
        .map(|t| t.hash().to_hex())
        .collect();
    want.sort();
    assert_eq!(hashes, want, "sent and received, each once");

    // The same list, one entry at a time, following `next`.
    let mut paged = Vec::new();
    let mut uri = format!("/v1/accounts/{}/transactions?limit=1", alice.address());
    for _ in 0..10 {
        let (status, page) = n.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(page["txs"].as_array().expect("txs").iter().map(position));
        match page["next"].as_str() {
            Some(cursor) => {
                uri = format!(
                    "/v1/accounts/{}/transactions?limit=1&before={cursor}",
                    alice.address()
                )
            }
            None => break,
        }
    }
    assert_eq!(paged, positions);

    // Carol received one; an unused address has none.
    let (_, c) = n
        .get(&format!("/v1/accounts/{}/transactions", carol.address()))
        .await;
    assert_eq!(c["txs"].as_array().map(Vec::len), Some(1), "{c}");
    let nobody = ledger_core::Keypair::dev("nobody", 0).address();
    let (status, none) = n
        .get(&format!("/v1/accounts/{nobody}/transactions?limit=100"))
        .await;
    assert_eq!(
        (status, none["txs"].clone(), none["next"].clone()),
        (StatusCode::OK, json!([]), Value::Null)
    );

    let base = format!("/v1/accounts/{}/transactions", alice.address());
    for (query, code) in [
        ("?before=12", "invalid_cursor"),
        ("?before=1-x", "invalid_cursor"),
        ("?before=-1-0", "invalid_cursor"),
        ("?limit=0", "invalid_limit"),
        ("?limit=101", "invalid_limit"),
        ("?limit=99999999999999999999", "invalid_query"),
        ("?limit=ten", "invalid_query"),
        ("?colour=blue", "invalid_query"),
    ] {
        let (status, v) = n.get(&format!("{base}{query}")).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {v}"
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, v) = n.get(&format!("{base}?limit=500")).await;
    assert_eq!(
        (v["min"].clone(), v["max"].clone(), v["got"].clone()),
        (json!(1), json!(100), json!(500))
    );
    let (status, v) = n.get("/v1/accounts/ldg1nope/transactions").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_address"))
    );
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_submission_reports_each_transaction_in_order() {
    let n = InProcess::start().await;
    let chain = n.chain();
    let a = account(2);
    let to = account(3).address();
    let mut txs: Vec<Value> = (0..5)
        .map(|i| serde_json::to_value(transfer(&chain, &a, to, 10, 1, i)).expect("json"))
        .collect();
    // One bad: nonce far beyond the window.
    txs.push(serde_json::to_value(transfer(&chain, &a, to, 10, 1, 1_000_000)).expect("json"));
    let (status, v) = n.post_json("/v1/transactions/batch", &txs).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 5);
    assert_eq!(v["rejected"], 1);
    assert_eq!(v["results"][5]["status"], "rejected");
    assert_eq!(v["results"][5]["reason"]["code"], "nonce_too_high");
    let last = v["results"][4]["hash"].as_str().expect("hash").to_string();
    n.wait_final(&last).await;
    // The rejected one's status can be queried afterwards.
    let bad = v["results"][5]["hash"].as_str().expect("hash");
    let (status, s) = n.get(&format!("/v1/transactions/{bad}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["status"], "rejected");
    assert_eq!(s["reason"]["code"], "nonce_too_high");
    n.stop().await;
}

/// Submits `tx`, which must be admitted as pending; its hash.
async fn submit_pending(n: &InProcess, tx: ledger_core::SignedTransaction) -> String {
    let (status, v) = n.post_json("/v1/transactions", &tx).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{v}"
    );
    tx.hash().to_hex()
}

/// Transactions the mempool lets go of without them being invalid are `dropped`, not `rejected`:
/// replaced (naming the replacement) and evicted (with the fee that needed the room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_and_evicted_transactions_are_dropped_with_their_reason() {
    // Room for one transaction; nonce 1 with nonce 0 never sent waits, so nothing leaves by a block.
    let n = InProcess::start_with(|c| c.mempool.max_txs = 1).await;
    let chain = n.chain();
    let (a, b, to) = (account(4), account(5), account(6).address());
    let first = submit_pending(&n, transfer(&chain, &a, to, 10, 1, 1)).await;
    let dearer = submit_pending(&n, transfer(&chain, &a, to, 10, 2, 1)).await;
    let (status, v) = n.get(&format!("/v1/transactions/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({
            "hash": first,
            "status": "dropped",
            "reason": {"code": "replaced", "by": dearer},
            "transaction": null,
            "from_address": null,
        })
    );

    // Another sender's higher fee needs the only room: the pending one is evicted.
    submit_pending(&n, transfer(&chain, &b, to, 10, 5, 1)).await;
    let (status, v) = n.get(&format!("/v1/transactions/{dearer}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "dropped", "{v}");
    assert_eq!(v["reason"], json!({"code": "evicted", "by_fee": 5}));
    n.stop().await;
}

/// A transaction pending longer than `mempool.tx_ttl_secs` is dropped as expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_transaction_is_dropped_as_expired() {
    let n = InProcess::start_with(|c| c.mempool.tx_ttl_secs = 1).await;
    let chain = n.chain();
    // Nonce 1 without nonce 0: it waits until it expires.
    let tx = transfer(&chain, &account(4), account(6).address(), 10, 1, 1);
    let (status, v) = n.post_json("/v1/transactions", &tx).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let hash = tx.hash().to_hex();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let v = loop {
        let (status, v) = n.get(&format!("/v1/transactions/{hash}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if v["status"] != "pending" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "still pending: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(v["status"], "dropped", "{v}");
    assert_eq!(v["reason"], json!({"code": "expired", "ttl_secs": 1}));
    n.stop().await;
}

/// One bad request: what to send and the status and code it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    uri: String,
    body: Option<Vec<u8>>,
    status: StatusCode,
    code: &'static str,
}

fn json_body(v: &impl serde::Serialize) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_gets_a_typed_4xx_and_the_node_keeps_serving() {
    let n = InProcess::start_with(|c| {
        c.api.max_body_bytes = 64 * 1024;
        c.api.max_batch_txs = 10;
        c.mempool.nonce_window = 100;
    })
    .await;
    let chain = n.chain();
    let (alice, bob) = (account(4), account(5));
    let to = bob.address();

    // Make alice's nonce 1 so that nonce 0 is "too low".
    let first = transfer(&chain, &alice, to, 5, 1, 0);
    let (_, v) = n.post_json("/v1/transactions", &first).await;
    n.wait_final(v["hash"].as_str().expect("hash")).await;

    let valid = transfer(&chain, &alice, to, 5, 1, 1);
    let valid_json = serde_json::to_value(&valid).expect("json");

    let mut bad_sig = transfer(&chain, &alice, to, 5, 1, 1);
    bad_sig.tx.amount = ledger_core::Amount(6);
    let other_chain = ChainId::new("other-chain").expect("valid");
    let mut wrong_types = valid_json.clone();
    wrong_types["tx"]["amount"] = json!("ten");
    let mut u64_overflow = serde_json::to_string(&valid_json).expect("json");
    u64_overflow = u64_overflow.replacen("\"amount\":5", "\"amount\":18446744073709551616", 1);
    let mut unknown = valid_json.clone();
    unknown["tx"]["colour"] = json!("blue");
    let mut missing = valid_json.clone();
    missing["tx"].as_object_mut().expect("object").remove("fee");
    let mut bad_sig_hex = valid_json.clone();
    bad_sig_hex["signature"] = json!("zz");
    let mut long_memo = ledger_core::Transaction {
        memo: vec![7; ledger_core::tx::MAX_MEMO_BYTES + 1],
        ..transfer(&chain, &alice, to, 5, 1, 1).tx
    };
    long_memo.from = alice.public();
    let long_memo = long_memo.sign(&alice);
    let big: Vec<Value> = (0..11).map(|_| valid_json.clone()).collect();
    let typo_address = {
        let s = bob.address().to_string();
        let last = s.chars().last().expect("char");
        let swap = if last == 'q' { 'p' } else { 'q' };
        format!("{}{}", &s[..s.len() - 1], swap)
    };
    let broke = Keypair::dev("nobody", 0);

    let cases = vec![
        Case {
            name: "not JSON",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: Some(b"{not json".to_vec()),
            status: StatusCode::BAD_REQUEST,
            code: "bad_json",
        },
        Case {
            name: "empty body",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "bad_json",
        },
        Case {
            name: "wrong type",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&wrong_types),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
        },
        Case {
            name: "u64 overflow in JSON",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: Some(u64_overflow.into_bytes()),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
        },
        Case {
            name: "unknown field",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&unknown),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
        },
        Case {
            name: "missing field",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&missing),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
        },
        Case {
            name: "signature not hex",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&bad_sig_hex),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
        },
        Case {
            name: "oversized body",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: Some(vec![b' '; 65 * 1024]),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
        },
        Case {
            name: "bad signature",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&bad_sig),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "bad_signature",
        },
        Case {
            name: "wrong chain",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&other_chain, &alice, to, 5, 1, 1)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "wrong_chain",
        },
        Case {
            name: "nonce too low",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &alice, to, 6, 1, 0)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "nonce_too_low",
        },
        Case {
            name: "nonce too high",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &alice, to, 5, 1, 500)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "nonce_too_high",
        },
        Case {
            name: "insufficient funds",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &broke, to, 5, 1, 0)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "insufficient_funds",
        },
        Case {
            name: "amount + fee overflows",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &alice, to, u64::MAX - 1, 5, 1)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "amount_overflow",
        },
        Case {
            name: "zero amount",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &alice, to, 0, 1, 1)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "zero_amount",
        },
        Case {
            name: "fee below minimum",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &alice, to, 5, 0, 1)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "fee_too_low",
        },
        Case {
            name: "self transfer",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&transfer(&chain, &alice, alice.address(), 5, 1, 1)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "self_transfer",
        },
        Case {
            name: "memo too long",
            method: "POST",
            uri: "/v1/transactions".into(),
            body: json_body(&long_memo),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "memo_too_long",
        },
        Case {
            name: "batch too large",
            method: "POST",
            uri: "/v1/transactions/batch".into(),
            body: json_body(&big),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "batch_too_large",
        },
        Case {
            name: "batch not an array",
            method: "POST",
            uri: "/v1/transactions/batch".into(),
            body: json_body(&valid_json),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
        },
        Case {
            name: "bad hash in path",
            method: "GET",
            uri: "/v1/transactions/xyz".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_hash",
        },
        Case {
            name: "unknown tx",
            method: "GET",
            uri: format!("/v1/transactions/{}", "ab".repeat(32)),
            body: None,
            status: StatusCode::NOT_FOUND,
            code: "not_found",
        },
        Case {
            name: "bad block hash",
            method: "GET",
            uri: "/v1/blocks/hash/12".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_hash",
        },
        Case {
            name: "bad address in path",
            method: "GET",
            uri: format!("/v1/accounts/{typo_address}"),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_address",
        },
        Case {
            name: "bad height",
            method: "GET",
            uri: "/v1/blocks/-1".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_height",
        },
        Case {
            name: "block not there",
            method: "GET",
            uri: "/v1/blocks/99999999".into(),
            body: None,
            status: StatusCode::NOT_FOUND,
            code: "not_found",
        },
        Case {
            name: "block range too large",
            method: "GET",
            uri: "/v1/blocks?from=1&to=1000".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "range_too_large",
        },
        Case {
            name: "block range reversed",
            method: "GET",
            uri: "/v1/blocks?from=5&to=2".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_range",
        },
        Case {
            name: "block range not a number",
            method: "GET",
            uri: "/v1/blocks?from=x".into(),
            body: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_query",
        },
        Case {
            name: "unknown route",
            method: "GET",
            uri: "/v1/nope".into(),
            body: None,
            status: StatusCode::NOT_FOUND,
            code: "unknown_route",
        },
        Case {
            name: "wrong method",
            method: "DELETE",
            uri: "/v1/status".into(),
            body: None,
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
        },
    ];
    assert!(cases.len() >= 14);
    for c in &cases {
        let (status, v) = n.call(c.method, &c.uri, c.body.clone()).await;
        assert_eq!(status, c.status, "{}: {v}", c.name);
        assert_eq!(v["code"], c.code, "{}: {v}", c.name);
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: {v}",
            c.name
        );
        // The node keeps serving after each.
        let (ok, _) = n.get("/v1/status").await;
        assert_eq!(ok, StatusCode::OK, "after {}", c.name);
    }

    // Typed fields travel with the code.
    let (_, v) = n
        .post_json("/v1/transactions", &transfer(&chain, &alice, to, 6, 1, 0))
        .await;
    assert_eq!(
        (v["expected"].clone(), v["got"].clone()),
        (json!(1), json!(0))
    );
    let (_, v) = n
        .post_json("/v1/transactions", &transfer(&chain, &broke, to, 5, 1, 0))
        .await;
    assert_eq!((v["have"].clone(), v["need"].clone()), (json!(0), json!(6)));

    // And a valid transaction still goes through.
    let (status, v) = n.post_json("/v1/transactions", &valid).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    n.wait_final(v["hash"].as_str().expect("hash")).await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_and_recovers() {
    let n = InProcess::start_with(|c| {
        c.api.rate_limit_per_sec = 5;
        c.api.rate_limit_burst = 3;
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let (status, v) = n.get("/v1/status").await;
        codes.push((status, v["code"].clone()));
    }
    assert!(
        codes[..3].iter().all(|(s, _)| *s == StatusCode::OK),
        "{codes:?}"
    );
    assert!(
        codes[3..]
            .iter()
            .any(|(s, c)| *s == StatusCode::TOO_MANY_REQUESTS && c == "rate_limited"),
        "{codes:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let (status, _) = n.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_metrics_and_events_are_served() {
    let n = InProcess::start().await;
    let (status, doc) = n.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/v1/transactions",
        "/v1/transactions/batch",
        "/v1/transactions/{hash}",
        "/v1/accounts/{address}",
        "/v1/accounts/{address}/transactions",
        "/v1/blocks",
        "/v1/blocks/latest",
        "/v1/blocks/{height}",
        "/v1/blocks/hash/{hash}",
        "/v1/status",
        "/v1/validators",
        "/v1/peers",
        "/v1/events",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
    n.wait_height(1).await;
    let text = metrics_text(&n).await;
    for m in [
        "ledger_height",
        "ledger_txs_finalized_total",
        "ledger_mempool_txs",
        "ledger_block_commit_seconds",
        "ledger_api_latency_seconds",
        "ledger_consensus_rounds_per_height",
        "ledger_block_interval_seconds",
        "ledger_peers",
        "ledger_signature_verify_seconds",
        // The gossip counters appear once the network runs; this node has none.
    ] {
        assert!(text.contains(m), "metrics lack {m}:\n{text}");
    }

    // SSE: subscribe, then see a block event arrive.
    let req = axum::http::Request::builder()
        .uri("/v1/events")
        .body(axum::body::Body::empty())
        .expect("request");
    let resp = tower::ServiceExt::oneshot(n.node.router.clone(), req)
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains("event: block") {
        assert!(
            std::time::Instant::now() < deadline,
            "no block event: {seen}"
        );
        let frame = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            http_body_util::BodyExt::frame(&mut body),
        )
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("frame");
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(seen.contains("\"type\":\"block\""), "{seen}");
    n.stop().await;
}
