//! `chaos --manifest`: the same seeded nemesis on nodes this machine does not run (Compose,
//! Kubernetes, other hosts), through commands the user gives for the engine that runs them:
//!
//! ```text
//! --kill-cmd  'cd mynet && docker compose kill {name}'
//! --start-cmd 'cd mynet && docker compose start {name}'
//! ```
//!
//! `{i}` is the node's index and `{name}` its name (`node-<i>`). Only faults a process engine can
//! make are possible: kill (`--kinds kill`) and restart-all (every node killed, then started).
//! Isolating nodes needs the loopback control endpoint of a node of this machine: local only.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::schedule::Kind;
use crate::manifest::Manifest;

/// How long one kill or start command may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// The remote nodes and the commands that kill and start them.
#[derive(Debug, Clone)]
pub struct Remote {
    pub manifest: Manifest,
    pub kill_cmd: String,
    pub start_cmd: String,
}

impl Remote {
    /// Checks that the fault kinds asked for can be made remotely and that both commands exist.
    pub fn new(
        manifest: Manifest,
        kinds: &[Kind],
        kill_cmd: Option<String>,
        start_cmd: Option<String>,
    ) -> anyhow::Result<Remote> {
        let local_only: Vec<&Kind> = kinds
            .iter()
            .filter(|k| !matches!(k, Kind::Kill | Kind::RestartAll))
            .collect();
        if !local_only.is_empty() {
            bail!(
                "--kinds {local_only:?}: isolating nodes needs the loopback control endpoint of \
                 nodes this machine runs (local only); with --manifest use --kinds kill,restart-all"
            );
        }
        let (Some(kill_cmd), Some(start_cmd)) = (kill_cmd, start_cmd) else {
            bail!(
                "--manifest needs --kill-cmd and --start-cmd: the commands that kill and start node \
                 {{i}} / {{name}} where it runs (e.g. 'cd mynet && docker compose kill {{name}}')"
            );
        };
        Ok(Remote {
            manifest,
            kill_cmd,
            start_cmd,
        })
    }

    pub fn kill(&self, index: usize) -> anyhow::Result<()> {
        self.run(&self.kill_cmd, index)
    }

    pub fn start(&self, index: usize) -> anyhow::Result<()> {
        self.run(&self.start_cmd, index)
    }

    fn run(&self, template: &str, index: usize) -> anyhow::Result<()> {
        let node = self
            .manifest
            .nodes
            .iter()
            .find(|n| n.index == index)
            .with_context(|| format!("the manifest has no node {index}"))?;
        let cmd = expand(template, index, &node.name);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{cmd}`"))?;
        let deadline = Instant::now() + HOOK_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().context("cannot wait for the command")? {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`{cmd}` took more than {} s", HOOK_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            bail!("`{cmd}` failed ({status}): {}", err.trim());
        }
        Ok(())
    }
}

/// The command for one node: `{i}` and `{name}` replaced.
fn expand(template: &str, index: usize, name: &str) -> String {
    template
        .replace("{i}", &index.to_string())
        .replace("{name}", name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{MANIFEST_VERSION, ManifestNode};
    use crate::state::Role;

    fn manifest() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            chain_id: "c".into(),
            genesis_hash: "h".into(),
            dev_keys: true,
            nodes: vec![ManifestNode {
                name: "node-0".into(),
                index: 0,
                role: Role::Validator,
                host: "127.0.0.1".into(),
                p2p_port: 30333,
                api_port: 8700,
                address: None,
                published_api: None,
            }],
        }
    }

    #[test]
    fn local_only_faults_and_missing_commands_are_refused() {
        let some = |s: &str| Some(s.to_string());
        let e = Remote::new(
            manifest(),
            &[Kind::Kill, Kind::Isolate],
            some("k"),
            some("s"),
        )
        .expect_err("isolate is local only");
        assert!(e.to_string().contains("local only"), "{e}");
        let e = Remote::new(manifest(), &[Kind::Kill], some("k"), None).expect_err("no start");
        assert!(e.to_string().contains("--start-cmd"), "{e}");
        assert!(
            Remote::new(
                manifest(),
                &[Kind::Kill, Kind::RestartAll],
                some("k"),
                some("s")
            )
            .is_ok()
        );
    }

    #[test]
    fn commands_get_the_nodes_index_and_name_and_their_failures_are_reported() {
        assert_eq!(
            expand("docker compose kill {name} # {i}", 3, "node-3"),
            "docker compose kill node-3 # 3"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mark = dir.path().join("killed-{i}");
        let r = Remote::new(
            manifest(),
            &[Kind::Kill],
            Some(format!("touch {}", mark.display())),
            Some("echo no such engine >&2; exit 4".into()),
        )
        .expect("remote");
        r.kill(0).expect("kill runs");
        assert!(dir.path().join("killed-0").is_file());
        let e = r.start(0).expect_err("start fails");
        assert!(e.to_string().contains("no such engine"), "{e}");
        assert!(r.kill(9).is_err(), "no node 9");
    }
}
