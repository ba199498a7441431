//! `testnet init`: writes a testnet to be run elsewhere (on several hosts, in Compose, in
//! Kubernetes): one self-contained folder per node and a manifest for the commands that work on
//! remote nodes.
//!
//! ```text
//! <out>/
//!   manifest.json     the chain and every node's role, host, ports (read by status/load/chaos)
//!   genesis.json
//!   node-<i>/
//!     config.json     relative paths: the node resolves them against this folder
//!     genesis.json    a copy, so the folder is all a host (or a container) needs
//!     node_key.json   validators only; owner-only; random unless --dev
//!     data/           with --compose: the node's database, bind-mounted
//!   compose.yaml, .env, monitoring/     with --compose (see [`compose`])
//!   kubernetes/                         with --kubernetes (see [`kubernetes`])
//! ```
//!
//! Each node listens on every interface (or on its host, when that is a loopback address) and
//! knows every other validator as a bootnode.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use ledger_core::genesis::{
    DEV_ACCOUNT_BALANCE, DEV_GENESIS_TIME_MS, DEV_VALIDATOR_POWER, Genesis, GenesisAccount,
};
use ledger_core::units::Token;
use ledger_core::{Amount, ChainId, ConsensusParams, Keypair, TimestampMs, Validator};

use crate::manifest::{MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestNode};
use crate::state::Role;
use crate::{genesis_src, node};

pub mod compose;
pub mod kubernetes;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Number of validators.
    #[arg(short = 'n', long = "validators", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub validators: u32,
    /// Number of full nodes (no key; they follow the chain), after the validators.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub full_nodes: u32,
    /// The folder to write (must not exist).
    #[arg(long, default_value = "testnet-bundle")]
    pub out: PathBuf,
    /// Where each node runs, validators first (IPs or DNS names; a host named twice gets the next
    /// ports).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["starting_ip", "host_pattern"])]
    pub hosts: Vec<String>,
    /// Node i runs at this address + i.
    #[arg(long, conflicts_with = "host_pattern")]
    pub starting_ip: Option<Ipv4Addr>,
    /// Node i's host name: `{i}` replaced by its index, e.g. `node-{i}` (Compose service names) or
    /// `ledger-{i}.ledger` (a Kubernetes StatefulSet behind a headless Service).
    #[arg(long)]
    pub host_pattern: Option<String>,
    /// The libp2p port (the next ones for further nodes on one host).
    #[arg(long, default_value_t = 30333)]
    pub p2p_port: u16,
    /// The HTTP API port (the next ones for further nodes on one host).
    #[arg(long, default_value_t = 8700)]
    pub api_port: u16,
    /// The address the nodes listen on (default: every interface, or the host itself when it is a
    /// loopback address).
    #[arg(long, conflicts_with = "compose")]
    pub listen_ip: Option<IpAddr>,
    /// Give the validators the public dev keys (`Keypair::dev("validator", i)`) instead of fresh
    /// random ones. DEV ONLY: anyone can derive them.
    #[arg(long)]
    pub dev: bool,
    /// The chain id (default: ledger-devnet-1 with --dev, else ledger-testnet-1).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Pre-funded dev accounts (`Keypair::dev("account", i)`): what `testnet load` and the wallet's
    /// dev accounts sign with.
    #[arg(long, default_value_t = genesis_src::DEV_ACCOUNTS, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub accounts: u32,
    /// Write this `empty_block_interval_ms` into the genesis.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub empty_block_interval_ms: Option<u64>,
    /// The nodes' log level or tracing filter.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Also write compose.yaml (one service per node; Prometheus and Grafana in the `monitoring`
    /// profile). Nodes on loopback hosts share the host's network; named hosts (`--host-pattern
    /// node-{i}`) get a bridge network.
    #[arg(long)]
    pub compose: bool,
    /// Also write kubernetes/ (ConfigMap, Secret, StatefulSet); sets `--host-pattern
    /// ledger-{i}.ledger`, the StatefulSet's pod names.
    #[arg(long, conflicts_with_all = ["hosts", "starting_ip", "host_pattern", "compose"])]
    pub kubernetes: bool,
    /// The `ledger-node` binary that writes the keys (default: $LEDGER_NODE_BIN, next to this
    /// binary, then PATH).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let out = crate::state::absolute(&args.out)?;
    if out.exists() {
        bail!(
            "{} exists; choose another --out or remove it (init never overwrites keys)",
            out.display()
        );
    }
    let bin = node::locate_binary(args.node_bin.as_deref())?;
    let nodes = place_nodes(&args)?;
    if args.compose {
        compose::check_hosts(&nodes)?;
    }
    // Write into a new owner-only sibling folder and rename it at the end: a failed init leaves
    // nothing that looks like a bundle. Created, never reused: nobody else's folder is written
    // into or removed.
    let tmp = out.with_file_name(format!(
        ".{}.partial-{}-{}",
        out.file_name()
            .map_or("bundle".into(), |n| n.to_string_lossy()),
        std::process::id(),
        crate::state::now_ms()
    ));
    if let Some(parent) = tmp.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
    }
    let result = write_bundle(&args, &bin, nodes, &tmp);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    print_summary(&manifest, &out);
    Ok(ExitCode::SUCCESS)
}

/// Every node's host and ports, validators first.
fn place_nodes(args: &InitArgs) -> anyhow::Result<Vec<ManifestNode>> {
    let total = (args.validators + args.full_nodes) as usize;
    let hosts: Vec<String> = if !args.hosts.is_empty() {
        let hosts: Vec<String> = args
            .hosts
            .iter()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.len() != total {
            bail!(
                "--hosts names {} hosts for {total} nodes ({} validators + {} full nodes): name one per node, \
                 repeating a host to run several nodes on it",
                hosts.len(),
                args.validators,
                args.full_nodes
            );
        }
        hosts
    } else if let Some(ip) = args.starting_ip {
        let base = u32::from(ip);
        (0..total as u32)
            .map(|i| {
                base.checked_add(i)
                    .map(|a| Ipv4Addr::from(a).to_string())
                    .context("--starting-ip: the addresses run past 255.255.255.255")
            })
            .collect::<anyhow::Result<_>>()?
    } else if let Some(pattern) = args
        .host_pattern
        .as_deref()
        .or(args.kubernetes.then_some(kubernetes::HOST_PATTERN))
    {
        if !pattern.contains("{i}") {
            bail!("--host-pattern `{pattern}` has no `{{i}}` for the node's index");
        }
        (0..total)
            .map(|i| pattern.replace("{i}", &i.to_string()))
            .collect()
    } else {
        vec!["127.0.0.1".to_string(); total]
    };
    let mut nodes = Vec::with_capacity(total);
    for (index, host) in hosts.into_iter().enumerate() {
        if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
            bail!("host `{host}` is neither an IP address nor a DNS name");
        }
        // The nodes before this one on the same host took the ports before these.
        let before = nodes
            .iter()
            .filter(|n: &&ManifestNode| n.host == host)
            .count() as u16;
        let port = |base: u16, what: &str| {
            base.checked_add(before)
                .with_context(|| format!("{what} ports run past 65535 on {host}"))
        };
        let role = if index < args.validators as usize {
            Role::Validator
        } else {
            Role::Full
        };
        nodes.push(ManifestNode {
            name: format!("node-{index}"),
            index,
            role,
            p2p_port: port(args.p2p_port, "p2p")?,
            api_port: port(args.api_port, "API")?,
            host,
            address: None,
            published_api: None,
        });
    }
    let mut ports: Vec<(&str, u16)> = nodes
        .iter()
        .flat_map(|n| [(n.host.as_str(), n.p2p_port), (n.host.as_str(), n.api_port)])
        .collect();
    let count = ports.len();
    ports.sort_unstable();
    ports.dedup();
    if ports.len() != count {
        bail!(
            "the p2p and API port ranges overlap on a host; choose --p2p-port and --api-port further apart"
        );
    }
    Ok(nodes)
}

fn write_bundle(
    args: &InitArgs,
    bin: &Path,
    mut nodes: Vec<ManifestNode>,
    dir: &Path,
) -> anyhow::Result<Manifest> {
    let mut validators = Vec::new();
    for n in nodes.iter_mut().filter(|n| n.role == Role::Validator) {
        let folder = dir.join(&n.name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let dev = args.dev.then_some(n.index as u32);
        let key = node::write_key(bin, dev, &folder.join(NODE_KEY_FILE))?;
        n.address = Some(key.address.to_string());
        validators.push(Validator {
            address: key.address,
            public_key: key.public_key,
            power: DEV_VALIDATOR_POWER,
        });
    }
    let genesis = genesis(args, validators)?;
    let genesis_json = genesis.to_json();
    std::fs::write(dir.join("genesis.json"), &genesis_json).context("cannot write genesis.json")?;
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        chain_id: genesis.chain_id().to_string(),
        genesis_hash: genesis.hash().to_string(),
        dev_keys: args.dev,
        nodes,
    };
    if args.compose && !compose::host_network(&manifest) {
        for n in &mut manifest.nodes {
            n.published_api = Some(format!(
                "http://127.0.0.1:{}",
                compose::published_api_port(n)
            ));
        }
    }
    for n in &manifest.nodes {
        let folder = dir.join(&n.name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        std::fs::write(folder.join("genesis.json"), &genesis_json)
            .with_context(|| format!("cannot write {}/genesis.json", folder.display()))?;
        let config = node_config(args, &manifest, n);
        let text = serde_json::to_string_pretty(&config)? + "\n";
        std::fs::write(folder.join("config.json"), text)
            .with_context(|| format!("cannot write {}/config.json", folder.display()))?;
    }
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(dir.join(MANIFEST_FILE), text).context("cannot write the manifest")?;
    if args.compose {
        for n in &manifest.nodes {
            let data = dir.join(&n.name).join("data");
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create {}", data.display()))?;
        }
        let owner = container_owner(dir)?;
        compose::write(&manifest, dir, owner)?;
    }
    if args.kubernetes {
        kubernetes::write(&manifest, dir)?;
    }
    Ok(manifest)
}

/// Who the containers run as: the owner of the bundle, so they read its owner-only keys and write
/// its data folders. Root hands the bundle to the image's own user instead (containers never run
/// as root).
fn container_owner(dir: &Path) -> anyhow::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if meta.uid() != 0 {
        return Ok((meta.uid(), meta.gid()));
    }
    let id = compose::IMAGE_UID;
    chown_tree(dir, id)?;
    Ok((id, id))
}

fn chown_tree(path: &Path, id: u32) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(path, Some(id), Some(id))
        .with_context(|| format!("cannot hand {} to uid {id}", path.display()))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
        {
            chown_tree(&entry?.path(), id)?;
        }
    }
    Ok(())
}

/// A DNS name: dot-separated labels of letters, digits and `-`, none empty, at most 63 bytes
/// each and 253 in all, not starting or ending with `-`.
fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The validator key's file name in a node folder.
pub const NODE_KEY_FILE: &str = "node_key.json";

fn genesis(args: &InitArgs, validators: Vec<Validator>) -> anyhow::Result<Genesis> {
    let default_id = if args.dev {
        genesis_src::DEV_CHAIN_ID
    } else {
        "ledger-testnet-1"
    };
    let id = args.chain_id.as_deref().unwrap_or(default_id);
    let chain_id = ChainId::new(id).with_context(|| format!("--chain-id `{id}`"))?;
    let mut params = ConsensusParams::default();
    if let Some(ms) = args.empty_block_interval_ms {
        params.empty_block_interval_ms = ms;
    }
    let accounts = (0..args.accounts)
        .map(|i| GenesisAccount {
            address: Keypair::dev("account", i).address(),
            balance: Amount(DEV_ACCOUNT_BALANCE),
        })
        .collect();
    let (time, keys) = if args.dev {
        (DEV_GENESIS_TIME_MS, "Keypair::dev(\"validator\", i)")
    } else {
        (
            crate::state::now_ms(),
            "random, in each validator's node_key.json",
        )
    };
    let description = format!(
        "Testnet written by `testnet init`. Validator keys: {keys}. Funded accounts: \
         Keypair::dev(\"account\", i), DEV ONLY: anyone can derive their keys."
    );
    Genesis::new(
        chain_id,
        TimestampMs(time),
        Some(description),
        params,
        validators,
        accounts,
    )
    .map(|g| g.with_token(Some(Token::dev())))
    .context("the genesis is not valid")
}

/// A node's config: paths relative to its folder, listening where the manifest says others reach it.
fn node_config(args: &InitArgs, manifest: &Manifest, n: &ManifestNode) -> serde_json::Value {
    let listen_ip = args
        .listen_ip
        .unwrap_or_else(|| match n.host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => ip,
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        });
    let ip_kind = if listen_ip.is_ipv4() { "ip4" } else { "ip6" };
    let mut config = serde_json::json!({
        "data_dir": "data",
        "genesis": "genesis.json",
        "log_level": args.log_level,
        "api": {
            "listen_addr": crate::manifest::host_port(&listen_ip.to_string(), n.api_port),
        },
        "p2p": {
            "listen_addr": format!("/{ip_kind}/{listen_ip}/tcp/{}", n.p2p_port),
            "bootnodes": manifest.bootnodes_for(n.index),
        },
    });
    if n.role == Role::Validator {
        config["node_key"] = serde_json::json!(NODE_KEY_FILE);
    }
    config
}

fn print_summary(m: &Manifest, out: &Path) {
    crate::sayln!(
        "wrote {} · chain {} · {} validators, {} full nodes{}",
        out.display(),
        m.chain_id,
        m.validators().count(),
        m.nodes.len() - m.validators().count(),
        if m.dev_keys {
            " · DEV keys (publicly derivable)"
        } else {
            ""
        }
    );
    for n in &m.nodes {
        crate::sayln!(
            "  {:<8} {:<9} api {:<28} p2p {}",
            n.name,
            n.role.to_string(),
            n.api_url(),
            n.p2p_addr()
        );
    }
    if out.join("compose.yaml").is_file() {
        crate::sayln!(
            "compose: cd {} && docker compose up -d   (images: docker build -t ledger .)",
            out.display()
        );
    } else if out.join("kubernetes").is_dir() {
        crate::sayln!("kubernetes: kubectl apply -f {}/kubernetes/", out.display());
    } else {
        crate::sayln!("on each host: ledger-node run --config <folder>/config.json");
    }
    crate::sayln!(
        "then: testnet status --manifest {} · testnet load --manifest {}",
        out.display(),
        out.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> InitArgs {
        let mut argv = vec!["testnet", "init"];
        argv.extend_from_slice(extra);
        let cli = crate::cli::Cli::try_parse_from(argv).expect("parses");
        match cli.command {
            crate::cli::Command::Init(a) => a,
            _ => panic!("not init"),
        }
    }

    #[test]
    fn one_host_gets_consecutive_ports_and_distinct_hosts_the_same_ports() {
        let local = place_nodes(&args(&["-n", "3"])).expect("placed");
        let p2p: Vec<u16> = local.iter().map(|n| n.p2p_port).collect();
        assert_eq!(p2p, vec![30333, 30334, 30335]);
        let spread = place_nodes(&args(&[
            "-n",
            "2",
            "--full-nodes",
            "1",
            "--starting-ip",
            "10.0.0.9",
        ]))
        .expect("placed");
        let hosts: Vec<&str> = spread.iter().map(|n| n.host.as_str()).collect();
        assert_eq!(hosts, vec!["10.0.0.9", "10.0.0.10", "10.0.0.11"]);
        assert!(spread.iter().all(|n| n.api_port == 8700));
        assert_eq!(spread[2].role, Role::Full);
        let named = place_nodes(&args(&["-n", "2", "--host-pattern", "ledger-{i}.ledger"]))
            .expect("placed");
        assert_eq!(named[1].host, "ledger-1.ledger");
        let mixed = place_nodes(&args(&["-n", "3", "--hosts", "a,b,a"])).expect("placed");
        assert_eq!((mixed[2].p2p_port, mixed[2].api_port), (30334, 8701));
    }

    #[test]
    fn wrong_host_counts_patterns_and_overlapping_ports_are_refused() {
        let e = place_nodes(&args(&["-n", "3", "--hosts", "a,b"])).expect_err("2 hosts, 3 nodes");
        assert!(e.to_string().contains("2 hosts for 3 nodes"), "{e}");
        assert!(place_nodes(&args(&["--host-pattern", "ledger"])).is_err());
        let e = place_nodes(&args(&["-n", "3", "--p2p-port", "8699"])).expect_err("overlap");
        assert!(e.to_string().contains("overlap"), "{e}");
    }

    #[test]
    fn configs_listen_where_the_manifest_says_and_know_the_other_validators() {
        let a = args(&["-n", "2", "--full-nodes", "1", "--host-pattern", "node-{i}"]);
        let nodes = place_nodes(&a).expect("placed");
        let m = Manifest {
            version: MANIFEST_VERSION,
            chain_id: "c".into(),
            genesis_hash: "h".into(),
            dev_keys: false,
            nodes,
        };
        let c = node_config(&a, &m, &m.nodes[0]);
        assert_eq!(c["p2p"]["listen_addr"], "/ip4/0.0.0.0/tcp/30333");
        assert_eq!(c["api"]["listen_addr"], "0.0.0.0:8700");
        assert_eq!(
            c["p2p"]["bootnodes"],
            serde_json::json!(["/dns/node-1/tcp/30333"])
        );
        assert_eq!(c["node_key"], NODE_KEY_FILE);
        let full = node_config(&a, &m, &m.nodes[2]);
        assert!(full.get("node_key").is_none(), "a full node has no key");
        let local = args(&["-n", "1"]);
        let lm = Manifest {
            nodes: place_nodes(&local).expect("placed"),
            ..m
        };
        let c = node_config(&local, &lm, &lm.nodes[0]);
        assert_eq!(
            c["api"]["listen_addr"], "127.0.0.1:8700",
            "loopback stays loopback"
        );
    }

    /// Review: on a Compose bridge network node i's API is published on this machine at
    /// `api_port + i` and reached by its host as a network alias. With a host named twice
    /// (`--hosts a,a,b`) node 1 gets 8701 + 1 and node 2 8700 + 2: both 8702, so `docker compose up`
    /// fails ("port is already allocated"), and two services share the alias `a`. With IP hosts
    /// (`--starting-ip 10.0.0.1`, or one loopback host among names) the bootnodes are `/ip4/...`
    /// addresses no container has, and the "aliases" are IP strings. Such a bundle should be
    /// refused (or laid out differently), not written.
    #[test]
    fn compose_bridge_bundles_publish_distinct_ports_and_reach_every_node_by_a_distinct_name() {
        for extra in [
            &["--hosts", "a,a,b"][..],
            &["--starting-ip", "10.0.0.1"][..],
            &["--hosts", "127.0.0.1,b,c"][..],
        ] {
            let mut argv = vec!["-n", "3", "--compose"];
            argv.extend_from_slice(extra);
            let a = args(&argv);
            // `init --compose` checks the hosts after placing them.
            let Ok(nodes) = place_nodes(&a).and_then(|n| compose::check_hosts(&n).map(|()| n))
            else {
                continue; // refused: fine
            };
            let m = Manifest {
                version: MANIFEST_VERSION,
                chain_id: "c".into(),
                genesis_hash: "h".into(),
                dev_keys: false,
                nodes,
            };
            if compose::host_network(&m) {
                continue;
            }
            let mut ports: Vec<u32> = m.nodes.iter().map(compose::published_api_port).collect();
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(
                ports.len(),
                m.nodes.len(),
                "{extra:?}: published API ports collide"
            );
            let mut hosts: Vec<&str> = m.nodes.iter().map(|n| n.host.as_str()).collect();
            hosts.sort_unstable();
            hosts.dedup();
            assert_eq!(
                hosts.len(),
                m.nodes.len(),
                "{extra:?}: services share an alias"
            );
            for n in &m.nodes {
                assert!(
                    n.host.parse::<IpAddr>().is_err(),
                    "{extra:?}: bootnode {} names an address no container has",
                    n.p2p_addr()
                );
            }
        }
    }

    /// Review: a host is accepted unless it holds `/` or a space, so `10.0.0.1:4000` (a user
    /// thinking it sets the port) or a bracketed IPv6 `[fd00::1]` becomes a "DNS name" and the
    /// configs get bootnodes like `/dns/10.0.0.1:4000/tcp/30333` that no node can dial.
    #[test]
    fn hosts_that_are_neither_ip_addresses_nor_dns_names_are_refused() {
        for h in ["10.0.0.1:4000", "[fd00::1]"] {
            assert!(
                place_nodes(&args(&["-n", "1", "--hosts", h])).is_err(),
                "`{h}` was accepted as a host"
            );
        }
    }
}
