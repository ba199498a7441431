//! `ledger-node keygen` and `ledger-node dev-key`.

use std::path::Path;

use anyhow::Context;
use ledger_core::Keypair;

use crate::keyfile;

pub fn keygen(out: &Path) -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    getrandom_seed(&mut seed).context("cannot read random bytes from the OS")?;
    let key = Keypair::from_seed(seed);
    keyfile::write(out, &key)?;
    println!("{}", key.address());
    Ok(())
}

pub fn dev_key(validator: u32, out: &Path) -> anyhow::Result<()> {
    let key = Keypair::dev("validator", validator);
    keyfile::write(out, &key)?;
    eprintln!("DEV ONLY: this key is publicly derivable; never use it for anything of value");
    println!("{}", key.address());
    Ok(())
}

/// Secret seed bytes from the OS's CSPRNG.
fn getrandom_seed(buf: &mut [u8; 32]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
