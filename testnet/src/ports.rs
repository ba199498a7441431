//! Free local ports: bind 127.0.0.1:0 and let the OS choose.
//!
//! All listeners of one call stay open until every port is chosen, so one call never returns the
//! same port twice. Between closing them and the node binding there is a short window in which
//! another program could take a port; the node then fails to start with "address in use" in its log,
//! which `up` shows.

use std::net::TcpListener;

use anyhow::Context;

/// `count` distinct free TCP ports on 127.0.0.1.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let l = TcpListener::bind(("127.0.0.1", 0))
            .context("cannot bind 127.0.0.1:0 to find a free port")?;
        listeners.push(l);
    }
    listeners
        .iter()
        .map(|l| Ok(l.local_addr().context("cannot read a bound port")?.port()))
        .collect()
}

/// Whether `port` can be bound on 127.0.0.1 right now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free() {
        let p = free_ports(8).expect("ports");
        let mut s = p.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 8);
        assert!(p.iter().all(|&x| x > 0 && is_free(x)));
    }
}
