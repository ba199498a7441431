//! The command line: global options, the subcommands (one module each under [`crate::cmd`]) and
//! the flags that choose a key.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::args::{self, NodeUrl};
use crate::client::NodeClient;
use crate::error::Error;
use crate::keys::{self, KeyError, KeySource};
use crate::output::Output;
use crate::trust::{self, GENESIS_ENV, GenesisArg};
use crate::verify::Verifier;
use crate::{cmd, discover};

/// The node the wallet talks to when neither `--node` nor `LEDGER_NODE` says and no running local
/// testnet is found ([`crate::discover`]).
pub const DEFAULT_NODE_URL: &str = "http://127.0.0.1:8700";
/// The environment variable for `--node`.
pub const NODE_ENV: &str = "LEDGER_NODE";

const AFTER_HELP: &str = "\
Keys:
  Commands that sign or need your address use --key <FILE>, or by default
  $WALLET_HOME/key.json (else ~/.ledger-wallet/key.json), created by 'wallet keygen'.
  --dev <I> uses pre-funded account I of the default genesis instead: DEV ONLY, its key is public.

Verification:
  balance, tx and transfer --wait check what the node says against the validators of the
  chain the wallet trusts: a balance or a final transaction counts only with a proof under a
  header that validators holding more than 2/3 of the power signed. The chain trusted is, first
  match wins: --genesis <FILE|HASH> (or LEDGER_GENESIS); the genesis pinned by 'wallet trust'
  (in $WALLET_HOME/wallet.json, else ~/.ledger-wallet/wallet.json); the genesis.json of the
  local testnet the node was found in; the built-in dev chain (ledger-devnet-1).
  Human output says \"verified: signed by N of M validators at height H\"; --json says
  \"verified\": true|false. --no-verify believes the node.

Output:
  Results go to stdout (with --json: exactly one JSON object, also on failure, as {\"error\": {...}}).
  Progress, notes and the one-line error message go to stderr.

Exit codes:
  0  success
  1  the transaction was rejected, or the command failed (node error, timeout, not found)
  2  usage or input error (bad argument, address, amount or key file); nothing was sent
  3  the node could not be reached
  4  the transaction was dropped from the mempool (evicted, replaced or expired):
     it will not be applied; sending it again may succeed
  5  the node's answer failed verification: the validators did not sign it, or the
     node is of another chain than the one the wallet trusts";

/// Wallet of the ledger: keys, balances, transfers signed locally and followed to finality.
#[derive(Debug, Parser)]
#[command(name = "wallet", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The node's HTTP API [default: a node of the running local testnet (./.testnet, or the one
    /// `testnet up` started last), else http://127.0.0.1:8700]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = NODE_ENV,
        value_parser = args::node_url
    )]
    pub node: Option<NodeUrl>,

    /// Print exactly one JSON object on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Give up on a single HTTP request to the node after this many seconds
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub request_timeout: u64,

    /// The chain to trust: its genesis.json, or its genesis hash (64 hex digits; the genesis then
    /// comes from the node and must hash to it) [env: LEDGER_GENESIS] [default: the genesis pinned
    /// by 'wallet trust', else the local testnet's, else the built-in dev chain]
    #[arg(long, global = true, value_name = "FILE|HASH", value_parser = trust::genesis_arg)]
    pub genesis: Option<GenesisArg>,

    /// Believe the node: skip checking its answers against the validators' signatures, and use
    /// the plain endpoints
    #[arg(long, global = true, conflicts_with = "genesis")]
    pub no_verify: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new random key and write it to a key file readable only by you
    Keygen(cmd::keygen::Args),
    /// Print the address of a key
    Address(cmd::address::Args),
    /// Show an account's balance and nonce (your own unless an address is given)
    Balance(cmd::balance::Args),
    /// Sign a transfer locally and submit it; with --wait, follow it until it is final
    Transfer(cmd::transfer::Args),
    /// Show a transaction's status and content
    Tx(cmd::tx::Args),
    /// Pin the chain the wallet trusts: the genesis given with --genesis, else the node's
    ///
    /// Without --genesis, the genesis the node serves is pinned after its hash and chain id are
    /// shown: compare them with what the chain's operators publish.
    Trust(cmd::trust::Args),
}

/// What every command gets: where to print, how to reach the node, and what to trust.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub out: &'a Output,
    /// `--node` / `LEDGER_NODE`, if given.
    node: Option<NodeUrl>,
    /// The node chosen on first use (given, discovered, or the default), said once on stderr.
    chosen: OnceCell<Chosen>,
    request_timeout: Duration,
    /// `--genesis`, if given.
    genesis: Option<GenesisArg>,
    no_verify: bool,
}

/// The node in use, and the local testnet it was discovered in (if it was).
#[derive(Debug, Clone)]
struct Chosen {
    url: NodeUrl,
    testnet_dir: Option<PathBuf>,
}

impl Ctx<'_> {
    /// A client of the node. Commands that need no node never make one, so they never probe for
    /// a testnet either.
    pub fn client(&self) -> NodeClient {
        let chosen = self.chosen.get_or_init(|| self.choose_node());
        NodeClient::new(chosen.url.clone(), self.request_timeout)
    }

    /// `--genesis`, if given.
    pub fn genesis_flag(&self) -> Option<&GenesisArg> {
        self.genesis.as_ref()
    }

    /// The checker of the node's answers, settled against the node's status ([`Verifier`]);
    /// `None` with `--no-verify`.
    pub fn verifier(&self, client: &NodeClient) -> Result<Option<Verifier>, Error> {
        if self.no_verify {
            return Ok(None);
        }
        let root = trust::resolve(&trust::Inputs {
            flag: self.genesis.clone(),
            env: std::env::var_os(GENESIS_ENV),
            settings: trust::settings_path().ok(),
            testnet_dir: self.chosen.get().and_then(|c| c.testnet_dir.clone()),
        })?;
        let status = client.status()?;
        Verifier::connect(client, root, &status).map(Some)
    }

    fn choose_node(&self) -> Chosen {
        if let Some(url) = &self.node {
            return Chosen {
                url: url.clone(),
                testnet_dir: None,
            };
        }
        match discover::local_testnet() {
            Some(found) => {
                self.out.note(&format!(
                    "using node {} (node {} of the testnet in {}; --node or {NODE_ENV} picks another)",
                    found.url,
                    found.index,
                    found.testnet_dir.display()
                ));
                Chosen {
                    url: found.url,
                    testnet_dir: Some(found.testnet_dir),
                }
            }
            None => Chosen {
                // The constant is a valid URL (a unit test parses it).
                url: DEFAULT_NODE_URL
                    .parse()
                    .unwrap_or_else(|_| unreachable!("DEFAULT_NODE_URL parses")),
                testnet_dir: None,
            },
        }
    }
}

impl Cli {
    pub fn run(self, out: &Output) -> Result<(), Error> {
        let ctx = Ctx {
            out,
            node: self.node,
            chosen: OnceCell::new(),
            request_timeout: Duration::from_secs(self.request_timeout),
            genesis: self.genesis,
            no_verify: self.no_verify,
        };
        match self.command {
            Command::Keygen(a) => a.run(&ctx),
            Command::Address(a) => a.run(&ctx),
            Command::Balance(a) => a.run(&ctx),
            Command::Transfer(a) => a.run(&ctx),
            Command::Tx(a) => a.run(&ctx),
            Command::Trust(a) => a.run(&ctx),
        }
    }
}

/// Which key to use: `--key <FILE>`, `--dev <I>`, or the default key file.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Key file [default: $WALLET_HOME/key.json, else ~/.ledger-wallet/key.json]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// DEV ONLY: use pre-funded account I of the default genesis (0..16) instead of a key file.
    /// Its key is derived from public data, so anyone can spend from it: never use it for real funds
    #[arg(long, value_name = "I", conflicts_with = "key")]
    pub dev: Option<u32>,
}

impl KeyArgs {
    pub fn source(&self) -> Result<KeySource, KeyError> {
        match (&self.key, self.dev) {
            (_, Some(i)) => Ok(KeySource::Dev(i)),
            (Some(path), None) => Ok(KeySource::File(path.clone())),
            (None, None) => keys::default_key_path().map(KeySource::File),
        }
    }
}

/// Whether `--json` is among the arguments, for reporting an argument error before clap has parsed
/// them (arguments after `--` are values, not flags).
pub fn json_requested(args: impl IntoIterator<Item = OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::AmountArg;
    use ledger_core::{Amount, Hash, Keypair};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wallet").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn transfer_arguments_become_typed_values() {
        let to = Keypair::dev("account", 2).address();
        let cli = parse(&[
            "transfer",
            "--to",
            &to.to_string(),
            "--amount",
            "1_000",
            "--fee",
            "0",
            "--nonce",
            "7",
            "--memo",
            "rent",
            "--wait",
            "--timeout",
            "5",
            "--dev",
            "3",
            "--node",
            "localhost:9000",
            "--json",
        ])
        .expect("parses");
        assert!(cli.json);
        assert_eq!(
            cli.node.map(|n| n.to_string()).as_deref(),
            Some("http://localhost:9000")
        );
        let Command::Transfer(t) = cli.command else {
            panic!("not a transfer: {:?}", cli.command);
        };
        assert_eq!(t.to, to);
        assert_eq!(t.amount, AmountArg::Base(Amount(1000)));
        assert_eq!(t.fee, AmountArg::Base(Amount(0)));
        assert_eq!(t.nonce, Some(7));
        assert_eq!(t.memo.map(|m| m.0), Some(b"rent".to_vec()));
        assert!(t.wait);
        assert_eq!(t.timeout, 5);
        assert_eq!(t.key.source().expect("dev key"), KeySource::Dev(3));
    }

    #[test]
    fn amounts_are_base_units_or_display_units_with_a_symbol() {
        let to = Keypair::dev("account", 2).address().to_string();
        let amount = |a: &str| -> Result<AmountArg, clap::Error> {
            let cli = parse(&["transfer", "--to", &to, "--amount", a, "--dev", "0"])?;
            match cli.command {
                Command::Transfer(t) => Ok(t.amount),
                other => panic!("not a transfer: {other:?}"),
            }
        };
        assert_eq!(amount("1_500").ok(), Some(AmountArg::Base(Amount(1500))));
        assert_eq!(
            amount("1.5LDG").ok(),
            Some(AmountArg::Display("1.5LDG".into()))
        );
        assert_eq!(
            amount("2 ldg").ok(),
            Some(AmountArg::Display("2 ldg".into()))
        );
        // A decimal without a unit would be a guess between base and display units.
        for bad in ["1.5", "0", "LDG", "-3", "1e6"] {
            assert_eq!(
                amount(bad).map_err(|e| e.exit_code()).err(),
                Some(2),
                "{bad}"
            );
        }
        let t = ledger_core::units::Token::dev();
        assert_eq!(
            AmountArg::Display("1.5LDG".into()).resolve(Some(&t)),
            Ok(Amount(1_500_000))
        );
        assert!(AmountArg::Display("1.5LDG".into()).resolve(None).is_err());
        assert!(
            AmountArg::Display("1.5BTC".into())
                .resolve(Some(&t))
                .is_err()
        );
    }

    #[test]
    fn transfer_defaults() {
        let to = Keypair::dev("account", 2).address().to_string();
        let cli =
            parse(&["transfer", "--to", &to, "--amount", "5", "--key", "/k.json"]).expect("parses");
        let Command::Transfer(t) = cli.command else {
            panic!("not a transfer");
        };
        assert_eq!(t.fee, AmountArg::Base(Amount(1)));
        assert_eq!(t.nonce, None);
        assert!(!t.wait);
        assert_eq!(
            t.key.source().expect("file"),
            KeySource::File("/k.json".into())
        );
    }

    #[test]
    fn bad_values_are_refused_at_parsing() {
        let to = Keypair::dev("account", 2).address().to_string();
        for bad in [
            vec!["transfer", "--to", &to, "--amount", "1.5", "--dev", "0"],
            vec!["transfer", "--to", &to, "--amount", "0", "--dev", "0"],
            vec![
                "transfer", "--to", "ldg1qqqq", "--amount", "5", "--dev", "0",
            ],
            vec![
                "transfer", "--to", &to, "--amount", "5", "--dev", "0", "--key", "k",
            ],
            vec!["transfer", "--to", &to, "--amount", "5", "--timeout", "3"],
            vec!["tx", "nothex"],
            vec!["--node", "https://x:1", "tx", &"0".repeat(64)],
            vec!["balance", &to, "--dev", "1"],
        ] {
            let e = parse(&bad).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn other_commands_parse() {
        let h = Hash::digest(b"x");
        let cli = parse(&["tx", &h.to_hex()]).expect("parses");
        assert!(matches!(cli.command, Command::Tx(ref t) if t.hash == h));
        if std::env::var_os(NODE_ENV).is_none() {
            // No --node: the node is chosen on first use (a local testnet, else the default).
            assert_eq!(cli.node, None);
        }
        assert!(
            DEFAULT_NODE_URL.parse::<NodeUrl>().is_ok(),
            "the fallback URL parses"
        );

        let cli = parse(&["keygen", "--out", "/tmp/k.json", "--force"]).expect("parses");
        assert!(matches!(cli.command, Command::Keygen(ref k) if k.force));

        let cli = parse(&["address", "--dev", "15"]).expect("parses");
        assert!(matches!(cli.command, Command::Address(_)));

        let cli = parse(&["--json", "balance"]).expect("parses");
        assert!(cli.json);
    }

    #[test]
    fn genesis_is_a_hash_or_a_file_and_excludes_no_verify() {
        let h = Hash::digest(b"genesis");
        let cli = parse(&["balance", "--genesis", &h.to_hex()]).expect("parses");
        assert_eq!(cli.genesis, Some(GenesisArg::Hash(h)));
        assert!(!cli.no_verify);
        let cli = parse(&["--genesis", "./g.json", "trust"]).expect("parses");
        assert_eq!(cli.genesis, Some(GenesisArg::File("./g.json".into())));
        assert!(matches!(cli.command, Command::Trust(_)));
        let cli = parse(&["tx", &h.to_hex(), "--no-verify"]).expect("parses");
        assert!(cli.no_verify);
        for bad in [
            vec!["--genesis", "", "balance"],
            vec!["--genesis", "g.json", "--no-verify", "balance"],
        ] {
            let e = parse(&bad).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn json_flag_is_seen_before_parsing() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(json_requested(os(&["wallet", "tx", "--json"])));
        assert!(!json_requested(os(&["wallet", "tx", "--", "--json"])));
        assert!(!json_requested(os(&["wallet", "tx"])));
    }
}
