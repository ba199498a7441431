//! The canonical binary encoding: borsh, with two extra guarantees.
//!
//! Everything that is signed, hashed, stored or sent between nodes is encoded with [`encode`] and read
//! back with [`decode`]. Borsh is deterministic (fixed-width little-endian integers, `u32` length
//! prefixes, no maps in our types), and [`decode`] additionally
//! - rejects trailing bytes (borsh's `from_slice`), and
//! - re-encodes the value and rejects the input unless it is byte-for-byte identical, so every value
//!   has exactly one accepted encoding (no alternative bool/option tags, no over-long lengths).
//!
//! Decoding never panics, whatever the input.

use borsh::{BorshDeserialize, BorshSerialize};

/// Why bytes did not decode into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is {got} bytes, the limit is {max}")]
    TooLarge { max: usize, got: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("non-canonical encoding")]
    NonCanonical,
    /// A block (in a proposal, a log entry, ...) whose body is not the one its header commits to.
    #[error("block body does not match its header: {0}")]
    BlockBody(crate::block::BodyError),
}

/// Encodes `value` canonically.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; borsh's io::Result only concerns other writers.
    value
        .serialize(&mut out)
        .expect("borsh serialization into a Vec is infallible");
    out
}

/// Decodes exactly one canonically encoded value from `bytes`.
pub fn decode<T: BorshDeserialize + BorshSerialize>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value: T = borsh::from_slice(bytes).map_err(|e| {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::block::BodyError>())
        {
            Some(body) => DecodeError::BlockBody(body.clone()),
            None => DecodeError::Malformed(e.to_string()),
        }
    })?;
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// [`decode`], after checking that the input is at most `max_bytes` long.
pub fn decode_bounded<T: BorshDeserialize + BorshSerialize>(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            max: max_bytes,
            got: bytes.len(),
        });
    }
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert!(matches!(
            decode::<u64>(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn non_canonical_bool_and_option_tags_are_rejected() {
        assert!(decode::<bool>(&[2]).is_err());
        assert!(decode::<Option<u8>>(&[2, 0]).is_err());
        assert_eq!(decode::<Option<u8>>(&[1, 9]), Ok(Some(9)));
    }

    #[test]
    fn oversized_input_is_rejected_before_decoding() {
        assert_eq!(
            decode_bounded::<Vec<u8>>(&[0; 10], 4),
            Err(DecodeError::TooLarge { max: 4, got: 10 })
        );
    }
}
