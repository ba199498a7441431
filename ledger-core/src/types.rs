//! Value types parsed once at the edge: chain id, address, amount, nonce, height, round, time.

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

use crate::crypto::PublicKey;
use crate::hash::Hash;

/// The chain's name: 1 to 64 characters of `[a-z0-9._-]`. Part of every signed payload.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, Serialize)]
#[serde(transparent)]
pub struct ChainId(String);

/// Why a chain id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIdError {
    #[error("chain id must be 1 to {max} characters, got {got}")]
    Length { max: usize, got: usize },
    #[error("chain id may only contain a-z, 0-9, '.', '_' and '-'")]
    Charset,
}

impl ChainId {
    pub const MAX_LEN: usize = 64;

    pub fn new(s: impl Into<String>) -> Result<ChainId, ChainIdError> {
        let s = s.into();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ChainIdError::Length {
                max: Self::MAX_LEN,
                got: s.len(),
            });
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(ChainIdError::Charset);
        }
        Ok(ChainId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl FromStr for ChainId {
    type Err = ChainIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChainId::new(s)
    }
}

impl BorshDeserialize for ChainId {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let s = String::deserialize_reader(reader)?;
        ChainId::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ChainId::new(<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An account address: the first 20 bytes of SHA-256("ledger/v1/address\0" || public key).
///
/// Its text form is bech32m with the human-readable part `ldg` (for example
/// `ldg1qyqszqgpqyqszqgpqyqszqgpqyqszqgp...`): the checksum catches any single mistyped character and
/// any transposition, so a mistyped address is rejected instead of losing funds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 20]);

/// Why a text address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not a valid address (bad characters or checksum): {0}")]
    Checksum(String),
    #[error("address must start with '{expected}1', got '{got}'")]
    WrongPrefix { expected: &'static str, got: String },
    #[error("address must hold {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
    /// The checksum holds but the text is not the one form of its bytes (padding bits or an
    /// extra character past the 20 bytes): one address has exactly one text form.
    #[error("not the canonical text of an address: expected {canonical}")]
    NotCanonical { canonical: String },
}

impl Address {
    pub const HRP: &'static str = "ldg";

    pub fn from_public_key(key: &PublicKey) -> Address {
        let h = Hash::digest_parts(&[b"ledger/v1/address\0", &key.0]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&h.0[..20]);
        Address(out)
    }

    /// The key under which this account sits in the state tree.
    pub fn state_key(&self) -> Hash {
        Hash::digest(&self.0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(Self::HRP);
        match bech32::encode::<Bech32m>(hrp, &self.0) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Exact: white space is not part of an address (one address, one text). Interfaces for
        // people trim what was pasted before they parse.
        let text = s;
        let checked = CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|e| AddressError::Checksum(e.to_string()))?;
        // BIP-350: an all-upper-case string is the same string (the crate refuses mixed case).
        if checked.hrp().to_lowercase() != Self::HRP {
            return Err(AddressError::WrongPrefix {
                expected: Self::HRP,
                got: checked.hrp().to_string(),
            });
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let arr: [u8; 20] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength {
                expected: 20,
                got: bytes.len(),
            })?;
        let address = Address(arr);
        // The crate drops trailing bits whatever their value, so a 33rd data character would
        // give a second text for the same bytes: only the canonical one is an address.
        let canonical = address.to_string();
        if !text.eq_ignore_ascii_case(&canonical) {
            return Err(AddressError::NotCanonical { canonical });
        }
        Ok(address)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

macro_rules! u64_newtype {
    ($(#[$m:meta])* $ty:ident) => {
        $(#[$m])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $ty(pub u64);

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.0)
            }
        }
    };
}

u64_newtype!(
    /// An amount in integer base units. All arithmetic on amounts is checked.
    Amount
);
u64_newtype!(
    /// An account's transaction counter: the next transaction must carry exactly this nonce.
    Nonce
);
u64_newtype!(
    /// A block height. Genesis state is height 0; the first block is height 1.
    Height
);
u64_newtype!(
    /// Milliseconds since the Unix epoch. The core never reads a clock; time comes in as this value.
    TimestampMs
);

impl Amount {
    pub fn checked_add(self, o: Amount) -> Option<Amount> {
        self.0.checked_add(o.0).map(Amount)
    }
    pub fn checked_sub(self, o: Amount) -> Option<Amount> {
        self.0.checked_sub(o.0).map(Amount)
    }
}

impl Nonce {
    pub fn next(self) -> Option<Nonce> {
        self.0.checked_add(1).map(Nonce)
    }
}

impl Height {
    pub fn next(self) -> Height {
        Height(self.0.saturating_add(1))
    }
}

/// A consensus round within a height.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Round(pub u32);

impl fmt::Debug for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Round({})", self.0)
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    #[test]
    fn address_text_round_trips() {
        let a = Keypair::dev("t", 3).address();
        let s = a.to_string();
        assert!(s.starts_with("ldg1"), "{s}");
        assert_eq!(s.parse::<Address>(), Ok(a));
    }

    #[test]
    fn every_single_character_typo_in_an_address_is_rejected() {
        let s = Keypair::dev("t", 4).address().to_string();
        let alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        for i in 4..s.len() {
            for c in alphabet.chars() {
                let mut t: Vec<char> = s.chars().collect();
                if t[i] == c {
                    continue;
                }
                t[i] = c;
                let t: String = t.into_iter().collect();
                assert!(t.parse::<Address>().is_err(), "typo accepted: {t}");
            }
        }
    }

    #[test]
    fn address_with_other_prefix_is_rejected() {
        let hrp = Hrp::parse_unchecked("abc");
        let s = bech32::encode::<Bech32m>(hrp, &[1u8; 20]).expect("encodes");
        assert!(matches!(
            s.parse::<Address>(),
            Err(AddressError::WrongPrefix { .. })
        ));
    }

    #[test]
    fn chain_id_rules() {
        assert!(ChainId::new("ledger-devnet-1").is_ok());
        assert_eq!(
            ChainId::new(""),
            Err(ChainIdError::Length { max: 64, got: 0 })
        );
        assert_eq!(ChainId::new("Upper"), Err(ChainIdError::Charset));
        assert!(ChainId::new("x".repeat(65)).is_err());
    }
}
