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
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a timeout kills what the shell started too.
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run `{cmd}`"))?;
        // Read stderr while it runs (a full pipe would block it), keeping the last part for the
        // error message.
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                while let Ok(n) = std::io::Read::read(&mut e, &mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let excess = buf.len().saturating_sub(STDERR_KEPT);
                    buf.drain(..excess);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        });
        let deadline = Instant::now() + HOOK_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().context("cannot wait for the command")? {
                break s;
            }
            if Instant::now() >= deadline {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.wait();
                bail!("`{cmd}` took more than {} s", HOOK_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        if !status.success() {
            bail!("`{cmd}` failed ({status}): {}", err.trim());
        }
        Ok(())
    }
}

/// The end of a command's error output kept for its error message.
const STDERR_KEPT: usize = 4096;

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

    /// Review: the command's stderr is a pipe nobody reads before the command exits. A command
    /// that writes more than the pipe holds (64 KiB: a verbose `docker compose`, `ssh -v`, a
    /// `kubectl` warning flood) blocks on it, is taken for hung after 120 s and reported failed
    /// although it had done its work.
    #[test]
    fn a_command_writing_much_to_stderr_is_not_taken_for_hung() {
        let r = Remote::new(
            manifest(),
            &[Kind::Kill],
            Some("head -c 200000 /dev/zero | tr '\\0' x >&2".into()),
            Some("true".into()),
        )
        .expect("remote");
        let t = Instant::now();
        let k = r.kill(0);
        assert!(
            k.is_ok() && t.elapsed() < Duration::from_secs(10),
            "{:?} after {:?}",
            k.map_err(|e| e.to_string().chars().take(200).collect::<String>()),
            t.elapsed()
        );
    }
}
