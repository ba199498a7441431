//! The trust root: the genesis of the chain whose validators the wallet believes, and where it came
//! from. [`crate::verify`] checks the node's answers against it.
//!
//! First match wins ([`resolve`]):
//! 1. `--genesis <FILE|HASH>`, else `LEDGER_GENESIS`: a value of 64 hex digits (optionally `0x`) is a
//!    genesis hash, anything else the path of a `genesis.json` (`./<hex>` names a file of that name);
//! 2. the genesis pinned in the wallet's settings, `wallet.json` in the wallet's directory
//!    (`$WALLET_HOME`, else `~/.ledger-wallet`), written by `wallet trust`:
//!    `{"version": 1, "genesis": {"hash": "<64 hex>", "chain_id": "..."}}`;
//! 3. when the node was found through testnet discovery ([`crate::discover`]), that testnet
//!    folder's `genesis.json`;
//! 4. the built-in default: the repository's `genesis.json`, the dev chain `ledger-devnet-1`,
//!    embedded at build time (`wallet/genesis.json` is a link to it, so the crate packages it).
//!
//! A root that is a hash names a genesis without holding it: the wallet fetches `/v1/genesis` from
//! the node and believes it only when it hashes to the pinned value.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ledger_core::genesis::{Genesis, GenesisError};
use ledger_core::{ChainId, Hash};
use serde::{Deserialize, Serialize};

use crate::keys;

/// The environment variable for `--genesis`.
pub const GENESIS_ENV: &str = "LEDGER_GENESIS";
/// The wallet's settings file, in the wallet's directory ([`keys::wallet_dir`]).
pub const SETTINGS_FILE_NAME: &str = "wallet.json";
/// The settings format version this wallet writes and reads.
const SETTINGS_VERSION: u32 = 1;
/// The settings file holds a hash and a chain id; anything much larger is not it.
const MAX_SETTINGS_BYTES: u64 = 64 * 1024;
/// The largest genesis read from a file or from a node, in bytes. A genesis with millions of
/// pre-funded accounts is tens of megabytes; the validators the wallet needs come first.
pub const MAX_GENESIS_BYTES: u64 = 64 * 1024 * 1024;
/// The repository's top-level `genesis.json`: `Genesis::dev("ledger-devnet-1", 4, 16)`.
pub const BUILT_IN_GENESIS_JSON: &str = include_str!("../genesis.json");

/// A `--genesis` / `LEDGER_GENESIS` value, typed at the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenesisArg {
    /// The hash of the genesis to trust; the genesis itself comes from the node.
    Hash(Hash),
    /// A `genesis.json` file.
    File(PathBuf),
}

/// Why a `--genesis` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a genesis.json file or a 64-hex-digit genesis hash, got an empty value")]
pub struct EmptyGenesisArg;

impl GenesisArg {
    /// 64 hex digits (optionally `0x`) are a hash; anything else is a path.
    pub fn parse(s: &OsStr) -> Result<GenesisArg, EmptyGenesisArg> {
        if s.is_empty() {
            return Err(EmptyGenesisArg);
        }
        match s.to_str().map(|t| t.trim().parse::<Hash>()) {
            Some(Ok(h)) => Ok(GenesisArg::Hash(h)),
            _ => Ok(GenesisArg::File(PathBuf::from(s))),
        }
    }
}

impl fmt::Display for GenesisArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenesisArg::Hash(h) => write!(f, "{h}"),
            GenesisArg::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The clap value parser of `--genesis`.
pub fn genesis_arg(s: &str) -> Result<GenesisArg, EmptyGenesisArg> {
    GenesisArg::parse(OsStr::new(s))
}

/// Where the trust root came from, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    Flag(GenesisArg),
    Env(GenesisArg),
    /// The pin in this settings file.
    Pinned(PathBuf),
    /// This `genesis.json` of the discovered local testnet.
    Testnet(PathBuf),
    BuiltIn,
}

impl fmt::Display for TrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustSource::Flag(a) => write!(f, "given by --genesis {a}"),
            TrustSource::Env(a) => write!(f, "given by {GENESIS_ENV}={a}"),
            TrustSource::Pinned(p) => write!(f, "pinned in {} by 'wallet trust'", p.display()),
            TrustSource::Testnet(p) => write!(f, "the local testnet's {}", p.display()),
            TrustSource::BuiltIn => f.write_str("the built-in default dev chain"),
        }
    }
}

/// What the root holds: a genesis, or only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    Genesis(Box<Genesis>),
    /// A hash, and the chain id recorded beside it, if any (for messages only).
    Hash {
        hash: Hash,
        chain_id: Option<ChainId>,
    },
}

/// The genesis (or genesis hash) the wallet trusts, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    pub anchor: Anchor,
    pub source: TrustSource,
}

impl TrustRoot {
    pub fn hash(&self) -> Hash {
        match &self.anchor {
            Anchor::Genesis(g) => g.hash(),
            Anchor::Hash { hash, .. } => *hash,
        }
    }

    /// The chain id, when the root says it.
    pub fn chain_id(&self) -> Option<&ChainId> {
        match &self.anchor {
            Anchor::Genesis(g) => Some(g.chain_id()),
            Anchor::Hash { chain_id, .. } => chain_id.as_ref(),
        }
    }
}

/// Why the trust root could not be read or pinned.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read genesis file {}", .path.display())]
    ReadGenesis {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("genesis file {} is larger than {max} bytes", .path.display(), max = MAX_GENESIS_BYTES)]
    GenesisTooLarge { path: PathBuf },
    #[error("{} is not a valid genesis", .path.display())]
    BadGenesis {
        path: PathBuf,
        #[source]
        source: GenesisError,
    },
    #[error("cannot read the wallet's settings {}", .path.display())]
    ReadSettings {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is not the wallet's settings file: {detail} (fix it, or delete it and run 'wallet trust' again)",
        .path.display()
    )]
    BadSettings { path: PathBuf, detail: String },
    #[error("cannot write the wallet's settings {}", .path.display())]
    WriteSettings {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no place for the wallet's settings: neither {} nor HOME is set",
        keys::WALLET_HOME_ENV
    )]
    NoHome,
    /// A bad `LEDGER_GENESIS`, named as such (it is not on the command line).
    #[error("{GENESIS_ENV} is set to {value}")]
    Env {
        value: GenesisArg,
        #[source]
        source: Box<TrustError>,
    },
    /// The genesis built into this wallet does not parse: a build problem, not the user's.
    #[error("the built-in dev chain genesis does not parse")]
    BuiltIn(#[source] GenesisError),
}

impl TrustError {
    /// True when the user can fix it by changing arguments or files (exit code 2).
    pub fn is_input_error(&self) -> bool {
        match self {
            TrustError::WriteSettings { .. } | TrustError::BuiltIn(_) => false,
            TrustError::Env { source, .. } => source.is_input_error(),
            _ => true,
        }
    }
}

/// What [`resolve`] looks at, gathered by the caller (so the order is testable without a process
/// environment).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--genesis`.
    pub flag: Option<GenesisArg>,
    /// `LEDGER_GENESIS` (empty counts as unset).
    pub env: Option<std::ffi::OsString>,
    /// The settings file, when the wallet has a directory.
    pub settings: Option<PathBuf>,
    /// The folder of the local testnet the node was discovered in.
    pub testnet_dir: Option<PathBuf>,
}

/// The trust root: the first of `--genesis`, `LEDGER_GENESIS`, the pin, the discovered testnet's
/// `genesis.json`, the built-in dev chain.
pub fn resolve(inputs: &Inputs) -> Result<TrustRoot, TrustError> {
    if let Some(arg) = &inputs.flag {
        return from_arg(arg, TrustSource::Flag(arg.clone()));
    }
    if let Some(env) = inputs.env.as_deref().filter(|v| !v.is_empty())
        && let Ok(arg) = GenesisArg::parse(env)
    {
        return from_arg(&arg, TrustSource::Env(arg.clone())).map_err(|e| TrustError::Env {
            value: arg,
            source: Box::new(e),
        });
    }
    if let Some(path) = &inputs.settings
        && let Some(pin) = read_settings(path)?.and_then(|s| s.genesis)
    {
        return Ok(TrustRoot {
            anchor: Anchor::Hash {
                hash: pin.hash,
                chain_id: pin.chain_id,
            },
            source: TrustSource::Pinned(path.clone()),
        });
    }
    if let Some(dir) = &inputs.testnet_dir {
        let path = dir.join("genesis.json");
        if path.is_file() {
            return Ok(TrustRoot {
                anchor: Anchor::Genesis(Box::new(load_genesis_file(&path)?)),
                source: TrustSource::Testnet(path),
            });
        }
    }
    Ok(TrustRoot {
        anchor: Anchor::Genesis(Box::new(built_in_genesis()?)),
        source: TrustSource::BuiltIn,
    })
}

fn from_arg(arg: &GenesisArg, source: TrustSource) -> Result<TrustRoot, TrustError> {
    let anchor = match arg {
        GenesisArg::Hash(hash) => Anchor::Hash {
            hash: *hash,
            chain_id: None,
        },
        GenesisArg::File(path) => Anchor::Genesis(Box::new(load_genesis_file(path)?)),
    };
    Ok(TrustRoot { anchor, source })
}

/// The built-in default: the dev chain of the repository's `genesis.json`.
pub fn built_in_genesis() -> Result<Genesis, TrustError> {
    Genesis::from_json(BUILT_IN_GENESIS_JSON).map_err(TrustError::BuiltIn)
}

/// Reads and validates a `genesis.json`, bounded in size.
pub fn load_genesis_file(path: &Path) -> Result<Genesis, TrustError> {
    let read_err = |source: io::Error| TrustError::ReadGenesis {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut text = String::new();
    let n = file
        .take(MAX_GENESIS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if n as u64 > MAX_GENESIS_BYTES {
        return Err(TrustError::GenesisTooLarge {
            path: path.to_path_buf(),
        });
    }
    Genesis::from_json(&text).map_err(|source| TrustError::BadGenesis {
        path: path.to_path_buf(),
        source,
    })
}

/// The wallet's settings file (`wallet.json` in the wallet's directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub version: u32,
    /// The pinned trust root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<Pin>,
    /// Whatever else the file holds, kept as it is when the pin is rewritten.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A pinned genesis: its hash, and its chain id for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub hash: Hash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<ChainId>,
}

/// `wallet.json` in the wallet's directory.
pub fn settings_path() -> Result<PathBuf, TrustError> {
    keys::wallet_dir()
        .map(|d| d.join(SETTINGS_FILE_NAME))
        .map_err(|_| TrustError::NoHome)
}

/// The settings at `path`; `None` when there is no such file.
pub fn read_settings(path: &Path) -> Result<Option<Settings>, TrustError> {
    let read_err = |source: io::Error| TrustError::ReadSettings {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let mut text = String::new();
    let n = file
        .take(MAX_SETTINGS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => TrustError::BadSettings {
                path: path.to_path_buf(),
                detail: "not UTF-8 text".into(),
            },
            _ => read_err(e),
        })?;
    let bad = |detail: String| TrustError::BadSettings {
        path: path.to_path_buf(),
        detail,
    };
    if n as u64 > MAX_SETTINGS_BYTES {
        return Err(bad(format!("larger than {MAX_SETTINGS_BYTES} bytes")));
    }
    let settings: Settings = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "expected JSON {{\"version\": {SETTINGS_VERSION}, \"genesis\": {{\"hash\", \"chain_id\"}}}} ({e})"
        ))
    })?;
    if settings.version != SETTINGS_VERSION {
        return Err(bad(format!(
            "version {} is not supported (this wallet reads version {SETTINGS_VERSION})",
            settings.version
        )));
    }
    Ok(Some(settings))
}

/// Pins `pin` in the settings at `path`, keeping the rest of the file; creates the wallet's
/// directory (owner-only) when it is missing. Returns the pin it replaced.
pub fn write_pin(path: &Path, pin: &Pin) -> Result<Option<Pin>, TrustError> {
    let mut settings = read_settings(path)?.unwrap_or(Settings {
        version: SETTINGS_VERSION,
        genesis: None,
        other: serde_json::Map::new(),
    });
    let previous = settings.genesis.replace(pin.clone());
    let write_err = |source: io::Error| TrustError::WriteSettings {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        keys::create_private_dir(&dir).map_err(write_err)?;
    }
    let mut text = serde_json::to_string_pretty(&settings).map_err(|e| write_err(e.into()))?;
    text.push('\n');
    // A new file beside the old one, renamed over it: a crash leaves the old pin or the new one.
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| write_err(io::Error::other(e.to_string())))?;
    let tmp = dir.join(format!(".{SETTINGS_FILE_NAME}.{}.tmp", hex::encode(suffix)));
    let result = keys::create_private(&tmp)
        .and_then(|file| keys::write_and_sync(file, text.as_bytes()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_genesis(dir: &Path, name: &str, chain: &str) -> (PathBuf, Genesis) {
        let g = Genesis::dev(chain, 2, 1).expect("dev genesis");
        let path = dir.join(name);
        fs::write(&path, g.to_json()).expect("writes");
        (path, g)
    }

    fn pin_at(path: &Path, chain: &str) -> Hash {
        let hash = Hash::digest(chain.as_bytes());
        write_pin(
            path,
            &Pin {
                hash,
                chain_id: Some(ChainId::new(chain).expect("chain id")),
            },
        )
        .expect("pins");
        hash
    }

    #[test]
    fn the_built_in_genesis_is_the_repositorys_dev_chain() {
        let g = built_in_genesis().expect("parses");
        assert_eq!(
            g,
            Genesis::dev("ledger-devnet-1", 4, 16).expect("dev genesis")
        );
    }

    #[test]
    fn a_64_hex_value_is_a_hash_and_anything_else_a_path() {
        let h = Hash::digest(b"g");
        let p = |s: &str| GenesisArg::parse(OsStr::new(s));
        assert_eq!(p(&h.to_hex()), Ok(GenesisArg::Hash(h)));
        assert_eq!(p(&format!("0x{h}")), Ok(GenesisArg::Hash(h)));
        assert_eq!(
            p("genesis.json"),
            Ok(GenesisArg::File("genesis.json".into()))
        );
        assert_eq!(
            p(&format!("./{h}")),
            Ok(GenesisArg::File(format!("./{h}").into()))
        );
        assert_eq!(p(""), Err(EmptyGenesisArg));
    }

    #[test]
    fn resolution_order_is_flag_env_pin_testnet_built_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (flag_file, flag_g) = write_genesis(dir.path(), "flag.json", "flag-chain");
        let env_hash = Hash::digest(b"env");
        let settings = dir.path().join("home/wallet.json");
        let pinned = pin_at(&settings, "pinned-chain");
        let testnet = dir.path().join("testnet");
        fs::create_dir(&testnet).expect("mkdir");
        let (_, testnet_g) = write_genesis(&testnet, "genesis.json", "testnet-chain");

        let mut inputs = Inputs {
            flag: Some(GenesisArg::File(flag_file.clone())),
            env: Some(env_hash.to_hex().into()),
            settings: Some(settings.clone()),
            testnet_dir: Some(testnet.clone()),
        };
        let root = resolve(&inputs).expect("resolves");
        assert_eq!(root.source, TrustSource::Flag(GenesisArg::File(flag_file)));
        assert_eq!(root.hash(), flag_g.hash());

        inputs.flag = None;
        let root = resolve(&inputs).expect("resolves");
        assert_eq!(root.source, TrustSource::Env(GenesisArg::Hash(env_hash)));
        assert_eq!(
            root.anchor,
            Anchor::Hash {
                hash: env_hash,
                chain_id: None
            }
        );

        // An empty variable counts as unset.
        inputs.env = Some("".into());
        let root = resolve(&inputs).expect("resolves");
        assert_eq!(root.source, TrustSource::Pinned(settings.clone()));
        assert_eq!(root.hash(), pinned);
        assert_eq!(
            root.chain_id().map(|c| c.to_string()).as_deref(),
            Some("pinned-chain")
        );

        inputs.env = None;
        inputs.settings = Some(dir.path().join("no-such/wallet.json"));
        let root = resolve(&inputs).expect("resolves");
        assert_eq!(
            root.source,
            TrustSource::Testnet(testnet.join("genesis.json"))
        );
        assert_eq!(root.hash(), testnet_g.hash());

        // A testnet folder without a genesis.json falls through to the built-in chain.
        inputs.testnet_dir = Some(dir.path().join("home"));
        let root = resolve(&inputs).expect("resolves");
        assert_eq!(root.source, TrustSource::BuiltIn);
        assert_eq!(root.hash(), built_in_genesis().expect("parses").hash());
        assert_eq!(resolve(&Inputs::default()).expect("resolves"), root);
    }

    #[test]
    fn a_settings_file_without_a_pin_falls_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = dir.path().join("wallet.json");
        fs::write(&settings, r#"{"version": 1, "theme": "dark"}"#).expect("writes");
        let inputs = Inputs {
            settings: Some(settings.clone()),
            ..Inputs::default()
        };
        assert_eq!(
            resolve(&inputs).expect("resolves").source,
            TrustSource::BuiltIn
        );
        // Pinning keeps what else the file holds.
        let hash = pin_at(&settings, "c");
        let back = read_settings(&settings).expect("reads").expect("exists");
        assert_eq!(back.genesis.map(|p| p.hash), Some(hash));
        assert_eq!(back.other.get("theme"), Some(&serde_json::json!("dark")));
    }

    #[test]
    fn a_bad_trust_root_is_an_input_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.json");
        let e = resolve(&Inputs {
            flag: Some(GenesisArg::File(missing.clone())),
            ..Inputs::default()
        })
        .expect_err("no such file");
        assert!(e.is_input_error());
        assert_eq!(
            e.to_string(),
            format!("cannot read genesis file {}", missing.display())
        );

        let garbled = dir.path().join("garbled.json");
        fs::write(&garbled, "{\"chain_id\": 5}").expect("writes");
        let e = resolve(&Inputs {
            env: Some(garbled.clone().into_os_string()),
            ..Inputs::default()
        })
        .expect_err("not a genesis");
        assert!(
            matches!(&e, TrustError::Env { source, .. } if matches!(**source, TrustError::BadGenesis { .. })),
            "{e:?}"
        );
        assert!(e.is_input_error());
        assert_eq!(
            crate::error::one_line(&e),
            format!(
                "LEDGER_GENESIS is set to {p}: {p} is not a valid genesis: chain_id: expected a string",
                p = garbled.display()
            )
        );

        let settings = dir.path().join("wallet.json");
        fs::write(
            &settings,
            "{\"version\": 1, \"genesis\": {\"hash\": \"xyz\"}}",
        )
        .expect("writes");
        let e = resolve(&Inputs {
            settings: Some(settings.clone()),
            ..Inputs::default()
        })
        .expect_err("bad settings");
        assert!(
            e.to_string().starts_with(&format!(
                "{} is not the wallet's settings file",
                settings.display()
            )),
            "{e}"
        );
        assert!(e.is_input_error());
    }

    #[test]
    fn a_pin_replaces_the_previous_one_and_says_which() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = dir.path().join("new-dir/wallet.json");
        let first = pin_at(&settings, "one");
        let previous = write_pin(
            &settings,
            &Pin {
                hash: Hash::digest(b"two"),
                chain_id: None,
            },
        )
        .expect("pins");
        assert_eq!(previous.map(|p| p.hash), Some(first));
        let text = fs::read_to_string(&settings).expect("reads");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["genesis"]["hash"], Hash::digest(b"two").to_hex());
        assert!(v["genesis"].get("chain_id").is_none());
    }
}
