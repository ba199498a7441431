//! `ledger-node`: see `ledger-node --help`. All the work is in the `node` library's `cli` module.

fn main() -> std::process::ExitCode {
    node::cli::main()
}
