//! The validator key file: JSON `{ "address", "public_key", "seed" }`, owner-only permissions.
//!
//! The address and public key are written for people and tools to read; on load they must match the
//! seed, so a hand-edited or truncated file is refused instead of signing with an unexpected key.

use std::io::Write;
use std::path::{Path, PathBuf};

use ledger_core::{Address, Keypair, PublicKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    address: Address,
    public_key: PublicKey,
    /// The 32-byte ed25519 secret seed, hex.
    seed: String,
}

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
    #[error("key file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("key file {path}: {field} does not match the seed")]
    Mismatch { path: PathBuf, field: &'static str },
}

/// Writes `key` to `path` with mode 0600. Never overwrites an existing file.
pub fn write(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    let file = KeyFile {
        address: key.address(),
        public_key: key.public(),
        seed: hex::encode(key.seed()),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| KeyFileError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            KeyFileError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| KeyFileError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads and checks a key file.
pub fn read(path: &Path) -> Result<Keypair, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |reason: String| KeyFileError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(file.seed.trim(), &mut seed)
        .map_err(|e| malformed(format!("seed must be 64 hex characters: {e}")))?;
    let key = Keypair::from_seed(seed);
    if key.public() != file.public_key {
        return Err(KeyFileError::Mismatch {
            path: path.to_path_buf(),
            field: "public_key",
        });
    }
    if key.address() != file.address {
        return Err(KeyFileError::Mismatch {
            path: path.to_path_buf(),
            field: "address",
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_reads_back_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.json");
        let k = Keypair::dev("validator", 0);
        write(&p, &k).expect("writes");
        assert_eq!(read(&p).expect("reads").public(), k.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(write(&p, &k), Err(KeyFileError::Exists { .. })));
    }

    #[test]
    fn tampered_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.json");
        write(&p, &Keypair::dev("validator", 0)).expect("writes");
        let text = std::fs::read_to_string(&p).expect("read");
        let other = Keypair::dev("validator", 1).public().to_string();
        let own = Keypair::dev("validator", 0).public().to_string();
        std::fs::write(&p, text.replace(&own, &other)).expect("write");
        assert!(matches!(
            read(&p),
            Err(KeyFileError::Mismatch {
                field: "public_key",
                ..
            })
        ));
        std::fs::write(&p, "{").expect("write");
        assert!(matches!(read(&p), Err(KeyFileError::Malformed { .. })));
    }
}
