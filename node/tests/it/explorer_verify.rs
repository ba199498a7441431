//! The explorer verifies what it shows, in a real browser, against an honest and a lying node.
//!
//! A real `ledger-node` (one validator) commits a transfer; a [`LyingProxy`] stands in front of
//! its API and the page is opened through the proxy, in headless Chromium with a fresh profile.
//! With no lie, the account page and the transaction page show "Verified by 1 of 1 validators'
//! signatures at height H", with WebCrypto's Ed25519 and with the vendored @noble/ed25519
//! (`?verifier=noble`, what a page that is not a secure context uses); a balance above 2^53 is
//! verified exactly. With each kind of lie, the page it concerns shows the failure state naming
//! what failed and not the lied value, and the other page still verifies (no false alarm). A
//! genesis hash in the page address that the node's genesis does not match fails, and so does a
//! node that serves another genesis than the one pinned on the first visit, with a loud warning.
//!
//! The page's own measure of the time its checks take (`data-verify-ms` of the badge: hashing,
//! signatures and proof, after the fetches) is printed as `explorer verify ms: account=… tx=…`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use ledger_core::Address;
use serde_json::{Value, json};

use crate::browser::{ChromeDriver, WAIT, balance, browser_paths, digits, genesis_with_a_whale};
use crate::common::{Process, account, free_addr, one_validator_files_for, transfer};
use crate::lying_proxy::{Lie, LyingProxy};

/// Page loads per measured page kind; the median is printed.
const TIMING_RUNS: usize = 5;

#[test]
fn explorer_verifies_proofs_and_reports_a_lying_node() {
    let (chromium, chromedriver) = browser_paths();
    let dir = tempfile::tempdir().expect("tempdir");
    let (genesis, gpath, kpath) = one_validator_files_for(dir.path(), genesis_with_a_whale());
    let chain = genesis.chain_id().clone();
    let node = Process::start(dir.path(), &gpath, &kpath, free_addr());
    let (alice, bob) = (account(0), account(1));
    let tx_hash = node.submit(&transfer(&chain, &alice, bob.address(), 4_321, 3, 0));
    node.wait_final(&tx_hash);
    let alice_balance = balance(&node, &alice.address());
    let whale = account(7).address();

    let proxy = LyingProxy::start(node.api, Lie::None);
    // The proxy itself: honest, then lying about the balance in the plain answer.
    let through = |path: &str| -> Value {
        let url = format!("http://{}{path}", proxy.addr());
        let mut r = node
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        r.body_mut().read_json::<Value>().expect("json")
    };
    let path = format!("/v1/accounts/{}", alice.address());
    assert_eq!(through(&path)["balance"], alice_balance);
    proxy.set_lie(Lie::Balance);
    assert_eq!(through(&path)["balance"], alice_balance + 1_000_000);
    proxy.set_lie(Lie::None);
    let driver = ChromeDriver::start(&chromedriver, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let b = Browser::open(&driver, &chromium, &dir.path().join("profile")).await;
        let base = proxy.url();
        // Every URL differs in its query, so each is a new document (a change of the fragment
        // alone would be a same-document navigation, and the previous badge could be read).
        let account_page = |q: &str, addr: &Address| format!("{base}/?{q}&page=account#/account/{addr}");
        let tx_page = |q: &str| format!("{base}/?{q}&page=tx#/tx/{tx_hash}");

        // The first visit pins the genesis; an honest node verifies, with WebCrypto.
        let v = b.verify(&account_page("n=0", &alice.address())).await;
        v.assert_verified("alice's account");
        assert!(v.detail.contains("pinned on first visit"), "trust on first use is said: {}", v.detail);
        assert_eq!(v.verifier, "webcrypto", "127.0.0.1 is a secure context: WebCrypto Ed25519");
        let shown = b.text("[data-testid=account-balance]").await;
        assert_eq!(digits(&shown), alice_balance, "the verified balance: {shown}");

        let v = b.verify(&tx_page("n=1")).await;
        v.assert_verified("the transfer");
        assert_eq!(b.text("[data-testid=tx-status]").await, "Final");
        let amount = b.text("[data-testid=tx-amount]").await;
        assert!(amount.contains("0.004321"), "the verified amount: {amount}");

        let v = b.verify(&account_page("n=2", &whale)).await;
        v.assert_verified("the whale's account");
        let shown = b.text("[data-testid=account-balance]").await;
        assert!(shown.contains("12,345,678,901,234.567891 LDG"), "exact above 2^53: {shown}");
        b.shot("verify-account").await;

        // The same checks with the vendored fallback, and the times of both.
        let mut times = Vec::new();
        for (verifier, query) in [("webcrypto", ""), ("noble", "verifier=noble&")] {
            let (mut acc, mut tx) = (Vec::new(), Vec::new());
            for run in 0..TIMING_RUNS {
                let v = b.verify(&account_page(&format!("{query}t={run}"), &alice.address())).await;
                v.assert_verified("alice's account (timing)");
                assert_eq!(v.verifier, verifier);
                acc.push(v.ms);
                let v = b.verify(&tx_page(&format!("{query}t={run}"))).await;
                v.assert_verified("the transfer (timing)");
                assert_eq!(v.verifier, verifier);
                tx.push(v.ms);
            }
            times.push((verifier, median(&mut acc), median(&mut tx)));
        }
        for (verifier, acc, tx) in &times {
            println!("explorer verify ms: account={acc:.2} tx={tx:.2} (median of {TIMING_RUNS}, {verifier}, 1 validator, checks after the fetches)");
        }

        // Each lie: the page it concerns fails, naming what failed; the other still verifies.
        let lies = [
            (Lie::Balance, true, false, "balance does not match the state proof"),
            (Lie::TxContent, false, true, "hashes to"),
            (Lie::Header, true, true, "does not verify"),
            (Lie::Certificate, true, true, "does not verify"),
            (Lie::CertificateQuorum, true, true, "voting power"),
        ];
        for (i, (lie, account_lies, tx_lies, reason)) in lies.into_iter().enumerate() {
            proxy.set_lie(lie);
            assert_eq!(proxy.lie(), lie);
            let v = b.verify(&account_page(&format!("lie={i}"), &alice.address())).await;
            if account_lies {
                v.assert_failed(&format!("{lie:?} on the account page"), reason);
                assert_eq!(b.text("[data-testid=account-balance]").await, "Not verified", "{lie:?}: the lied balance is not shown");
                b.shot(&format!("verify-account-{lie:?}")).await;
            } else {
                v.assert_verified(&format!("{lie:?} on the account page"));
            }
            let v = b.verify(&tx_page(&format!("lie={i}"))).await;
            if tx_lies {
                v.assert_failed(&format!("{lie:?} on the transaction page"), reason);
                assert_eq!(b.text("[data-testid=tx-status]").await, "Not verified", "{lie:?}");
                assert_eq!(b.js("return document.querySelector('[data-testid=tx-amount]') === null").await, json!(true), "{lie:?}: no unverified amount");
                b.shot(&format!("verify-tx-{lie:?}")).await;
            } else {
                v.assert_verified(&format!("{lie:?} on the transaction page"));
            }
        }
        proxy.set_lie(Lie::None);

        // A genesis given in the page address that the node's does not match.
        let v = b.verify(&account_page(&format!("genesis={}", "ab".repeat(32)), &alice.address())).await;
        v.assert_failed("a genesis hash in the page address", "given in the page address");
        let v = b.verify(&account_page(&format!("genesis={}", genesis.hash()), &alice.address())).await;
        v.assert_verified("the right genesis in the page address");
        assert!(v.detail.contains("given in the page address"), "{}", v.detail);

        // The node serves another genesis than the one pinned on the first visit: loud, not believed.
        let key = format!("ledger-explorer/genesis/{chain}");
        b.js(&format!("localStorage.setItem('{key}', '{}'); return null", "cd".repeat(32))).await;
        let v = b.verify(&account_page("repinned", &alice.address())).await;
        v.assert_failed("another genesis than the pinned one", "pinned on your first visit");
        let warning = b.text("[data-testid=genesis-warning]").await;
        assert!(warning.contains("different chain"), "the warning: {warning}");
        b.shot("verify-genesis-warning").await;
        b.close().await;
    });
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// What the page's verification badge says once it has decided.
#[derive(Debug)]
struct Verdict {
    state: String,
    summary: String,
    detail: String,
    reason: String,
    verifier: String,
    ms: f64,
}

impl Verdict {
    fn assert_verified(&self, what: &str) {
        assert_eq!(self.state, "verified", "{what}: not verified: {self:?}");
        assert!(
            self.summary
                .starts_with("Verified by 1 of 1 validators' signatures at height "),
            "{what}: {self:?}"
        );
        assert!(self.ms > 0.0, "{what}: no time measured: {self:?}");
    }

    fn assert_failed(&self, what: &str, reason: &str) {
        assert_eq!(
            self.state, "failed",
            "{what}: the lie was believed: {self:?}"
        );
        assert!(
            self.summary.starts_with("Not verified: "),
            "{what}: {self:?}"
        );
        assert!(
            self.reason.contains(reason),
            "{what}: the reason should name `{reason}`: {self:?}"
        );
    }
}

struct Browser {
    client: Client,
    shots: PathBuf,
}

impl Browser {
    async fn open(driver: &ChromeDriver, chromium: &Path, profile: &Path) -> Browser {
        let options = json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--window-size=1280,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let caps = match json!({ "browserName": "chrome", "goog:chromeOptions": options }) {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        };
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot start a Chromium session through chromedriver: {e}")
            });
        Browser {
            client,
            shots: PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        let v = self
            .js(&format!(
                "const e = document.querySelector('{css}'); return e ? e.textContent.trim() : null"
            ))
            .await;
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {css} on the page"))
    }

    /// Opens `url` as a new document and waits for its verification badge to decide.
    async fn verify(&self, url: &str) -> Verdict {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        let deadline = Instant::now() + WAIT;
        let read = "const e = document.querySelector('[data-testid=verify]'); \
            if (!e || e.dataset.state === 'verifying') return null; \
            const t = (s) => { const x = e.querySelector(s); return x ? x.textContent.trim() : ''; }; \
            return { state: e.dataset.state, summary: t('.verify-title'), detail: t('.verify-detail'), \
                     reason: t('[data-testid=verify-reason]'), verifier: e.dataset.verifier || '', \
                     ms: Number(e.dataset.verifyMs || 0) };";
        loop {
            let v = self.js(read).await;
            if !v.is_null() {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
                return Verdict {
                    state: s("state"),
                    summary: s("summary"),
                    detail: s("detail"),
                    reason: s("reason"),
                    verifier: s("verifier"),
                    ms: v["ms"].as_f64().unwrap_or(0.0),
                };
            }
            if Instant::now() > deadline {
                self.shot("verify-timeout").await;
                let text = self.js("return document.body.innerText").await;
                panic!(
                    "{url}: the page did not decide within {WAIT:?}; page text:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let path = self.shots.join(format!("explorer-{name}.png"));
            if std::fs::write(&path, png).is_ok() {
                println!("explorer screenshot: {}", path.display());
            }
        }
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}
