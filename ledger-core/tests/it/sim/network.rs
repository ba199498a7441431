//! Simulated links: latency with jitter, loss, duplication, reordering, and partitions.
//!
//! Every message is sent as its canonical encoding and decoded on delivery, so the simulation runs
//! the real wire format. Messages are delayed by `base_latency_ms + uniform(0..=jitter_ms)` and,
//! with probability `reorder`, by up to `reorder_extra_ms` more, which lets later messages
//! overtake them. A partition assigns each node a group (two or three groups); messages between
//! groups are dropped. A one-way fault drops the messages of one direction of one link only.

use std::collections::BTreeSet;
use std::rc::Rc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Event, EventQueue};

/// The behaviour of every link at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    pub base_latency_ms: u64,
    pub jitter_ms: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back by up to `reorder_extra_ms`.
    pub reorder: f64,
    pub reorder_extra_ms: u64,
}

impl LinkConfig {
    /// A good network: what links look like after GST.
    pub fn good(base_latency_ms: u64, jitter_ms: u64) -> LinkConfig {
        LinkConfig {
            base_latency_ms,
            jitter_ms,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_extra_ms: 0,
        }
    }
}

#[derive(Debug)]
pub struct Network {
    pub links: LinkConfig,
    /// Group per node while a partition is open.
    partition: Option<Vec<u8>>,
    /// (from, to) directions that drop everything.
    one_way: BTreeSet<(usize, usize)>,
    pub sent: u64,
    pub dropped: u64,
}

impl Network {
    pub fn new(links: LinkConfig) -> Network {
        Network {
            links,
            partition: None,
            one_way: BTreeSet::new(),
            sent: 0,
            dropped: 0,
        }
    }

    pub fn partition(&mut self, groups: Vec<u8>) {
        self.partition = Some(groups);
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }

    /// Drops (`on`) or restores the direction `from` -> `to`.
    pub fn one_way(&mut self, from: usize, to: usize, on: bool) {
        if on {
            self.one_way.insert((from, to));
        } else {
            self.one_way.remove(&(from, to));
        }
    }

    pub fn clear_one_way(&mut self) {
        self.one_way.clear();
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        if self.one_way.contains(&(a, b)) {
            return false;
        }
        match &self.partition {
            None => true,
            Some(g) => g.get(a) == g.get(b),
        }
    }

    /// Puts `bytes` from `from` to `to` on the wire, at virtual time `now`.
    pub fn send(
        &mut self,
        rng: &mut ChaCha8Rng,
        queue: &mut EventQueue,
        now: u64,
        from: usize,
        to: usize,
        bytes: Rc<Vec<u8>>,
    ) {
        self.sent += 1;
        // Draw the same number of random values whatever happens, so one link's fate does not
        // shift every later draw (keeps seeds comparable when a parameter changes).
        let lost = rng.random_bool(self.links.loss);
        let dup = rng.random_bool(self.links.duplicate);
        let delays = [self.delay(rng), self.delay(rng)];
        if lost || !self.connected(from, to) {
            self.dropped += 1;
            return;
        }
        let copies = if dup { 2 } else { 1 };
        for delay in delays.iter().take(copies) {
            queue.push(
                now + delay,
                Event::Deliver {
                    from,
                    to,
                    bytes: Rc::clone(&bytes),
                },
            );
        }
    }

    fn delay(&self, rng: &mut ChaCha8Rng) -> u64 {
        let l = &self.links;
        let jitter = rng.random_range(0..=l.jitter_ms);
        let held = rng.random_bool(l.reorder);
        let extra = rng.random_range(0..=l.reorder_extra_ms);
        l.base_latency_ms + jitter + if held { extra } else { 0 }
    }
}
