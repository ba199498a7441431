//! The `ledger-node` command line: one module per subcommand; `main` prints the whole error chain
//! and returns an exit code.

mod keys;
mod run;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "ledger-node", version, about = "A minimal BFT ledger node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node (initialises the data dir from the genesis file on first start).
    Run(ConfigArgs),
    /// Print the effective configuration (defaults < file < env < flags) as TOML.
    PrintConfig(ConfigArgs),
    /// Write a new random validator key file (mode 0600).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the DEV-ONLY deterministic key of genesis validator <i> (Keypair::dev("validator", i)).
    /// Anyone can derive it: for local testnets only.
    DevKey {
        #[arg(long)]
        validator: u32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Replay the stored chain from genesis and check every block, certificate, index and root.
    /// The node must not be running on the same data dir.
    Verify(ConfigArgs),
}

/// Where the configuration comes from. Every flag has a `LEDGER_*` environment variable; both
/// override the file.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML (.toml) or JSON (.json) config file.
    #[arg(long, env = "LEDGER_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "LEDGER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "LEDGER_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Validator key file; without one the node runs as a full node.
    #[arg(long, env = "LEDGER_NODE_KEY")]
    pub node_key: Option<PathBuf>,
    #[arg(long, env = "LEDGER_LOG_LEVEL")]
    pub log_level: Option<String>,
    #[arg(long, env = "LEDGER_API_LISTEN_ADDR")]
    pub api_listen_addr: Option<SocketAddr>,
    #[arg(long, env = "LEDGER_API_MAX_BODY_BYTES")]
    pub api_max_body_bytes: Option<usize>,
    #[arg(long, env = "LEDGER_API_RATE_LIMIT_PER_SEC")]
    pub api_rate_limit_per_sec: Option<u32>,
    #[arg(long, env = "LEDGER_API_RATE_LIMIT_BURST")]
    pub api_rate_limit_burst: Option<u32>,
    #[arg(long, env = "LEDGER_API_MAX_BATCH_TXS")]
    pub api_max_batch_txs: Option<usize>,
    #[arg(long, env = "LEDGER_P2P_LISTEN_ADDR")]
    pub p2p_listen_addr: Option<String>,
    /// Comma-separated multiaddrs.
    #[arg(long, env = "LEDGER_BOOTNODES", value_delimiter = ',')]
    pub bootnodes: Option<Vec<String>>,
    #[arg(long, env = "LEDGER_MEMPOOL_MAX_TXS")]
    pub mempool_max_txs: Option<usize>,
    #[arg(long, env = "LEDGER_MEMPOOL_MAX_BYTES")]
    pub mempool_max_bytes: Option<usize>,
    #[arg(long, env = "LEDGER_MEMPOOL_MIN_FEE")]
    pub mempool_min_fee: Option<u64>,
    /// Memory for the state tree's cache, in bytes.
    #[arg(long, env = "LEDGER_STATE_CACHE_BYTES")]
    pub state_cache_bytes: Option<usize>,
    /// How many recent heights' states stay provable; older tree nodes are pruned.
    #[arg(long, env = "LEDGER_STATE_VERSIONS_KEPT")]
    pub state_versions_kept: Option<u64>,
    /// Keep the state of every height (an archive node): nothing is pruned.
    #[arg(long, env = "LEDGER_KEEP_ALL_VERSIONS")]
    pub keep_all_versions: bool,
}

impl ConfigArgs {
    /// Defaults < file < env/flags, validated.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! set {
            ($field:expr, $value:expr) => {
                if let Some(v) = $value.clone() {
                    $field = v;
                }
            };
        }
        set!(c.data_dir, self.data_dir);
        set!(c.genesis, self.genesis);
        if let Some(k) = &self.node_key {
            c.node_key = Some(k.clone());
        }
        set!(c.log_level, self.log_level);
        set!(c.api.listen_addr, self.api_listen_addr);
        set!(c.api.max_body_bytes, self.api_max_body_bytes);
        set!(c.api.rate_limit_per_sec, self.api_rate_limit_per_sec);
        set!(c.api.rate_limit_burst, self.api_rate_limit_burst);
        set!(c.api.max_batch_txs, self.api_max_batch_txs);
        set!(c.p2p.listen_addr, self.p2p_listen_addr);
        set!(c.p2p.bootnodes, self.bootnodes);
        set!(c.mempool.max_txs, self.mempool_max_txs);
        set!(c.mempool.max_bytes, self.mempool_max_bytes);
        set!(c.mempool.min_fee, self.mempool_min_fee);
        set!(c.store.state_cache_bytes, self.state_cache_bytes);
        set!(c.store.state_versions_kept, self.state_versions_kept);
        if self.keep_all_versions {
            c.store.keep_all_versions = true;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Parses the command line, runs the subcommand, prints any error with its causes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::PrintConfig(args) => args.load().map(|c| print!("{}", c.to_toml())),
        Command::Keygen { out } => keys::keygen(&out),
        Command::DevKey { validator, out } => keys::dev_key(validator, &out),
        Command::Verify(args) => verify::verify(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
