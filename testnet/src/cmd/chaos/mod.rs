//! `testnet chaos`: a seeded nemesis on a running testnet while transfers flow, then the invariants.
//!
//! 1. The schedule ([`schedule`]) is derived from `--seed` (random by default, always printed): kill
//!    -9 and restart, isolate and heal (never more than f validators at once), cut off f + 1
//!    validators and heal, restart every node. Faults go through the same functions as `testnet
//!    kill|restart|isolate|heal`.
//! 2. Meanwhile [`traffic`] sends transfers to random nodes and records every "final at (height,
//!    index)" a node answers; a monitor thread reads every node's height every 250 ms.
//! 3. At the end every node is healed and every stopped node restarted; the run waits (bounded)
//!    until all nodes reach the same height, lets the transfers in flight settle, then reads every
//!    node's blocks, transaction places and accounts and checks ([`checks`]): no fork at any
//!    height; every reported-final transfer final at the same place on every node; the chain
//!    replayed from genesis with ledger-core ([`replay`]) gives the balances and nonces every node
//!    serves; supply conserved; heights never went backwards; the chain resumed after each repair
//!    and did not finalize while cut off.
//!
//! Output: a report for people, or one JSON object with `--json`. Exit 0 when no invariant was
//! violated, [`EXIT_VIOLATION`] when one was, 1 when the run itself could not be done.

pub mod checks;
mod remote;
pub mod replay;
pub mod schedule;
mod traffic;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ledger_core::api::{BlockResponse, TxStatus};
use ledger_core::genesis::Genesis;
use ledger_core::state::Account;
use ledger_core::{Address, CommitCertificate, Hash, Keypair};
use serde::Serialize;

use self::checks::{BlockId, FinalView, HeightMonitor, Invariant, ServedAccounts, Violation};
use self::remote::Remote;
use self::schedule::{Episode, Fault, Kind, Plan, Timing};
use self::traffic::{Traffic, TrafficConfig, TrafficReport};
use super::isolate::{Action, control_node};
use super::kill::kill_node;
use super::load::transfers::{account_or_empty, discover_funders};
use super::restart::restart_node;
use super::{
    POLL_TIMEOUT, STOP_GRACE, install_interrupt_handler, interrupts, stop_nodes, wait_for_api,
};
use crate::client::NodeClient;
use crate::manifest::Manifest;
use crate::output::Progress;
use crate::state::{State, StateLock};

/// Exit code when an invariant was violated (as `status` exits 3 on a fork).
pub const EXIT_VIOLATION: u8 = 3;
/// How often the monitor reads every node's height.
const MONITOR_EVERY: Duration = Duration::from_millis(250);
/// Timeout of the checks' reads (blocks can be large).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Blocks per range request (the node's limit).
const RANGE: u64 = 100;
/// Fresh accounts that only receive (so accounts outside genesis are checked too).
const FRESH_RECIPIENTS: u32 = 8;
/// A node is in step when it is at most this many blocks behind the highest.
const IN_STEP_BLOCKS: u64 = 2;
/// Most events kept for the report.
const MAX_EVENTS: usize = 2000;

#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// Seed of the nemesis schedule and the traffic's choices (default: random; always printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds of faults and traffic (the repair and the checks come after).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub duration: u64,
    /// Transfers per second, each to a random node.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub rate: u64,
    /// Fault kinds to inject (comma list).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Kind::ALL)]
    pub kinds: Vec<Kind>,
    /// Shortest and longest time a fault is held.
    #[arg(long, default_value_t = 1500)]
    pub min_hold_ms: u64,
    #[arg(long, default_value_t = 5000)]
    pub max_hold_ms: u64,
    /// Shortest and longest pause between episodes.
    #[arg(long, default_value_t = 500)]
    pub min_gap_ms: u64,
    #[arg(long, default_value_t = 2500)]
    pub max_gap_ms: u64,
    /// After a repair: how long the chain (or a restarted node) gets to resume before it counts as
    /// a liveness violation.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub liveness_secs: u64,
    /// At the end: how long all nodes get to reach the same height, and the transfers in flight
    /// to settle.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub settle_secs: u64,
    /// Funded genesis dev accounts (`Keypair::dev("account", i)`) that send.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub accounts: u32,
    /// Fee of every transfer.
    #[arg(long, default_value_t = 1)]
    pub fee: u64,
    /// Print the schedule for the seed and exit, touching nothing.
    #[arg(long)]
    pub plan_only: bool,
    /// One JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Disturb the nodes of a `testnet init` bundle (its manifest.json or folder) instead of this
    /// machine's testnet, through --kill-cmd and --start-cmd; kinds kill and restart-all only.
    #[arg(long, requires_all = ["kill_cmd", "start_cmd"])]
    pub manifest: Option<PathBuf>,
    /// With --manifest: the shell command that kills node `{i}` (named `{name}`), e.g.
    /// 'cd mynet && docker compose kill {name}'.
    #[arg(long, requires = "manifest")]
    pub kill_cmd: Option<String>,
    /// With --manifest: the shell command that starts node `{i}` (named `{name}`) again.
    #[arg(long, requires = "manifest")]
    pub start_cmd: Option<String>,
}

impl ChaosArgs {
    fn timing(&self) -> Timing {
        Timing {
            min_gap_ms: self.min_gap_ms,
            max_gap_ms: self.max_gap_ms.max(self.min_gap_ms),
            min_hold_ms: self.min_hold_ms,
            max_hold_ms: self.max_hold_ms.max(self.min_hold_ms),
        }
    }

    /// Enough steps to fill the duration (each takes at least its gap and hold).
    fn steps(&self) -> usize {
        let per = (self.min_gap_ms + self.min_hold_ms).max(500);
        ((self.duration * 1000 / per) as usize + 4).min(10_000)
    }

    /// The command line that replays this schedule.
    fn replay_command(&self, seed: u64) -> String {
        let mut s = format!(
            "testnet chaos --seed {seed} --duration {} --rate {}",
            self.duration, self.rate
        );
        if self.kinds.len() != Kind::ALL.len() {
            let k: Vec<String> = self
                .kinds
                .iter()
                .filter_map(|k| {
                    clap::ValueEnum::to_possible_value(k).map(|v| v.get_name().to_string())
                })
                .collect();
            s.push_str(&format!(" --kinds {}", k.join(",")));
        }
        let d = ChaosArgs::defaults();
        if self.timing() != d.timing() {
            s.push_str(&format!(
                " --min-hold-ms {} --max-hold-ms {} --min-gap-ms {} --max-gap-ms {}",
                self.min_hold_ms, self.max_hold_ms, self.min_gap_ms, self.max_gap_ms
            ));
        }
        if let (Some(m), Some(k), Some(st)) = (&self.manifest, &self.kill_cmd, &self.start_cmd) {
            s.push_str(&format!(
                " --manifest {} --kill-cmd {} --start-cmd {}",
                shell_quote(&m.display().to_string()),
                shell_quote(k),
                shell_quote(st)
            ));
        }
        s
    }

    fn defaults() -> ChaosArgs {
        ChaosArgs {
            seed: None,
            duration: 60,
            rate: 20,
            kinds: Kind::ALL.to_vec(),
            min_hold_ms: 1500,
            max_hold_ms: 5000,
            min_gap_ms: 500,
            max_gap_ms: 2500,
            liveness_secs: 60,
            settle_secs: 120,
            accounts: 16,
            fee: 1,
            plan_only: false,
            json: false,
            manifest: None,
            kill_cmd: None,
            start_cmd: None,
        }
    }
}

pub fn run(dir: &Path, args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let seed = match args.seed {
        Some(s) => s,
        None => getrandom::u64().context("cannot draw a random seed; pass --seed")?,
    };
    let target = match &args.manifest {
        Some(path) => {
            let manifest = Manifest::load(path)?;
            // `testnet init` writes the genesis beside the manifest.
            let genesis = if path.is_dir() {
                path.join("genesis.json")
            } else {
                path.with_file_name("genesis.json")
            };
            let remote = Remote::new(
                manifest,
                &args.kinds,
                args.kill_cmd.clone(),
                args.start_cmd.clone(),
            )?;
            Target::Remote { remote, genesis }
        }
        None => Target::Local {
            dir,
            state: State::load(dir)?,
        },
    };
    let validators = target.validators();
    let plan = schedule::plan(seed, &validators, &args.kinds, args.steps(), args.timing())?;
    if args.plan_only {
        if args.json {
            crate::outln!("{}", serde_json::to_string(&plan)?);
        } else {
            crate::outln!(
                "seed {seed}: {} validators, f = {}",
                validators.len(),
                plan.f
            );
            for (k, s) in plan.steps.iter().enumerate() {
                crate::outln!("{k:>4}  after {} ms  {}", s.gap_ms, describe(&s.episode));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    target.check_whole()?;
    install_interrupt_handler()?;
    crate::errln!(
        "chaos: seed {seed} (replay: {}), {} validators, f = {}",
        args.replay_command(seed),
        validators.len(),
        plan.f
    );
    let genesis_path = target.genesis_path();
    let genesis = read_genesis(&genesis_path)?;
    let mut run = Run::new(target, &args, seed);
    let report = run.go(&genesis_path, &genesis, &plan)?;
    print_report(&report, args.json)?;
    if report.violations > 0 {
        return Ok(ExitCode::from(EXIT_VIOLATION));
    }
    // Remote faults are the user's commands: a run whose commands failed did not disturb what
    // it claims to have tested.
    if args.manifest.is_some() && (report.nemesis_errors > 0 || report.faults_injected == 0) {
        crate::errln!(
            "chaos --manifest: {} kill/start commands failed and {} faults were injected; the run proves nothing",
            report.nemesis_errors,
            report.faults_injected
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `s` as one word of a POSIX shell: single-quoted, each `'` written `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Genesis::from_json(&text).with_context(|| format!("{} is not a valid genesis", path.display()))
}

/// The nodes the nemesis disturbs: this machine's testnet (processes it signals and restarts,
/// a control endpoint it isolates through), or remote ones (commands the user gave).
enum Target<'a> {
    Local { dir: &'a Path, state: State },
    Remote { remote: Remote, genesis: PathBuf },
}

impl Target<'_> {
    fn validators(&self) -> Vec<usize> {
        match self {
            Target::Local { state, .. } => state.validators().map(|n| n.index).collect(),
            Target::Remote { remote, .. } => {
                remote.manifest.validators().map(|n| n.index).collect()
            }
        }
    }

    /// (index, API URL) of every node.
    fn nodes(&self) -> Vec<(usize, String)> {
        match self {
            Target::Local { state, .. } => {
                state.nodes.iter().map(|n| (n.index, n.api_url())).collect()
            }
            Target::Remote { remote, .. } => remote
                .manifest
                .nodes
                .iter()
                .map(|n| (n.index, n.api_url()))
                .collect(),
        }
    }

    fn genesis_path(&self) -> PathBuf {
        match self {
            Target::Local { state, .. } => state.genesis.clone(),
            Target::Remote { genesis, .. } => genesis.clone(),
        }
    }

    /// Chaos starts from a whole network: every process runs (local), every node answers (remote).
    fn check_whole(&self) -> anyhow::Result<()> {
        match self {
            Target::Local { state, .. } => {
                for n in &state.nodes {
                    if !n.is_running() {
                        bail!(
                            "node {} is not running; chaos starts from a whole testnet (`testnet restart {}`)",
                            n.index,
                            n.index
                        );
                    }
                }
            }
            Target::Remote { .. } => {
                for (i, url) in self.nodes() {
                    NodeClient::new(&url, POLL_TIMEOUT).status().with_context(|| {
                        format!("node {i} ({url}) does not answer; chaos starts from a whole network")
                    })?;
                }
            }
        }
        Ok(())
    }
}

pub fn describe(e: &Episode) -> String {
    match e {
        Episode::Partial { faults, hold_ms } => {
            let parts: Vec<String> = faults
                .iter()
                .map(|(n, f)| match f {
                    Fault::Kill => format!("kill -9 node {n}"),
                    Fault::Isolate => format!("isolate node {n}"),
                })
                .collect();
            format!("{} for {hold_ms} ms", parts.join(" + "))
        }
        Episode::CutOff { nodes, hold_ms } => {
            let l: Vec<String> = nodes.iter().map(usize::to_string).collect();
            format!(
                "cut off nodes {} (more than f) for {hold_ms} ms",
                l.join(",")
            )
        }
        Episode::RestartAll { crash, hold_ms } => format!(
            "restart every node: all {} at once, down for {hold_ms} ms",
            if *crash {
                "killed -9"
            } else {
                "stopped (SIGTERM)"
            }
        ),
    }
}

/// Why the nemesis stopped early.
enum Stop {
    Interrupted,
}

struct Run<'a> {
    target: Target<'a>,
    args: &'a ChaosArgs,
    seed: u64,
    /// (index, client) of every node.
    clients: Vec<(usize, NodeClient)>,
    t0: Instant,
    monitor: Arc<Mutex<HeightMonitor>>,
    violations: Vec<Violation>,
    tally: BTreeMap<&'static str, u64>,
    events: Vec<String>,
    nemesis_errors: u64,
    /// Nodes this run started: reaped when they die, so they do not linger as zombies.
    children: Vec<Child>,
    episodes: usize,
    progress: Progress,
}

impl<'a> Run<'a> {
    fn new(target: Target<'a>, args: &'a ChaosArgs, seed: u64) -> Run<'a> {
        let clients = target
            .nodes()
            .into_iter()
            .map(|(i, url)| (i, NodeClient::new(&url, POLL_TIMEOUT)))
            .collect();
        Run {
            target,
            args,
            seed,
            clients,
            t0: Instant::now(),
            monitor: Arc::new(Mutex::new(HeightMonitor::default())),
            violations: Vec::new(),
            tally: BTreeMap::new(),
            events: Vec::new(),
            nemesis_errors: 0,
            children: Vec::new(),
            episodes: 0,
            progress: Progress::new(Duration::from_secs(5)),
        }
    }

    fn event(&mut self, msg: impl Into<String>) {
        let line = format!("+{:.1}s {}", self.t0.elapsed().as_secs_f64(), msg.into());
        // On stderr, so `--json` keeps stdout to the one object and CI logs still show the run.
        self.progress.println(&line);
        if self.events.len() < MAX_EVENTS {
            self.events.push(line);
        }
    }

    fn violation(&mut self, invariant: Invariant, detail: String) {
        self.event(format!("VIOLATION {invariant:?}: {detail}"));
        self.violations.push(Violation::new(invariant, detail));
    }

    fn count(&mut self, what: &'static str) {
        *self.tally.entry(what).or_insert(0) += 1;
    }

    fn nemesis_error(&mut self, e: anyhow::Error) {
        self.nemesis_errors += 1;
        self.event(format!("nemesis error: {e:#}"));
    }

    /// Every node's height now (None: no answer); each read also goes to the monitor.
    fn heights(&self) -> Vec<(usize, Option<u64>)> {
        self.clients
            .iter()
            .map(|(i, c)| {
                let h = c.status().ok().map(|s| s.height);
                if let (Some(h), Ok(mut m)) = (h, self.monitor.lock()) {
                    m.observe(*i, h);
                }
                (*i, h.map(|h| h.0))
            })
            .collect()
    }

    fn max_height(&self) -> u64 {
        self.heights()
            .iter()
            .filter_map(|(_, h)| *h)
            .max()
            .unwrap_or(0)
    }

    /// Sleeps `d` in small steps; stops early on Ctrl-C.
    fn sleep(&self, d: Duration) -> Result<(), Stop> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if interrupts() > 0 {
                return Err(Stop::Interrupted);
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }

    /// Polls until `cond(heights)` holds or `bound` passes. True when it held.
    fn wait_heights(
        &self,
        bound: Duration,
        mut cond: impl FnMut(&[(usize, Option<u64>)]) -> bool,
    ) -> Result<bool, Stop> {
        let end = Instant::now() + bound;
        loop {
            if cond(&self.heights()) {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            self.sleep(Duration::from_millis(200))?;
        }
    }

    fn reap(&mut self) {
        self.children
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
    }

    /// Restarts node `i` (locally through the `testnet restart` path) and waits for its API.
    fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(self.args.liveness_secs);
        match &self.target {
            Target::Local { dir, .. } => {
                let r = restart_node(dir, i)?;
                self.children.push(r.child);
                self.count("restart");
                wait_for_api(&r.node, deadline)?;
            }
            Target::Remote { remote, .. } => {
                remote.start(i)?;
                self.count("restart");
                self.wait_answers(i, deadline)?;
            }
        }
        Ok(())
    }

    /// Waits until node `i` answers its status (a remote node: no process to watch).
    fn wait_answers(&self, i: usize, deadline: Instant) -> anyhow::Result<()> {
        let client = self
            .clients
            .iter()
            .find(|c| c.0 == i)
            .map(|c| &c.1)
            .with_context(|| format!("no node {i}"))?;
        while client.status().is_err() {
            if interrupts() > 0 {
                bail!("interrupted");
            }
            if Instant::now() >= deadline {
                bail!("node {i} did not answer in time after it was started");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Starts every node in `all` (all were stopped), then waits for every API.
    fn start_all(&mut self, all: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(self.args.liveness_secs);
        match &self.target {
            Target::Local { dir, .. } => {
                let dir = *dir;
                for &n in all {
                    match restart_node(dir, n) {
                        Ok(r) => {
                            self.children.push(r.child);
                            self.count("restart");
                        }
                        Err(e) => self.nemesis_error(e),
                    }
                }
                if let Ok(state) = State::load(dir) {
                    for n in &state.nodes {
                        if let Err(e) = wait_for_api(n, deadline) {
                            self.nemesis_error(e);
                        }
                    }
                }
            }
            Target::Remote { remote, .. } => {
                let started: Vec<anyhow::Result<()>> =
                    all.iter().map(|&n| remote.start(n)).collect();
                for r in started {
                    match r {
                        Ok(()) => self.count("restart"),
                        Err(e) => self.nemesis_error(e),
                    }
                }
                for &n in all {
                    if let Err(e) = self.wait_answers(n, deadline) {
                        self.nemesis_error(e);
                    }
                }
            }
        }
    }

    fn kill(&self, i: usize) -> anyhow::Result<()> {
        match &self.target {
            Target::Local { dir, .. } => kill_node(dir, i).map(drop),
            Target::Remote { remote, .. } => remote.kill(i),
        }
    }

    /// Isolates or heals node `i`; the schedule makes these for local testnets only.
    fn control(&self, i: usize, action: Action) -> anyhow::Result<()> {
        match &self.target {
            Target::Local { dir, .. } => control_node(dir, i, action),
            Target::Remote { .. } => bail!("isolate and heal are local only"),
        }
    }

    /// Nodes that died although the nemesis did not kill them: a violation, then restarted so the
    /// run can go on.
    /// Remote nodes have no process to look at: their liveness is checked through heights.
    fn check_alive(&mut self, expected_down: &BTreeSet<usize>) {
        let Target::Local { dir, .. } = &self.target else {
            return;
        };
        let Ok(state) = State::load(dir) else {
            return;
        };
        for n in &state.nodes {
            if !expected_down.contains(&n.index) && !n.is_running() {
                self.violation(
                    Invariant::Liveness,
                    format!(
                        "node {} exited on its own; last lines of {}:\n{}",
                        n.index,
                        n.log_path().display(),
                        crate::node::log_tail(n, 10)
                    ),
                );
                if let Err(e) = self.restart(n.index) {
                    self.nemesis_error(e);
                }
            }
        }
    }

    /// Waits until the chain finalizes a block above `above` (after a repair).
    fn expect_resume(&mut self, above: u64, after: &str) -> Result<(), Stop> {
        let bound = Duration::from_secs(self.args.liveness_secs);
        let t = Instant::now();
        let ok = self.wait_heights(bound, |hs| {
            hs.iter().filter_map(|(_, h)| *h).max().unwrap_or(0) > above
        })?;
        if ok {
            self.event(format!(
                "chain resumed {:.1} s after {after}",
                t.elapsed().as_secs_f64()
            ));
        } else {
            self.violation(
                Invariant::Liveness,
                format!(
                    "no block above height {above} within {} s after {after}",
                    bound.as_secs()
                ),
            );
        }
        Ok(())
    }

    /// Waits (bounded, not a violation) until `nodes` are within a few blocks of the highest, so
    /// the next fault does not land on a network still catching up.
    fn wait_in_step(&mut self, nodes: &[usize]) -> Result<(), Stop> {
        let bound = Duration::from_secs(self.args.liveness_secs);
        let ok = self.wait_heights(bound, |hs| {
            let max = hs.iter().filter_map(|(_, h)| *h).max().unwrap_or(0);
            hs.iter()
                .filter(|(i, _)| nodes.contains(i))
                .all(|(_, h)| h.is_some_and(|h| h + IN_STEP_BLOCKS >= max))
        })?;
        if !ok {
            self.event(format!(
                "nodes {nodes:?} not back in step after {} s; going on",
                bound.as_secs()
            ));
        }
        Ok(())
    }

    fn episode(&mut self, e: &Episode) -> Result<(), Stop> {
        self.event(describe(e));
        match e {
            Episode::Partial { faults, hold_ms } => {
                let mut done = Vec::new();
                for &(n, f) in faults {
                    let r = match f {
                        Fault::Kill => self.kill(n).map(|()| "kill"),
                        Fault::Isolate => self.control(n, Action::Isolate).map(|()| "isolate"),
                    };
                    match r {
                        Ok(what) => {
                            self.count(what);
                            done.push((n, f));
                        }
                        Err(e) => self.nemesis_error(e),
                    }
                }
                let hold = self.sleep(Duration::from_millis(*hold_ms));
                // Repair even when interrupted: never leave the testnet broken.
                for &(n, f) in &done {
                    let r = match f {
                        Fault::Kill => self.restart(n),
                        Fault::Isolate => {
                            self.control(n, Action::Heal).map(|()| self.count("heal"))
                        }
                    };
                    if let Err(e) = r {
                        self.nemesis_error(e);
                    }
                }
                hold?;
                let nodes: Vec<usize> = done.iter().map(|x| x.0).collect();
                self.wait_in_step(&nodes)?;
            }
            Episode::CutOff { nodes, hold_ms } => {
                let mut cut = Vec::new();
                for &n in nodes {
                    match self.control(n, Action::Isolate) {
                        Ok(()) => cut.push(n),
                        Err(e) => self.nemesis_error(e),
                    }
                }
                self.count("cut_off");
                let at_cut = self.max_height();
                // No side holds a quorum: at most one block (whose votes were in flight) may still
                // become final until the heal.
                let end = Instant::now() + Duration::from_millis(*hold_ms);
                let mut result = Ok(());
                let mut reported = false;
                while Instant::now() < end {
                    let h = self.max_height();
                    if h > at_cut + 1 && !reported {
                        self.violation(
                            Invariant::FinalityWithoutQuorum,
                            format!(
                                "height {h} reached while nodes {cut:?} were cut off at height {at_cut}"
                            ),
                        );
                        reported = true;
                    }
                    if let Err(s) = self.sleep(Duration::from_millis(250)) {
                        result = Err(s);
                        break;
                    }
                }
                let before_heal = self.max_height();
                for &n in &cut {
                    match self.control(n, Action::Heal) {
                        Ok(()) => self.count("heal"),
                        Err(e) => self.nemesis_error(e),
                    }
                }
                result?;
                self.expect_resume(before_heal, "healing the cut-off")?;
                let all: Vec<usize> = self.clients.iter().map(|c| c.0).collect();
                self.wait_in_step(&all)?;
            }
            Episode::RestartAll { crash, hold_ms } => {
                let before = self.max_height();
                let all: Vec<usize> = self.clients.iter().map(|c| c.0).collect();
                // Remote nodes are killed: a graceful stop is the engine's own business.
                if *crash || matches!(self.target, Target::Remote { .. }) {
                    for &n in &all {
                        if let Err(e) = self.kill(n) {
                            self.nemesis_error(e);
                        }
                    }
                } else if let Target::Local { dir, .. } = &self.target
                    && let Err(e) = stop_every_node(dir)
                {
                    self.nemesis_error(e);
                }
                self.count("restart_all");
                let hold = self.sleep(Duration::from_millis(*hold_ms));
                // Started again even when interrupted: never leave the testnet down.
                self.start_all(&all);
                hold?;
                self.expect_resume(before, "restarting every node")?;
                self.wait_in_step(&all)?;
            }
        }
        Ok(())
    }

    fn nemesis(&mut self, plan: &Plan, traffic: &Traffic) -> Result<(), Stop> {
        let end = self.t0 + Duration::from_secs(self.args.duration);
        for step in &plan.steps {
            if Instant::now() + Duration::from_millis(step.gap_ms) >= end {
                break;
            }
            self.sleep(Duration::from_millis(step.gap_ms))?;
            self.check_alive(&BTreeSet::new());
            self.reap();
            self.episodes += 1;
            self.progress.set(format!(
                "episode {} · created {} final {} in flight {}",
                self.episodes,
                traffic.live.created.load(Ordering::Relaxed),
                traffic.live.final_.load(Ordering::Relaxed),
                traffic.in_flight()
            ));
            self.episode(&step.episode)?;
        }
        // The traffic keeps its duration even when the schedule ends early.
        while Instant::now() < end {
            self.sleep(Duration::from_millis(200))?;
        }
        Ok(())
    }

    /// Heals every node, restarts every stopped one, waits until all reach the same height.
    fn restore(&mut self) {
        // Every episode repairs what it broke: a node down now died on its own.
        self.check_alive(&BTreeSet::new());
        match &self.target {
            Target::Local { dir, .. } => {
                let Ok(state) = State::load(dir) else {
                    return;
                };
                for n in &state.nodes {
                    let r = if n.is_running() {
                        self.control(n.index, Action::Heal)
                    } else {
                        self.restart(n.index)
                    };
                    if let Err(e) = r {
                        self.nemesis_error(e);
                    }
                }
            }
            Target::Remote { .. } => {
                let silent: Vec<usize> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| c.status().is_err())
                    .map(|(i, _)| *i)
                    .collect();
                for i in silent {
                    if let Err(e) = self.restart(i) {
                        self.nemesis_error(e);
                    }
                }
            }
        }
        let target = self.max_height();
        let bound = Duration::from_secs(self.args.settle_secs);
        let t = Instant::now();
        match self.wait_heights(bound, |hs| {
            hs.iter().all(|(_, h)| h.is_some_and(|h| h >= target))
        }) {
            Ok(true) => self.event(format!(
                "every node healed, running and at height {target} or above after {:.1} s",
                t.elapsed().as_secs_f64()
            )),
            Ok(false) => {
                let hs = self.heights();
                self.violation(
                    Invariant::Liveness,
                    format!(
                        "nodes did not all reach height {target} within {} s after the repair: {hs:?}",
                        bound.as_secs()
                    ),
                );
            }
            Err(Stop::Interrupted) => {}
        }
    }

    fn go(
        &mut self,
        genesis_path: &Path,
        genesis: &Genesis,
        plan: &Plan,
    ) -> anyhow::Result<Report> {
        let nodes = self.target.nodes();
        let c0 = NodeClient::new(&nodes[0].1, READ_TIMEOUT);
        let status = c0.status().context("cannot reach node 0")?;
        if status.genesis_hash != genesis.hash() {
            bail!(
                "node 0 runs genesis {}, {} hashes to {}",
                status.genesis_hash,
                genesis_path.display(),
                genesis.hash()
            );
        }
        let height_start = status.height.0;
        let mut funders = discover_funders(&c0, self.args.fee)?;
        funders.truncate(self.args.accounts as usize);
        let mut recipients: Vec<Address> = funders.iter().map(|(k, _)| k.address()).collect();
        recipients.extend((0..FRESH_RECIPIENTS).map(|j| Keypair::dev("chaos", j).address()));
        let traffic = Traffic::start(TrafficConfig {
            chain_id: status.chain_id.clone(),
            nodes: nodes.clone(),
            senders: funders
                .into_iter()
                .map(|(k, a)| (k, a.next_nonce.0))
                .collect(),
            recipients,
            rate: self.args.rate,
            fee: self.args.fee,
            seed: self.seed,
            max_run: Duration::from_secs(self.args.duration + 2 * self.args.settle_secs + 600),
        });

        let stop_monitor = Arc::new(AtomicBool::new(false));
        let monitor = {
            let (m, stop) = (self.monitor.clone(), stop_monitor.clone());
            let nodes = nodes.clone();
            std::thread::spawn(move || monitor_heights(&nodes, &m, &stop))
        };

        let outcome = self.nemesis(plan, &traffic);
        traffic.drain();
        self.event("nemesis done; repairing");
        self.restore();
        // Let the transfers in flight become final (they are resent to healthy nodes now).
        let t = Instant::now();
        while traffic.in_flight() > 0
            && t.elapsed() < Duration::from_secs(self.args.settle_secs)
            && interrupts() == 0
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        let traffic = traffic.finish()?;
        stop_monitor.store(true, Ordering::SeqCst);
        if monitor.join().is_err() {
            bail!("the height monitor panicked");
        }
        self.reap();
        if matches!(outcome, Err(Stop::Interrupted)) || interrupts() > 0 {
            bail!(
                "interrupted; the testnet was healed and restarted. Replay with: {}",
                self.args.replay_command(self.seed)
            );
        }
        self.progress.set("checking");
        let checked = self.check(genesis, &traffic)?;
        let elapsed_s = self.t0.elapsed().as_secs_f64();
        let monitor = self.monitor.lock().map(|m| m.clone()).unwrap_or_default();
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(monitor.violations.iter().cloned());
        violations.extend(checked.violations);
        let mut by_invariant: BTreeMap<Invariant, usize> = BTreeMap::new();
        for v in &violations {
            *by_invariant.entry(v.invariant).or_insert(0) += 1;
        }
        let faults_injected = ["kill", "isolate", "cut_off", "restart_all"]
            .iter()
            .map(|k| self.tally.get(k).copied().unwrap_or(0))
            .sum();
        Ok(Report {
            seed: self.seed,
            replay: self.args.replay_command(self.seed),
            duration_s: self.args.duration,
            elapsed_s,
            rate: self.args.rate,
            nodes: self.clients.len(),
            validators: plan.validators.len(),
            f: plan.f,
            episodes: self.episodes,
            faults: Kind::ALL
                .iter()
                .map(|k| match k {
                    Kind::Kill => "kill",
                    Kind::Isolate => "isolate",
                    Kind::CutOff => "cut_off",
                    Kind::RestartAll => "restart_all",
                })
                .chain(["restart", "heal"])
                .map(|k| (k, self.tally.get(k).copied().unwrap_or(0)))
                .collect(),
            faults_injected,
            nemesis_errors: self.nemesis_errors,
            transfers_sent: traffic.created,
            transfers_final: traffic.final_,
            transfers: traffic,
            height_start,
            height_end: checked.height_end,
            blocks_compared: checked.blocks_compared,
            replayed_blocks: checked.replayed,
            reexecuted_blocks: checked.reexecuted,
            reexecute_reason: checked.reexecute_reason,
            accounts_compared: checked.accounts_compared,
            finals_compared: checked.finals_compared,
            height_reads: monitor.observations,
            violations: violations.len(),
            violations_by_invariant: by_invariant,
            violation_details: violations,
            events: std::mem::take(&mut self.events),
        })
    }

    /// Reads every node's blocks, transaction places and accounts, and runs the checkers.
    fn check(&mut self, genesis: &Genesis, traffic: &TrafficReport) -> anyhow::Result<Checked> {
        let clients: Vec<(usize, NodeClient)> = self
            .clients
            .iter()
            .map(|(i, c)| (*i, NodeClient::new(c.base(), READ_TIMEOUT)))
            .collect();
        let ours: HashSet<Hash> = traffic.finals.iter().map(|r| r.hash).collect();
        let mut out = Checked::default();
        let mut chain = Chain::new(genesis, &clients, ours);
        let heads: Vec<u64> = self.heights().iter().filter_map(|(_, h)| *h).collect();
        chain.extend(heads.iter().copied().max().unwrap_or(0));

        // Accounts: every one the replay knows, read between two status reads per node. Read again
        // when the replay, extended to what the nodes served, finds accounts that were not read.
        let supply = u128::from(genesis.total_supply().0);
        let mut served: Vec<ServedAccounts> = Vec::new();
        for _ in 0..3 {
            let wanted = chain.replay.history.accounts();
            served = clients
                .iter()
                .filter_map(|(i, c)| match read_accounts(*i, c, &wanted) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        chain.violations.push(Violation::new(
                            Invariant::Liveness,
                            format!("node {i} did not serve its accounts after the repair: {e:#}"),
                        ));
                        None
                    }
                })
                .collect();
            chain.extend(served.iter().map(|s| s.to_height).max().unwrap_or(0));
            if chain.replay.history.accounts().len() == wanted.len() {
                break;
            }
        }
        out.accounts_compared = served.first().map_or(0, |s| s.accounts.len());
        out.violations.extend(checks::check_balances(
            &chain.replay.history,
            supply,
            &served,
        ));

        // Where every node has each reported-final transfer.
        let hashes: Vec<Hash> = {
            let mut v: Vec<Hash> = traffic.finals.iter().map(|r| r.hash).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let views: Vec<FinalView> = std::thread::scope(|s| {
            let hs: Vec<_> = clients
                .iter()
                .map(|(i, c)| {
                    let hashes = &hashes;
                    s.spawn(move || {
                        let served: HashMap<Hash, Option<(u64, u32)>> = hashes
                            .iter()
                            .filter_map(|h| {
                                let r = (0..3).find_map(|_| c.transaction(h).ok());
                                r.map(|r| {
                                    let place = match r.status {
                                        TxStatus::Final { height, index } => {
                                            Some((height.0, index))
                                        }
                                        _ => None,
                                    };
                                    (*h, place)
                                })
                            })
                            .collect();
                        (*i, served)
                    })
                })
                .collect();
            hs.into_iter()
                .filter_map(|h| h.join().ok())
                .collect::<Vec<_>>()
        })
        .into_iter()
        .map(|(i, served)| FinalView {
            node: i,
            head: chain.heads.get(&i).copied().unwrap_or(0),
            in_blocks: chain.places.remove(&i).unwrap_or_default(),
            served,
        })
        .collect();
        for v in &views {
            let missing = hashes.len() - v.served.len();
            if missing > 0 {
                out.violations.push(Violation::new(
                    Invariant::Liveness,
                    format!("node {} did not answer about {missing} transfers", v.node),
                ));
            }
        }
        out.finals_compared = hashes.len();
        out.violations
            .extend(checks::check_finals(&traffic.finals, &views));

        let chains: Vec<(usize, Vec<BlockId>)> =
            std::mem::take(&mut chain.ids).into_iter().collect();
        out.blocks_compared = chains.iter().map(|(_, v)| v.len() as u64).sum();
        out.violations.extend(checks::check_forks(&chains));
        out.height_end = chain.replay.height();
        out.replayed = chain.replay.replayed;
        out.reexecuted = chain.replay.reexecuted;
        out.reexecute_reason = chain.replay.reexecute_reason.clone();
        out.violations.append(&mut chain.violations);
        out.violations.append(&mut chain.replay.violations);
        Ok(out)
    }
}

#[derive(Debug, Default)]
struct Checked {
    violations: Vec<Violation>,
    height_end: u64,
    blocks_compared: u64,
    replayed: u64,
    reexecuted: u64,
    reexecute_reason: Option<String>,
    accounts_compared: usize,
    finals_compared: usize,
}

/// Every node's chain, read range by range; the replay runs over it as it arrives.
struct Chain<'c> {
    clients: &'c [(usize, NodeClient)],
    replay: replay::Replay,
    next: u64,
    /// Certificates the nodes serve for the height below `next`.
    parent_certs: Vec<CommitCertificate>,
    ids: BTreeMap<usize, Vec<BlockId>>,
    /// Where our reported-final transfers sit in each node's blocks.
    places: HashMap<usize, HashMap<Hash, Vec<(u64, u32)>>>,
    ours: HashSet<Hash>,
    heads: HashMap<usize, u64>,
    violations: Vec<Violation>,
    failed: HashSet<usize>,
}

impl<'c> Chain<'c> {
    fn new(
        genesis: &Genesis,
        clients: &'c [(usize, NodeClient)],
        ours: HashSet<Hash>,
    ) -> Chain<'c> {
        Chain {
            clients,
            replay: replay::Replay::new(genesis),
            next: 1,
            parent_certs: Vec::new(),
            ids: BTreeMap::new(),
            places: HashMap::new(),
            ours,
            heads: HashMap::new(),
            violations: Vec::new(),
            failed: HashSet::new(),
        }
    }

    /// Reads and replays every height up to `to` that some node has.
    fn extend(&mut self, to: u64) {
        while self.next <= to {
            let end = to.min(self.next + RANGE - 1);
            let mut per_node: Vec<(usize, Vec<BlockResponse>)> = Vec::new();
            for (i, c) in self.clients {
                if self.failed.contains(i) {
                    continue;
                }
                match (0..3).find_map(|_| c.blocks(self.next, end).ok()) {
                    Some(blocks) => per_node.push((*i, blocks)),
                    None => {
                        self.failed.insert(*i);
                        self.violations.push(Violation::new(
                            Invariant::Liveness,
                            format!(
                                "node {i} did not serve blocks {}..={end} after the repair",
                                self.next
                            ),
                        ));
                    }
                }
            }
            let start = self.next;
            for h in start..=end {
                // Only blocks that continue what was read from the node: a node that grew during
                // the reads must not show a gap (its head says which heights it was checked at).
                let heads = &self.heads;
                let at: Vec<(usize, &BlockResponse)> = per_node
                    .iter()
                    .filter(|(i, _)| heads.get(i).copied().unwrap_or(0) + 1 == h)
                    .filter_map(|(i, bs)| {
                        bs.iter().find(|b| b.header.height.0 == h).map(|b| (*i, b))
                    })
                    .collect();
                let Some(&(_, first)) = at.first() else {
                    // No node has this height: the end of every chain.
                    return;
                };
                for (i, b) in &at {
                    self.ids.entry(*i).or_default().push(BlockId {
                        height: h,
                        hash: b.hash,
                        state_root: b.header.state_root,
                    });
                    self.heads.insert(*i, h);
                    for (k, t) in b.txs.iter().enumerate() {
                        if self.ours.contains(&t.hash) {
                            self.places
                                .entry(*i)
                                .or_default()
                                .entry(t.hash)
                                .or_default()
                                .push((h, k as u32));
                        }
                    }
                }
                self.replay.apply(first, &self.parent_certs);
                self.parent_certs = at.iter().filter_map(|(_, b)| b.commit.clone()).collect();
                self.next = h + 1;
            }
        }
    }
}

/// Stops every node gracefully at once (SIGTERM, SIGKILL after the grace period) with the helper
/// `testnet down` uses, without marking the testnet stopped: it is started again right after.
fn stop_every_node(dir: &Path) -> anyhow::Result<()> {
    let _lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    let all: Vec<usize> = state.nodes.iter().map(|n| n.index).collect();
    let failed: Vec<String> = stop_nodes(&mut state, &all, STOP_GRACE)
        .into_iter()
        .filter_map(|(i, r)| r.err().map(|e| format!("node {i}: {e:#}")))
        .collect();
    state.save(dir)?;
    if !failed.is_empty() {
        bail!("could not stop {}", failed.join("; "));
    }
    Ok(())
}

/// One node's accounts between two status reads.
fn read_accounts(
    node: usize,
    c: &NodeClient,
    wanted: &BTreeSet<Address>,
) -> anyhow::Result<ServedAccounts> {
    let from = c.status()?.height.0;
    let mut accounts = Vec::with_capacity(wanted.len());
    for a in wanted {
        let r = account_or_empty(c, a)?;
        accounts.push((
            *a,
            Account {
                balance: r.balance,
                nonce: r.nonce,
            },
        ));
    }
    let to = c.status()?.height.0;
    Ok(ServedAccounts {
        node,
        from_height: from,
        to_height: to,
        accounts,
    })
}

/// Reads every node's height until told to stop.
fn monitor_heights(nodes: &[(usize, String)], m: &Mutex<HeightMonitor>, stop: &AtomicBool) {
    let clients: Vec<(usize, NodeClient)> = nodes
        .iter()
        .map(|(i, u)| (*i, NodeClient::new(u, POLL_TIMEOUT)))
        .collect();
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        for (i, c) in &clients {
            if let Ok(s) = c.status()
                && let Ok(mut m) = m.lock()
            {
                m.observe(*i, s.height);
            }
        }
        if let Some(rest) = MONITOR_EVERY.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    seed: u64,
    /// The command that replays this schedule.
    replay: String,
    duration_s: u64,
    elapsed_s: f64,
    rate: u64,
    nodes: usize,
    validators: usize,
    f: usize,
    episodes: usize,
    /// Actions by kind: the faults (kill, isolate, cut_off, restart_all) and the repairs
    /// (restart, heal).
    faults: BTreeMap<&'static str, u64>,
    faults_injected: u64,
    nemesis_errors: u64,
    transfers_sent: u64,
    transfers_final: u64,
    transfers: TrafficReport,
    height_start: u64,
    height_end: u64,
    /// Blocks read and compared, summed over nodes.
    blocks_compared: u64,
    /// Blocks replayed with ledger-core's `replay_block`, and re-executed without certificates.
    replayed_blocks: u64,
    reexecuted_blocks: u64,
    reexecute_reason: Option<String>,
    accounts_compared: usize,
    finals_compared: usize,
    height_reads: u64,
    violations: usize,
    violations_by_invariant: BTreeMap<Invariant, usize>,
    violation_details: Vec<Violation>,
    events: Vec<String>,
}

fn print_report(r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        crate::outln!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let f = |k: &str| r.faults.get(k).copied().unwrap_or(0);
    crate::outln!("seed         {} (replay: {})", r.seed, r.replay);
    crate::outln!(
        "ran          {:.1} s ({} s of faults) on {} nodes, {} validators, f = {}; {} episodes",
        r.elapsed_s,
        r.duration_s,
        r.nodes,
        r.validators,
        r.f,
        r.episodes
    );
    crate::outln!(
        "faults       {} injected: kill -9 {} · isolate {} · cut off > f {} · restart all {}; repairs: restart {} · heal {}{}",
        r.faults_injected,
        f("kill"),
        f("isolate"),
        f("cut_off"),
        f("restart_all"),
        f("restart"),
        f("heal"),
        if r.nemesis_errors > 0 {
            format!(" ({} nemesis errors)", r.nemesis_errors)
        } else {
            String::new()
        }
    );
    let t = &r.transfers;
    crate::outln!(
        "transfers    {} sent ({} submissions) · {} final · {} not final at the end",
        r.transfers_sent,
        t.submissions,
        r.transfers_final,
        t.not_final
    );
    if !t.submit_errors.is_empty() {
        let e: Vec<String> = t
            .submit_errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        crate::outln!(
            "             refused or unanswered submissions: {}",
            e.join(" · ")
        );
    }
    crate::outln!(
        "chain        height {} -> {}; replayed from genesis: {} blocks through ledger-core replay_block, {} re-executed without certificates",
        r.height_start,
        r.height_end,
        r.replayed_blocks,
        r.reexecuted_blocks
    );
    if let Some(why) = &r.reexecute_reason {
        crate::outln!("             first re-executed: {why}");
    }
    let status = |inv: Invariant| match r.violations_by_invariant.get(&inv) {
        None => "ok".to_string(),
        Some(n) => format!("VIOLATED ({n})"),
    };
    crate::outln!("checks");
    crate::outln!(
        "  no fork at any height                 {} ({} blocks compared over all nodes)",
        status(Invariant::Fork),
        r.blocks_compared
    );
    crate::outln!(
        "  final stays final at the same place   {} ({} transfers on every node)",
        status(Invariant::FinalMoved),
        r.finals_compared
    );
    crate::outln!(
        "  replay from genesis is valid          {}",
        status(Invariant::Replay)
    );
    crate::outln!(
        "  served balances/nonces = replay       {} ({} accounts on every node)",
        status(Invariant::Balance),
        r.accounts_compared
    );
    crate::outln!(
        "  supply conserved                      {}",
        status(Invariant::Supply)
    );
    crate::outln!(
        "  heights never go backwards            {} ({} reads)",
        status(Invariant::HeightBackwards),
        r.height_reads
    );
    crate::outln!(
        "  chain resumes after repairs           {}",
        status(Invariant::Liveness)
    );
    crate::outln!(
        "  no finality without a quorum          {}",
        status(Invariant::FinalityWithoutQuorum)
    );
    for v in r.violation_details.iter().take(50) {
        crate::outln!("VIOLATION {:?}: {}", v.invariant, v.detail);
    }
    crate::outln!(
        "violations={} faults={} final={} seed={}",
        r.violations,
        r.faults_injected,
        r.transfers_final,
        r.seed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_command_carries_what_changes_the_schedule() {
        let mut a = ChaosArgs::defaults();
        assert_eq!(
            a.replay_command(42),
            "testnet chaos --seed 42 --duration 60 --rate 20"
        );
        a.kinds = vec![Kind::Kill, Kind::CutOff];
        a.max_hold_ms = 9000;
        let c = a.replay_command(42);
        assert!(c.contains("--kinds kill,cut-off"), "{c}");
        assert!(c.contains("--max-hold-ms 9000"), "{c}");
    }

    /// Review: the replay line quotes --kill-cmd and --start-cmd with Rust's `{:?}`, i.e. in
    /// double quotes, where a shell still expands `$(..)`, `$VAR` and backquotes. Pasted, the
    /// printed line runs `$(cat pids/{i})` at once, in the wrong place, and replays another
    /// command; a manifest path with a space splits in two.
    #[test]
    fn the_replay_command_gives_a_shell_the_same_commands() {
        let mut a = ChaosArgs::defaults();
        a.kinds = vec![Kind::Kill];
        a.manifest = Some(PathBuf::from("my net"));
        a.kill_cmd = Some("kill $(cat /nonexistent/pids/{i})".into());
        a.start_cmd = Some("echo `id -u` {name}".into());
        let line = a.replay_command(7);
        let args = line.strip_prefix("testnet ").expect("a testnet command");
        // What a shell hands the binary, one argument a line.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {args}"))
            .stderr(std::process::Stdio::null())
            .output()
            .expect("sh");
        let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| w == flag)
                .and_then(|i| words.get(i + 1).cloned())
        };
        assert_eq!(after("--manifest").as_deref(), Some("my net"), "{line}");
        assert_eq!(after("--kill-cmd"), a.kill_cmd, "{line}");
        assert_eq!(after("--start-cmd"), a.start_cmd, "{line}");
    }
}
