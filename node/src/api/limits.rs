//! Request rate limits per client address: a lock-free GCRA token bucket in one atomic per
//! client, in a bounded cache; and event-stream slots per client address.
//!
//! GCRA keeps a "theoretical arrival time" (TAT): each admitted request pushes it one interval
//! further; a request is refused while the TAT is more than `burst` intervals ahead of now. It is a
//! token bucket without a refill task, and one compare-and-swap per request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    /// Nanoseconds since `start`.
    tat_ns: AtomicU64,
    interval_ns: u64,
    /// How far ahead of now the TAT may run: (burst - 1) intervals.
    tolerance_ns: u64,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        let interval_ns = 1_000_000_000 / u64::from(per_sec.max(1));
        RateLimiter {
            start: Instant::now(),
            tat_ns: AtomicU64::new(0),
            interval_ns: interval_ns.max(1),
            tolerance_ns: interval_ns.saturating_mul(u64::from(burst.max(1)) - 1),
        }
    }

    /// Takes one token at `now`; false if the bucket is empty.
    pub fn try_acquire_at(&self, now: Instant) -> bool {
        let now_ns =
            u64::try_from(now.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now_ns);
            if base - now_ns > self.tolerance_ns {
                return false;
            }
            let next = base.saturating_add(self.interval_ns);
            match self
                .tat_ns
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => tat = actual,
            }
        }
    }

    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }
}

/// Clients whose buckets are kept at once; a client idle for [`CLIENT_IDLE`] is forgotten (and
/// starts again with a full bucket, which costs nothing it did not already have).
pub const MAX_TRACKED_CLIENTS: u64 = 100_000;
pub const CLIENT_IDLE: Duration = Duration::from_secs(60);

/// Where a request comes from when the server did not say (a router driven in a test): one
/// shared bucket.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The address a client's limits are kept under: IPv4 as is (an IPv4-mapped IPv6 address, as a
/// dual-stack listener reports IPv4 clients, is the IPv4 address), IPv6 by its /64 prefix (one
/// host usually holds a whole /64, so per-address limits would give it 2^64 shares).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) if !v6.is_loopback() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        other => other,
    }
}

/// One token bucket per client address, so one client's flood is refused without taking the
/// others' share.
#[derive(Debug)]
pub struct ClientRateLimits {
    per_sec: u32,
    burst: u32,
    exempt_loopback: bool,
    buckets: moka::sync::Cache<IpAddr, Arc<RateLimiter>>,
}

impl ClientRateLimits {
    pub fn new(per_sec: u32, burst: u32, exempt_loopback: bool) -> ClientRateLimits {
        ClientRateLimits {
            per_sec,
            burst,
            exempt_loopback,
            buckets: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_CLIENTS)
                .time_to_idle(CLIENT_IDLE)
                .build(),
        }
    }

    /// Takes one token of `client`'s bucket; false if it is empty.
    pub fn try_acquire(&self, client: IpAddr) -> bool {
        let client = client_key(client);
        if self.exempt_loopback && client.is_loopback() {
            return true;
        }
        self.buckets
            .get_with(client, || {
                Arc::new(RateLimiter::new(self.per_sec, self.burst))
            })
            .try_acquire()
    }
}

/// `/v1/events` subscriptions open per client address, capped.
#[derive(Debug)]
pub struct ClientSlots {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One client's subscription; frees its slot when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    pub fn new(max: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn try_open(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let client = client_key(client);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(client).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: self.clone(),
            client,
        })
    }

    /// Client addresses holding a slot (their entries go when their last slot does).
    #[cfg(test)]
    pub fn clients_open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_clients_flood_does_not_empty_anothers_bucket_and_loopback_can_be_exempt() {
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let limits = ClientRateLimits::new(1, 3, false);
        assert_eq!((0..10).filter(|_| limits.try_acquire(a)).count(), 3);
        assert!(limits.try_acquire(b), "b has its own bucket");
        let local: IpAddr = [127, 0, 0, 1].into();
        assert_eq!((0..10).filter(|_| limits.try_acquire(local)).count(), 3);
        let exempt = ClientRateLimits::new(1, 3, true);
        assert_eq!((0..10).filter(|_| exempt.try_acquire(local)).count(), 10);
        assert_eq!((0..10).filter(|_| exempt.try_acquire(a)).count(), 3);
    }

    /// Found in review: on a dual-stack listener (`api.listen_addr = "[::]:8700"`) an IPv4 loopback
    /// client arrives as `::ffff:127.0.0.1`, which `IpAddr::is_loopback` does not count as
    /// loopback, so `rate_limit_exempt_loopback` does not exempt it.
    #[test]
    fn ipv4_mapped_loopback_is_exempt_like_loopback() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("address");
        let exempt = ClientRateLimits::new(1, 3, true);
        assert_eq!((0..10).filter(|_| exempt.try_acquire(mapped)).count(), 10);
    }

    #[test]
    fn ipv6_clients_share_limits_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("address");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(client_key(a), client_key(b), "one /64, one share");
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("address");
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 1]));
        assert_eq!(
            client_key("::1".parse().expect("address")),
            "::1".parse::<IpAddr>().expect("address")
        );
        let limits = ClientRateLimits::new(1, 3, false);
        assert_eq!((0..10).filter(|_| limits.try_acquire(a)).count(), 3);
        assert!(
            !limits.try_acquire(b),
            "another address of the same /64 has no fresh bucket"
        );
    }

    #[test]
    fn event_slots_are_capped_per_client_and_freed_on_drop() {
        let slots = ClientSlots::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let s1 = slots.try_open(a).expect("first");
        let _s2 = slots.try_open(a).expect("second");
        assert!(slots.try_open(a).is_none());
        assert!(slots.try_open([10, 0, 0, 2].into()).is_some());
        drop(s1);
        assert!(slots.try_open(a).is_some());
    }

    #[test]
    fn burst_then_steady_rate() {
        let rl = RateLimiter::new(10, 5);
        let t0 = rl.start;
        let granted = (0..20).filter(|_| rl.try_acquire_at(t0)).count();
        assert_eq!(granted, 5, "the burst");
        // 100 ms later one more token (10 per second).
        assert!(rl.try_acquire_at(t0 + Duration::from_millis(100)));
        assert!(!rl.try_acquire_at(t0 + Duration::from_millis(100)));
        // After a long pause the bucket is full again, but not fuller.
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..20).filter(|_| rl.try_acquire_at(later)).count(), 5);
    }
}
