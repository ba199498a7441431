//! The invariant checkers: pure functions (or small state machines) over what was observed, so each
//! can be fed a constructed violating input in a unit test. None of them talks to a node.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ledger_core::state::Account;
use ledger_core::{Address, Hash, Height};
use serde::Serialize;

/// Which invariant a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// Two nodes hold different blocks (or state roots) at one height.
    Fork,
    /// A transfer a node reported final is not final at that place on every node.
    FinalMoved,
    /// Replaying the chain from genesis with ledger-core failed.
    Replay,
    /// A node serves a balance or nonce the replay does not give.
    Balance,
    /// The balances do not add up to the genesis supply.
    Supply,
    /// A node's height went down between two reads.
    HeightBackwards,
    /// The chain did not resume (or converge) within the bound after a repair.
    Liveness,
    /// A block became final while no side of the network held a quorum.
    FinalityWithoutQuorum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// No fork.

/// One block as one node serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockId {
    pub height: u64,
    pub hash: Hash,
    pub state_root: Hash,
}

/// Every height any two nodes both have must hold the same block hash and state root. `chains`:
/// (node index, its blocks from height 1, ascending).
pub fn check_forks(chains: &[(usize, Vec<BlockId>)]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut by_height: BTreeMap<u64, (usize, BlockId)> = BTreeMap::new();
    for (node, blocks) in chains {
        for b in blocks {
            match by_height.get(&b.height) {
                None => {
                    by_height.insert(b.height, (*node, *b));
                }
                Some((first, a)) if a.hash != b.hash => out.push(Violation::new(
                    Invariant::Fork,
                    format!(
                        "height {}: node {first} has block {}, node {node} has block {}",
                        b.height, a.hash, b.hash
                    ),
                )),
                Some((first, a)) if a.state_root != b.state_root => out.push(Violation::new(
                    Invariant::Fork,
                    format!(
                        "height {}: block {} has state root {} on node {first} and {} on node {node}",
                        b.height, a.hash, a.state_root, b.state_root
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Final transfers stay final at the same place.

/// A node answered that a transfer is final at (height, index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportedFinal {
    pub hash: Hash,
    pub node: usize,
    pub height: u64,
    pub index: u32,
}

/// What one node says at the end about the reported transfers.
#[derive(Debug, Clone, Default)]
pub struct FinalView {
    pub node: usize,
    /// The node's head when its blocks were read.
    pub head: u64,
    /// Where each transfer of ours sits in the node's blocks (from the blocks themselves).
    pub in_blocks: HashMap<Hash, Vec<(u64, u32)>>,
    /// What `GET /v1/transactions/{hash}` answered: Some(place) when final, None otherwise.
    pub served: HashMap<Hash, Option<(u64, u32)>>,
}

/// Every transfer any node reported final must be final at the same (height, index) on every
/// node: in the node's blocks (exactly once) and in its transaction lookup.
pub fn check_finals(reported: &[ReportedFinal], views: &[FinalView]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut first: HashMap<Hash, ReportedFinal> = HashMap::new();
    for r in reported {
        match first.get(&r.hash) {
            Some(f) if (f.height, f.index) != (r.height, r.index) => out.push(Violation::new(
                Invariant::FinalMoved,
                format!(
                    "transfer {}: node {} reported it final at {}/{}, node {} at {}/{}",
                    r.hash, f.node, f.height, f.index, r.node, r.height, r.index
                ),
            )),
            Some(_) => {}
            None => {
                first.insert(r.hash, *r);
            }
        }
    }
    let mut hashes: Vec<&ReportedFinal> = first.values().collect();
    hashes.sort_by_key(|r| (r.height, r.index));
    for r in hashes {
        let place = (r.height, r.index);
        for v in views {
            if v.head >= r.height {
                let found = v.in_blocks.get(&r.hash).map(Vec::as_slice).unwrap_or(&[]);
                if found != [place] {
                    out.push(Violation::new(
                        Invariant::FinalMoved,
                        format!(
                            "transfer {} reported final at {}/{} by node {}: node {}'s blocks have it at {:?}",
                            r.hash, r.height, r.index, r.node, v.node, found
                        ),
                    ));
                }
            }
            match v.served.get(&r.hash) {
                Some(Some(p)) if *p == place => {}
                Some(other) => out.push(Violation::new(
                    Invariant::FinalMoved,
                    format!(
                        "transfer {} reported final at {}/{} by node {}: node {} answers {}",
                        r.hash,
                        r.height,
                        r.index,
                        r.node,
                        v.node,
                        match other {
                            Some((h, i)) => format!("final at {h}/{i}"),
                            None => "not final".into(),
                        }
                    ),
                )),
                // Not asked (the node did not answer at all is reported by the caller).
                None => {}
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Balances and nonces match the replay; supply is conserved.

/// Every account's value after each block that changed it, from the replay.
#[derive(Debug, Clone, Default)]
pub struct History {
    initial: HashMap<Address, Account>,
    changes: HashMap<Address, Vec<(u64, Account)>>,
    /// Heights whose block changed at least one account.
    changed_heights: BTreeSet<u64>,
    /// The last replayed height.
    pub height: u64,
}

impl History {
    pub fn new(initial: impl IntoIterator<Item = (Address, Account)>) -> History {
        History {
            initial: initial.into_iter().collect(),
            ..History::default()
        }
    }

    /// Records the accounts block `height` changed (heights ascending).
    pub fn record(&mut self, height: u64, changes: &[(Address, Account)]) {
        for (a, acc) in changes {
            self.changes.entry(*a).or_default().push((height, *acc));
        }
        if !changes.is_empty() {
            self.changed_heights.insert(height);
        }
        self.height = self.height.max(height);
    }

    /// The account after block `height`.
    pub fn at(&self, address: &Address, height: u64) -> Account {
        let base = self.initial.get(address).copied().unwrap_or(Account::EMPTY);
        match self.changes.get(address) {
            Some(v) => {
                // Ascending by height: the last change at or below `height`.
                let k = v.partition_point(|(h, _)| *h <= height);
                if k == 0 { base } else { v[k - 1].1 }
            }
            None => base,
        }
    }

    /// Every value the account had at some height in `from..=to`.
    pub fn values_between(&self, address: &Address, from: u64, to: u64) -> Vec<Account> {
        let mut out = vec![self.at(address, from)];
        if let Some(v) = self.changes.get(address) {
            out.extend(
                v.iter()
                    .filter(|(h, _)| *h > from && *h <= to)
                    .map(|(_, a)| *a),
            );
        }
        out
    }

    /// Whether any block in `from+1..=to` changed any account.
    pub fn changed_between(&self, from: u64, to: u64) -> bool {
        from < to && self.changed_heights.range(from + 1..=to).next().is_some()
    }

    /// Every account that ever held something: the genesis ones and every one a block touched.
    pub fn accounts(&self) -> BTreeSet<Address> {
        self.initial
            .keys()
            .chain(self.changes.keys())
            .copied()
            .collect()
    }
}

/// What one node served for a set of accounts, read between two status reads.
#[derive(Debug, Clone)]
pub struct ServedAccounts {
    pub node: usize,
    /// The node's height just before and just after the reads.
    pub from_height: u64,
    pub to_height: u64,
    pub accounts: Vec<(Address, Account)>,
}

/// Each served (balance, nonce) must be what the replay gives at some height the node passed
/// during the reads. And when no block changed anything during the reads, the served balances
/// must add up to the genesis supply.
pub fn check_balances(
    history: &History,
    genesis_supply: u128,
    served: &[ServedAccounts],
) -> Vec<Violation> {
    let mut out = Vec::new();
    for s in served {
        if s.to_height > history.height {
            out.push(Violation::new(
                Invariant::Balance,
                format!(
                    "node {} served accounts at height {} but the replay reached only {}",
                    s.node, s.to_height, history.height
                ),
            ));
            continue;
        }
        for (address, got) in &s.accounts {
            let possible = history.values_between(address, s.from_height, s.to_height);
            if !possible.contains(got) {
                out.push(Violation::new(
                    Invariant::Balance,
                    format!(
                        "node {} serves {address} with balance {} nonce {}; replaying the chain gives {} at heights {}..={}",
                        s.node,
                        got.balance,
                        got.nonce,
                        possible
                            .iter()
                            .map(|a| format!("balance {} nonce {}", a.balance, a.nonce))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        s.from_height,
                        s.to_height
                    ),
                ));
            }
        }
        if !history.changed_between(s.from_height, s.to_height) {
            let sum: u128 = s
                .accounts
                .iter()
                .map(|(_, a)| u128::from(a.balance.0))
                .sum();
            if sum != genesis_supply {
                out.push(Violation::new(
                    Invariant::Supply,
                    format!(
                        "node {} serves balances summing to {sum} over {} accounts; the genesis supply is {genesis_supply}",
                        s.node,
                        s.accounts.len()
                    ),
                ));
            }
        }
    }
    out
}

/// The replayed state's supply after a block must equal the genesis supply.
pub fn check_supply(height: u64, supply: u128, genesis_supply: u128) -> Option<Violation> {
    (supply != genesis_supply).then(|| {
        Violation::new(
            Invariant::Supply,
            format!(
                "after block {height} the replayed balances sum to {supply}, the genesis supply is {genesis_supply}"
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Heights never go backwards.

/// Follows each node's height across every read of the run (restarts included: a node restarted
/// with its data must come back at least where it was).
#[derive(Debug, Clone, Default)]
pub struct HeightMonitor {
    last: BTreeMap<usize, u64>,
    pub observations: u64,
    pub violations: Vec<Violation>,
}

impl HeightMonitor {
    pub fn observe(&mut self, node: usize, height: Height) {
        self.observations += 1;
        let h = height.0;
        match self.last.get(&node) {
            Some(&prev) if h < prev => {
                self.violations.push(Violation::new(
                    Invariant::HeightBackwards,
                    format!("node {node}: height {h} read after height {prev}"),
                ));
                // Keep the highest: one regression is one violation, not one per later read.
            }
            _ => {
                self.last.insert(node, h);
            }
        }
    }

    pub fn last(&self, node: usize) -> Option<u64> {
        self.last.get(&node).copied()
    }
}

#[cfg(test)]
mod tests {
    use ledger_core::{Amount, Keypair, Nonce};

    use super::*;

    fn id(height: u64, tag: &[u8]) -> BlockId {
        BlockId {
            height,
            hash: Hash::digest(tag),
            state_root: Hash::digest(&[tag, b"root"].concat()),
        }
    }

    fn addr(i: u32) -> Address {
        Keypair::dev("account", i).address()
    }

    fn acc(balance: u64, nonce: u64) -> Account {
        Account {
            balance: Amount(balance),
            nonce: Nonce(nonce),
        }
    }

    #[test]
    fn a_fork_is_reported_and_a_shorter_chain_is_not_one() {
        let common = vec![id(1, b"a"), id(2, b"b")];
        let mut longer = common.clone();
        longer.push(id(3, b"c"));
        assert!(check_forks(&[(0, common.clone()), (1, longer.clone())]).is_empty());

        let mut forked = common.clone();
        forked.push(id(3, b"other"));
        let v = check_forks(&[(0, longer.clone()), (1, common), (2, forked)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, Invariant::Fork);
        assert!(v[0].detail.contains("height 3"), "{}", v[0].detail);

        // Same block hash, different state root: the nodes executed it differently.
        let mut other_root = longer.clone();
        other_root[2].state_root = Hash::digest(b"x");
        let v = check_forks(&[(0, longer), (1, other_root)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("state root"), "{}", v[0].detail);
    }

    fn view(
        node: usize,
        hash: Hash,
        in_blocks: Vec<(u64, u32)>,
        served: Option<(u64, u32)>,
    ) -> FinalView {
        FinalView {
            node,
            head: 10,
            in_blocks: [(hash, in_blocks)].into_iter().collect(),
            served: [(hash, served)].into_iter().collect(),
        }
    }

    #[test]
    fn a_final_transfer_at_another_place_missing_or_twice_is_reported() {
        let h = Hash::digest(b"tx");
        let r = ReportedFinal {
            hash: h,
            node: 0,
            height: 5,
            index: 2,
        };
        let good = vec![
            view(0, h, vec![(5, 2)], Some((5, 2))),
            view(1, h, vec![(5, 2)], Some((5, 2))),
        ];
        assert!(check_finals(&[r], &good).is_empty());

        // Node 1 has it at another index, in its blocks and in its lookup.
        let moved = vec![
            view(0, h, vec![(5, 2)], Some((5, 2))),
            view(1, h, vec![(5, 3)], Some((5, 3))),
        ];
        let v = check_finals(&[r], &moved);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|x| x.invariant == Invariant::FinalMoved));

        // Node 1 lost it; node 2 has it twice.
        let lost = vec![
            view(1, h, vec![], None),
            view(2, h, vec![(5, 2), (7, 0)], Some((5, 2))),
        ];
        let v = check_finals(&[r], &lost);
        assert_eq!(v.len(), 3, "{v:?}");

        // Two nodes reported it final at different places.
        let r2 = ReportedFinal {
            node: 1,
            index: 3,
            ..r
        };
        let v = check_finals(&[r, r2], &good);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("node 1 at 5/3"), "{}", v[0].detail);

        // A node that is behind is not blamed for blocks it does not have yet.
        let behind = FinalView {
            head: 4,
            served: HashMap::new(),
            ..view(3, h, vec![], None)
        };
        assert!(check_finals(&[r], &[behind]).is_empty());
    }

    fn history() -> History {
        // Account 0 pays 10 + fee 1 to account 1 at height 3; validator fees are left out here.
        let mut h = History::new([(addr(0), acc(100, 0)), (addr(1), acc(100, 0))]);
        h.record(1, &[]);
        h.record(2, &[]);
        h.record(
            3,
            &[
                (addr(0), acc(89, 1)),
                (addr(1), acc(110, 0)),
                (addr(2), acc(1, 0)),
            ],
        );
        h.record(4, &[]);
        h
    }

    #[test]
    fn history_answers_by_height() {
        let h = history();
        assert_eq!(h.at(&addr(0), 2), acc(100, 0));
        assert_eq!(h.at(&addr(0), 3), acc(89, 1));
        assert_eq!(h.at(&addr(2), 0), Account::EMPTY);
        assert_eq!(
            h.values_between(&addr(0), 2, 4),
            vec![acc(100, 0), acc(89, 1)]
        );
        assert!(h.changed_between(2, 3));
        assert!(!h.changed_between(3, 4));
        assert_eq!(h.accounts().len(), 3);
    }

    #[test]
    fn a_wrong_balance_or_nonce_is_reported_and_a_read_during_a_block_is_not() {
        let h = history();
        let supply = 200;
        let ok = ServedAccounts {
            node: 0,
            from_height: 4,
            to_height: 4,
            accounts: vec![
                (addr(0), acc(89, 1)),
                (addr(1), acc(110, 0)),
                (addr(2), acc(1, 0)),
            ],
        };
        assert!(check_balances(&h, supply, std::slice::from_ref(&ok)).is_empty());

        // Read while block 3 landed: the old value of account 0 and the new one of account 1 are
        // both legitimate; the sum is not checked then.
        let straddling = ServedAccounts {
            from_height: 2,
            to_height: 3,
            accounts: vec![(addr(0), acc(100, 0)), (addr(1), acc(110, 0))],
            ..ok.clone()
        };
        assert!(check_balances(&h, supply, &[straddling]).is_empty());

        let wrong_balance = ServedAccounts {
            node: 2,
            accounts: vec![
                (addr(0), acc(90, 1)),
                (addr(1), acc(110, 0)),
                (addr(2), acc(1, 0)),
            ],
            ..ok.clone()
        };
        let v = check_balances(&h, supply, &[wrong_balance]);
        assert_eq!(
            v.iter().map(|x| x.invariant).collect::<Vec<_>>(),
            [Invariant::Balance, Invariant::Supply],
            "{v:?}"
        );
        let wrong_nonce = ServedAccounts {
            node: 3,
            accounts: vec![(addr(0), acc(89, 2))],
            ..ok.clone()
        };
        let v = check_balances(&h, supply, &[wrong_nonce]);
        assert!(
            v.iter()
                .any(|x| x.invariant == Invariant::Balance && x.detail.contains("nonce 2")),
            "{v:?}"
        );

        let ahead = ServedAccounts { to_height: 9, ..ok };
        assert_eq!(
            check_balances(&h, supply, &[ahead])[0].invariant,
            Invariant::Balance
        );
    }

    #[test]
    fn a_supply_change_is_reported() {
        // A node that lost one unit somewhere: its balances no longer add up to the genesis supply.
        let h = history();
        let served = ServedAccounts {
            node: 1,
            from_height: 4,
            to_height: 4,
            // Account 2's one unit is missing: it is served as empty.
            accounts: vec![
                (addr(0), acc(89, 1)),
                (addr(1), acc(110, 0)),
                (addr(2), Account::EMPTY),
            ],
        };
        let v = check_balances(&h, 200, &[served]);
        assert!(v.iter().any(|x| x.invariant == Invariant::Supply), "{v:?}");
        assert!(check_supply(7, 200, 200).is_none());
        let v = check_supply(7, 201, 200).expect("a violation");
        assert_eq!(v.invariant, Invariant::Supply);
        assert!(v.detail.contains("block 7"), "{}", v.detail);
    }

    #[test]
    fn a_height_going_backwards_is_reported() {
        let mut m = HeightMonitor::default();
        for (node, h) in [
            (0, 1),
            (1, 1),
            (0, 3),
            (0, 3),
            (1, 2),
            (0, 2),
            (0, 1),
            (0, 4),
        ] {
            m.observe(node, Height(h));
        }
        assert_eq!(m.observations, 8);
        assert_eq!(m.violations.len(), 2, "{:?}", m.violations);
        assert!(
            m.violations
                .iter()
                .all(|v| v.invariant == Invariant::HeightBackwards)
        );
        assert!(
            m.violations[0]
                .detail
                .contains("height 2 read after height 3")
        );
        assert_eq!(m.last(0), Some(4));
    }
}
