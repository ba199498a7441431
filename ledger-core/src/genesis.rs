//! Genesis: the chain's first state and fixed parameters, parsed from `genesis.json` into a
//! validated value.
//!
//! ```json
//! {
//!   "chain_id": "ledger-devnet-1",
//!   "genesis_time_ms": 1767225600000,
//!   "description": "optional free text, at most 1024 bytes",
//!   "consensus_params": { "timeout_propose_ms": 1000, ... },
//!   "validators": [ { "address": "ldg1...", "public_key": "<64 hex>", "power": 10 } ],
//!   "accounts": [ { "address": "ldg1...", "balance": 1000000000000 } ]
//! }
//! ```
//!
//! Parsing goes through `serde_json::Value` and converts field by field, so every error names the
//! offending field with its path (`validators[2].public_key`, `accounts[7].balance`), including
//! malformed strings and unknown fields, which serde's derived errors would only locate by line and
//! column. Validators must be unique, have positive power (total below `u64::MAX / 3`) and an
//! address matching their key; accounts must be unique with positive balances whose sum (the
//! total supply, fixed forever) fits in a `u64`.
//!
//! [`Genesis::hash`] is SHA-256 of the canonical (borsh) encoding of the validated value and
//! identifies the chain: block 1's `prev_hash` is the genesis hash. Validators are encoded in
//! address order (the order of [`ValidatorSet`]); accounts in the order given.
//!
//! # The dev chain
//!
//! [`Genesis::dev`] builds a development chain from deterministic, publicly derivable keys:
//! validator `i` is `Keypair::dev("validator", i)` and account `i` is `Keypair::dev("account", i)`
//! (seed = SHA-256("ledger dev key\0" || label || "\0" || i as u32 little-endian)). DEV ONLY: anyone
//! can derive these keys. The repository's `genesis.json` is `Genesis::dev("ledger-devnet-1", 4, 16)`
//! and a test keeps it so.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::codec;
use crate::crypto::{Keypair, ParseBytesError, PublicKey};
use crate::hash::Hash;
use crate::params::{ConsensusParams, ParamsError};
use crate::state::{Account, State};
use crate::types::{Address, AddressError, Amount, ChainId, ChainIdError, Nonce, TimestampMs};
use crate::units::Token;
use crate::validation::ChainContext;
use crate::validator::{Validator, ValidatorSet, ValidatorSetError};

/// Longest genesis description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// Genesis time of the dev chain: 2026-01-01T00:00:00Z.
pub const DEV_GENESIS_TIME_MS: u64 = 1_767_225_600_000;
/// Voting power of each dev validator.
pub const DEV_VALIDATOR_POWER: u64 = 10;
/// Balance of each pre-funded dev account, in base units.
pub const DEV_ACCOUNT_BALANCE: u64 = 1_000_000_000_000;

/// Why a genesis is not acceptable. Every variant names the offending field by its JSON path.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis is not valid JSON: {source}")]
    Syntax {
        #[source]
        source: serde_json::Error,
    },
    #[error("{field}: expected {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("{field}: missing")]
    MissingField { field: String },
    #[error("{field}: {source}")]
    InvalidToken {
        field: String,
        #[source]
        source: crate::units::TokenError,
    },
    #[error("{field}: unknown field")]
    UnknownField { field: String },
    #[error("{field}: {source}")]
    InvalidChainId {
        field: String,
        #[source]
        source: ChainIdError,
    },
    #[error("{field}: malformed address: {source}")]
    MalformedAddress {
        field: String,
        #[source]
        source: AddressError,
    },
    #[error("{field}: malformed public key: {source}")]
    MalformedPublicKey {
        field: String,
        #[source]
        source: ParseBytesError,
    },
    #[error("{field}: not a usable ed25519 public key (not a curve point, or of small order)")]
    InvalidPublicKey { field: String },
    #[error(
        "{field}: address {address} does not match the public key, whose address is {expected}"
    )]
    AddressMismatch {
        field: String,
        address: Address,
        expected: Address,
    },
    #[error("{field}: there must be at least one validator")]
    NoValidators { field: String },
    #[error("{field}: validator {address} appears more than once")]
    DuplicateValidator { field: String, address: Address },
    #[error("{field}: voting power must be positive")]
    ZeroPower { field: String },
    #[error("{field}: total voting power exceeds {max}")]
    PowerOverflow { field: String, max: u64 },
    #[error("{field}: account {address} appears more than once")]
    DuplicateAccount { field: String, address: Address },
    #[error("{field}: balance must be positive")]
    ZeroBalance { field: String },
    #[error("{field}: total supply overflows u64")]
    SupplyOverflow { field: String },
    #[error("{field}: {source}")]
    InvalidParams {
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    BadParams(#[source] ParamsError),
    #[error("{field}: {got} bytes, the limit is {max}")]
    DescriptionTooLong {
        field: String,
        max: usize,
        got: usize,
    },
    #[error("validators: {0}")]
    ValidatorSet(#[source] ValidatorSetError),
}

/// A pre-funded account.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct GenesisAccount {
    pub address: Address,
    pub balance: Amount,
}

/// A validated genesis. Construct with [`Genesis::new`], [`Genesis::from_json`] or [`Genesis::dev`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    chain_id: ChainId,
    genesis_time_ms: TimestampMs,
    description: Option<String>,
    consensus_params: ConsensusParams,
    validators: ValidatorSet,
    accounts: Vec<GenesisAccount>,
    /// The display unit people read amounts in; `None` shows base units only.
    token: Option<Token>,
}

/// The canonical encoding's layout (and the JSON's field order): validators as a plain list.
#[derive(BorshSerialize, BorshDeserialize)]
struct GenesisWire {
    chain_id: ChainId,
    genesis_time_ms: TimestampMs,
    description: Option<String>,
    consensus_params: ConsensusParams,
    validators: Vec<Validator>,
    accounts: Vec<GenesisAccount>,
    token: Option<Token>,
}

impl Genesis {
    /// Validates the parts of a genesis. Field paths in errors refer to the positions given here.
    pub fn new(
        chain_id: ChainId,
        genesis_time_ms: TimestampMs,
        description: Option<String>,
        consensus_params: ConsensusParams,
        validators: Vec<Validator>,
        accounts: Vec<GenesisAccount>,
    ) -> Result<Genesis, GenesisError> {
        if let Some(d) = &description
            && d.len() > MAX_DESCRIPTION_BYTES
        {
            return Err(GenesisError::DescriptionTooLong {
                field: "description".into(),
                max: MAX_DESCRIPTION_BYTES,
                got: d.len(),
            });
        }
        consensus_params
            .validate_for(validators.len())
            .map_err(GenesisError::BadParams)?;
        let validators = check_validators(validators)?;
        check_accounts(&accounts)?;
        Ok(Genesis {
            chain_id,
            genesis_time_ms,
            description,
            consensus_params,
            validators,
            accounts,
            token: None,
        })
    }

    /// The same genesis with this display unit (a different chain: the unit is in the hash).
    pub fn with_token(mut self, token: Option<Token>) -> Genesis {
        self.token = token;
        self
    }

    /// The display unit, if the genesis names one.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// Parses and validates a genesis document.
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let value: Value =
            serde_json::from_str(json).map_err(|source| GenesisError::Syntax { source })?;
        Genesis::from_value(&value)
    }

    /// Validates a genesis document already parsed as JSON.
    pub fn from_value(value: &Value) -> Result<Genesis, GenesisError> {
        let top = object(
            value,
            "genesis",
            "",
            &[
                "chain_id",
                "genesis_time_ms",
                "description",
                "consensus_params",
                "validators",
                "accounts",
                "token",
            ],
        )?;
        let chain_id = ChainId::new(string(required(top, "", "chain_id")?, "chain_id")?).map_err(
            |source| GenesisError::InvalidChainId {
                field: "chain_id".into(),
                source,
            },
        )?;
        let genesis_time_ms = TimestampMs(unsigned(
            required(top, "", "genesis_time_ms")?,
            "genesis_time_ms",
        )?);
        let description = match top.get("description") {
            None | Some(Value::Null) => None,
            Some(v) => Some(string(v, "description")?.to_owned()),
        };
        let consensus_params = parse_params(required(top, "", "consensus_params")?)?;
        let validators = array(required(top, "", "validators")?, "validators")?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_validator(v, &format!("validators[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let accounts = array(required(top, "", "accounts")?, "accounts")?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_account(v, &format!("accounts[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let token = match top.get("token") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_token(v)?),
        };
        Ok(Genesis::new(
            chain_id,
            genesis_time_ms,
            description,
            consensus_params,
            validators,
            accounts,
        )?
        .with_token(token))
    }

    /// The genesis document as pretty JSON with a final newline (what `genesis.json` holds).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and integers into a String cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The development chain with `validators` validators and `accounts` pre-funded accounts from
    /// the DEV-ONLY deterministic keys (see the module documentation), default consensus
    /// parameters, power [`DEV_VALIDATOR_POWER`] each, balance [`DEV_ACCOUNT_BALANCE`] each. The
    /// testnet writes its genesis with this.
    pub fn dev(chain_id: &str, validators: u32, accounts: u32) -> Result<Genesis, GenesisError> {
        let chain_id = ChainId::new(chain_id).map_err(|source| GenesisError::InvalidChainId {
            field: "chain_id".into(),
            source,
        })?;
        let validators = (0..validators)
            .map(|i| {
                let key = Keypair::dev("validator", i);
                Validator {
                    address: key.address(),
                    public_key: key.public(),
                    power: DEV_VALIDATOR_POWER,
                }
            })
            .collect();
        let accounts = (0..accounts)
            .map(|i| GenesisAccount {
                address: Keypair::dev("account", i).address(),
                balance: Amount(DEV_ACCOUNT_BALANCE),
            })
            .collect();
        let description = "Development chain. DEV ONLY: validator i's key is \
            Keypair::dev(\"validator\", i) and account i's key is Keypair::dev(\"account\", i), \
            seed = SHA-256(\"ledger dev key\\0\" || label || \"\\0\" || i as u32 little-endian). \
            Anyone can derive these keys: never use them for anything of value.";
        Ok(Genesis::new(
            chain_id,
            TimestampMs(DEV_GENESIS_TIME_MS),
            Some(description.to_owned()),
            ConsensusParams::default(),
            validators,
            accounts,
        )?
        .with_token(Some(Token::dev())))
    }

    /// SHA-256 of the canonical encoding: the chain's identity, and block 1's `prev_hash`.
    pub fn hash(&self) -> Hash {
        Hash::digest(&codec::encode(self))
    }

    /// The accounts before block 1: the pre-funded accounts, nonce 0, sorted by address.
    pub fn initial_accounts(&self) -> Vec<(Address, Account)> {
        let mut accounts: Vec<(Address, Account)> = self
            .accounts
            .iter()
            .map(|a| {
                (
                    a.address,
                    Account {
                        balance: a.balance,
                        nonce: Nonce(0),
                    },
                )
            })
            .collect();
        accounts.sort_unstable_by_key(|(a, _)| *a);
        accounts
    }

    /// The state before block 1, in memory ([`crate::state::MemStore`]).
    pub fn initial_state(&self) -> State {
        // Validated: unique addresses, positive balances, a supply that fits. Loading into an
        // empty in-memory store cannot fail.
        State::load(
            std::sync::Arc::new(crate::state::MemStore::new()),
            &self.initial_accounts(),
        )
        .unwrap_or_else(|e| unreachable!("a validated genesis loads into memory: {e}"))
    }

    /// The chain's fixed facts, as block building and validation take them.
    pub fn chain_context(&self) -> ChainContext<'_> {
        ChainContext {
            chain_id: &self.chain_id,
            params: &self.consensus_params,
            validators: &self.validators,
        }
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    pub fn genesis_time_ms(&self) -> TimestampMs {
        self.genesis_time_ms
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn consensus_params(&self) -> &ConsensusParams {
        &self.consensus_params
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    pub fn accounts(&self) -> &[GenesisAccount] {
        &self.accounts
    }

    /// Sum of the pre-funded balances: the total supply, forever.
    pub fn total_supply(&self) -> Amount {
        // Validated to fit.
        Amount(
            self.accounts
                .iter()
                .map(|a| a.balance.0)
                .fold(0, u64::saturating_add),
        )
    }

    fn wire(&self) -> GenesisWire {
        GenesisWire {
            chain_id: self.chain_id.clone(),
            genesis_time_ms: self.genesis_time_ms,
            description: self.description.clone(),
            consensus_params: self.consensus_params.clone(),
            validators: self.validators.validators().to_vec(),
            accounts: self.accounts.clone(),
            token: self.token.clone(),
        }
    }
}

fn check_validators(validators: Vec<Validator>) -> Result<ValidatorSet, GenesisError> {
    if validators.is_empty() {
        return Err(GenesisError::NoValidators {
            field: "validators".into(),
        });
    }
    let max = u64::MAX / 3;
    let mut total: u64 = 0;
    let mut seen: BTreeMap<Address, usize> = BTreeMap::new();
    for (i, v) in validators.iter().enumerate() {
        if !is_usable_key(&v.public_key) {
            return Err(GenesisError::InvalidPublicKey {
                field: format!("validators[{i}].public_key"),
            });
        }
        let expected = Address::from_public_key(&v.public_key);
        if v.address != expected {
            return Err(GenesisError::AddressMismatch {
                field: format!("validators[{i}].address"),
                address: v.address,
                expected,
            });
        }
        if seen.insert(v.address, i).is_some() {
            return Err(GenesisError::DuplicateValidator {
                field: format!("validators[{i}]"),
                address: v.address,
            });
        }
        if v.power == 0 {
            return Err(GenesisError::ZeroPower {
                field: format!("validators[{i}].power"),
            });
        }
        total = total
            .checked_add(v.power)
            .filter(|t| *t <= max)
            .ok_or_else(|| GenesisError::PowerOverflow {
                field: format!("validators[{i}].power"),
                max,
            })?;
    }
    // Everything ValidatorSet::new checks was checked above with field names; this only sorts.
    ValidatorSet::new(validators).map_err(GenesisError::ValidatorSet)
}

/// A key fit for a validator: a valid curve point of large order. Under ZIP-215 anyone can make a
/// signature that verifies for a small-order key, so such a key must never hold voting power.
fn is_usable_key(key: &PublicKey) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(&key.0).is_ok_and(|k| !k.is_weak())
}

fn check_accounts(accounts: &[GenesisAccount]) -> Result<(), GenesisError> {
    let mut supply: u64 = 0;
    let mut seen: BTreeMap<Address, usize> = BTreeMap::new();
    for (i, a) in accounts.iter().enumerate() {
        if seen.insert(a.address, i).is_some() {
            return Err(GenesisError::DuplicateAccount {
                field: format!("accounts[{i}].address"),
                address: a.address,
            });
        }
        if a.balance.0 == 0 {
            return Err(GenesisError::ZeroBalance {
                field: format!("accounts[{i}].balance"),
            });
        }
        supply = supply
            .checked_add(a.balance.0)
            .ok_or_else(|| GenesisError::SupplyOverflow {
                field: format!("accounts[{i}].balance"),
            })?;
    }
    Ok(())
}

/// `parent.key`, or `key` at the top level.
fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `value` as an object with only `allowed` keys.
fn object<'v>(
    value: &'v Value,
    what: &str,
    field: &str,
    allowed: &[&str],
) -> Result<&'v Map<String, Value>, GenesisError> {
    let map = value.as_object().ok_or_else(|| GenesisError::WrongType {
        field: if field.is_empty() {
            what.to_owned()
        } else {
            field.to_owned()
        },
        expected: "an object",
    })?;
    // serde_json's map is ordered by key, so the first unknown field reported is deterministic.
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(GenesisError::UnknownField {
            field: path(field, unknown),
        });
    }
    Ok(map)
}

fn required<'v>(
    map: &'v Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<&'v Value, GenesisError> {
    map.get(key).ok_or_else(|| GenesisError::MissingField {
        field: path(parent, key),
    })
}

fn string<'v>(value: &'v Value, field: &str) -> Result<&'v str, GenesisError> {
    value.as_str().ok_or_else(|| GenesisError::WrongType {
        field: field.to_owned(),
        expected: "a string",
    })
}

fn unsigned(value: &Value, field: &str) -> Result<u64, GenesisError> {
    value.as_u64().ok_or_else(|| GenesisError::WrongType {
        field: field.to_owned(),
        expected: "an unsigned 64-bit integer",
    })
}

fn array<'v>(value: &'v Value, field: &str) -> Result<&'v Vec<Value>, GenesisError> {
    value.as_array().ok_or_else(|| GenesisError::WrongType {
        field: field.to_owned(),
        expected: "an array",
    })
}

fn address(value: &Value, field: &str) -> Result<Address, GenesisError> {
    string(value, field)?
        .parse()
        .map_err(|source| GenesisError::MalformedAddress {
            field: field.to_owned(),
            source,
        })
}

fn parse_validator(value: &Value, field: &str) -> Result<Validator, GenesisError> {
    let map = object(
        value,
        "validator",
        field,
        &["address", "public_key", "power"],
    )?;
    let key_field = path(field, "public_key");
    let public_key = string(required(map, field, "public_key")?, &key_field)?
        .parse()
        .map_err(|source| GenesisError::MalformedPublicKey {
            field: key_field.clone(),
            source,
        })?;
    Ok(Validator {
        address: address(required(map, field, "address")?, &path(field, "address"))?,
        public_key,
        power: unsigned(required(map, field, "power")?, &path(field, "power"))?,
    })
}

fn parse_token(value: &Value) -> Result<Token, GenesisError> {
    let field = "token";
    let map = object(value, field, field, &["symbol", "decimals"])?;
    let symbol = string(required(map, field, "symbol")?, &path(field, "symbol"))?;
    let decimals = unsigned(required(map, field, "decimals")?, &path(field, "decimals"))?;
    let decimals = u8::try_from(decimals).unwrap_or(u8::MAX);
    Token::new(symbol, decimals).map_err(|source| GenesisError::InvalidToken {
        field: field.into(),
        source,
    })
}

fn parse_account(value: &Value, field: &str) -> Result<GenesisAccount, GenesisError> {
    let map = object(value, "account", field, &["address", "balance"])?;
    Ok(GenesisAccount {
        address: address(required(map, field, "address")?, &path(field, "address"))?,
        balance: Amount(unsigned(
            required(map, field, "balance")?,
            &path(field, "balance"),
        )?),
    })
}

/// The consensus parameters, with unknown, missing and mistyped fields named. The field list is
/// taken from `ConsensusParams` itself, so it cannot drift from the struct.
fn parse_params(value: &Value) -> Result<ConsensusParams, GenesisError> {
    let field = "consensus_params";
    let known = match serde_json::to_value(ConsensusParams::default()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let allowed: Vec<&str> = known.keys().map(String::as_str).collect();
    let map = object(value, field, field, &allowed)?;
    for key in &allowed {
        unsigned(required(map, field, key)?, &path(field, key))?;
    }
    // Remaining failures are range errors (a u64 where the struct holds a u32).
    serde_json::from_value(value.clone()).map_err(|source| GenesisError::InvalidParams {
        field: field.into(),
        source,
    })
}

impl Serialize for Genesis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            chain_id: &'a ChainId,
            genesis_time_ms: TimestampMs,
            #[serde(skip_serializing_if = "Option::is_none")]
            description: Option<&'a str>,
            consensus_params: &'a ConsensusParams,
            validators: &'a [Validator],
            accounts: &'a [GenesisAccount],
            #[serde(skip_serializing_if = "Option::is_none")]
            token: Option<&'a Token>,
        }
        Json {
            chain_id: &self.chain_id,
            genesis_time_ms: self.genesis_time_ms,
            description: self.description.as_deref(),
            consensus_params: &self.consensus_params,
            validators: self.validators.validators(),
            accounts: &self.accounts,
            token: self.token.as_ref(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Genesis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Genesis::from_value(&value).map_err(serde::de::Error::custom)
    }
}

impl BorshSerialize for Genesis {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.wire().serialize(writer)
    }
}

/// Decoding validates like [`Genesis::new`]; [`codec::decode`] then also rejects validators that
/// were not in canonical (address) order, since they would re-encode differently.
impl BorshDeserialize for Genesis {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let w = GenesisWire::deserialize_reader(reader)?;
        Genesis::new(
            w.chain_id,
            w.genesis_time_ms,
            w.description,
            w.consensus_params,
            w.validators,
            w.accounts,
        )
        .map(|g| g.with_token(w.token))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Genesis {
        Genesis::dev("test-chain", 3, 4).expect("valid dev genesis")
    }

    fn json(g: &Genesis) -> Value {
        serde_json::to_value(g).expect("serializes")
    }

    fn err(v: Value) -> GenesisError {
        match Genesis::from_value(&v) {
            Ok(_) => panic!("accepted a bad genesis: {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn dev_genesis_round_trips_through_json_and_borsh() {
        let g = dev();
        assert_eq!(Genesis::from_json(&g.to_json()).expect("parses"), g);
        let bytes = codec::encode(&g);
        assert_eq!(codec::decode::<Genesis>(&bytes).expect("decodes"), g);
        assert_eq!(g.total_supply(), Amount(4 * DEV_ACCOUNT_BALANCE));
        assert_eq!(g.initial_accounts().len(), 4);
        assert_eq!(
            g.initial_state().total_supply(),
            Ok(4 * u128::from(DEV_ACCOUNT_BALANCE))
        );
    }

    #[test]
    fn the_hash_identifies_the_chain() {
        let g = dev();
        assert_eq!(g.hash(), dev().hash());
        assert_ne!(
            g.hash(),
            Genesis::dev("other-chain", 3, 4).expect("valid").hash()
        );
        assert_ne!(
            g.hash(),
            Genesis::dev("test-chain", 3, 5).expect("valid").hash()
        );
    }

    #[test]
    fn syntax_error() {
        assert!(matches!(
            Genesis::from_json("{"),
            Err(GenesisError::Syntax { .. })
        ));
    }

    #[test]
    fn wrong_type_missing_and_unknown_fields_are_named() {
        let mut v = json(&dev());
        v["genesis_time_ms"] = Value::from(-1);
        assert_eq!(
            err(v).to_string(),
            "genesis_time_ms: expected an unsigned 64-bit integer"
        );
        let mut v = json(&dev());
        v.as_object_mut().expect("object").remove("accounts");
        assert_eq!(err(v).to_string(), "accounts: missing");
        let mut v = json(&dev());
        v["validators"][1]["extra"] = Value::from(1);
        assert_eq!(err(v).to_string(), "validators[1].extra: unknown field");
        let mut v = json(&dev());
        v["consensus_params"]["timeout_propose"] = Value::from(1);
        assert_eq!(
            err(v).to_string(),
            "consensus_params.timeout_propose: unknown field"
        );
        let mut v = json(&dev());
        v["consensus_params"]["max_block_txs"] = Value::from(u64::MAX);
        assert!(matches!(err(v), GenesisError::InvalidParams { .. }));
    }

    #[test]
    fn bad_chain_id_and_description() {
        let mut v = json(&dev());
        v["chain_id"] = Value::from("Bad Chain");
        assert!(matches!(err(v), GenesisError::InvalidChainId { .. }));
        let mut v = json(&dev());
        v["description"] = Value::from("x".repeat(MAX_DESCRIPTION_BYTES + 1));
        assert!(matches!(err(v), GenesisError::DescriptionTooLong { .. }));
    }

    #[test]
    fn validator_errors_name_the_validator_field() {
        let mut v = json(&dev());
        v["validators"][2]["public_key"] = Value::from("zz");
        assert!(
            matches!(err(v), GenesisError::MalformedPublicKey { field, .. } if field == "validators[2].public_key")
        );
        // The identity point encodes a small-order key: parseable hex, unusable key.
        let mut v = json(&dev());
        let mut identity = "01".to_owned();
        identity.push_str(&"00".repeat(31));
        v["validators"][0]["public_key"] = Value::from(identity);
        assert!(
            matches!(err(v), GenesisError::InvalidPublicKey { field } if field == "validators[0].public_key")
        );
        let mut v = json(&dev());
        v["validators"][1]["address"] = v["validators"][0]["address"].clone();
        assert!(
            matches!(err(v), GenesisError::AddressMismatch { field, .. } if field == "validators[1].address")
        );
        let mut v = json(&dev());
        v["validators"][2] = v["validators"][0].clone();
        assert!(
            matches!(err(v), GenesisError::DuplicateValidator { field, .. } if field == "validators[2]")
        );
        let mut v = json(&dev());
        v["validators"][1]["power"] = Value::from(0);
        assert!(
            matches!(err(v), GenesisError::ZeroPower { field } if field == "validators[1].power")
        );
        let mut v = json(&dev());
        v["validators"][1]["power"] = Value::from(u64::MAX / 3);
        assert!(
            matches!(err(v), GenesisError::PowerOverflow { field, .. } if field == "validators[1].power")
        );
        let mut v = json(&dev());
        v["validators"] = Value::Array(vec![]);
        assert!(matches!(err(v), GenesisError::NoValidators { .. }));
    }

    #[test]
    fn account_errors_name_the_account_field() {
        let mut v = json(&dev());
        v["accounts"][3]["address"] = v["accounts"][1]["address"].clone();
        let e = err(v);
        assert!(
            matches!(&e, GenesisError::DuplicateAccount { field, .. } if field == "accounts[3].address")
        );
        assert!(
            e.to_string()
                .starts_with("accounts[3].address: account ldg1"),
            "{e}"
        );
        let mut v = json(&dev());
        v["accounts"][2]["balance"] = Value::from(0);
        assert!(
            matches!(err(v), GenesisError::ZeroBalance { field } if field == "accounts[2].balance")
        );
        let mut v = json(&dev());
        v["accounts"][1]["balance"] = Value::from(u64::MAX);
        assert!(
            matches!(err(v), GenesisError::SupplyOverflow { field } if field == "accounts[1].balance")
        );
        let mut v = json(&dev());
        v["accounts"][0]["address"] = Value::from("ldg1notanaddress");
        assert!(
            matches!(err(v), GenesisError::MalformedAddress { field, .. } if field == "accounts[0].address")
        );
    }

    #[test]
    fn bad_params_are_named() {
        let mut v = json(&dev());
        v["consensus_params"]["max_block_txs"] = Value::from(0);
        let e = err(v);
        assert!(matches!(e, GenesisError::BadParams(_)));
        assert_eq!(
            e.to_string(),
            "consensus_params.max_block_txs must be positive"
        );
    }

    #[test]
    fn borsh_decoding_rejects_unsorted_validators() {
        let mut w = dev().wire();
        w.validators.reverse();
        let bytes = codec::encode(&w);
        assert_eq!(
            codec::decode::<Genesis>(&bytes),
            Err(codec::DecodeError::NonCanonical)
        );
    }
}
