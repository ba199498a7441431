//! `testnet`: start, inspect, disturb and load a local ledger testnet. See the library's docs.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = testnet::cli::Cli::parse();
    match testnet::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The whole chain: "cannot start node 2" alone does not say that the port was taken.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
