//! Hosts for multi-host tests: network namespaces with veth pairs on one bridge, made and removed
//! by the test itself (needs root and iproute2). Shared by the node's and the testnet's
//! integration tests (the testnet's includes this file by path).

use std::process::{Child, Command};

/// Network namespaces, veth pairs and a bridge; removed on drop, also when the test fails.
pub struct Hosts {
    /// The namespaces' names, for `ip netns exec`.
    pub names: Vec<String>,
    bridge: String,
    subnet: String,
    /// Processes started in the namespaces: killed on drop, before the namespaces go.
    pub children: Vec<Child>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    /// `count` hosts on one bridge; the bridge (this namespace) is `<subnet>.254`.
    pub fn create(count: usize) -> Result<Hosts, String> {
        let tag = std::process::id() % 100_000;
        let subnet = format!("10.{}.{}", 100 + (tag % 100), tag % 250);
        let mut hosts = Hosts {
            names: Vec::new(),
            bridge: format!("lbr{tag}"),
            subnet,
            children: Vec::new(),
        };
        ip(&["link", "add", &hosts.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", hosts.subnet),
            "dev",
            &hosts.bridge,
        ])?;
        ip(&["link", "set", &hosts.bridge, "up"])?;
        for i in 0..count {
            let ns = format!("lns{tag}x{i}");
            ip(&["netns", "add", &ns])?;
            hosts.names.push(ns.clone());
            let outer = format!("lvo{tag}x{i}");
            let inner = format!("lvi{tag}x{i}");
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "master", &hosts.bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            let addr = format!("{}/24", hosts.addr(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
