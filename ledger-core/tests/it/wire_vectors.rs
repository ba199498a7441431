//! `docs/wire-vectors.json`, the test vectors of `docs/WIRE.md`, checked against the real code.
//!
//! Clients in other languages are written from WIRE.md and checked against the vectors file, so the
//! file must say exactly what this code does. Every vector is recomputed here from its inputs with
//! ledger-core's own functions (`codec::encode`, `crypto::signing_bytes`, `Keypair::sign`,
//! `SignedTransaction::hash`, `Address` parsing and display, serde JSON) and every field of the file
//! is compared; the file's bytes are also fed back through the decoding side (`codec::decode`,
//! JSON parsing, `PublicKey::verify`), so a vector that only round-trips through one direction fails.
//!
//! Default mode only checks. `LEDGER_WRITE_VECTORS=1` rewrites the file from the code (after a
//! deliberate, reviewed change of the wire format; never to make this test pass).

use bech32::{Bech32, Bech32m, Hrp};
use ledger_core::codec;
use ledger_core::crypto::{self, Domain};
use ledger_core::merkle::merkle_root;
use ledger_core::types::AddressError;
use ledger_core::{
    Address, Amount, ChainId, Hash, Keypair, Nonce, PublicKey, Signature, SignedTransaction,
    Transaction,
};
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/wire-vectors.json");

// ---------------------------------------------------------------------------------------------
// Inputs: what the vectors are made of. Everything else in the file is derived by the code.

/// (label, index) of dev keys, and raw seeds, that the vectors use.
fn key_inputs() -> Vec<Value> {
    let mut keys: Vec<Value> = (0..4)
        .map(|i| json!({ "dev_label": "account", "dev_index": i }))
        .collect();
    keys.push(json!({ "dev_label": "validator", "dev_index": 0 }));
    // A key from a raw seed (not a dev key): how a real wallet's key enters.
    keys.push(json!({ "seed": hex::encode([0x42u8; 32]) }));
    keys
}

struct TxInput {
    name: &'static str,
    seed: [u8; 32],
    chain_id: String,
    to: Address,
    amount: u64,
    fee: u64,
    nonce: u64,
    memo: Vec<u8>,
}

fn tx_inputs() -> Vec<TxInput> {
    let dev = |i| Keypair::dev("account", i);
    vec![
        TxInput {
            name: "devnet transfer, no memo",
            seed: dev(0).seed(),
            chain_id: "ledger-devnet-1".into(),
            to: dev(1).address(),
            amount: 1_000,
            fee: 1,
            nonce: 0,
            memo: Vec::new(),
        },
        TxInput {
            name: "amount + fee = u64::MAX, text memo, other chain",
            seed: dev(2).seed(),
            chain_id: "test-chain".into(),
            to: dev(3).address(),
            amount: u64::MAX - 1,
            fee: 1,
            nonce: 7,
            memo: b"hello, ledger".to_vec(),
        },
        TxInput {
            name: "longest chain id (64), longest memo (256 bytes 00..ff), nonce u64::MAX, zero fee",
            seed: [0x42; 32],
            chain_id: "z".repeat(60) + "-9._",
            to: dev(0).address(),
            amount: 1,
            fee: 0,
            nonce: u64::MAX,
            memo: (0..=255u8).collect(),
        },
        TxInput {
            name: "one-character chain id, amount + fee overflows (well formed, refused by the checks)",
            seed: dev(1).seed(),
            chain_id: "a".into(),
            to: dev(2).address(),
            amount: u64::MAX,
            fee: 1,
            nonce: 1,
            memo: vec![0],
        },
    ]
}

/// Text addresses and what parsing them must give: the edge cases of bech32m as the code applies
/// it. Built with the bech32 crate so each is exactly the malformation it names.
fn address_text_inputs() -> Vec<(String, &'static str)> {
    let ldg = Hrp::parse_unchecked(Address::HRP);
    let addr = Keypair::dev("account", 0).address();
    let good = addr.to_string();
    let mut bad_checksum = good.clone();
    let last = bad_checksum.pop().expect("non-empty");
    bad_checksum.push(if last == 'q' { 'p' } else { 'q' });
    let enc = |hrp: Hrp, data: &[u8]| bech32::encode::<Bech32m>(hrp, data).expect("encodes");
    // 33 data characters are 165 bits: 20 bytes plus 5 padding bits, which the decoder drops.
    // The 33rd character (value 1) makes those padding bits non-zero.
    let padded: String = {
        use bech32::primitives::iter::{ByteIterExt, Fe32IterExt};
        addr.0
            .iter()
            .copied()
            .bytes_to_fes()
            .chain(std::iter::once(bech32::Fe32::P))
            .with_checksum::<Bech32m>(&ldg)
            .chars()
            .collect()
    };
    vec![
        (good.clone(), "the text form of dev account 0"),
        (good.to_uppercase(), "all upper case"),
        (
            format!("  {good}\n"),
            "surrounding white space (not part of an address)",
        ),
        (bad_checksum, "last checksum character changed"),
        (
            bech32::encode::<Bech32>(ldg, &addr.0).expect("encodes"),
            "bech32 (BIP-173) checksum instead of bech32m",
        ),
        (enc(Hrp::parse_unchecked("abc"), &addr.0), "other hrp"),
        (enc(ldg, &addr.0[..19]), "19 bytes"),
        (enc(ldg, &[addr.0.as_slice(), &[0]].concat()), "21 bytes"),
        (
            enc(ldg, &[7u8; 32]),
            "32 bytes (a public key, not an address)",
        ),
        (
            padded,
            "33 data characters: 20 bytes and 5 non-zero padding bits",
        ),
        (
            {
                let mut m = good.clone();
                m.replace_range(5..6, &good[5..6].to_uppercase());
                m
            },
            "mixed case",
        ),
        ("ldg1".to_string(), "no data"),
    ]
}

// ---------------------------------------------------------------------------------------------
// Derivation: the one place the expected fields come from.

/// `"ledger/v1/address\0"`, as WIRE.md states it; checked against `Address::from_public_key` in
/// [`check`] (the code keeps the literal private).
const ADDRESS_DOMAIN: &[u8] = b"ledger/v1/address\0";

/// The transaction signing domain as the code builds it: the signing bytes of an empty payload on
/// chain `x` end with the length byte `0x01` and `x`; everything before them is the domain.
fn tx_domain() -> Result<Vec<u8>, String> {
    let chain = ChainId::new("x").map_err(|e| e.to_string())?;
    let mut b = crypto::signing_bytes(Domain::Transaction, &chain, b"");
    if !b.ends_with(&[1, b'x']) {
        return Err("signing bytes do not end with the chain id framing".into());
    }
    b.truncate(b.len() - 2);
    Ok(b)
}

fn key_vector(input: &Value) -> Result<Value, String> {
    let key = match (input["dev_label"].as_str(), input["dev_index"].as_u64()) {
        (Some(label), Some(i)) => Keypair::dev(
            label,
            u32::try_from(i).map_err(|e| format!("dev_index: {e}"))?,
        ),
        _ => Keypair::from_seed(hex32(&input["seed"], "seed")?),
    };
    let mut v = input.clone();
    v["seed"] = json!(hex::encode(key.seed()));
    v["public_key"] = json!(hex::encode(key.public().0));
    v["address_hex"] = json!(hex::encode(key.address().0));
    v["address"] = json!(key.address().to_string());
    Ok(v)
}

fn tx_vector(t: &TxInput) -> Result<Value, String> {
    let key = Keypair::from_seed(t.seed);
    let chain = ChainId::new(t.chain_id.clone()).map_err(|e| format!("chain_id: {e}"))?;
    let tx = Transaction {
        chain_id: chain.clone(),
        from: key.public(),
        to: t.to,
        amount: Amount(t.amount),
        fee: Amount(t.fee),
        nonce: Nonce(t.nonce),
        memo: t.memo.clone(),
    };
    let tx_bytes = codec::encode(&tx);
    let signing = crypto::signing_bytes(Domain::Transaction, &chain, &tx_bytes);
    let stx = tx.sign(&key);
    let check = match stx.clone().verify(&chain) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.code().to_string(),
    };
    Ok(json!({
        "name": t.name,
        "seed": hex::encode(t.seed),
        "chain_id": t.chain_id,
        "from": hex::encode(key.public().0),
        "from_address": key.address().to_string(),
        "to": t.to.to_string(),
        "to_hex": hex::encode(t.to.0),
        "amount": t.amount,
        "fee": t.fee,
        "nonce": t.nonce,
        "memo_hex": hex::encode(&t.memo),
        "tx_bytes": hex::encode(&tx_bytes),
        "signing_bytes": hex::encode(&signing),
        "signature": hex::encode(stx.signature.0),
        "signed_tx_bytes": hex::encode(codec::encode(&stx)),
        "tx_hash": stx.hash().to_hex(),
        "json": serde_json::to_value(&stx).map_err(|e| e.to_string())?,
        "stateless_check": check,
    }))
}

fn address_text_vector(text: &str, why: &str) -> Value {
    match text.parse::<Address>() {
        Ok(a) => {
            json!({ "text": text, "why": why, "accept": true, "address_hex": hex::encode(a.0) })
        }
        Err(e) => json!({
            "text": text,
            "why": why,
            "accept": false,
            "error": match e {
                AddressError::Checksum(_) => "checksum",
                AddressError::WrongPrefix { .. } => "wrong_prefix",
                AddressError::WrongLength { .. } => "wrong_length",
                AddressError::NotCanonical { .. } => "not_canonical",
            },
        }),
    }
}

/// The transaction root of the vectors' transactions, in order: what a block header's `tx_root`
/// would be for a block holding exactly these transactions.
fn merkle_vector(hashes: &[Hash]) -> Value {
    json!({
        "tx_hashes": hashes.iter().map(Hash::to_hex).collect::<Vec<_>>(),
        "roots_of_prefixes": (0..=hashes.len()).map(|n| merkle_root(&hashes[..n]).to_hex()).collect::<Vec<_>>(),
    })
}

fn generate() -> Result<Value, String> {
    let keys = key_inputs()
        .iter()
        .map(key_vector)
        .collect::<Result<Vec<_>, _>>()?;
    let txs = tx_inputs()
        .iter()
        .map(tx_vector)
        .collect::<Result<Vec<_>, _>>()?;
    let hashes = txs
        .iter()
        .map(|t| hash_of(&t["tx_hash"]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "about": "Test vectors of docs/WIRE.md. Generated by ledger-core's own code (LEDGER_WRITE_VECTORS=1 cargo nextest run ... -E 'test(wire_vectors)'), checked field by field by ledger-core/tests/it/wire_vectors.rs and by clients/python/ledger_client.py. Hex is lowercase, no 0x.",
        "transaction_domain_hex": hex::encode(tx_domain()?),
        "address_domain_hex": hex::encode(ADDRESS_DOMAIN),
        "address_hrp": Address::HRP,
        "keys": keys,
        "transactions": txs,
        "address_texts": address_text_inputs().iter().map(|(t, w)| address_text_vector(t, w)).collect::<Vec<_>>(),
        "merkle": merkle_vector(&hashes),
    }))
}

// ---------------------------------------------------------------------------------------------
// Checking a file.

fn hex32(v: &Value, what: &str) -> Result<[u8; 32], String> {
    let s = v.as_str().ok_or(format!("{what} is not a string"))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| format!("{what}: {e}"))?;
    Ok(out)
}

fn hash_of(v: &Value) -> Result<Hash, String> {
    v.as_str()
        .ok_or("hash is not a string")?
        .parse()
        .map_err(|e| format!("{e}"))
}

fn bytes_of(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(v.as_str().ok_or(format!("{what} is not a string"))?)
        .map_err(|e| format!("{what}: {e}"))
}

/// Compares every field of `expected` with `got`; each difference is one line.
fn diff(place: &str, expected: &Value, got: &Value, errors: &mut Vec<String>) {
    let (Some(e), Some(g)) = (expected.as_object(), got.as_object()) else {
        if expected != got {
            errors.push(format!("{place}: expected {expected}, file has {got}"));
        }
        return;
    };
    for (k, ev) in e {
        match g.get(k) {
            None => errors.push(format!("{place}.{k}: missing")),
            Some(gv) if gv != ev => {
                errors.push(format!("{place}.{k}: expected {ev}, file has {gv}"))
            }
            Some(_) => {}
        }
    }
    for k in g.keys().filter(|k| !e.contains_key(*k)) {
        errors.push(format!("{place}.{k}: not produced by the code"));
    }
}

fn tx_input_of(v: &Value) -> Result<TxInput, String> {
    let u = |k: &str| v[k].as_u64().ok_or(format!("{k} is not a u64"));
    Ok(TxInput {
        name: "",
        seed: hex32(&v["seed"], "seed")?,
        chain_id: v["chain_id"].as_str().ok_or("chain_id")?.to_string(),
        to: v["to"]
            .as_str()
            .ok_or("to")?
            .parse()
            .map_err(|e| format!("to: {e}"))?,
        amount: u("amount")?,
        fee: u("fee")?,
        nonce: u("nonce")?,
        memo: bytes_of(&v["memo_hex"], "memo_hex")?,
    })
}

/// The decoding direction for one transaction vector: the file's bytes and JSON, read back by the
/// code, must give the same transaction, and the file's signature must verify over the file's
/// signing bytes.
fn check_tx_decoding(v: &Value) -> Result<(), String> {
    let signed = bytes_of(&v["signed_tx_bytes"], "signed_tx_bytes")?;
    let decoded: SignedTransaction =
        codec::decode(&signed).map_err(|e| format!("signed_tx_bytes do not decode: {e}"))?;
    let from_json: SignedTransaction = serde_json::from_value(v["json"].clone())
        .map_err(|e| format!("json does not parse as a SignedTransaction: {e}"))?;
    if decoded != from_json {
        return Err("signed_tx_bytes and json are different transactions".into());
    }
    let tx_bytes = bytes_of(&v["tx_bytes"], "tx_bytes")?;
    let tx: Transaction =
        codec::decode(&tx_bytes).map_err(|e| format!("tx_bytes do not decode: {e}"))?;
    if tx != decoded.tx {
        return Err("tx_bytes are not the transaction of signed_tx_bytes".into());
    }
    if Hash::digest(&signed) != hash_of(&v["tx_hash"])? {
        return Err("tx_hash is not SHA-256(signed_tx_bytes)".into());
    }
    let sig = Signature(
        bytes_of(&v["signature"], "signature")?
            .try_into()
            .map_err(|_| "signature is not 64 bytes")?,
    );
    let signing = bytes_of(&v["signing_bytes"], "signing_bytes")?;
    let from = PublicKey(hex32(&v["from"], "from")?);
    from.verify_raw(&signing, &sig)
        .map_err(|_| "signature does not verify over signing_bytes".to_string())?;
    if signing != crypto::signing_bytes(Domain::Transaction, &tx.chain_id, &tx_bytes) {
        return Err("signing_bytes are not domain || len || chain id || tx_bytes".into());
    }
    Ok(())
}

/// Every mismatch between the file and the code, one line each (empty: the file is right).
fn check(file: &Value) -> Vec<String> {
    let mut errors2 = Vec::new();
    match tx_domain() {
        Ok(d) => diff(
            "transaction_domain_hex",
            &json!(hex::encode(d)),
            &file["transaction_domain_hex"],
            &mut errors2,
        ),
        Err(e) => errors2.push(format!("transaction_domain_hex: {e}")),
    }
    diff(
        "address_hrp",
        &json!(Address::HRP),
        &file["address_hrp"],
        &mut errors2,
    );
    // The address domain is private to `Address::from_public_key`; the file's value is right when
    // hashing with it gives the code's address for every key of the file.
    match bytes_of(&file["address_domain_hex"], "address_domain_hex") {
        Ok(domain) => {
            for (i, k) in file["keys"].as_array().into_iter().flatten().enumerate() {
                if let Ok(pk) = hex32(&k["public_key"], "public_key") {
                    let h = Hash::digest_parts(&[&domain, &pk]);
                    if h.0[..20] != Address::from_public_key(&PublicKey(pk)).0 {
                        errors2.push(format!(
                            "address_domain_hex: does not derive the address of keys[{i}]"
                        ));
                    }
                }
            }
        }
        Err(e) => errors2.push(e),
    }
    let empty = Vec::new();
    let keys = file["keys"].as_array().unwrap_or(&empty);
    let txs = file["transactions"].as_array().unwrap_or(&empty);
    let texts = file["address_texts"].as_array().unwrap_or(&empty);
    if keys.is_empty() || txs.is_empty() || texts.is_empty() {
        errors2.push("keys, transactions or address_texts missing or empty".into());
    }
    for (i, k) in keys.iter().enumerate() {
        match key_vector(k) {
            Ok(e) => diff(&format!("keys[{i}]"), &e, k, &mut errors2),
            Err(e) => errors2.push(format!("keys[{i}]: {e}")),
        }
    }
    for (i, t) in txs.iter().enumerate() {
        let place = format!("transactions[{i}]");
        match tx_input_of(t).and_then(|input| tx_vector(&input)) {
            Ok(mut e) => {
                e["name"] = t["name"].clone();
                diff(&place, &e, t, &mut errors2);
            }
            Err(e) => errors2.push(format!("{place}: {e}")),
        }
        if let Err(e) = check_tx_decoding(t) {
            errors2.push(format!("{place}: {e}"));
        }
    }
    for (i, a) in texts.iter().enumerate() {
        let e = address_text_vector(
            a["text"].as_str().unwrap_or_default(),
            a["why"].as_str().unwrap_or_default(),
        );
        diff(&format!("address_texts[{i}]"), &e, a, &mut errors2);
    }
    let hashes: Result<Vec<Hash>, String> = file["merkle"]["tx_hashes"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(hash_of)
        .collect();
    match hashes {
        Ok(h) if !h.is_empty() => diff("merkle", &merkle_vector(&h), &file["merkle"], &mut errors2),
        Ok(_) => errors2.push("merkle.tx_hashes missing or empty".into()),
        Err(e) => errors2.push(format!("merkle.tx_hashes: {e}")),
    }
    errors2
}

fn read_file() -> Value {
    let text = std::fs::read_to_string(PATH).unwrap_or_else(|e| panic!("read {PATH}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{PATH} is not JSON: {e}"))
}

#[test]
fn wire_vectors_file_matches_the_code() {
    if std::env::var("LEDGER_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        let v = generate().expect("vectors generate");
        let text = serde_json::to_string_pretty(&v).expect("serializes") + "\n";
        std::fs::write(PATH, text).unwrap_or_else(|e| panic!("write {PATH}: {e}"));
        eprintln!("rewrote {PATH} from the code");
    }
    let file = read_file();
    let errors = check(&file);
    assert!(
        errors.is_empty(),
        "{PATH} disagrees with the code ({} mismatches; regenerate with LEDGER_WRITE_VECTORS=1 only after a deliberate wire change):\n{}",
        errors.len(),
        errors.join("\n")
    );
    // The file is the generator's whole output, not a subset that happens to check.
    assert_eq!(
        file,
        generate().expect("vectors generate"),
        "{PATH} is not what the code generates; regenerate with LEDGER_WRITE_VECTORS=1"
    );
}

/// The checker is not vacuous: one flipped nibble in any hex field of any transaction or key
/// vector is reported, naming the vector, and so are wrong numbers, verdicts and JSON bodies.
/// Works on the generator's output in memory, so it neither depends on nor races with the file.
#[test]
fn wire_vectors_checker_reports_a_corrupted_field() {
    let file = generate().expect("vectors generate");
    assert!(
        check(&file).is_empty(),
        "the generated vectors must check clean"
    );
    let mut corrupted = 0;
    for section in ["keys", "transactions"] {
        let n = file[section].as_array().map_or(0, Vec::len);
        for i in 0..n {
            let fields: Vec<String> = file[section][i]
                .as_object()
                .expect("object")
                .iter()
                .filter(|(_, v)| {
                    v.as_str()
                        .is_some_and(|s| s.len() >= 2 && hex::decode(s).is_ok())
                })
                .map(|(k, _)| k.clone())
                .collect();
            for field in fields {
                let mut bad = file.clone();
                let s = bad[section][i][&field].as_str().expect("str").to_string();
                let flipped = if s.ends_with('0') { '1' } else { '0' };
                bad[section][i][&field] = json!(format!("{}{flipped}", &s[..s.len() - 1]));
                let errors = check(&bad);
                let place = format!("{section}[{i}]");
                assert!(
                    errors.iter().any(|e| e.starts_with(&place)),
                    "corrupting {place}.{field} went unnoticed: {errors:?}"
                );
                corrupted += 1;
            }
        }
    }
    // Non-hex fields too: a wrong amount, a wrong verdict, a flipped address verdict, a JSON body.
    let mut bad = file.clone();
    bad["transactions"][0]["amount"] = json!(999);
    assert!(!check(&bad).is_empty(), "a wrong amount went unnoticed");
    let mut bad = file.clone();
    bad["transactions"][3]["stateless_check"] = json!("ok");
    assert!(!check(&bad).is_empty(), "a wrong verdict went unnoticed");
    let mut bad = file.clone();
    bad["transactions"][1]["json"]["tx"]["fee"] = json!(2);
    assert!(!check(&bad).is_empty(), "a wrong JSON body went unnoticed");
    let mut bad = file.clone();
    bad["address_texts"][3]["accept"] = json!(true);
    assert!(
        !check(&bad).is_empty(),
        "a wrong address verdict went unnoticed"
    );
    for top in ["transaction_domain_hex", "address_domain_hex"] {
        let mut bad = file.clone();
        let s = bad[top].as_str().expect("str").to_string();
        bad[top] = json!(format!("{}01", &s[..s.len() - 2]));
        assert!(
            check(&bad).iter().any(|e| e.starts_with(top)),
            "a wrong {top} went unnoticed"
        );
    }
    assert!(corrupted > 30, "only {corrupted} fields were corrupted");
}
