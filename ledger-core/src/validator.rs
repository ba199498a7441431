//! The validator set: who votes and with how much power.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::PublicKey;
use crate::types::Address;

/// One validator: its consensus key and voting power.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Validator {
    pub address: Address,
    pub public_key: PublicKey,
    pub power: u64,
}

/// Why a validator set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("the validator set is empty")]
    Empty,
    #[error("validator {address} has zero power")]
    ZeroPower { address: Address },
    #[error("validator {address} appears twice")]
    Duplicate { address: Address },
    #[error("validator {address}: address does not match its public key")]
    AddressMismatch { address: Address },
    #[error("total voting power overflows")]
    PowerOverflow,
}

/// A validated, address-sorted validator set. Positions in this order are validator indices.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Validates and sorts `validators` by address. Total power must stay below `u64::MAX / 3` so the
    /// two-thirds arithmetic cannot overflow.
    pub fn new(mut validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        validators.sort_by_key(|v| v.address);
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower { address: v.address });
            }
            if Address::from_public_key(&v.public_key) != v.address {
                return Err(ValidatorSetError::AddressMismatch { address: v.address });
            }
            if i > 0 && validators[i - 1].address == v.address {
                return Err(ValidatorSetError::Duplicate { address: v.address });
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= u64::MAX / 3)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        Ok(ValidatorSet {
            validators,
            total_power: total,
        })
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The set's identity: the hash of its canonical encoding. A message verified against a set
    /// (see `consensus::VerifiedMessage`) is trusted only by a machine whose set has this id.
    pub fn id(&self) -> crate::hash::Hash {
        crate::hash::Hash::digest(&crate::codec::encode(self))
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    pub fn index_of(&self, address: &Address) -> Option<usize> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
    }

    pub fn get(&self, address: &Address) -> Option<&Validator> {
        self.index_of(address).map(|i| &self.validators[i])
    }

    pub fn by_index(&self, i: usize) -> Option<&Validator> {
        self.validators.get(i)
    }

    /// More than two thirds of the total power: `3 * power > 2 * total`.
    pub fn is_quorum(&self, power: u64) -> bool {
        (power as u128) * 3 > (self.total_power as u128) * 2
    }

    /// More than one third of the total power (at least one honest validator): `3 * power > total`.
    pub fn is_one_third(&self, power: u64) -> bool {
        (power as u128) * 3 > self.total_power as u128
    }
}

/// A validator set with its [`ValidatorSet::id`] computed once, for code that checks many messages
/// against one set (gossip validation): the id is hashed from the set itself, never given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifiedSet {
    set: ValidatorSet,
    id: crate::hash::Hash,
}

impl IdentifiedSet {
    pub fn new(set: ValidatorSet) -> IdentifiedSet {
        IdentifiedSet { id: set.id(), set }
    }

    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    pub fn id(&self) -> crate::hash::Hash {
        self.id
    }
}

impl<'de> Deserialize<'de> for ValidatorSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            validators: Vec<Validator>,
        }
        let raw = Raw::deserialize(d)?;
        ValidatorSet::new(raw.validators).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn val(i: u32, power: u64) -> Validator {
        let k = Keypair::dev("v", i);
        Validator {
            address: k.address(),
            public_key: k.public(),
            power,
        }
    }

    #[test]
    fn quorum_thresholds_for_four_equal_validators() {
        let set = ValidatorSet::new((0..4).map(|i| val(i, 1)).collect()).expect("valid");
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        assert!(!set.is_one_third(1));
        assert!(set.is_one_third(2));
    }

    #[test]
    fn bad_sets_are_rejected_with_the_validator_named() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let v = val(1, 0);
        assert_eq!(
            ValidatorSet::new(vec![v.clone()]),
            Err(ValidatorSetError::ZeroPower { address: v.address })
        );
        let v = val(2, 1);
        assert_eq!(
            ValidatorSet::new(vec![v.clone(), v.clone()]),
            Err(ValidatorSetError::Duplicate { address: v.address })
        );
        assert_eq!(
            ValidatorSet::new(vec![val(3, u64::MAX / 2), val(4, u64::MAX / 2)]),
            Err(ValidatorSetError::PowerOverflow)
        );
    }
}
