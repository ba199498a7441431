//! What the browser tests share: Chromium and ChromeDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test.sh` installs), the chromedriver process, and the chain
//! with a balance above 2^53 that the pages must show and verify exactly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_core::{Address, Amount};
use serde_json::Value;

use crate::common::{Process, fast_genesis, free_addr};

/// Account 7's balance: above 2^53, where a JavaScript number would round it (to
/// 12,345,678,901,234,567,168). The page must show it exactly.
pub const WHALE: u64 = 12_345_678_901_234_567_891;

/// The test chain with account 7 holding [`WHALE`] base units.
pub fn genesis_with_a_whale() -> ledger_core::genesis::Genesis {
    let g = fast_genesis(1, 8);
    let mut accounts = g.accounts().to_vec();
    accounts[7].balance = Amount(WHALE);
    ledger_core::genesis::Genesis::new(
        g.chain_id().clone(),
        g.genesis_time_ms(),
        None,
        g.consensus_params().clone(),
        g.validators().validators().to_vec(),
        accounts,
    )
    .expect("valid genesis")
    .with_token(g.token().cloned())
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest wait for anything the page should show; generous for a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// The balance the node serves (off the async workers when called in a runtime).
pub fn balance(node: &Process, address: &Address) -> u64 {
    let (status, v) = tokio::task::block_in_place(|| node.get(&format!("/v1/accounts/{address}")));
    assert_eq!(status, 200, "{v}");
    v["balance"].as_u64().expect("balance")
}

/// The number in a text such as "#1,234" or "999,999,996,991".
pub fn digits(text: &str) -> u64 {
    let d: String = text.chars().filter(char::is_ascii_digit).collect();
    d.parse().unwrap_or(0)
}

/// Debian's paths, or `LEDGER_TEST_CHROMIUM` / `LEDGER_TEST_CHROMEDRIVER`. Missing: fail, loudly.
pub fn browser_paths() -> (PathBuf, PathBuf) {
    let chromium = std::env::var_os("LEDGER_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    let driver = std::env::var_os("LEDGER_TEST_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from);
    let missing: Vec<String> = [&chromium, &driver]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the explorer browser test needs Chromium and ChromeDriver, but {} not found. Install them with \
         `sudo apt-get install chromium chromium-driver` (scripts/test.sh does this), or set \
         LEDGER_TEST_CHROMIUM and LEDGER_TEST_CHROMEDRIVER to their paths.",
        missing.join(" and ")
    );
    (chromium, driver)
}

/// A chromedriver process on a free port, in its own process group so that dropping it also ends
/// the Chromium processes it started, even when the test panics before closing its sessions.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
}

impl ChromeDriver {
    pub fn start(path: &Path, dir: &Path) -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        let port = free_addr().port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let d = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut r) = agent.get(&format!("{}/status", d.url)).call()
                && r.body_mut()
                    .read_json::<Value>()
                    .is_ok_and(|v| v["value"]["ready"] == true)
            {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
