//! `testnet`: start, inspect, disturb and load a local ledger testnet. See the library's docs.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = testnet::cli::Cli::parse();
    match testnet::cli::run(cli) {
        Ok(code) => code,
        // stdout closed early (`testnet status | head`): nothing left to say to anyone.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: "cannot start node 2" alone does not say that the port was taken.
            testnet::errln!("error: {e}");
            for cause in e.chain().skip(1) {
                testnet::errln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
