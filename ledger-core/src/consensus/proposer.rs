//! Proposer selection: smooth weighted round-robin, as a pure function of (height, round).
//!
//! The schedule is one cycle of smooth weighted round-robin (the algorithm behind CometBFT's
//! proposer priority and nginx's upstream balancing) over the validators' powers: every step each
//! validator's credit grows by its power, the one with the most credit (lowest index on a tie) is
//! picked and pays the total power. Over one cycle of `sum(power)` slots each validator gets exactly
//! `power` slots, spread out as evenly as the powers allow; with equal powers it is plain
//! round-robin in validator-set (address) order. Slot `(height + round) mod cycle` proposes, so the
//! next round of a height moves to the next slot, and a crashed proposer costs one round, not a
//! height.
//!
//! Unlike CometBFT the schedule carries no state from height to height, so every node (and a node
//! restarting from any height) computes the same proposer from the validator set alone.
//!
//! The cycle is precomputed once per validator set. To bound it, powers are first divided by their
//! greatest common divisor (exact); if the cycle is still longer than [`MAX_CYCLE_SLOTS`], powers are
//! scaled down proportionally (each validator keeps at least one slot), so shares are then exact to
//! within one slot in `MAX_CYCLE_SLOTS / 2`.

use crate::types::{Address, Height, Round};
use crate::validator::ValidatorSet;

/// Upper bound on the precomputed cycle (4 bytes per slot), unless there are more validators.
pub const MAX_CYCLE_SLOTS: u64 = 1 << 16;

/// The proposer of every (height, round) for one validator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposerSchedule {
    /// Validator index per slot.
    slots: Vec<u32>,
    addresses: Vec<Address>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl ProposerSchedule {
    pub fn new(validators: &ValidatorSet) -> ProposerSchedule {
        let powers: Vec<u64> = validators.validators().iter().map(|v| v.power).collect();
        let g = powers.iter().copied().fold(0, gcd).max(1);
        let mut weights: Vec<u64> = powers.iter().map(|p| p / g).collect();
        let total: u64 = weights.iter().sum();
        if total > MAX_CYCLE_SLOTS {
            let target = u128::from(MAX_CYCLE_SLOTS / 2);
            for w in &mut weights {
                // Fits: target * w < 2^15 * 2^63; the result is at most target.
                *w = ((target * u128::from(*w)) / u128::from(total)).max(1) as u64;
            }
        }
        let total: u64 = weights.iter().sum();
        let mut credit: Vec<i128> = vec![0; weights.len()];
        let mut slots = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0usize;
            for (i, w) in weights.iter().enumerate() {
                credit[i] += i128::from(*w);
                if credit[i] > credit[best] {
                    best = i;
                }
            }
            credit[best] -= i128::from(total);
            // Validator indices fit in u32: a validator set that large would not fit in memory.
            slots.push(best as u32);
        }
        ProposerSchedule {
            slots,
            addresses: validators.validators().iter().map(|v| v.address).collect(),
        }
    }

    /// The proposer of `round` at `height`: the paper's `proposer(h, round)`.
    pub fn proposer(&self, height: Height, round: Round) -> Address {
        let slot = (u128::from(height.0) + u128::from(round.0)) % self.slots.len() as u128;
        self.addresses[self.slots[slot as usize] as usize]
    }

    /// Length of one cycle, in slots.
    pub fn cycle_len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::validator::Validator;

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let k = Keypair::dev("proposer-test", i as u32);
                    Validator {
                        address: k.address(),
                        public_key: k.public(),
                        power: *p,
                    }
                })
                .collect(),
        )
        .expect("valid set")
    }

    /// (power, slots won) per validator, sorted by power.
    fn counts(s: &ProposerSchedule, set: &ValidatorSet, slots: u64) -> Vec<(u64, u64)> {
        let mut c = vec![0u64; set.len()];
        for h in 0..slots {
            let a = s.proposer(Height(h), Round(0));
            c[set.index_of(&a).expect("in set")] += 1;
        }
        let mut out: Vec<(u64, u64)> = set
            .validators()
            .iter()
            .zip(c)
            .map(|(v, n)| (v.power, n))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn equal_powers_rotate_in_set_order() {
        let vs = set(&[5, 5, 5, 5]);
        let s = ProposerSchedule::new(&vs);
        assert_eq!(s.cycle_len(), 4);
        for h in 0..8u64 {
            let expected = vs.validators()[(h % 4) as usize].address;
            assert_eq!(s.proposer(Height(h), Round(0)), expected);
            // The next round is the next validator.
            assert_eq!(
                s.proposer(Height(h), Round(1)),
                vs.validators()[((h + 1) % 4) as usize].address
            );
        }
    }

    #[test]
    fn shares_are_proportional_to_power_and_spread_out() {
        let vs = set(&[1, 2, 3, 10]);
        let s = ProposerSchedule::new(&vs);
        assert_eq!(s.cycle_len(), 16);
        assert_eq!(
            counts(&s, &vs, 16 * 10),
            vec![(1, 10), (2, 20), (3, 30), (10, 100)]
        );
        // Smoothness: 10 slots of 16 for the heavy validator come in runs of at most 3 (plain
        // weighted round-robin would give a run of 7).
        let heavy = vs
            .validators()
            .iter()
            .find(|v| v.power == 10)
            .expect("present")
            .address;
        let mut run = 0;
        for h in 0..32u64 {
            if s.proposer(Height(h), Round(0)) == heavy {
                run += 1;
                assert!(run <= 3, "run of {run} at {h}");
            } else {
                run = 0;
            }
        }
    }

    #[test]
    fn huge_powers_are_reduced_exactly_or_proportionally() {
        let vs = set(&[1_000_000_000, 3_000_000_000]);
        let s = ProposerSchedule::new(&vs);
        assert_eq!(s.cycle_len(), 4);
        let vs = set(&[1_000_000_007, 2_000_000_011, 5]);
        let s = ProposerSchedule::new(&vs);
        assert!(s.cycle_len() as u64 <= MAX_CYCLE_SLOTS);
        let c = counts(&s, &vs, s.cycle_len() as u64);
        assert!(c[0].1 >= 1, "a tiny validator keeps a slot");
        let ratio = c[2].1 as f64 / c[1].1 as f64;
        assert!((ratio - 2.0).abs() < 0.01, "{ratio}");
    }
}
