//! `manifest.json`: what `testnet init` generated (the chain, and every node's role, host, ports and
//! URLs), read by the commands that work on nodes this machine does not run (`status`, `load`,
//! `chaos --manifest`). The nodes themselves never read it: each node folder has all it needs.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::state::Role;

/// Bumped when the file's meaning changes; an older binary refuses a newer file.
pub const MANIFEST_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub chain_id: String,
    /// The genesis hash every node's database is bound to.
    pub genesis_hash: String,
    /// Whether the validators hold the public dev keys (`--dev`) instead of fresh random ones.
    pub dev_keys: bool,
    pub nodes: Vec<ManifestNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestNode {
    /// `node-<index>`: its folder in the bundle, and its name in Compose and Kubernetes.
    pub name: String,
    pub index: usize,
    pub role: Role,
    /// Where the node is reached: an IP address or a DNS name.
    pub host: String,
    pub p2p_port: u16,
    pub api_port: u16,
    /// The validator's address (None for a full node).
    pub address: Option<String>,
    /// Where this machine reaches the node's API when that is not its host and port (a Compose
    /// service on a bridge network, published on a port of this machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_api: Option<String>,
}

impl ManifestNode {
    pub fn api_url(&self) -> String {
        self.published_api
            .clone()
            .unwrap_or_else(|| format!("http://{}", host_port(&self.host, self.api_port)))
    }

    /// The libp2p address other nodes dial: `/ip4/`, `/ip6/` or `/dns/` by the host's form.
    pub fn p2p_addr(&self) -> String {
        let kind = match self.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => "ip4",
            Ok(std::net::IpAddr::V6(_)) => "ip6",
            Err(_) => "dns",
        };
        format!("/{kind}/{}/tcp/{}", self.host, self.p2p_port)
    }
}

/// `host:port`, bracketing an IPv6 host.
pub fn host_port(host: &str, port: u16) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

impl Manifest {
    /// Reads a manifest: the file itself, or a bundle folder holding `manifest.json`.
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let file = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the manifest {}", file.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet manifest", file.display()))?;
        if m.version > MANIFEST_VERSION {
            bail!(
                "{} has version {}; this testnet binary reads up to {MANIFEST_VERSION}",
                file.display(),
                m.version
            );
        }
        if m.nodes.is_empty() {
            bail!("{} lists no nodes", file.display());
        }
        Ok(m)
    }

    pub fn validators(&self) -> impl Iterator<Item = &ManifestNode> {
        self.nodes.iter().filter(|n| n.role == Role::Validator)
    }

    /// The bootnodes of node `index`: every validator but itself (so any one of them up is enough
    /// to join, whatever order the hosts start in).
    pub fn bootnodes_for(&self, index: usize) -> Vec<String> {
        self.validators()
            .filter(|n| n.index != index)
            .map(ManifestNode::p2p_addr)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(index: usize, role: Role, host: &str) -> ManifestNode {
        ManifestNode {
            name: format!("node-{index}"),
            index,
            role,
            host: host.into(),
            p2p_port: 30333,
            api_port: 8700,
            address: None,
            published_api: None,
        }
    }

    #[test]
    fn addresses_follow_the_hosts_form() {
        assert_eq!(
            node(0, Role::Validator, "10.0.0.2").p2p_addr(),
            "/ip4/10.0.0.2/tcp/30333"
        );
        assert_eq!(
            node(0, Role::Validator, "ledger-0.ledger").p2p_addr(),
            "/dns/ledger-0.ledger/tcp/30333"
        );
        let v6 = node(0, Role::Validator, "fd00::2");
        assert_eq!(v6.p2p_addr(), "/ip6/fd00::2/tcp/30333");
        assert_eq!(v6.api_url(), "http://[fd00::2]:8700");
    }

    #[test]
    fn bootnodes_are_the_other_validators() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            chain_id: "c".into(),
            genesis_hash: "h".into(),
            dev_keys: false,
            nodes: vec![
                node(0, Role::Validator, "a"),
                node(1, Role::Validator, "b"),
                node(2, Role::Full, "c"),
            ],
        };
        assert_eq!(m.bootnodes_for(0), vec!["/dns/b/tcp/30333"]);
        assert_eq!(
            m.bootnodes_for(2).len(),
            2,
            "a full node knows every validator"
        );
    }
}
