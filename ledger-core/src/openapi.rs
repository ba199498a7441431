//! OpenAPI schemas of the JSON forms (feature `openapi`, enabled by the node, which serves the
//! document at `/v1/openapi.json`).
//!
//! The structs derive their schemas next to their serde attributes; the types with a text form of
//! their own (hashes, keys, addresses, ...) and the integers wider than OpenAPI's `int64` get theirs
//! here, written from their parsers so a client generated from the document sends only what the
//! node accepts: every hex field has its exact length and alphabet, an address its bech32m alphabet
//! and the custom format `ldg-address` (a client cannot check a checksum with a pattern), every
//! `u64` the full range `0..=2^64-1` (the node accepts it, `int64` would stop at `2^63-1`).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::crypto::{PublicKey, Signature};
use crate::hash::Hash;
use crate::types::{Address, Amount, ChainId, Height, Nonce, Round, TimestampMs};

/// The text pattern of [`Hash`], [`PublicKey`] and [`Signature`]: `bytes` bytes in hex, either
/// case, with an optional `0x` (what their `FromStr` accepts).
pub fn hex_pattern(bytes: usize) -> String {
    format!("^(0x)?[0-9a-fA-F]{{{}}}$", 2 * bytes)
}

/// An address's text form: `ldg1` and 38 bech32 characters, all lower or all upper case. The
/// pattern cannot check the checksum; the format `ldg-address` says a client must.
pub const ADDRESS_PATTERN: &str = "^(ldg1[02-9ac-hj-np-z]{38}|LDG1[02-9AC-HJ-NP-Z]{38})$";
/// The custom format of an address string.
pub const ADDRESS_FORMAT: &str = "ldg-address";

fn string(pattern: String, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

fn unsigned(max: u64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0u64))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

macro_rules! schema {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

schema!(
    Hash,
    "Hash",
    string(
        hex_pattern(32),
        "SHA-256 digest: 64 hex characters (answers use lower case, requests may use either and a 0x prefix)"
    )
    .into()
);
schema!(
    PublicKey,
    "PublicKey",
    string(hex_pattern(32), "ed25519 public key: 64 hex characters").into()
);
schema!(
    Signature,
    "Signature",
    string(hex_pattern(64), "ed25519 signature: 128 hex characters").into()
);
schema!(
    Address,
    "Address",
    string(
        ADDRESS_PATTERN.to_owned(),
        "Account address: bech32m with the prefix `ldg`, 42 characters (see docs/WIRE.md)"
    )
    .format(Some(SchemaFormat::Custom(ADDRESS_FORMAT.to_owned())))
    .into()
);
schema!(
    ChainId,
    "ChainId",
    string(
        format!("^[a-z0-9._-]{{1,{}}}$", ChainId::MAX_LEN),
        "Chain id: 1 to 64 of a-z, 0-9, '.', '_', '-'"
    )
    .into()
);
schema!(
    Amount,
    "Amount",
    unsigned(u64::MAX, "An amount in integer base units (0 to 2^64-1)")
);
schema!(
    Nonce,
    "Nonce",
    unsigned(u64::MAX, "An account's transaction counter")
);
schema!(
    Height,
    "Height",
    unsigned(
        u64::MAX,
        "Block height: 0 is the genesis state, the first block is 1"
    )
);
schema!(
    TimestampMs,
    "TimestampMs",
    unsigned(u64::MAX, "Milliseconds since the Unix epoch")
);
schema!(
    Round,
    "Round",
    unsigned(u64::from(u32::MAX), "Consensus round within a height")
);

schema!(
    crate::api::TxCursor,
    "TxCursor",
    string(
        "^[0-9]{1,19}-[0-9]{1,9}$".to_owned(),
        "Page cursor `<height>-<index>`: the `next` of the previous page"
    )
    .into()
);

/// A memo's JSON form: its bytes in hex.
pub fn memo_schema() -> ObjectBuilder {
    string(
        "^([0-9a-fA-F]{2})*$".to_owned(),
        "Free bytes in hex (no 0x), at most 256 bytes",
    )
    .max_length(Some(2 * crate::tx::MAX_MEMO_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    #[test]
    fn the_text_forms_the_node_writes_fit_their_declared_patterns() {
        // The API contract test (schemathesis against a real node) checks every answer against the
        // document; this pins the forms themselves.
        let k = Keypair::dev("account", 0);
        let address = k.address().to_string();
        assert_eq!(address.len(), 42, "{address}");
        assert!(address.starts_with("ldg1"));
        assert!(
            address[4..]
                .bytes()
                .all(|b| b"qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(&b))
        );
        assert_eq!(Hash::digest(b"x").to_string().len(), 64);
        assert_eq!(k.public().to_string().len(), 64);
        assert_eq!(address.to_uppercase().parse::<Address>(), Ok(k.address()));
        assert_eq!(hex_pattern(32), "^(0x)?[0-9a-fA-F]{64}$");
    }

    /// Found in review: the document is meant to state what the parsers accept. Strings the
    /// node takes as an address or a cursor but that do not fit the declared pattern: a
    /// generated client refuses them, and a negative test (schemathesis `negative_data_rejection`)
    /// that sends one gets 200 instead of 400.
    #[test]
    fn every_accepted_address_and_cursor_text_fits_its_declared_pattern() {
        let address = Keypair::dev("account", 0).address().to_string();
        let address_re = regex_lite(ADDRESS_PATTERN);
        let mut accepted_off_pattern = Vec::new();
        for text in [
            format!(" {address}"),
            format!("{address}\n"),
            format!("\t{address}\u{3000}"),
        ] {
            if text.parse::<Address>().is_ok() && !address_re(&text) {
                accepted_off_pattern.push(format!("address {text:?}"));
            }
        }
        for text in [
            "00000000000000000000001-0",
            "1-0000000000003",
            "18446744073709551615-0",
        ] {
            let fits = {
                let (h, i) = text.split_once('-').unwrap_or(("", ""));
                (1..=19).contains(&h.len()) && (1..=9).contains(&i.len())
            };
            if text.parse::<crate::api::TxCursor>().is_ok() && !fits {
                accepted_off_pattern.push(format!("cursor {text:?}"));
            }
        }
        assert!(
            accepted_off_pattern.is_empty(),
            "accepted by the node, refused by the document: {accepted_off_pattern:?}"
        );
    }

    /// `^(ldg1[..]{38}|LDG1[..]{38})$` as a predicate (no regex crate in ledger-core).
    fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
        assert_eq!(pattern, ADDRESS_PATTERN);
        |s: &str| {
            let alphabet = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
            let lower = s.len() == 42
                && s.starts_with("ldg1")
                && s.as_bytes()[4..].iter().all(|b| alphabet.contains(b));
            let upper = s.len() == 42
                && s.starts_with("LDG1")
                && s.as_bytes()[4..]
                    .iter()
                    .all(|b| alphabet.contains(&b.to_ascii_lowercase()) && !b.is_ascii_lowercase());
            lower || upper
        }
    }
}
