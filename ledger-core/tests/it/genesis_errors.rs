//! Genesis documents: the repository's `genesis.json` is the dev chain, and every kind of bad
//! genesis is rejected with an error that names the offending field.
//!
//! To rewrite `genesis.json` after a deliberate change (for example new default parameters), run
//! this module with `LEDGER_BLESS_GENESIS=1`.

use ledger_core::Hash;
use ledger_core::genesis::{Genesis, GenesisError};
use ledger_core::validation::ParentBlock;
use serde_json::{Value, json};

const GENESIS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../genesis.json");

fn dev() -> Genesis {
    Genesis::dev("ledger-devnet-1", 4, 16).expect("valid dev genesis")
}

#[test]
fn genesis_json_is_the_dev_chain() {
    let expected = dev().to_json();
    if std::env::var_os("LEDGER_BLESS_GENESIS").is_some() {
        std::fs::write(GENESIS_PATH, &expected).expect("writes genesis.json");
    }
    let file = std::fs::read_to_string(GENESIS_PATH).expect("reads genesis.json");
    assert_eq!(
        file, expected,
        "genesis.json drifted from Genesis::dev(\"ledger-devnet-1\", 4, 16); \
         rerun with LEDGER_BLESS_GENESIS=1 if the change is deliberate"
    );
    let parsed = Genesis::from_json(&file).expect("genesis.json is valid");
    assert_eq!(parsed, dev());
    assert_eq!(parsed.validators().len(), 4);
    assert_eq!(parsed.accounts().len(), 16);
    assert_eq!(parsed.validators().total_power(), 40);
    assert_eq!(parsed.total_supply().0, 16_000_000_000_000);
    assert_eq!(parsed.initial_accounts().len(), 16);
    assert_eq!(ParentBlock::genesis(&parsed).hash, parsed.hash());
    assert_ne!(parsed.hash(), Hash::ZERO);
}

fn base() -> Value {
    serde_json::to_value(Genesis::dev("errors-chain", 3, 8).expect("valid")).expect("serializes")
}

/// Parses `v`, expecting a rejection whose message starts with `field`.
fn rejected(v: &Value, field: &str) -> GenesisError {
    let text = serde_json::to_string_pretty(v).expect("serializes");
    let err = match Genesis::from_json(&text) {
        Ok(_) => panic!("accepted a bad genesis (expected an error naming {field})"),
        Err(e) => e,
    };
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{field}: ")) || message.starts_with(&format!("{field} ")),
        "error does not name {field}: {message}"
    );
    err
}

#[test]
fn duplicate_validator() {
    let mut v = base();
    v["validators"][2] = v["validators"][0].clone();
    let e = rejected(&v, "validators[2]");
    assert!(
        matches!(e, GenesisError::DuplicateValidator { .. }),
        "{e:?}"
    );
}

#[test]
fn zero_power() {
    let mut v = base();
    v["validators"][1]["power"] = json!(0);
    let e = rejected(&v, "validators[1].power");
    assert!(matches!(e, GenesisError::ZeroPower { .. }), "{e:?}");
}

#[test]
fn negative_or_fractional_power() {
    let mut v = base();
    v["validators"][0]["power"] = json!(-5);
    rejected(&v, "validators[0].power");
    v["validators"][0]["power"] = json!(1.5);
    rejected(&v, "validators[0].power");
}

#[test]
fn total_power_overflow() {
    let mut v = base();
    v["validators"][0]["power"] = json!(u64::MAX / 4);
    v["validators"][1]["power"] = json!(u64::MAX / 4);
    let e = rejected(&v, "validators[1].power");
    assert!(matches!(e, GenesisError::PowerOverflow { .. }), "{e:?}");
}

#[test]
fn no_validators() {
    let mut v = base();
    v["validators"] = json!([]);
    rejected(&v, "validators");
}

#[test]
fn duplicate_account() {
    let mut v = base();
    v["accounts"][3]["address"] = v["accounts"][1]["address"].clone();
    let e = rejected(&v, "accounts[3].address");
    assert!(matches!(e, GenesisError::DuplicateAccount { .. }), "{e:?}");
}

#[test]
fn zero_balance() {
    let mut v = base();
    v["accounts"][5]["balance"] = json!(0);
    rejected(&v, "accounts[5].balance");
}

#[test]
fn supply_overflow() {
    let mut v = base();
    v["accounts"][6]["balance"] = json!(u64::MAX - 1);
    let e = rejected(&v, "accounts[6].balance");
    assert!(matches!(e, GenesisError::SupplyOverflow { .. }), "{e:?}");
    // A balance beyond u64 is a type error at its field, not a silent float.
    v["accounts"][6]["balance"] = serde_json::from_str("18446744073709551616").expect("number");
    rejected(&v, "accounts[6].balance");
}

#[test]
fn malformed_public_key() {
    let mut v = base();
    v["validators"][2]["public_key"] = json!("not hex at all");
    let e = rejected(&v, "validators[2].public_key");
    assert!(
        matches!(e, GenesisError::MalformedPublicKey { .. }),
        "{e:?}"
    );
    v["validators"][2]["public_key"] = json!("abcd");
    rejected(&v, "validators[2].public_key");
    v["validators"][2]["public_key"] = json!(42);
    rejected(&v, "validators[2].public_key");
}

#[test]
fn public_key_not_on_the_curve_or_small_order() {
    let mut v = base();
    // y = 2 is not the y-coordinate of any curve point.
    let mut not_a_point = "02".to_owned();
    not_a_point.push_str(&"00".repeat(31));
    v["validators"][1]["public_key"] = json!(not_a_point);
    let e = rejected(&v, "validators[1].public_key");
    assert!(matches!(e, GenesisError::InvalidPublicKey { .. }), "{e:?}");
    // Speccheck's small-order key c717...03fa.
    v["validators"][1]["public_key"] =
        json!("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa");
    rejected(&v, "validators[1].public_key");
}

#[test]
fn validator_address_must_match_its_key() {
    let mut v = base();
    v["validators"][0]["address"] = v["accounts"][0]["address"].clone();
    let e = rejected(&v, "validators[0].address");
    assert!(matches!(e, GenesisError::AddressMismatch { .. }), "{e:?}");
}

#[test]
fn malformed_address() {
    let mut v = base();
    let good = v["accounts"][7]["address"]
        .as_str()
        .expect("string")
        .to_owned();
    // One mistyped character: the checksum catches it.
    let mut chars: Vec<char> = good.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'q' { 'p' } else { 'q' };
    v["accounts"][7]["address"] = json!(chars.into_iter().collect::<String>());
    let e = rejected(&v, "accounts[7].address");
    assert!(matches!(e, GenesisError::MalformedAddress { .. }), "{e:?}");
    v["accounts"][7]["address"] = json!("0x1234");
    rejected(&v, "accounts[7].address");
    let mut v = base();
    v["validators"][1]["address"] = json!("");
    rejected(&v, "validators[1].address");
}

#[test]
fn unknown_fields_at_every_level() {
    let mut v = base();
    v["comment"] = json!("hello");
    rejected(&v, "comment");
    let mut v = base();
    v["validators"][0]["name"] = json!("alice");
    rejected(&v, "validators[0].name");
    let mut v = base();
    v["accounts"][4]["nonce"] = json!(0);
    let e = rejected(&v, "accounts[4].nonce");
    assert!(matches!(e, GenesisError::UnknownField { .. }), "{e:?}");
    let mut v = base();
    v["consensus_params"]["block_time_ms"] = json!(1000);
    rejected(&v, "consensus_params.block_time_ms");
}

#[test]
fn missing_fields() {
    for field in [
        "chain_id",
        "genesis_time_ms",
        "consensus_params",
        "validators",
        "accounts",
    ] {
        let mut v = base();
        v.as_object_mut().expect("object").remove(field);
        let e = rejected(&v, field);
        assert!(matches!(e, GenesisError::MissingField { .. }), "{e:?}");
    }
    let mut v = base();
    v["validators"][1]
        .as_object_mut()
        .expect("object")
        .remove("power");
    rejected(&v, "validators[1].power");
    let mut v = base();
    v["consensus_params"]
        .as_object_mut()
        .expect("object")
        .remove("max_block_bytes");
    rejected(&v, "consensus_params.max_block_bytes");
}

#[test]
fn bad_params() {
    let mut v = base();
    v["consensus_params"]["timeout_propose_ms"] = json!(0);
    let e = rejected(&v, "consensus_params.timeout_propose_ms");
    assert!(matches!(e, GenesisError::BadParams(_)), "{e:?}");
    let mut v = base();
    v["consensus_params"]["max_block_bytes"] = json!(u64::MAX);
    rejected(&v, "consensus_params.max_block_bytes");
    let mut v = base();
    v["consensus_params"]["max_block_txs"] = json!("many");
    rejected(&v, "consensus_params.max_block_txs");
    let mut v = base();
    // Fits the check of integers, not the u32 the parameter is.
    v["consensus_params"]["max_block_txs"] = json!(u64::from(u32::MAX) + 1);
    rejected(&v, "consensus_params");
}

#[test]
fn bad_chain_id_and_top_level_shape() {
    let mut v = base();
    v["chain_id"] = json!("Has Spaces");
    rejected(&v, "chain_id");
    rejected(&json!([1, 2]), "genesis");
    let e = Genesis::from_json("{\"chain_id\": ").expect_err("truncated JSON");
    assert!(matches!(e, GenesisError::Syntax { .. }), "{e:?}");
    assert!(e.to_string().contains("line 1"), "{e}");
}
