//! Where a signing key comes from, and the key file.
//!
//! A key file is a small JSON object holding the 32-byte ed25519 seed in hex and, for a human
//! reading it, the address it belongs to:
//!
//! ```json
//! {"version": 1, "address": "ldg1...", "seed": "<64 hex characters, SECRET>"}
//! ```
//!
//! It is created with mode 0600 from the first byte on (`OpenOptions::mode` on a new file; with
//! `--force` a new file beside it is renamed over the old one, so the old file's mode never applies),
//! and never overwritten without `--force`. Seeds are wiped from memory after use.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ledger_core::{Address, Keypair};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// The key file format version this wallet writes and reads.
const KEY_FILE_VERSION: u32 = 1;
/// A key file is a few hundred bytes; anything much larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;
/// The environment variable naming the wallet's directory (holding `key.json`).
pub const WALLET_HOME_ENV: &str = "WALLET_HOME";
/// The default key file inside the wallet's directory.
const KEY_FILE_NAME: &str = "key.json";
/// The wallet's directory under the home directory when `WALLET_HOME` is not set.
const DEFAULT_DIR_NAME: &str = ".ledger-wallet";
/// The label of the default genesis' pre-funded dev accounts (`Keypair::dev("account", i)`).
pub const DEV_ACCOUNT_LABEL: &str = "account";

/// The key a command signs with or whose address it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// DEV ONLY: account `i` of the default genesis; anyone can derive its key.
    Dev(u32),
}

/// Why a key could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no default key location: neither {WALLET_HOME_ENV} nor HOME is set (pass --key <file> or --dev <i>)"
    )]
    NoHome,
    #[error(
        "no key file at {}: create one with 'wallet keygen', or pass --key <file> or --dev <i>",
        .path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot read key file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a wallet key file: {detail}", .path.display())]
    Malformed { path: PathBuf, detail: String },
    #[error(
        "key file {} is inconsistent: its seed belongs to {derived}, but it names {stored}",
        .path.display()
    )]
    AddressMismatch {
        path: PathBuf,
        stored: Address,
        derived: Address,
    },
    #[error(
        "key file {} already exists; pass --force to replace it (the key in it is then lost)",
        .path.display()
    )]
    Exists { path: PathBuf },
    #[error("cannot create key file {}: directory {} does not exist", .path.display(), .dir.display())]
    NoDir { path: PathBuf, dir: PathBuf },
    #[error("cannot write key file {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot get randomness from the operating system: {0}")]
    Random(getrandom::Error),
}

impl KeyError {
    /// True when the user can fix it by changing the arguments (exit code 2).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, KeyError::Write { .. } | KeyError::Random(_))
    }
}

/// The key file's content.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    /// Optional when reading: a file holding just the seed is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<Address>,
    seed: Zeroizing<String>,
}

/// The wallet's directory: `$WALLET_HOME`, else `~/.ledger-wallet`. It holds the default key file
/// and the wallet's settings (`wallet.json`, [`crate::trust`]).
pub fn wallet_dir() -> Result<PathBuf, KeyError> {
    if let Some(dir) = std::env::var_os(WALLET_HOME_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::home_dir() {
        Some(home) if !home.as_os_str().is_empty() => Ok(home.join(DEFAULT_DIR_NAME)),
        _ => Err(KeyError::NoHome),
    }
}

/// `$WALLET_HOME/key.json`, else `~/.ledger-wallet/key.json`.
pub fn default_key_path() -> Result<PathBuf, KeyError> {
    wallet_dir().map(|d| d.join(KEY_FILE_NAME))
}

impl KeySource {
    /// What a user reads in messages: the file, or "dev account 3".
    pub fn describe(&self) -> String {
        match self {
            KeySource::File(p) => format!("key file {}", p.display()),
            KeySource::Dev(i) => format!("dev account {i} (DEV ONLY)"),
        }
    }

    pub fn load(&self) -> Result<Keypair, KeyError> {
        match self {
            KeySource::Dev(i) => Ok(Keypair::dev(DEV_ACCOUNT_LABEL, *i)),
            KeySource::File(path) => load_file(path),
        }
    }
}

fn load_file(path: &Path) -> Result<Keypair, KeyError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => KeyError::Missing {
            path: path.to_path_buf(),
        },
        _ => KeyError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    warn_if_readable_by_others(path, &file);
    let mut text = Zeroizing::new(String::new());
    let read = io::Read::read_to_string(
        &mut io::Read::take(&file, MAX_KEY_FILE_BYTES + 1),
        &mut text,
    );
    let malformed = |detail: String| KeyError::Malformed {
        path: path.to_path_buf(),
        detail,
    };
    match read {
        Ok(n) if n as u64 > MAX_KEY_FILE_BYTES => {
            return Err(malformed(format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(malformed("not UTF-8 text".into()));
        }
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    // serde_json's message may quote the input; the input holds the secret, so say only where.
    let parsed: KeyFile = serde_json::from_str(&text).map_err(|e| {
        malformed(format!(
            "expected JSON {{\"version\", \"address\", \"seed\"}} (problem at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if parsed.version != KEY_FILE_VERSION {
        return Err(malformed(format!(
            "version {} is not supported (this wallet reads version {KEY_FILE_VERSION})",
            parsed.version
        )));
    }
    let mut seed = [0u8; 32];
    if hex::decode_to_slice(parsed.seed.trim(), &mut seed).is_err() {
        seed.zeroize();
        return Err(malformed("seed must be 64 hex characters".into()));
    }
    let keypair = Keypair::from_seed(seed);
    seed.zeroize();
    if let Some(stored) = parsed.address
        && stored != keypair.address()
    {
        return Err(KeyError::AddressMismatch {
            path: path.to_path_buf(),
            stored,
            derived: keypair.address(),
        });
    }
    Ok(keypair)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, file: &File) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            crate::output::errln!(
                "warning: key file {} can be read by other users (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _file: &File) {}

/// A new random key from the operating system's RNG.
pub fn generate() -> Result<Keypair, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(KeyError::Random)?;
    let keypair = Keypair::from_seed(seed);
    seed.zeroize();
    Ok(keypair)
}

/// Writes `key` to a new key file at `path`, owner-only. Refuses an existing file unless `force`.
/// `create_dir` creates a missing parent directory (mode 0700), for the default location.
pub fn write_key_file(
    path: &Path,
    key: &Keypair,
    force: bool,
    create_dir: bool,
) -> Result<(), KeyError> {
    let write_err = |source: io::Error| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        if !create_dir {
            return Err(KeyError::NoDir {
                path: path.to_path_buf(),
                dir,
            });
        }
        create_private_dir(&dir).map_err(write_err)?;
    }
    let mut seed = key.seed();
    let content = KeyFile {
        version: KEY_FILE_VERSION,
        address: Some(key.address()),
        seed: Zeroizing::new(hex::encode(seed)),
    };
    seed.zeroize();
    let mut text = Zeroizing::new(
        serde_json::to_string_pretty(&content).map_err(|e| write_err(io::Error::other(e)))?,
    );
    text.push('\n');

    if !force {
        return match create_private(path) {
            Ok(file) => write_and_sync(file, text.as_bytes()).map_err(|e| {
                // Leave no half-written key behind.
                let _ = fs::remove_file(path);
                write_err(e)
            }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(KeyError::Exists {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(write_err(e)),
        };
    }
    // Replace atomically: a new private file beside the old one, renamed over it. Writing into the
    // old file instead would keep whatever mode it had, and a crash would leave half a key.
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(KeyError::Random)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| KEY_FILE_NAME.to_string());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(suffix)));
    let result = create_private(&tmp)
        .and_then(|file| write_and_sync(file, text.as_bytes()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // Make the rename itself durable; not every filesystem supports syncing a directory.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub(crate) fn write_and_sync(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// A new file (never an existing one, never through a symlink) that only the owner can read.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_with_the_same_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.json");
        let key = generate().expect("randomness");
        write_key_file(&path, &key, false, false).expect("writes");
        let back = KeySource::File(path.clone()).load().expect("loads");
        assert_eq!(back.address(), key.address());
        let text = fs::read_to_string(&path).expect("reads");
        assert!(text.contains(&key.address().to_string()));
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = generate().expect("randomness");
        let b = generate().expect("randomness");
        assert_ne!(a.public(), b.public());
    }

    #[test]
    fn an_existing_file_is_only_replaced_with_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.json");
        let first = generate().expect("randomness");
        write_key_file(&path, &first, false, false).expect("writes");
        let second = generate().expect("randomness");
        assert!(matches!(
            write_key_file(&path, &second, false, false),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(load_file(&path).expect("loads").address(), first.address());
        write_key_file(&path, &second, true, false).expect("replaces");
        assert_eq!(load_file(&path).expect("loads").address(), second.address());
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).expect("lists").count(), 1);
    }

    #[test]
    fn a_missing_directory_is_named_or_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("k.json");
        let key = generate().expect("randomness");
        assert!(matches!(
            write_key_file(&path, &key, false, false),
            Err(KeyError::NoDir { .. })
        ));
        write_key_file(&path, &key, false, true).expect("creates the directory");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("sub"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn bad_key_files_are_refused_without_echoing_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.json");
        let key = Keypair::dev("t", 1);
        let seed_hex = hex::encode(key.seed());

        fs::write(&path, format!("{{\"version\":1,\"seed\":\"{seed_hex}\"}}")).expect("writes");
        assert_eq!(
            load_file(&path).expect("seed-only file loads").address(),
            key.address()
        );

        fs::write(&path, format!("{{\"version\":1,\"seed\":\"{seed_hex}\",")).expect("writes");
        let msg = load_file(&path).expect_err("truncated").to_string();
        assert!(msg.contains("is not a wallet key file"), "{msg}");
        assert!(!msg.contains(&seed_hex), "secret leaked: {msg}");

        fs::write(&path, "{\"version\":1,\"seed\":\"zz\"}").expect("writes");
        assert!(matches!(load_file(&path), Err(KeyError::Malformed { .. })));

        fs::write(&path, format!("{{\"version\":2,\"seed\":\"{seed_hex}\"}}")).expect("writes");
        assert!(matches!(load_file(&path), Err(KeyError::Malformed { .. })));

        let other = Keypair::dev("t", 2).address();
        fs::write(
            &path,
            format!("{{\"version\":1,\"address\":\"{other}\",\"seed\":\"{seed_hex}\"}}"),
        )
        .expect("writes");
        assert!(matches!(
            load_file(&path),
            Err(KeyError::AddressMismatch { .. })
        ));

        assert!(matches!(
            load_file(&dir.path().join("nope.json")),
            Err(KeyError::Missing { .. })
        ));
    }

    #[test]
    fn dev_keys_are_the_default_genesis_accounts() {
        let k = KeySource::Dev(3).load().expect("dev keys always load");
        assert_eq!(k.address(), Keypair::dev("account", 3).address());
        assert_eq!(KeySource::Dev(3).describe(), "dev account 3 (DEV ONLY)");
    }
}
