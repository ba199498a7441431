//! The explorer page in a real browser.
//!
//! A real `ledger-node` on a one-validator chain commits a few transfers; headless Chromium, driven
//! over WebDriver (fantoccini + chromedriver), then uses the page the way a person would: the
//! dashboard (chain id, a growing height over the live event stream), a block link to the block
//! page, a transaction link to the transaction page ("Final" at its height), the sender link to the
//! account page (the balance the API reports), a search that finds nothing, a pending transfer that
//! is replaced (its open page turns "Dropped" and links to the replacement), the replacement that
//! turns final while its page is open, and the same pages at 375 px without horizontal scrolling.
//! Screenshots land in `$CARGO_TARGET_TMPDIR/explorer-*.png`.
//!
//! Chromium and ChromeDriver are the Debian packages `chromium` and `chromium-driver`, which
//! `scripts/test.sh` installs. Without them the test fails and says so: a skipped browser test
//! would let a broken page pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use ledger_core::{Address, Amount, ChainId, Keypair, Nonce, SignedTransaction, Transaction};
use serde_json::{Value, json};

use crate::browser::{
    ChromeDriver, WAIT, WHALE, balance, browser_paths, digits, genesis_with_a_whale,
};
use crate::common::{Process, account, free_addr, one_validator_files_for};

/// The memo carries markup on purpose: the page must show it as text.
const MEMO: &str = "hello <b>explorer</b> & friends";

#[test]
fn explorer_pages_work_in_headless_chromium() {
    let (chromium, chromedriver) = browser_paths();
    let dir = tempfile::tempdir().expect("tempdir");
    let (genesis, gpath, kpath) = one_validator_files_for(dir.path(), genesis_with_a_whale());
    let chain = genesis.chain_id().clone();
    let node = Process::start(dir.path(), &gpath, &kpath, free_addr());

    let (alice, bob) = (account(0), account(1));
    let hashes: Vec<String> = (0..3)
        .map(|nonce| {
            submit(
                &node,
                &signed(&chain, &alice, bob.address(), 1_000 + nonce, nonce, MEMO),
            )
        })
        .collect();
    let last = wait_final(&node, &hashes[2]);
    let tx_height = last["height"].as_u64().expect("height");
    let tx_hash = hashes[2].clone();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let driver = ChromeDriver::start(&chromedriver, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let base = format!("http://{}", node.api);
        let desktop = Browser::open(&driver, &chromium, &dir.path().join("profile-desktop"), None, &shots).await;
        let b = &desktop;

        // Dashboard: chain id, a height of at least 1, and the live stream moving it on.
        b.goto(&format!("{base}/")).await;
        b.wait_text("[data-testid=chain-id]", "the chain id", |t| t == chain.as_str()).await;
        let h1 = b.wait_text("[data-testid=height]", "a height >= 1", |t| digits(t) >= 1).await;
        b.wait_js("return document.getElementById('conn').dataset.state", "the event stream to connect", |v| v == "live").await;
        b.wait_text("[data-testid=height]", "the height to grow without a reload", |t| digits(t) > digits(&h1)).await;
        let tx_link = format!("[data-testid=latest-txs] a[href='#/tx/{tx_hash}']");
        b.wait_for(&tx_link, "our transfer in the latest transactions").await;
        b.wait_text("[data-testid=validators]", "the validator's signatures", |t| t.contains("this node")).await;
        b.shot("dashboard").await;

        // A block link to the block page.
        b.click(&format!("[data-testid=latest-txs] a[href='#/block/{tx_height}']")).await;
        b.wait_text("[data-testid=block-height]", "the block's height", |t| digits(t) == tx_height).await;
        b.wait_text("[data-testid=signer-count]", "the certificate signers", |t| t.contains("1 of 1")).await;
        b.wait_for(&format!("[data-testid=block-txs] a[href='#/tx/{tx_hash}']"), "our transfer in the block").await;
        b.shot("block").await;

        // A transaction link to the transaction page: final, at its height, memo shown as text.
        b.click(&format!("[data-testid=block-txs] a[href='#/tx/{tx_hash}']")).await;
        b.wait_text("[data-testid=tx-status]", "status Final", |t| t == "Final").await;
        b.wait_text("[data-testid=tx-height]", "the block height", |t| t.contains(&format!("#{}", grouped(tx_height)))).await;
        let memo = b.js("const m = document.querySelector('.memo-text'); return [m && m.textContent, !!(m && m.querySelector('b'))]").await;
        assert_eq!(memo, json!([MEMO, false]), "the memo must render as text, not markup");
        b.shot("tx").await;

        // The sender link to the account page: the balance the API reports.
        b.click("[data-testid=tx-from] a").await;
        b.wait_text("[data-testid=account-address]", "the sender's address", |t| t.contains(&alice.address().to_string())).await;
        let want = balance(&node, &alice.address());
        b.wait_text("[data-testid=account-balance]", "the balance", |t| digits(t) == want).await;
        let shown = b.js("return document.querySelector('[data-testid=account-balance]').textContent").await;
        assert!(shown.as_str().is_some_and(|t| t.contains(" LDG")), "the balance in the chain's unit: {shown}");
        b.wait_for(&format!("[data-testid=account-txs] a[href='#/tx/{tx_hash}']"), "the sender's transfer in its history").await;
        b.shot("account").await;

        // A balance above 2^53, exact in the display unit and in base units.
        let whale = account(7).address();
        assert_eq!(balance(&node, &whale), WHALE, "the API serves it exactly");
        b.goto(&format!("{base}/#/account/{whale}")).await;
        b.wait_text("[data-testid=account-balance]", "the whale's balance", |t| t.contains("12,345,678,901,234.567891 LDG")).await;
        b.wait_js(
            "return document.querySelector('[data-testid=account-balance]').nextElementSibling.textContent",
            "its base units beside it",
            |v| v.as_str().is_some_and(|t| t.contains("12,345,678,901,234,567,891 base units")),
        )
        .await;
        b.shot("account-whale").await;

        // Search: a hash nobody has is "not found"; a height and a transaction hash are found.
        b.search(&"ab".repeat(32)).await;
        b.wait_text("[data-testid=not-found]", "a not-found state", |t| t.to_lowercase().contains("not found")).await;
        b.shot("not-found").await;
        b.search(&tx_height.to_string()).await;
        b.wait_text("[data-testid=block-height]", "the block found by height", |t| digits(t) == tx_height).await;
        b.search(&tx_hash.to_uppercase()).await;
        b.wait_text("[data-testid=tx-hash]", "the transfer found by hash", |t| t.contains(&tx_hash)).await;

        // A transfer that waits for an earlier nonce is pending; replaced, it is dropped; its
        // replacement's open page turns to final when the gap is filled, without a reload.
        let carol = account(2);
        let later = signed(&chain, &carol, bob.address(), 5, 1, "");
        let later_hash = tokio::task::block_in_place(|| submit(&node, &later));
        b.goto(&format!("{base}/#/tx/{later_hash}")).await;
        b.wait_text("[data-testid=tx-status]", "status Pending", |t| t == "Pending").await;
        b.wait_text("[data-testid=tx-hint]", "why it waits", |t| t.contains("nonce 0")).await;
        b.shot("tx-pending").await;
        // The same nonce at a higher fee replaces it: the open page turns Dropped live, and links
        // to the replacement, which is pending in its place.
        let dearer = signed_paying(&chain, &carol, bob.address(), 5, 1, "", 9);
        let dearer_hash = tokio::task::block_in_place(|| submit(&node, &dearer));
        b.wait_text("[data-testid=tx-status]", "the replaced transfer to turn Dropped live", |t| t == "Dropped").await;
        b.wait_text("[data-testid=tx-reason]", "the reason", |t| t.starts_with("Replaced by")).await;
        b.shot("tx-dropped").await;
        b.click(&format!("[data-testid=tx-replaced-by][href='#/tx/{dearer_hash}']")).await;
        b.wait_text("[data-testid=tx-hash]", "the replacement's page", |t| t.contains(&dearer_hash)).await;
        b.wait_text("[data-testid=tx-status]", "the replacement Pending", |t| t == "Pending").await;
        b.js("window.__sameDocument = true; return null").await;
        let first = signed(&chain, &carol, bob.address(), 5, 0, "");
        tokio::task::block_in_place(|| submit(&node, &first));
        b.wait_text("[data-testid=tx-status]", "the pending transfer to turn Final live", |t| t == "Final").await;
        assert_eq!(b.js("return window.__sameDocument === true").await, json!(true), "the page reloaded");
        b.assert_no_page_error().await;
        desktop.close().await;

        // 375 px wide: nothing wider than the screen.
        let phone = Browser::open(&driver, &chromium, &dir.path().join("profile-phone"), Some((375, 812)), &shots).await;
        for (page, name, ready) in [
            (String::new(), "dashboard-375", "[data-testid=latest-txs] a"),
            (format!("#/block/{tx_height}"), "block-375", "[data-testid=block-txs] a"),
            (format!("#/tx/{tx_hash}"), "tx-375", "[data-testid=tx-from] a"),
        ] {
            phone.goto(&format!("{base}/{page}")).await;
            phone.wait_for(ready, "the page's content").await;
            let widths = phone.js("return [window.innerWidth, document.documentElement.scrollWidth]").await;
            assert_eq!(widths[0], json!(375), "viewport width");
            assert!(
                widths[1].as_u64() <= Some(375),
                "{name}: the page is {} px wide at 375 px, it scrolls sideways",
                widths[1]
            );
            phone.shot(name).await;
        }
        phone.assert_no_page_error().await;
        phone.close().await;
    });
}

// ---------------------------------------------------------------------------------------------
// The node side.

fn signed(
    chain: &ChainId,
    from: &Keypair,
    to: Address,
    amount: u64,
    nonce: u64,
    memo: &str,
) -> SignedTransaction {
    signed_paying(chain, from, to, amount, nonce, memo, 3)
}

fn signed_paying(
    chain: &ChainId,
    from: &Keypair,
    to: Address,
    amount: u64,
    nonce: u64,
    memo: &str,
    fee: u64,
) -> SignedTransaction {
    Transaction {
        chain_id: chain.clone(),
        from: from.public(),
        to,
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        memo: memo.as_bytes().to_vec(),
    }
    .sign(from)
}

fn submit(node: &Process, tx: &SignedTransaction) -> String {
    let (status, v) = node
        .post("/v1/transactions", &serde_json::to_value(tx).expect("json"))
        .expect("POST /v1/transactions");
    assert_eq!(status, 200, "submit: {v}");
    v["hash"].as_str().expect("hash").to_owned()
}

fn wait_final(node: &Process, hash: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, v) = node.get(&format!("/v1/transactions/{hash}"));
        if status == 200 && v["status"] == "final" {
            return v;
        }
        assert!(Instant::now() < deadline, "{hash} not final: {status} {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 1234567 -> "1,234,567", as the page writes numbers.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The browser side.

/// One WebDriver session, with the waits and artifacts the test needs.
struct Browser {
    client: Client,
    shots: PathBuf,
}

impl Browser {
    /// `phone`: emulate a device of that CSS size (headless windows cannot be narrower than 500 px).
    async fn open(
        driver: &ChromeDriver,
        chromium: &Path,
        profile: &Path,
        phone: Option<(u32, u32)>,
        shots: &Path,
    ) -> Browser {
        let mut options = json!({
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
                // Containers often have a tiny /dev/shm; Chromium then crashes tabs.
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some((width, height)) = phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "mobile": true, "touch": true }
            });
        }
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
            shots: shots.to_path_buf(),
        }
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Polls until `ok` holds for the text of the first element matching `css`; returns that text.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = None;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
            {
                if ok(text.trim()) {
                    return text.trim().to_owned();
                }
                last = Some(text);
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "waited for {what} in `{css}`; last text: {last:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for(&self, css: &str, what: &str) {
        self.wait_text(css, what, |_| true).await;
    }

    async fn wait_js(&self, script: &str, what: &str, ok: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.js(script).await;
            if ok(&v) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("waited for {what}; last value: {v}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.wait_for(css, "a link to click").await;
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn search(&self, query: &str) {
        let input = self
            .client
            .find(Locator::Css("[data-testid=search-input]"))
            .await
            .unwrap_or_else(|e| panic!("the search box: {e}"));
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear the search box: {e}"));
        input
            .send_keys(query)
            .await
            .unwrap_or_else(|e| panic!("type into the search box: {e}"));
        self.click("[data-testid=search-button]").await;
    }

    /// Saves `explorer-<name>.png` and prints where.
    async fn shot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = self.shots.join(format!("explorer-{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("explorer screenshot: {}", path.display());
        path
    }

    async fn assert_no_page_error(&self) {
        let banner = self.js("const b = document.getElementById('banner'); return b.hidden ? null : b.textContent").await;
        assert_eq!(banner, Value::Null, "the page reported an error");
    }

    /// Fails with a screenshot and the page's text, so a CI failure can be understood afterwards.
    async fn fail(&self, msg: &str) -> ! {
        let shot = self.shot("failure").await;
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = self.js("return document.body.innerText").await;
        panic!(
            "{msg}\npage {url}, screenshot {}\npage text:\n{}",
            shot.display(),
            text.as_str().unwrap_or("")
        );
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}
