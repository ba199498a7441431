//! `testnet init --kubernetes`: the bundle's `kubernetes/` folder, applied with
//! `kubectl apply -f <bundle>/kubernetes/`:
//!
//! - `ledger-config.json`: a ConfigMap with the genesis and each pod's config (`ledger-<i>.json`);
//! - `ledger-keys.json`: a Secret with each validator's key (`ledger-<i>.json`);
//! - `ledger.yaml`: the repository's `deploy/kubernetes/ledger.yaml` (headless Service, API
//!   Service, StatefulSet) with `replicas` set to the number of validators.
//!
//! Pod `ledger-<i>` is node `i`: the StatefulSet's names, resolved through the headless Service
//! `ledger` (`--host-pattern ledger-{i}.ledger`, which `--kubernetes` sets).

use std::path::Path;

use anyhow::{Context, bail};

use super::NODE_KEY_FILE;
use crate::manifest::Manifest;

/// The manifests `testnet init --kubernetes` starts from.
const TEMPLATE: &str = include_str!("../../../../deploy/kubernetes/ledger.yaml");
/// What the template's replica count is written as.
const TEMPLATE_REPLICAS: &str = "\n  replicas: 4\n";
/// The host pattern pods are reached by.
pub const HOST_PATTERN: &str = "ledger-{i}.ledger";

/// Pod `i`'s name.
pub fn pod(index: usize) -> String {
    format!("ledger-{index}")
}

/// Writes `<dir>/kubernetes/`; the node folders (config, genesis, key) must already be in `dir`.
pub fn write(m: &Manifest, dir: &Path) -> anyhow::Result<()> {
    if m.nodes.len() != m.validators().count() {
        bail!("--kubernetes runs validators only (one StatefulSet); leave out --full-nodes");
    }
    let out = dir.join("kubernetes");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let mut config = serde_json::Map::new();
    config.insert(
        "genesis.json".into(),
        read(&dir.join("genesis.json"))?.into(),
    );
    let mut keys = serde_json::Map::new();
    for n in &m.nodes {
        let folder = dir.join(&n.name);
        config.insert(
            format!("{}.json", pod(n.index)),
            read(&folder.join("config.json"))?.into(),
        );
        keys.insert(
            format!("{}.json", pod(n.index)),
            read(&folder.join(NODE_KEY_FILE))?.into(),
        );
    }
    let labels = serde_json::json!({"app.kubernetes.io/name": "ledger"});
    let config_map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ledger-config", "labels": labels},
        "data": config,
    });
    let secret = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ledger-keys", "labels": labels},
        "type": "Opaque",
        "stringData": keys,
    });
    // Owner-only from its creation, like the key files it holds (the config map too: it is
    // harmless, but one rule is simpler).
    let write_json = |name: &str, v: &serde_json::Value| -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = out.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all((serde_json::to_string_pretty(v)? + "\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    };
    write_json("ledger-config.json", &config_map)?;
    write_json("ledger-keys.json", &secret)?;
    std::fs::write(out.join("ledger.yaml"), statefulset(m.nodes.len())?)
        .context("cannot write ledger.yaml")?;
    Ok(())
}

/// The template with `replicas` set.
fn statefulset(replicas: usize) -> anyhow::Result<String> {
    if TEMPLATE.matches(TEMPLATE_REPLICAS).count() != 1 {
        bail!("deploy/kubernetes/ledger.yaml no longer has one `replicas: 4` line to set");
    }
    Ok(TEMPLATE.replace(TEMPLATE_REPLICAS, &format!("\n  replicas: {replicas}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_count_is_the_number_of_validators() {
        let y = statefulset(7).expect("template");
        assert!(y.contains("\n  replicas: 7\n"), "{y}");
        assert!(!y.contains("replicas: 4"));
    }
}
