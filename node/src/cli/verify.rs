//! `ledger-node verify`: replay the stored chain, print a JSON report, fail on any mismatch.

use anyhow::Context;

use super::ConfigArgs;
use crate::node::read_genesis;
use crate::store::Store;
use crate::verify::verify_chain;

pub fn verify(args: &ConfigArgs) -> anyhow::Result<()> {
    let cfg = args.load()?;
    let genesis = read_genesis(&cfg.genesis)?;
    let store = std::sync::Arc::new(
        Store::open(&cfg.data_dir, &cfg.store)
            .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))?,
    );
    let report = verify_chain(&store, &genesis).context("the stored chain does not verify")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
