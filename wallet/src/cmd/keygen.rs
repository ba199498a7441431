//! `wallet keygen [--out <FILE>] [--force]`: a new random key in a new owner-only key file.

use std::io::{self, Write};
use std::path::PathBuf;

use ledger_core::Address;
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::Error;
use crate::keys;
use crate::output::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the key file [default: $WALLET_HOME/key.json, else ~/.ledger-wallet/key.json]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Replace an existing key file (the key in it is lost unless you have a copy)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Serialize)]
struct Keygen {
    address: Address,
    key_file: PathBuf,
}

impl Report for Keygen {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{}", self.address)
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        // The default location's directory is ours to create; a directory given with --out must
        // exist, so a typo in it is reported instead of silently creating a tree.
        let create_dir = self.out.is_none();
        let path = match self.out {
            Some(p) => p,
            None => keys::default_key_path()?,
        };
        let key = keys::generate()?;
        keys::write_key_file(&path, &key, self.force, create_dir)?;
        ctx.out.note(&format!(
            "wrote key file {} (readable only by you). It is the only copy of this key: back it up.",
            path.display()
        ));
        ctx.out.result(&Keygen {
            address: key.address(),
            key_file: path,
        });
        Ok(())
    }
}
