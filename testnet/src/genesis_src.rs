//! Which genesis a new testnet runs.
//!
//! - `--genesis <file>`: that file.
//! - otherwise, with 4 validators: the repository's top-level `genesis.json` when run from the
//!   repository root (`./genesis.json`), else the identical built-in value
//!   `Genesis::dev("ledger-devnet-1", 4, 16)` (a ledger-core test keeps the file equal to it);
//! - otherwise `Genesis::dev("ledger-devnet-1", n, 16)`.
//!
//! `--empty-block-interval-ms` rewrites the chosen genesis's consensus parameter (a new genesis hash,
//! so a new chain). The validators must be the DEV validator keys `0..n`: those are the keys the
//! testnet gives its nodes.

use std::path::Path;

use anyhow::{Context, bail};
use ledger_core::genesis::Genesis;
use ledger_core::{ConsensusParams, Keypair};

/// The dev chain's id (the same as the repository's genesis.json).
pub const DEV_CHAIN_ID: &str = "ledger-devnet-1";
/// Pre-funded dev accounts in a generated genesis (as in the repository's genesis.json).
pub const DEV_ACCOUNTS: u32 = 16;

/// The genesis chosen for a new testnet, and where it came from (for the user).
#[derive(Debug, Clone)]
pub struct Chosen {
    pub genesis: Genesis,
    pub source: String,
}

/// Chooses the genesis for `validators` nodes (see the module docs).
pub fn choose(
    explicit: Option<&Path>,
    validators: u32,
    empty_block_interval_ms: Option<u64>,
) -> anyhow::Result<Chosen> {
    let local = Path::new("genesis.json");
    let mut chosen = if let Some(path) = explicit {
        Chosen {
            genesis: read(path)?,
            source: path.display().to_string(),
        }
    } else if validators == 4 && local.is_file() {
        let abs = crate::state::absolute(local)?;
        Chosen {
            genesis: read(local).with_context(|| "pass --genesis <file> to use another genesis")?,
            source: abs.display().to_string(),
        }
    } else {
        Chosen {
            genesis: Genesis::dev(DEV_CHAIN_ID, validators, DEV_ACCOUNTS)
                .context("cannot build the dev genesis")?,
            source: format!(
                "generated: Genesis::dev({DEV_CHAIN_ID:?}, {validators}, {DEV_ACCOUNTS})"
            ),
        }
    };
    if let Some(ms) = empty_block_interval_ms {
        let params = ConsensusParams {
            empty_block_interval_ms: ms,
            ..chosen.genesis.consensus_params().clone()
        };
        chosen.genesis = with_params(&chosen.genesis, params)?;
        chosen
            .source
            .push_str(&format!(", empty_block_interval_ms = {ms}"));
    }
    check_dev_validators(&chosen.genesis, validators)?;
    Ok(chosen)
}

fn read(path: &Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis {}", path.display()))?;
    Genesis::from_json(&text).with_context(|| format!("genesis {} is not valid", path.display()))
}

/// The same genesis with other consensus parameters.
fn with_params(g: &Genesis, params: ConsensusParams) -> anyhow::Result<Genesis> {
    Genesis::new(
        g.chain_id().clone(),
        g.genesis_time_ms(),
        g.description().map(str::to_owned),
        params,
        g.validators().validators().to_vec(),
        g.accounts().to_vec(),
    )
    .context("the changed consensus parameters are not valid")
}

/// Every node `i < validators` runs with dev key `Keypair::dev("validator", i)`: each must be a
/// validator of the genesis, or the node would never vote.
fn check_dev_validators(g: &Genesis, validators: u32) -> anyhow::Result<()> {
    let set = g.validators();
    let missing: Vec<u32> = (0..validators)
        .filter(|&i| set.get(&Keypair::dev("validator", i).address()).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the genesis's validators are not the dev validator keys {missing:?} that the testnet gives \
             its nodes (Keypair::dev(\"validator\", i)); use a genesis made by Genesis::dev or omit --genesis"
        );
    }
    if (validators as usize) < set.len() {
        crate::errln!(
            "note: the genesis has {} validators and only {validators} will run; the chain finalizes only \
             while more than 2/3 of the voting power is up",
            set.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_genesis_has_the_dev_validators_and_the_interval() {
        let c = choose(None, 3, Some(20)).expect("genesis");
        assert_eq!(c.genesis.validators().len(), 3);
        assert_eq!(c.genesis.consensus_params().empty_block_interval_ms, 20);
        assert_eq!(c.genesis.accounts().len(), DEV_ACCOUNTS as usize);
    }

    #[test]
    fn more_nodes_than_genesis_validators_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("g.json");
        std::fs::write(&p, Genesis::dev(DEV_CHAIN_ID, 2, 1).expect("dev").to_json())
            .expect("write");
        let e = choose(Some(&p), 3, None).expect_err("node 2 has no validator slot");
        assert!(e.to_string().contains("[2]"), "{e}");
    }
}
