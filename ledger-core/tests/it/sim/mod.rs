//! Deterministic simulation of the consensus with faults.
//!
//! N nodes run the node's real consensus driver, ledger-core's sans-IO
//! [`Engine`](ledger_core::engine::Engine), behind simulated I/O ([`node`]: a store with the
//! durable chain and the write-ahead log, a mempool, two clocks), connected by simulated links
//! ([`network`]), in virtual time driven by one event queue (a binary heap ordered by time, then
//! by a sequence number, so simultaneous events keep their insertion order). A seeded workload
//! ([`workload`]) submits real signed transfers from funded genesis accounts to random nodes,
//! which gossip them. All randomness comes from one ChaCha8 generator seeded from the seed, so a
//! seed replays exactly; every processed event is folded into a SHA-256 event-log hash to prove
//! it. Fault schedules come from [`scenario`], byzantine behaviours from [`byzantine`], the
//! invariants from [`checker`].
//!
//! Environment:
//! - `SIM_SEEDS=<n>`: sweep `n` seeds (default 1000) in the `sweep` test, from seed
//!   `SIM_SEEDS_FROM` (default 0), so a long run can be split or resumed where it was cut short;
//! - `SIM_SEED=<s>`: sweep only seed `s`.
//!
//! A failing seed prints its fault schedule, the violations and the command replaying it:
//! `SIM_SEED=<s> cargo nextest run --release -p ledger-core sim::sweep`. Keep it in
//! [`regressions`] once fixed.

mod byzantine;
mod checker;
mod network;
mod node;
mod non_vacuity;
mod regressions;
mod scenario;
mod workload;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use borsh::{BorshDeserialize, BorshSerialize};
use ledger_core::consensus::ConsensusMessage;
use ledger_core::genesis::{Genesis, GenesisAccount};
use ledger_core::{
    Amount, ChainId, CommittedBlock, ConsensusParams, Hash, Keypair, SignedTransaction,
    TimestampMs, Validator, ValidatorSet, VerifiedTransaction, codec,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use byzantine::Variant;
use checker::{Checker, Violation, ViolationKind};
use network::{LinkConfig, Network};
use node::SimNode;
use scenario::Scenario;
use workload::Workload;

/// Virtual time of the start of every run (ms since the epoch, so timestamps look like times).
const T0: u64 = 1_700_000_000_000;
/// Funded genesis accounts the workload sends from.
pub const ACCOUNTS: u32 = 16;
/// Balance of each funded account.
pub const ACCOUNT_BALANCE: u64 = 1_000_000_000;

/// What nodes send each other.
#[allow(clippy::large_enum_variant)] // Transient: encoded at once, like `ConsensusMessage`.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum NetMsg {
    Consensus(ConsensusMessage),
    SyncRequest {
        from_height: u64,
    },
    SyncResponse {
        blocks: Vec<CommittedBlock>,
    },
    /// Transactions gossiped by the node a client submitted them to.
    Txs(Vec<SignedTransaction>),
}

#[derive(Debug, Clone)]
pub enum Event {
    Deliver {
        from: usize,
        to: usize,
        bytes: Rc<Vec<u8>>,
    },
    /// The node's engine asked to be woken at `deadline` (monotonic ms) in incarnation `epoch`.
    Wake {
        node: usize,
        epoch: u32,
        deadline: u64,
    },
    Crash {
        node: usize,
        mid_output: bool,
    },
    Restart {
        node: usize,
    },
    Partition {
        groups: Vec<u8>,
    },
    Heal,
    /// Messages from `from` to `to` are dropped (`on`) or flow again.
    OneWay {
        from: usize,
        to: usize,
        on: bool,
    },
    /// The node's wall clock is set to virtual time + `offset_ms` (its monotonic clock is not).
    ClockJump {
        node: usize,
        offset_ms: i64,
    },
    /// The workload's clients act.
    Workload,
    Gst,
}

#[derive(Debug)]
struct Queued {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Reversed: the heap pops the earliest time, then the lowest sequence number.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Queued>,
    seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.heap.push(Queued {
            at,
            seq: self.seq,
            event,
        });
    }

    fn pop(&mut self) -> Option<Queued> {
        self.heap.pop()
    }
}

/// Transactions the workload signed and verified, by hash. A pure memo of
/// `SignedTransaction::verify`: a transaction's hash covers its signature, so bytes that decode to
/// a transaction with a hash found here are that verified transaction; anything else (a tampered
/// or byzantine transaction) is verified for real.
pub type TxMemo = BTreeMap<Hash, VerifiedTransaction>;

/// The fixed facts of a run.
#[derive(Debug)]
pub struct World {
    pub genesis: Arc<Genesis>,
    pub chain_id: ChainId,
    pub params: ConsensusParams,
    pub validators: ValidatorSet,
    pub n: usize,
    /// Validator keys; node i holds `keys[i]`, validator i of the (address-sorted) set.
    #[allow(dead_code)]
    pub keys: Vec<Keypair>,
}

/// What a node's driver can touch while handling one event.
pub struct Ctx<'a> {
    pub now: u64,
    pub rng: &'a mut ChaCha8Rng,
    pub queue: &'a mut EventQueue,
    pub net: &'a mut Network,
    pub checker: &'a mut Checker,
    pub world: &'a World,
    pub memo: &'a TxMemo,
}

impl Ctx<'_> {
    pub fn send(&mut self, from: usize, to: usize, msg: &NetMsg) {
        self.send_raw(from, to, Rc::new(codec::encode(msg)));
    }

    /// Puts bytes on the wire as they are (a byzantine node's forgeries).
    pub fn send_raw(&mut self, from: usize, to: usize, bytes: Rc<Vec<u8>>) {
        self.net
            .send(self.rng, self.queue, self.now, from, to, bytes);
    }

    /// To everyone but `from`; encoded once.
    pub fn broadcast(&mut self, from: usize, msg: &NetMsg) {
        self.broadcast_raw(from, Rc::new(codec::encode(msg)));
    }

    pub fn broadcast_raw(&mut self, from: usize, bytes: Rc<Vec<u8>>) {
        for to in 0..self.world.n {
            if to != from {
                self.net
                    .send(self.rng, self.queue, self.now, from, to, Rc::clone(&bytes));
            }
        }
    }
}

/// Consensus parameters of the simulated chain: the defaults scaled to a LAN-like network.
pub fn sim_params() -> ConsensusParams {
    ConsensusParams {
        timeout_propose_ms: 400,
        timeout_prevote_ms: 200,
        timeout_precommit_ms: 200,
        timeout_delta_ms: 150,
        block_fill_pause_ms: 20,
        empty_block_interval_ms: 200,
        max_block_txs: 48,
        max_clock_drift_ms: 1_000,
        ..ConsensusParams::default()
    }
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub scenario: String,
    /// Heights on the agreed chain.
    pub heights: u64,
    /// Transfers on the agreed chain.
    pub txs: u64,
    pub violations: Vec<Violation>,
    pub log_hash: [u8; 32],
    /// Virtual time the run lasted.
    pub virtual_ms: u64,
    pub events: u64,
    pub evidence: u64,
    pub stats: checker::Stats,
    /// Decision round per agreed height.
    pub rounds: Vec<u32>,
    /// Virtual time (since the start) of the first commit per agreed height.
    pub commit_ms: Vec<u64>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn has(&self, kind: ViolationKind) -> bool {
        self.violations.iter().any(|v| v.kind == kind)
    }

    /// The failure message: what ran, what broke, how to replay.
    pub fn failure(&self) -> String {
        let mut s = format!(
            "sim seed {} FAILED ({}; {} heights, {} txs, {} events, {} ms virtual, {} evidence reports)\n",
            self.seed,
            self.scenario,
            self.heights,
            self.txs,
            self.events,
            self.virtual_ms,
            self.evidence
        );
        for v in &self.violations {
            s.push_str(&format!("  {v}\n"));
        }
        s.push_str(&format!(
            "  replay: SIM_SEED={} cargo nextest run --release -p ledger-core sim::sweep\n",
            self.seed
        ));
        s
    }
}

/// Validator keys, sorted by address: node i is validator i of the set.
pub fn validator_keys(n: usize) -> Vec<Keypair> {
    let mut keys: Vec<Keypair> = (0..n as u32).map(|i| Keypair::dev("sim", i)).collect();
    keys.sort_by_key(|k| k.address());
    keys
}

/// Keys of the funded accounts.
pub fn account_keys() -> Vec<Keypair> {
    (0..ACCOUNTS)
        .map(|i| Keypair::dev("sim-account", i))
        .collect()
}

/// The genesis of a run: the sim's consensus parameters, the validators with `powers` (by node
/// index), the funded accounts.
pub fn sim_genesis(keys: &[Keypair], powers: &[u64]) -> Genesis {
    Genesis::new(
        ChainId::new("sim-chain").expect("valid chain id"),
        TimestampMs(T0 - 10_000),
        None,
        sim_params(),
        keys.iter()
            .zip(powers)
            .map(|(k, p)| Validator {
                address: k.address(),
                public_key: k.public(),
                power: *p,
            })
            .collect(),
        account_keys()
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: Amount(ACCOUNT_BALANCE),
            })
            .collect(),
    )
    .expect("a valid genesis")
}

/// Runs one scenario to the end.
pub fn run(s: &Scenario) -> Report {
    let keys = validator_keys(s.n);
    let genesis = Arc::new(sim_genesis(&keys, &s.powers));
    let world = World {
        chain_id: genesis.chain_id().clone(),
        params: genesis.consensus_params().clone(),
        validators: genesis.validators().clone(),
        genesis: genesis.clone(),
        n: s.n,
        keys: keys.clone(),
    };
    debug_assert!(
        (0..s.n).all(|i| world.validators.index_of(&keys[i].address()) == Some(i)),
        "node i is validator i"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let honest: Vec<bool> = (0..s.n)
        .map(|i| s.byzantine.iter().all(|(b, _)| *b != i))
        .collect();
    let mut nodes: Vec<SimNode> = keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let strategy = s
                .byzantine
                .iter()
                .find(|(b, _)| *b == i)
                .map(|(_, v)| Variant::strategy(*v));
            let mut node = SimNode::new(i, key, strategy, s.clock_offsets[i], s.n);
            node.lying_mempool = s.lying_mempool && honest[i];
            node
        })
        .collect();
    let mut checker = Checker::new(genesis.clone(), honest.clone());
    let mut net = Network::new(s.links_before_gst.clone());
    let mut queue = EventQueue::default();
    let mut memo = TxMemo::new();
    let mut workload = Workload::new(&genesis, s.tx_rate);

    let gst = T0 + s.gst_ms;
    for c in &s.crashes {
        queue.push(
            T0 + c.at_ms,
            Event::Crash {
                node: c.node,
                mid_output: c.mid_output,
            },
        );
        queue.push(
            (T0 + c.at_ms + c.down_ms).min(gst),
            Event::Restart { node: c.node },
        );
    }
    for p in &s.partitions {
        queue.push(
            T0 + p.start_ms,
            Event::Partition {
                groups: p.groups.clone(),
            },
        );
        queue.push(T0 + p.heal_ms, Event::Heal);
    }
    for w in &s.one_way {
        let (from, to) = (w.from, w.to);
        queue.push(T0 + w.start_ms, Event::OneWay { from, to, on: true });
        queue.push(
            T0 + w.heal_ms,
            Event::OneWay {
                from,
                to,
                on: false,
            },
        );
    }
    for j in &s.clock_jumps {
        queue.push(
            T0 + j.at_ms,
            Event::ClockJump {
                node: j.node,
                offset_ms: j.offset_ms,
            },
        );
    }
    queue.push(gst, Event::Gst);
    if s.tx_rate > 0 {
        queue.push(T0 + workload::EVERY_MS, Event::Workload);
    }
    for node in &mut nodes {
        let mut ctx = Ctx {
            now: T0,
            rng: &mut rng,
            queue: &mut queue,
            net: &mut net,
            checker: &mut checker,
            world: &world,
            memo: &memo,
        };
        node.start(&mut ctx);
    }

    let end = gst + s.liveness_window_ms;
    let mut log = Sha256::new();
    let mut events: u64 = 0;
    let mut target: Option<u64> = None;
    let mut now = T0;
    let mut done = false;
    while let Some(q) = queue.pop() {
        if q.at > end {
            break;
        }
        events += 1;
        if events > s.max_events {
            checker.violate(
                ViolationKind::EventBudget,
                q.at - T0,
                format!("more than {} events", s.max_events),
            );
            break;
        }
        now = q.at;
        hash_event(&mut log, &q);
        if let Event::Workload = q.event {
            let batches = workload.step(now, &mut rng, &mut memo, &checker, s.n);
            for (node, txs) in batches {
                let mut ctx = Ctx {
                    now,
                    rng: &mut rng,
                    queue: &mut queue,
                    net: &mut net,
                    checker: &mut checker,
                    world: &world,
                    memo: &memo,
                };
                nodes[node].submit(&mut ctx, txs);
            }
            queue.push(now + workload::EVERY_MS, Event::Workload);
            continue;
        }
        let mut ctx = Ctx {
            now,
            rng: &mut rng,
            queue: &mut queue,
            net: &mut net,
            checker: &mut checker,
            world: &world,
            memo: &memo,
        };
        match q.event {
            Event::Deliver { from, to, bytes } => nodes[to].on_deliver(&mut ctx, from, &bytes),
            Event::Wake {
                node,
                epoch,
                deadline,
            } => nodes[node].on_wake(&mut ctx, epoch, deadline),
            Event::Crash { node, mid_output } => nodes[node].crash_event(&mut ctx, mid_output),
            Event::Restart { node } => nodes[node].restart(&mut ctx),
            Event::Partition { groups } => ctx.net.partition(groups),
            Event::Heal => ctx.net.heal(),
            Event::OneWay { from, to, on } => ctx.net.one_way(from, to, on),
            Event::ClockJump { node, offset_ms } => nodes[node].set_clock_offset(offset_ms),
            Event::Workload => {}
            Event::Gst => {
                ctx.net.links = s.links_after_gst.clone();
                ctx.net.heal();
                ctx.net.clear_one_way();
                for node in nodes.iter_mut() {
                    node.restart(&mut ctx);
                }
                let top = (0..s.n)
                    .filter(|i| honest[*i])
                    .map(|i| ctx.checker.heights[i])
                    .max()
                    .unwrap_or(0);
                target = Some(top + s.liveness_heights);
            }
        }
        if let Some(t) = target
            && (0..s.n).all(|i| !honest[i] || checker.heights[i] >= t)
        {
            done = true;
            break;
        }
    }
    if !done
        && !checker
            .violations
            .iter()
            .any(|v| v.kind == ViolationKind::EventBudget)
    {
        let heights: Vec<(usize, u64, Option<u32>)> = (0..s.n)
            .map(|i| (i, checker.heights[i], nodes[i].round()))
            .collect();
        checker.violate(
            ViolationKind::Liveness,
            now - T0,
            format!(
                "honest nodes did not all reach height {target:?} within {} ms after GST; (node, height, round): {heights:?}",
                s.liveness_window_ms
            ),
        );
    }
    let rounds = checker.canonical.values().map(|c| c.round).collect();
    let commit_ms = checker
        .canonical
        .values()
        .map(|c| c.first_commit_ms - T0)
        .collect();
    Report {
        seed: s.seed,
        scenario: s.describe(),
        heights: checker.canonical.len() as u64,
        txs: checker.canonical.values().map(|c| c.txs as u64).sum(),
        violations: checker.violations.clone(),
        log_hash: log.finalize().into(),
        virtual_ms: now - T0,
        events,
        evidence: checker.evidence_reports,
        stats: checker.stats,
        rounds,
        commit_ms,
    }
}

fn hash_event(log: &mut Sha256, q: &Queued) {
    log.update(q.at.to_le_bytes());
    log.update(q.seq.to_le_bytes());
    match &q.event {
        Event::Deliver { from, to, bytes } => {
            log.update([0, *from as u8, *to as u8]);
            log.update(bytes.as_slice());
        }
        Event::Wake {
            node,
            epoch,
            deadline,
        } => {
            log.update([1, *node as u8]);
            log.update(epoch.to_le_bytes());
            log.update(deadline.to_le_bytes());
        }
        Event::Crash { node, mid_output } => log.update([2, *node as u8, *mid_output as u8]),
        Event::Restart { node } => log.update([3, *node as u8]),
        Event::Partition { groups } => {
            log.update([4]);
            log.update(groups);
        }
        Event::Heal => log.update([5]),
        Event::Gst => log.update([6]),
        Event::OneWay { from, to, on } => log.update([7, *from as u8, *to as u8, *on as u8]),
        Event::ClockJump { node, offset_ms } => {
            log.update([8, *node as u8]);
            log.update(offset_ms.to_le_bytes());
        }
        Event::Workload => log.update([9]),
    }
}

// -------------------------------------------------------------------------------------------------
// Seeds from the environment
// -------------------------------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

const DEFAULT_SEEDS: u64 = 1000;

/// What a sweep's seeds exercised: seeds and heights per network size, seeds per kind of fault.
#[derive(Debug, Default)]
struct FaultMix {
    by_n: BTreeMap<usize, (u64, u64)>,
    byzantine: BTreeMap<String, u64>,
    crashes: u64,
    partitions: u64,
    three_way: u64,
    one_way: u64,
    lossy: u64,
    duplicating: u64,
    reordering: u64,
    skewed: u64,
    jumps: u64,
    unequal_powers: u64,
}

impl FaultMix {
    fn add(&mut self, s: &Scenario, heights: u64) {
        let e = self.by_n.entry(s.n).or_default();
        e.0 += 1;
        e.1 += heights;
        for (_, v) in &s.byzantine {
            *self.byzantine.entry(format!("{v:?}")).or_default() += 1;
        }
        let l = &s.links_before_gst;
        self.crashes += u64::from(!s.crashes.is_empty());
        self.partitions += u64::from(!s.partitions.is_empty());
        self.three_way += u64::from(s.partitions.iter().any(|p| p.groups.contains(&2)));
        self.one_way += u64::from(!s.one_way.is_empty());
        self.skewed += u64::from(!s.skewed.is_empty());
        self.jumps += u64::from(!s.clock_jumps.is_empty());
        self.unequal_powers += u64::from(s.powers.iter().any(|p| *p != s.powers[0]));
        self.lossy += u64::from(l.loss > 0.0);
        self.duplicating += u64::from(l.duplicate > 0.0);
        self.reordering += u64::from(l.reorder > 0.0);
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .by_n
            .iter()
            .map(|(n, (seeds, h))| format!("n={n} {seeds} seeds/{h} heights"))
            .collect();
        parts.push(format!(
            "seeds with crashes {} partitions {} (three groups {}) one-way links {} loss {} duplication {} reordering {} clock beyond drift {} clock jumps {} unequal powers {}",
            self.crashes,
            self.partitions,
            self.three_way,
            self.one_way,
            self.lossy,
            self.duplicating,
            self.reordering,
            self.skewed,
            self.jumps,
            self.unequal_powers
        ));
        let byz: Vec<String> = self
            .byzantine
            .iter()
            .map(|(v, c)| format!("{v} {c}"))
            .collect();
        parts.push(format!("byzantine nodes: {}", byz.join(", ")));
        parts.join("; ")
    }
}

/// `SIM_SEEDS` seeds from `SIM_SEEDS_FROM` (or the one `SIM_SEED`) over mixed fault schedules, on
/// one worker per core, taking seeds in order (each run is deterministic on its own, so the split
/// changes nothing but the wall time, and a run cut short has done about the first `seeds=` of its
/// last progress line). Ends with one summary line, `sim seeds=<n> heights=<n> txs=<n>
/// violations=<n>`, then the fault mix, and fails
/// with every failing seed's replay command.
#[test]
fn sweep() {
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let from = env_u64("SIM_SEEDS_FROM").unwrap_or(0);
            (from..from.saturating_add(env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS))).collect()
        }
    };
    // The workers are rayon's own threads: the ledger's parallel signature checks inside a run
    // then join work on the same pool instead of waking a second set of threads per certificate.
    let workers = rayon::current_num_threads().min(seeds.len().max(1));
    // Long sweeps report progress, so a run cut short still says how far it got.
    let progress_every = if seeds.len() > 5_000 { 1_000 } else { u64::MAX };
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let heights = AtomicU64::new(0);
    let txs = AtomicU64::new(0);
    let violations = AtomicU64::new(0);
    let mix = Mutex::new(FaultMix::default());
    let stats = Mutex::new(checker::Stats::default());
    let failures = Mutex::new(Vec::<String>::new());
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                while let Some(seed) = seeds.get(next.fetch_add(1, AtomicOrdering::Relaxed)) {
                    let scenario = Scenario::random(*seed);
                    let report = run(&scenario);
                    heights.fetch_add(report.heights, AtomicOrdering::Relaxed);
                    txs.fetch_add(report.txs, AtomicOrdering::Relaxed);
                    violations.fetch_add(report.violations.len() as u64, AtomicOrdering::Relaxed);
                    if let Ok(mut m) = mix.lock() {
                        m.add(&scenario, report.heights);
                    }
                    if let Ok(mut st) = stats.lock() {
                        st.add(&report.stats);
                    }
                    if !report.ok() {
                        eprintln!("{}", report.failure());
                        if let Ok(mut f) = failures.lock() {
                            f.push(report.failure());
                        }
                    }
                    let finished = done.fetch_add(1, AtomicOrdering::Relaxed) + 1;
                    if finished.is_multiple_of(progress_every) {
                        println!(
                            "sim progress: seeds={finished} heights={} violations={} ({:.0}s)",
                            heights.load(AtomicOrdering::Relaxed),
                            violations.load(AtomicOrdering::Relaxed),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    println!(
        "sim seeds={} heights={} txs={} violations={} ({workers} threads, {:.1}s)",
        seeds.len(),
        heights.into_inner(),
        txs.into_inner(),
        violations.into_inner(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "sim fault mix: {}",
        mix.into_inner().unwrap_or_default().describe()
    );
    println!(
        "sim honest nodes saw: {}",
        stats.into_inner().unwrap_or_default()
    );
    let failures = failures.into_inner().unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// -------------------------------------------------------------------------------------------------
// Scenarios with names
// -------------------------------------------------------------------------------------------------

fn assert_ok(r: &Report) {
    assert!(r.ok(), "{}", r.failure());
}

#[test]
fn same_seed_gives_the_same_event_log() {
    for seed in [3, 11, 42] {
        let s = Scenario::random(seed);
        let a = run(&s);
        let b = run(&s);
        assert_eq!(
            a.log_hash,
            b.log_hash,
            "seed {seed} ({}) is not deterministic",
            s.describe()
        );
        assert_eq!(a.heights, b.heights);
        assert!(a.events > 0);
    }
    assert_ne!(
        run(&Scenario::random(3)).log_hash,
        run(&Scenario::random(4)).log_hash
    );
}

#[test]
fn n1_commits_every_height_in_round_0() {
    let r = run(&Scenario::clean(1, 1));
    assert_ok(&r);
    assert!(r.heights >= 5, "{r:?}");
    assert!(r.txs > 0, "{r:?}");
    assert!(r.rounds.iter().all(|r| *r == 0), "{:?}", r.rounds);
}

#[test]
fn n4_and_n7_clean_networks_commit_every_height_in_round_0() {
    for n in [4, 7] {
        let r = run(&Scenario::clean(2, n));
        assert_ok(&r);
        assert!(r.heights >= 5);
        assert!(r.rounds.iter().all(|r| *r == 0), "n={n}: {:?}", r.rounds);
    }
}

#[test]
fn n1_crash_in_the_middle_of_outputs_never_double_signs() {
    let mut s = Scenario::clean(5, 1);
    s.gst_ms = 6_000;
    s.crashes = (0..12)
        .map(|i| scenario::Crash {
            node: 0,
            at_ms: 300 + i * 450,
            down_ms: 150,
            mid_output: i % 2 == 0,
        })
        .collect();
    let r = run(&s);
    assert_ok(&r);
}

#[test]
fn n4f1_each_byzantine_variant_is_tolerated() {
    for v in Variant::ALL {
        for seed in 0..4 {
            let mut s = Scenario::clean(100 + seed, 4);
            s.byzantine = vec![(seed as usize % 4, v)];
            s.links_before_gst = LinkConfig {
                loss: 0.1,
                ..LinkConfig::good(20, 30)
            };
            s.gst_ms = 4_000;
            let r = run(&s);
            assert_ok(&r);
        }
    }
}

#[test]
fn n7f2_two_silent_validators_still_commit() {
    let mut s = Scenario::clean(7, 7);
    s.byzantine = vec![(1, Variant::Silent), (4, Variant::Silent)];
    let r = run(&s);
    assert_ok(&r);
    assert!(r.heights >= 5);
}

#[test]
fn n4_partition_of_two_and_two_stalls_then_heals() {
    let mut s = Scenario::clean(9, 4);
    s.gst_ms = 5_000;
    s.partitions = vec![scenario::PartitionWindow {
        start_ms: 500,
        heal_ms: 5_000,
        groups: vec![0, 0, 1, 1],
    }];
    let r = run(&s);
    assert_ok(&r);
    // Nothing can be decided while no side has a quorum.
    let during = r
        .commit_ms
        .iter()
        .filter(|t| **t > 900 && **t < 5_000)
        .count();
    assert_eq!(during, 0, "{:?}", r.commit_ms);
}

/// Timers run on the monotonic clock: a wall clock jumping back mid-run (n = 1, by just under the
/// drift bound, so the node can still prevote for blocks stamped after its parent, whose time its
/// clock now lags) neither fires nor delays a timeout, so blocks keep coming at the same pace, in
/// round 0. (Back by more than the drift bound, n = 1 stalls by design: every valid block is then
/// stamped too far ahead of its own clock to prevote for.)
#[test]
fn n1_wall_clock_jumping_back_does_not_stall_the_chain() {
    let mut s = Scenario::clean(21, 1);
    s.gst_ms = 4_000;
    s.liveness_heights = 20;
    s.clock_jumps = vec![scenario::ClockJump {
        node: 0,
        at_ms: 2_000,
        offset_ms: -900,
    }];
    let r = run(&s);
    assert_ok(&r);
    assert!(r.rounds.iter().all(|r| *r == 0), "{:?}", r.rounds);
    let before = r.commit_ms.iter().filter(|t| **t < 2_000).count();
    let after = r
        .commit_ms
        .iter()
        .filter(|t| (2_000..4_000).contains(*t))
        .count();
    assert!(
        after + 2 >= before / 2 && after > 3,
        "{before} blocks in the 2 s before the jump, {after} in the 2 s after"
    );
}

/// n = 4: one validator's wall clock jumps an hour ahead, or an hour back, mid-run: it is then
/// beyond the drift bound (a faulty proposer, or a nil voter), one of f = 1, and the others keep
/// committing; its timers still run on time.
#[test]
fn n4_one_wall_clock_jumping_an_hour_is_tolerated() {
    for offset in [3_600_000, -3_600_000] {
        let mut s = Scenario::clean(22, 4);
        s.gst_ms = 3_000;
        s.clock_jumps = vec![scenario::ClockJump {
            node: 2,
            at_ms: 1_000,
            offset_ms: offset,
        }];
        let r = run(&s);
        assert_ok(&r);
        assert!(r.heights >= 5);
    }
}

/// Not vacuous: with more than f equivocators the checker must catch a safety violation.
#[test]
fn more_than_f_equivocators_break_agreement_and_the_checker_sees_it() {
    let mut found = None;
    for seed in 0..200 {
        let mut s = Scenario::clean(seed, 4);
        s.byzantine = vec![
            (0, Variant::EquivocatingVoter),
            (1, Variant::EquivocatingVoter),
        ];
        s.links_before_gst = LinkConfig {
            loss: 0.2,
            reorder: 0.3,
            reorder_extra_ms: 300,
            ..LinkConfig::good(20, 60)
        };
        s.gst_ms = 8_000;
        let r = run(&s);
        if r.has(ViolationKind::Agreement) || r.has(ViolationKind::DoubleSign) {
            found = Some(r);
            break;
        }
    }
    let r =
        found.expect("2 equivocators of 4 never broke safety in 200 seeds: the checker is blind");
    println!("found as expected:\n{}", r.failure());
}

/// Average rounds per height and virtual time per height at 0%, 10% and 30% message loss (n = 4,
/// no other fault). `cargo nextest run --release -p ledger-core --run-ignored only sim_loss_report
/// --no-capture`.
#[test]
#[ignore]
fn sim_loss_report() {
    for loss in [0.0, 0.1, 0.3] {
        let mut rounds = 0u64;
        let mut heights = 0u64;
        let mut ms = 0u64;
        let mut failures = 0;
        let runs = 20;
        for seed in 0..runs {
            let mut s = Scenario::clean(seed, 4);
            let links = LinkConfig {
                loss,
                ..LinkConfig::good(20, 30)
            };
            s.links_before_gst = links.clone();
            s.links_after_gst = links;
            s.liveness_heights = 30;
            s.liveness_window_ms = 600_000;
            let r = run(&s);
            if !r.ok() {
                failures += 1;
                eprintln!("{}", r.failure());
            }
            heights += r.heights;
            rounds += r.rounds.iter().map(|r| u64::from(*r) + 1).sum::<u64>();
            ms += r.commit_ms.last().copied().unwrap_or(0);
        }
        println!(
            "loss={:>3.0}% runs={runs} heights={heights} rounds/height={:.2} virtual ms/height={:.0} failures={failures}",
            loss * 100.0,
            rounds as f64 / heights.max(1) as f64,
            ms as f64 / heights.max(1) as f64,
        );
    }
}
