//! Which node to talk to when neither `--node` nor `LEDGER_NODE` says: the node of a running local
//! testnet, found the way `testnet` itself finds its folder, else the default URL.
//!
//! Candidates, first match wins: `$TESTNET_DIR`, `./.testnet`, then the folder of the testnet that
//! `testnet up` started last (it writes that folder's path to `$XDG_STATE_HOME/ledger/testnet-dir`,
//! default `~/.local/state/ledger/testnet-dir`). A folder counts when its `state.json` lists a node
//! whose API answers `/v1/status` within a short timeout. The wallet reads only `nodes[].index`
//! and `nodes[].api_addr` of `state.json` (testnet/src/state.rs keeps those names stable).
//!
//! Only loopback addresses count: a local testnet's nodes listen on 127.0.0.1, and a `state.json`
//! in a folder someone else prepared must not send the wallet to a node elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::args::NodeUrl;
use crate::client::NodeClient;

/// How long a candidate node gets to answer: a local API answers in a millisecond or not at all.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A node found in a running local testnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub url: NodeUrl,
    pub index: usize,
    pub testnet_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
struct StateFile {
    nodes: Vec<NodeEntry>,
}

#[derive(Debug, Deserialize)]
struct NodeEntry {
    index: usize,
    api_addr: std::net::SocketAddr,
}

/// The path of the file naming the testnet folder `testnet up` started last.
pub fn pointer_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(base.join("ledger/testnet-dir"))
}

/// The testnet folders to look in, in order, without duplicates.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("TESTNET_DIR").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(".testnet"));
    if let Some(p) = pointer_path()
        && let Ok(text) = std::fs::read_to_string(p)
        && !text.trim().is_empty()
    {
        dirs.push(PathBuf::from(text.trim()));
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    dirs.retain(|d| {
        let key = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    dirs
}

/// The API URLs a testnet folder lists, in node order; none when it holds no readable state.
fn listed_nodes(dir: &Path) -> Vec<(usize, NodeUrl)> {
    let Ok(text) = std::fs::read_to_string(dir.join("state.json")) else {
        return Vec::new();
    };
    let Ok(state) = serde_json::from_str::<StateFile>(&text) else {
        return Vec::new();
    };
    state
        .nodes
        .into_iter()
        .filter(|n| n.api_addr.ip().is_loopback())
        .filter_map(|n| {
            format!("http://{}", n.api_addr)
                .parse::<NodeUrl>()
                .ok()
                .map(|u| (n.index, u))
        })
        .collect()
}

/// The first node of the first candidate testnet that answers.
pub fn local_testnet() -> Option<Found> {
    for dir in candidates() {
        for (index, url) in listed_nodes(&dir) {
            if NodeClient::new(url.clone(), PROBE_TIMEOUT).status().is_ok() {
                let testnet_dir = std::fs::canonicalize(&dir).unwrap_or(dir);
                return Some(Found {
                    url,
                    index,
                    testnet_dir,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_lists_its_nodes_api_urls_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("state.json"),
            r#"{"version":1,"chain_id":"c","nodes":[
                {"index":0,"api_addr":"127.0.0.1:4100","p2p_port":1},
                {"index":1,"api_addr":"127.0.0.1:4101","p2p_port":2}]}"#,
        )
        .expect("write");
        let urls: Vec<(usize, String)> = listed_nodes(dir.path())
            .into_iter()
            .map(|(i, u)| (i, u.to_string()))
            .collect();
        assert_eq!(
            urls,
            vec![
                (0, "http://127.0.0.1:4100".to_string()),
                (1, "http://127.0.0.1:4101".to_string())
            ]
        );
    }

    #[test]
    fn only_loopback_nodes_are_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("state.json"),
            r#"{"nodes":[
                {"index":0,"api_addr":"203.0.113.9:4100"},
                {"index":1,"api_addr":"[::1]:4101"},
                {"index":2,"api_addr":"127.0.0.1:4102"}]}"#,
        )
        .expect("write");
        let listed: Vec<usize> = listed_nodes(dir.path())
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(listed, vec![1, 2]);
    }

    #[test]
    fn a_missing_or_garbled_state_file_lists_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(listed_nodes(dir.path()).is_empty());
        std::fs::write(dir.path().join("state.json"), "{not json").expect("write");
        assert!(listed_nodes(dir.path()).is_empty());
    }
}
