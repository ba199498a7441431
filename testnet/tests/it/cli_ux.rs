//! What `testnet up` prints works as printed, and its Ctrl-C stops the nodes even when nobody
//! reads its output any more (`testnet up | tee log`, then Ctrl-C, which stops `tee` as well).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testnet::state::State;

use crate::harness::{node_bin, serial, testnet_bin, wait_or_kill};

/// Runs one printed command line through `sh` in `cwd`, killed after `timeout`; returns (ran to
/// the end with success, stdout + stderr).
fn run_printed(line: &str, cwd: &Path, env: &[(&str, &Path)], timeout: Duration) -> (bool, String) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    // One open file for both streams: one offset, so neither overwrites the other.
    let file = out.reopen().expect("reopen");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("exec {line}"))
        .current_dir(cwd)
        .env_remove("TESTNET_DIR")
        .env_remove("LEDGER_NODE")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone"))
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("runs sh");
    let ok = wait_or_kill(&mut child, timeout).is_some_and(|s| s.success());
    (ok, std::fs::read_to_string(out.path()).unwrap_or_default())
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().expect("wait") {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn n1_up_in_the_foreground_prints_commands_that_run_and_ctrl_c_stops_the_nodes_after_stdout_closed()
{
    let _serial = serial();
    let tmp = tempfile::Builder::new()
        .prefix("testnet-it-cli-ux-")
        .tempdir()
        .expect("temp dir");
    let xdg = tmp.path().join("state");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let stderr_path = tmp.path().join("up.stderr");
    // As a person runs it: in a folder, with the default --dir (./.testnet).
    let mut up = Command::new(testnet_bin())
        .args(["up", "-n", "1", "--timeout-secs", "120", "--node-bin"])
        .arg(node_bin())
        .current_dir(tmp.path())
        .env("XDG_STATE_HOME", &xdg)
        .env_remove("TESTNET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("starts testnet up");
    let stdout = up.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    // Reads until the supervisor says it supervises, then drops the pipe: from then on every
    // write of `up` to stdout fails with EPIPE.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let last = line.starts_with("supervising");
            let _ = tx.send(line);
            if last {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while lines
        .last()
        .is_none_or(|l: &String| !l.starts_with("supervising"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = up.kill();
                let _ = up.wait();
                panic!(
                    "testnet up did not reach supervision: {lines:#?}\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    }
    reader.join().expect("reader thread");
    let dir = tmp.path().join(".testnet");
    let state = State::load(&dir).expect("the testnet's state");
    let result = std::panic::catch_unwind(|| {
        // The suggested commands, one per line after "try:".
        let tried: Vec<String> = lines
            .iter()
            .skip_while(|l| l.trim() != "try:")
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
            .collect();
        let find = |what: &str| {
            tried
                .iter()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no suggested `{what}` in {lines:#?}"))
                .clone()
        };
        // `status --watch` draws until stopped: it must have printed the node table by then.
        let (_, out) = run_printed(
            &find("status --watch"),
            tmp.path(),
            &[("XDG_STATE_HOME", &xdg)],
            Duration::from_secs(4),
        );
        assert!(
            out.contains("height") && !out.contains("error"),
            "status --watch as printed: {out}"
        );
        // The wallet, run from another folder, finds this testnet's node by itself (the record
        // `up` wrote under XDG_STATE_HOME) and says which node it used.
        let (ok, out) = run_printed(
            &find("balance --dev 0"),
            &elsewhere,
            &[("XDG_STATE_HOME", &xdg)],
            Duration::from_secs(30),
        );
        let api = state.nodes[0].api_url();
        assert!(ok, "wallet balance as printed failed: {out}");
        assert!(
            out.contains(&format!("using node {api}")),
            "the wallet names the node it found: {out}"
        );
        assert!(out.contains("balance"), "{out}");
    });

    // Ctrl-C with nobody reading stdout: the supervisor still stops every node.
    kill(Pid::from_raw(up.id() as i32), Signal::SIGINT).expect("SIGINT to testnet up");
    let exited = wait_exit(&mut up, Duration::from_secs(60));
    let after = State::load(&dir).expect("the testnet's state after Ctrl-C");
    let running: Vec<usize> = after
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.index)
        .collect();
    // Leave nothing behind whatever the outcome.
    let _ = Command::new(testnet_bin())
        .arg("--dir")
        .arg(&dir)
        .arg("down")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if exited.is_none() {
        let _ = up.kill();
        let _ = up.wait();
    }
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(
        exited.is_some(),
        "testnet up did not exit within 60 s of Ctrl-C: {stderr}"
    );
    assert!(
        running.is_empty(),
        "nodes {running:?} still run after Ctrl-C with stdout closed: {stderr}"
    );
    assert!(after.stopped, "the state records the stop");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
