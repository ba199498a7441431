//! Node processes: liveness, signals, memory.
//!
//! A pid alone is not an identity: after a node dies its pid can be reused by any program. We record
//! the process's start time (field 22 of `/proc/<pid>/stat`) when we start a node and only treat the
//! pid as our node while the start time matches. A zombie (dead but not yet reaped, which happens when
//! the testnet's own children die or init does not reap) counts as dead.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// `(state, start_ticks)` from `/proc/<pid>/stat`, or `None` when there is no such process (or no /proc).
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces and parentheses:
    // the fields we want come after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 (starttime) is at index 22 - 3 = 19.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn has_proc() -> bool {
    Path::new("/proc/self/stat").exists()
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// The start time to record for a process we just started.
pub fn start_ticks(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Whether `pid` is a live (not zombie) process started at `start_ticks` (when known).
pub fn is_running(pid: u32, start_ticks: Option<u64>) -> bool {
    if has_proc() {
        match proc_stat(pid) {
            Some((state, ticks)) => {
                state != 'Z' && state != 'X' && start_ticks.is_none_or(|t| t == ticks)
            }
            None => false,
        }
    } else {
        // Without /proc (not Linux), signal 0 tells whether the pid exists; identity is not checked.
        pid_of(pid).is_some_and(|p| kill(p, None).is_ok())
    }
}

/// Sends `signal` to the node's process group (the node is started as its group's leader, so this
/// also reaches anything it spawned). Does nothing when the process is not ours any more.
pub fn signal_node(pid: u32, start_ticks: Option<u64>, signal: Signal) -> anyhow::Result<()> {
    if !is_running(pid, start_ticks) {
        return Ok(());
    }
    let Some(p) = pid_of(pid) else {
        anyhow::bail!("pid {pid} is not a valid process id");
    };
    match killpg(p, signal) {
        Ok(()) => Ok(()),
        // Not a group leader (should not happen for nodes we started): signal the process itself.
        Err(_) => {
            kill(p, signal).map_err(|e| anyhow::anyhow!("cannot send {signal} to pid {pid}: {e}"))
        }
    }
}

/// Waits until the process is gone, up to `timeout`. True when it is gone.
pub fn wait_gone(pid: u32, start_ticks: Option<u64>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_running(pid, start_ticks) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a node: SIGTERM (it flushes and closes its database), then SIGKILL after `grace`.
/// Returns how it ended.
pub fn stop(pid: u32, start_ticks: Option<u64>, grace: Duration) -> anyhow::Result<StopOutcome> {
    if !is_running(pid, start_ticks) {
        return Ok(StopOutcome::NotRunning);
    }
    signal_node(pid, start_ticks, Signal::SIGTERM)?;
    if wait_gone(pid, start_ticks, grace) {
        return Ok(StopOutcome::Terminated);
    }
    signal_node(pid, start_ticks, Signal::SIGKILL)?;
    if wait_gone(pid, start_ticks, Duration::from_secs(5)) {
        Ok(StopOutcome::Killed)
    } else {
        anyhow::bail!("pid {pid} survived SIGKILL for 5 s")
    }
}

/// How [`stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    NotRunning,
    Terminated,
    /// Did not exit within the grace period after SIGTERM.
    Killed,
}

/// Resident memory of a process in KiB (`VmRSS` in /proc/<pid>/status), when known.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_running_and_identity_is_checked() {
        let me = std::process::id();
        if !has_proc() {
            return;
        }
        let ticks = start_ticks(me).expect("own start time");
        assert!(is_running(me, Some(ticks)));
        assert!(is_running(me, None));
        assert!(
            !is_running(me, Some(ticks + 1)),
            "a different start time is a different process"
        );
        assert!(rss_kib(me).is_some_and(|k| k > 0));
    }

    #[test]
    fn an_unreaped_dead_child_counts_as_dead() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        // Not reaped yet: once it exits it is a zombie, which must count as dead.
        assert!(wait_gone(pid, None, Duration::from_secs(10)));
        child.wait().expect("reap");
    }
}
