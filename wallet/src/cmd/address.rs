//! `wallet address [--key <FILE> | --dev <I>]`: the address of a key. Needs no node.

use std::io::{self, Write};

use ledger_core::{Address, PublicKey};
use serde::Serialize;

use crate::cli::{Ctx, KeyArgs};
use crate::error::Error;
use crate::output::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Serialize)]
struct AddressReport {
    address: Address,
    public_key: PublicKey,
    key: String,
}

impl Report for AddressReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{}", self.address)
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let source = self.key.source()?;
        let key = source.load()?;
        ctx.out.result(&AddressReport {
            address: key.address(),
            public_key: key.public(),
            key: source.describe(),
        });
        Ok(())
    }
}
