//! `wallet trust [--genesis <FILE|HASH>]`: pins the chain the wallet trusts in its settings
//! ([`crate::trust`]).
//!
//! With `--genesis` it pins that genesis (a file's hash, or the hash given) without asking any node.
//! Without it, it pins the genesis the node serves, after showing its hash and chain id: trust on
//! first use, made explicit — compare the hash with the one the chain's operators publish.

use std::io::{self, Write};
use std::path::PathBuf;

use ledger_core::genesis::Genesis;
use ledger_core::{ChainId, Hash};
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::Error;
use crate::output::Report;
use crate::trust::{self, GENESIS_ENV, GenesisArg, Pin};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The pin goes to wallet.json in $WALLET_HOME, else ~/.ledger-wallet. --genesis and \
                  LEDGER_GENESIS still take precedence over it."
)]
pub struct Args {}

/// The pin written; with `--json` the one object printed.
#[derive(Debug, Serialize)]
struct Pinned {
    genesis: Hash,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_id: Option<ChainId>,
    /// The genesis' validator count, when the wallet saw the genesis itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    validators: Option<usize>,
    /// Where the pinned genesis came from: a file, a hash given, or a node.
    from: String,
    settings: PathBuf,
    /// The pin this one replaced, if it was another.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<Hash>,
}

impl Report for Pinned {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "genesis     {}", self.genesis)?;
        if let Some(c) = &self.chain_id {
            writeln!(w, "chain       {c}")?;
        }
        if let Some(n) = self.validators {
            writeln!(w, "validators  {n}")?;
        }
        writeln!(w, "from        {}", self.from)?;
        writeln!(w, "pinned in   {}", self.settings.display())
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let settings = trust::settings_path()?;
        let (pin, validators, from) = match ctx.genesis_flag() {
            Some(GenesisArg::File(path)) => {
                let g = trust::load_genesis_file(path)?;
                (
                    pin_of(&g),
                    Some(g.validators().len()),
                    path.display().to_string(),
                )
            }
            Some(GenesisArg::Hash(hash)) => (
                Pin {
                    hash: *hash,
                    chain_id: None,
                },
                None,
                "the hash given".to_string(),
            ),
            None => {
                let client = ctx.client();
                let text = client.genesis_json()?;
                let url = client.url().to_string();
                let g = Genesis::from_json(&text).map_err(|source| Error::BadNodeGenesis {
                    url: url.clone(),
                    source,
                })?;
                ctx.out.note(&format!(
                    "the node at {url} serves genesis {} of chain {} with {} validators; \
                     the wallet now trusts this chain's validators only: compare the hash with \
                     the one the chain's operators publish",
                    g.hash(),
                    g.chain_id(),
                    g.validators().len()
                ));
                (
                    pin_of(&g),
                    Some(g.validators().len()),
                    format!("node {url}"),
                )
            }
        };
        let previous = trust::write_pin(&settings, &pin)?;
        if std::env::var_os(GENESIS_ENV).is_some_and(|v| !v.is_empty()) {
            ctx.out.note(&format!(
                "note: {GENESIS_ENV} is set, and takes precedence over this pin until unset"
            ));
        }
        ctx.out.result(&Pinned {
            genesis: pin.hash,
            chain_id: pin.chain_id,
            validators,
            from,
            settings,
            replaced: previous.map(|p| p.hash).filter(|h| *h != pin.hash),
        });
        Ok(())
    }
}

fn pin_of(g: &Genesis) -> Pin {
    Pin {
        hash: g.hash(),
        chain_id: Some(g.chain_id().clone()),
    }
}
