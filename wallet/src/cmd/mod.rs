//! One module per subcommand: its arguments (clap derive) and its `run`.

pub mod address;
pub mod balance;
pub mod keygen;
pub mod transfer;
pub mod trust;
pub mod tx;
