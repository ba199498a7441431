//! `testnet init --compose`: the bundle's `compose.yaml`, one service per node, and an optional
//! `monitoring` profile (Prometheus scraping every node, Grafana with the repository's dashboard).
//!
//! Nodes whose hosts are all loopback addresses share the host's network (`network_mode: host`,
//! each on its own ports): the form for one machine, and for machines where Docker may not create
//! bridges. Otherwise every node is a service on a bridge network, reachable by its manifest host
//! name, with its API published on the host at its port + its index.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::manifest::{Manifest, ManifestNode};

/// The repository's Grafana dashboard, provisioned into the `monitoring` profile.
const DASHBOARD: &str = include_str!("../../../../docs/grafana/ledger-node.json");
/// The provisioned data source's uid.
const PROMETHEUS_UID: &str = "ledger-prometheus";
/// The uid and gid the image's user has; the bundle's files must be readable by whoever the
/// containers run as.
pub const IMAGE_UID: u32 = 10001;

/// Whether the nodes run on the host's network (every host a loopback address).
pub fn host_network(m: &Manifest) -> bool {
    m.nodes.iter().all(|n| {
        n.host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    })
}

/// Compose runs either every node on the host's network (loopback hosts) or each on a bridge
/// network under its own DNS name: IP hosts or a name given twice would give containers
/// addresses they do not have, or one alias to two services.
pub fn check_hosts(nodes: &[ManifestNode]) -> anyhow::Result<()> {
    let loopback = |h: &str| {
        h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    };
    if nodes.iter().all(|n| loopback(&n.host)) {
        return Ok(());
    }
    let mut names: Vec<&str> = Vec::new();
    for n in nodes {
        if n.host.parse::<std::net::IpAddr>().is_ok() {
            anyhow::bail!(
                "--compose: host `{}` is an IP address, which no container on the bridge network has; \
                 give loopback hosts (the default) or one DNS name per node (--host-pattern 'node-{{i}}')",
                n.host
            );
        }
        if names.contains(&n.host.as_str()) {
            anyhow::bail!(
                "--compose: host `{}` is named twice; on the bridge network each node is its own service",
                n.host
            );
        }
        names.push(&n.host);
    }
    Ok(())
}

/// Where a node's health check asks: the loopback address it listens on, else 127.0.0.1 (it
/// listens on every interface).
fn health_host(n: &ManifestNode) -> String {
    match n.host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => n.host.clone(),
        _ => "127.0.0.1".into(),
    }
}

/// Writes compose.yaml, .env and monitoring/ into the bundle folder `dir`.
pub fn write(m: &Manifest, dir: &Path, owner: (u32, u32)) -> anyhow::Result<()> {
    std::fs::write(dir.join("compose.yaml"), compose_yaml(m))
        .context("cannot write compose.yaml")?;
    // Compose reads .env from the project folder: the containers run as the owner of the bundle,
    // so they can read its owner-only keys and write the data folders.
    std::fs::write(
        dir.join(".env"),
        format!(
            "# The user the containers run as: the owner of this folder's files.\nLEDGER_UID={}\nLEDGER_GID={}\nLEDGER_IMAGE=ledger:latest\n",
            owner.0, owner.1
        ),
    )
    .context("cannot write .env")?;
    let mon = dir.join("monitoring");
    let prov = mon.join("grafana");
    for sub in ["datasources", "dashboards"] {
        std::fs::create_dir_all(prov.join(sub))
            .with_context(|| format!("cannot create {}", prov.join(sub).display()))?;
    }
    std::fs::write(mon.join("prometheus.yml"), prometheus_yml(m))
        .context("cannot write prometheus.yml")?;
    std::fs::write(
        prov.join("datasources/prometheus.yaml"),
        format!(
            "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    uid: {PROMETHEUS_UID}\n    type: prometheus\n    access: proxy\n    url: http://{}:9090\n    isDefault: true\n",
            if host_network(m) { "127.0.0.1" } else { "prometheus" }
        ),
    )
    .context("cannot write the Grafana data source")?;
    std::fs::write(
        prov.join("dashboards/provider.yaml"),
        "apiVersion: 1\nproviders:\n  - name: ledger\n    type: file\n    options:\n      path: /etc/grafana/provisioning/dashboards\n",
    )
    .context("cannot write the Grafana dashboard provider")?;
    // The dashboard's panels use its `datasource` variable (any Prometheus), which picks the
    // default data source provisioned above.
    std::fs::write(prov.join("dashboards/ledger-node.json"), DASHBOARD)
        .context("cannot write the Grafana dashboard")?;
    Ok(())
}

/// The API port a bridge-networked node is published at on the host.
pub fn published_api_port(n: &ManifestNode) -> u32 {
    u32::from(n.api_port) + n.index as u32
}

fn compose_yaml(m: &Manifest) -> String {
    let host = host_network(m);
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `testnet init --compose`: chain {}, {} nodes. Start: docker compose up -d\n\
         # (with Prometheus and Grafana: docker compose --profile monitoring up -d).",
        m.chain_id,
        m.nodes.len()
    );
    y.push_str("services:\n");
    for n in &m.nodes {
        let _ = writeln!(y, "  {}:", n.name);
        y.push_str("    image: ${LEDGER_IMAGE:-ledger:latest}\n");
        y.push_str("    user: \"${LEDGER_UID:-10001}:${LEDGER_GID:-10001}\"\n");
        y.push_str("    restart: unless-stopped\n");
        y.push_str("    volumes:\n");
        let _ = writeln!(y, "      - ./{}:/etc/ledger:ro", n.name);
        let _ = writeln!(y, "      - ./{}/data:/var/lib/ledger", n.name);
        y.push_str("    environment:\n");
        let _ = writeln!(
            y,
            "      LEDGER_HEALTH_URL: http://{}/v1/status",
            crate::manifest::host_port(&health_host(n), n.api_port)
        );
        if host {
            y.push_str("    network_mode: host\n");
        } else {
            let _ = writeln!(
                y,
                "    ports:\n      - \"127.0.0.1:{}:{}\"",
                published_api_port(n),
                n.api_port
            );
            let _ = writeln!(
                y,
                "    networks:\n      ledger:\n        aliases: [\"{}\"]",
                n.host
            );
        }
    }
    let net = |y: &mut String| {
        if host {
            y.push_str("    network_mode: host\n");
        } else {
            y.push_str("    networks: [ledger]\n");
        }
    };
    y.push_str("  prometheus:\n    image: prom/prometheus:v2.53.0\n    profiles: [monitoring]\n");
    y.push_str(
        "    volumes:\n      - ./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro\n",
    );
    if !host {
        y.push_str("    ports:\n      - \"127.0.0.1:9090:9090\"\n");
    }
    net(&mut y);
    y.push_str("  grafana:\n    image: grafana/grafana-oss:11.1.0\n    profiles: [monitoring]\n");
    y.push_str("    environment:\n      GF_AUTH_ANONYMOUS_ENABLED: \"true\"\n      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer\n");
    y.push_str("    volumes:\n      - ./monitoring/grafana:/etc/grafana/provisioning:ro\n");
    if !host {
        y.push_str("    ports:\n      - \"127.0.0.1:3000:3000\"\n");
    }
    net(&mut y);
    if !host {
        y.push_str("networks:\n  ledger: {}\n");
    }
    y
}

fn prometheus_yml(m: &Manifest) -> String {
    let host = host_network(m);
    let mut y = String::from(
        "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: ledger\n    static_configs:\n",
    );
    for n in &m.nodes {
        let target = if host {
            crate::manifest::host_port(&n.host, n.api_port)
        } else {
            format!("{}:{}", n.name, n.api_port)
        };
        let _ = writeln!(
            y,
            "      - targets: [\"{target}\"]\n        labels: {{node: \"{}\", role: \"{}\"}}",
            n.name, n.role
        );
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::MANIFEST_VERSION;
    use crate::state::Role;

    fn manifest(hosts: &[&str]) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            chain_id: "c".into(),
            genesis_hash: "h".into(),
            dev_keys: true,
            nodes: hosts
                .iter()
                .enumerate()
                .map(|(i, h)| ManifestNode {
                    name: format!("node-{i}"),
                    index: i,
                    role: Role::Validator,
                    host: h.to_string(),
                    p2p_port: 30333 + i as u16,
                    api_port: 8700 + i as u16,
                    address: None,
                    published_api: None,
                })
                .collect(),
        }
    }

    #[test]
    fn loopback_nodes_share_the_host_network_and_named_ones_get_a_bridge() {
        let local = compose_yaml(&manifest(&["127.0.0.1", "127.0.0.1"]));
        assert_eq!(local.matches("network_mode: host").count(), 4, "{local}");
        assert!(!local.contains("ports:"), "{local}");
        let named = compose_yaml(&manifest(&["node-0", "node-1"]));
        assert!(!named.contains("network_mode"), "{named}");
        assert!(named.contains("aliases: [\"node-1\"]"), "{named}");
        assert!(named.contains("\"127.0.0.1:8702:8701\""), "{named}");
        assert!(prometheus_yml(&manifest(&["node-0"])).contains("node-0:8700"));
    }

    #[test]
    fn the_provisioned_dashboard_takes_the_default_prometheus_and_the_containers_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&manifest(&["node-0"]), dir.path(), (1, 2)).expect("written");
        let prov = dir.path().join("monitoring/grafana");
        let d: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(prov.join("dashboards/ledger-node.json")).expect("dashboard"),
        )
        .expect("the dashboard is JSON");
        let vars = d["templating"]["list"].as_array().expect("variables");
        assert!(
            vars.iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "the panels no longer pick any Prometheus: provisioning needs another data source rule"
        );
        let ds = std::fs::read_to_string(prov.join("datasources/prometheus.yaml")).expect("ds");
        assert!(
            ds.contains("isDefault: true") && ds.contains("url: http://prometheus:9090"),
            "{ds}"
        );
        let env = std::fs::read_to_string(dir.path().join(".env")).expect(".env");
        assert!(
            env.contains("LEDGER_UID=1\n") && env.contains("LEDGER_GID=2\n"),
            "{env}"
        );
    }

    /// Review: the health check always asks 127.0.0.1, but a node on another loopback address
    /// (`--hosts 127.0.0.2,...` or `--starting-ip 127.0.0.1`) listens on that address only, and
    /// one on `::1` on IPv6 only: its container is unhealthy, or, with the ports equal, it is
    /// node 0 that answers for every container.
    #[test]
    fn the_health_check_asks_the_address_the_node_listens_on() {
        let y = compose_yaml(&manifest(&["127.0.0.2", "::1"]));
        assert!(
            y.contains("LEDGER_HEALTH_URL: http://127.0.0.2:8700/v1/status"),
            "{y}"
        );
        assert!(
            y.contains("LEDGER_HEALTH_URL: http://[::1]:8701/v1/status"),
            "{y}"
        );
    }

    /// Review: deploy/compose/README.md says node i's API is published on 127.0.0.1:8700+i of
    /// the machine, but `"8700:8700"` publishes it on every interface (and Docker's own firewall
    /// rules bypass the host's, e.g. ufw).
    #[test]
    fn bridge_apis_are_published_on_loopback_as_the_readme_says() {
        let y = compose_yaml(&manifest(&["node-0", "node-1"]));
        assert!(y.contains("\"127.0.0.1:8700:8700\""), "{y}");
        assert!(y.contains("\"127.0.0.1:8702:8701\""), "{y}");
    }
}
